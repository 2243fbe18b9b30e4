import type { AccessTrace } from './access_trace.js';
import { EBUSY, EFAULT, EINVAL, kernelError } from './errno.js';
import type { Machine } from './machine.js';
import { misplacedInFlight, misplacedSettled } from './migrate_misplaced.js';
import { addrToVpn } from './mm.js';
import type { Process } from './process.js';
import { show } from './show.js';
import { type CompiledTrace, seededRandom } from './workload_access.js';

/**
 * Replay of recorded access traces (access_trace.ts) on a machine: `compileAccessTrace` maps a
 * trace onto a region of a process (for the user-thread `replay` workload, workload_access.ts),
 * and `replayAccessTrace` replays it deterministically on the main thread, step by step on a
 * manual machine clock.
 *
 * The mapping: the trace's address ranges (every region of every record, widened to whole pages)
 * are laid end to end in address order with the gaps between them removed (DAMON's virtual
 * address targets are a few busy areas separated by terabytes of nothing), the lowest address at
 * the region's start; if that still does not fit the region's pages, it is scaled down linearly
 * (a replay page then stands for several trace pages; a region keeps at least one page). A region
 * with `accesses` a accesses each of its pages a times during its record.
 */

/** Typed views of a compiled trace's shared arrays (the thread-side replay builds the same). */
function traceViews(t: CompiledTrace) {
  return {
    startMs: new Float64Array(t.startMs),
    endMs: new Float64Array(t.endMs),
    off: new Int32Array(t.regionOffset),
    first: new Int32Array(t.firstPage),
    nr: new Int32Array(t.nrPages),
    acc: new Int32Array(t.accesses),
  };
}

/** Compiles `trace` for a replay region of `bytes` (whole pages) — see the mapping above. */
export function compileAccessTrace(trace: AccessTrace, bytes: number): CompiledTrace {
  if (!trace || !Array.isArray(trace.records))
    throw kernelError(EINVAL, 'compileAccessTrace: trace has no records list');
  if (!Number.isSafeInteger(bytes) || bytes < 4096)
    throw kernelError(EINVAL, `compileAccessTrace: bytes ${show(bytes)} must hold at least one page`);
  const pages = Math.floor(bytes / 4096);
  trace.records.forEach((r, i) => {
    if (!(Number.isFinite(r?.startMs) && Number.isFinite(r.endMs) && r.endMs >= r.startMs))
      throw kernelError(
        EINVAL,
        `compileAccessTrace: record ${i} runs from ${show(r?.startMs)} to ${show(r?.endMs)} ms`,
      );
  });
  // In time order (a stable sort: damo's JSON does not promise it).
  const recs = [...trace.records].sort((x, y) => x.startMs - y.startMs);
  let nrRegions = 0;
  for (const r of recs) nrRegions += r.regions.length;
  // The union of the trace's page ranges, in address order.
  const ranges = recs
    .flatMap((r) => r.regions.map((g) => [Math.floor(g.start / 4096), Math.ceil(g.end / 4096)] as const))
    .sort((a, b) => a[0] - b[0]);
  const uStart: number[] = [];
  const uEnd: number[] = [];
  const uOff: number[] = [];
  let span = 0;
  for (const [s, e] of ranges) {
    const last = uEnd.length - 1;
    if (last >= 0 && s <= uEnd[last]!) {
      if (e > uEnd[last]!) {
        span += e - uEnd[last]!;
        uEnd[last] = e;
      }
      continue;
    }
    uStart.push(s);
    uEnd.push(e);
    uOff.push(span);
    span += e - s;
  }
  const scale = span > pages ? pages / span : 1;
  const compact = (tracePage: number): number => {
    let lo = 0;
    let hi = uStart.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >>> 1;
      if (uStart[mid]! <= tracePage) lo = mid;
      else hi = mid - 1;
    }
    return uOff[lo]! + (tracePage - uStart[lo]!);
  };
  const t: CompiledTrace = {
    records: recs.length,
    startMs: new SharedArrayBuffer(recs.length * 8),
    endMs: new SharedArrayBuffer(recs.length * 8),
    regionOffset: new SharedArrayBuffer((recs.length + 1) * 4),
    firstPage: new SharedArrayBuffer(nrRegions * 4),
    nrPages: new SharedArrayBuffer(nrRegions * 4),
    accesses: new SharedArrayBuffer(nrRegions * 4),
    pages,
  };
  const { startMs, endMs, off, first, nr, acc } = traceViews(t);
  let g = 0;
  recs.forEach((r, i) => {
    startMs[i] = r.startMs;
    endMs[i] = r.endMs;
    off[i] = g;
    for (const reg of r.regions) {
      const a = compact(Math.floor(reg.start / 4096));
      const b = a + (Math.ceil(reg.end / 4096) - Math.floor(reg.start / 4096));
      const p0 = Math.min(pages - 1, Math.floor(a * scale));
      first[g] = p0;
      nr[g] = Math.max(1, Math.min(pages, Math.ceil(b * scale)) - p0);
      acc[g] = Math.min(reg.accesses, 0x7fffffff);
      g++;
    }
  });
  off[recs.length] = g;
  return t;
}

/** Options of replayAccessTrace. */
export interface ReplayOptions {
  /** The replay region of the process (page aligned, mapped). */
  addr: number;
  bytes: number;
  /** Seed of the pass start pages and of the read/write choice. Default 1. */
  seed?: number;
  /** Trace ms per step. Default 100 (DAMON's default aggregation interval). */
  stepMs?: number;
  /** Share of accesses that write, 0..1. Default 0. */
  writeShare?: number;
  /**
   * Called after every step, once its accesses are done, the migrations their hinting faults
   * started have ended and the clock moved on; `tMs` is the trace time at the step's end. Run the
   * daemons' stepped passes here (`await nb.scanNow()`, `await ks.settled()`).
   */
  onStep?: (tMs: number) => void | Promise<void>;
}

export interface ReplayResult {
  steps: number;
  /** Page accesses made, reads and writes. */
  accesses: number;
  reads: number;
  writes: number;
  /** Trace time at the end (ms). */
  endMs: number;
}

/**
 * Replays `trace` on the main thread of `proc`, deterministically: the machine's clock must be
 * manual (`createMachine({ clock: 'manual' })`, else EINVAL). Steps of `stepMs` walk the trace;
 * in a step, each region of each record that overlaps it gets its share of the record's passes
 * (a * overlap / record length, the remainder carried to the next step), every pass a
 * `p.touch()` of each of its pages from a seeded start (the process's own access path: page
 * faults, NUMA hinting faults on PROT_NONE entries, accessed and dirty bits). A page under
 * migration waits for the migration and is touched again. Then the misplaced-folio migrations
 * are awaited, the clock advances by stepMs, and `onStep` is awaited.
 */
export async function replayAccessTrace(
  m: Machine,
  proc: Process,
  trace: AccessTrace | CompiledTrace,
  options: ReplayOptions,
): Promise<ReplayResult> {
  if (m.clock.mode !== 'manual')
    throw kernelError(
      EINVAL,
      "replayAccessTrace: the machine's clock is 'wall'; a deterministic replay needs createMachine({ clock: 'manual' })",
    );
  const o = options ?? ({} as ReplayOptions);
  const stepMs = o.stepMs ?? 100;
  if (typeof stepMs !== 'number' || !(stepMs > 0) || !Number.isFinite(stepMs))
    throw kernelError(EINVAL, `replayAccessTrace: stepMs ${show(stepMs)} must be a positive number`);
  const writeShare = o.writeShare ?? 0;
  if (typeof writeShare !== 'number' || !(writeShare >= 0 && writeShare <= 1))
    throw kernelError(EINVAL, `replayAccessTrace: writeShare ${show(writeShare)} is not in 0..1`);
  if (o.seed !== undefined && !Number.isInteger(o.seed))
    throw kernelError(EINVAL, `replayAccessTrace: seed ${show(o.seed)} is not an integer`);
  if (o.onStep !== undefined && typeof o.onStep !== 'function')
    throw kernelError(EINVAL, `replayAccessTrace: onStep ${show(o.onStep)} is not a function`);
  if (!Number.isSafeInteger(o.addr) || o.addr % 4096 !== 0)
    throw kernelError(EINVAL, `replayAccessTrace: addr ${show(o.addr)} is not page aligned`);
  if (!Number.isSafeInteger(o.bytes) || o.bytes < 4096)
    throw kernelError(EINVAL, `replayAccessTrace: bytes ${show(o.bytes)} must hold at least one page`);
  if (m.process(proc.pid) !== proc)
    throw kernelError(EINVAL, `replayAccessTrace: pid ${proc.pid} is not a live process of this machine`);
  const firstVpn = addrToVpn(o.addr);
  const pages = Math.floor(o.bytes / 4096);
  // Every page must be mapped before the first access: a bad region replays nothing.
  for (let v = firstVpn; v < firstVpn + pages; ) {
    const vma = firstVpn >= 0 ? proc.mm.findVma(v) : undefined;
    if (!vma)
      throw kernelError(
        EFAULT,
        `replayAccessTrace: page 0x${(o.addr + (v - firstVpn) * 4096).toString(16)} of the region is not mapped`,
      );
    v = vma.endVpn;
  }
  const t: CompiledTrace =
    typeof trace?.records === 'number'
      ? (trace as CompiledTrace)
      : compileAccessTrace(trace as AccessTrace, o.bytes);
  if (t.pages !== pages)
    throw kernelError(
      EINVAL,
      `replayAccessTrace: the trace was compiled for ${t.pages} pages, the region has ${pages}`,
    );
  const { startMs, endMs, off, first, nr, acc } = traceViews(t);
  const carry = new Float64Array(off[t.records]!);
  const passes = new Int32Array(off[t.records]!);
  const rnd = seededRandom(o.seed ?? 1);
  const res: ReplayResult = { steps: 0, accesses: 0, reads: 0, writes: 0, endMs: 0 };
  if (t.records === 0) return res;
  const t0 = startMs[0]!;
  let tEnd = t0;
  for (const x of endMs) tEnd = Math.max(tEnd, x);

  /** One access to `page`; false when the page is under a migration (nothing was done). */
  const touch = (page: number): boolean => {
    const write = writeShare > 0 && rnd() < writeShare;
    try {
      proc.touch(o.addr + page * 4096, 4096, write ? 'write' : 'read');
    } catch (e) {
      if ((e as { errno?: number }).errno !== EBUSY) throw e;
      return false;
    }
    res.accesses++;
    if (write) res.writes++;
    else res.reads++;
    return true;
  };

  // The migrations hinting faults started, else (kswapd's, a syscall's) a turn of the event loop.
  const migrationWait = (): Promise<void> =>
    misplacedInFlight(m.kernel) > 0
      ? misplacedSettled(m.kernel)
      : new Promise<void>((resolve) => setImmediate(resolve));

  let rec0 = 0;
  const nSteps = Math.max(1, Math.ceil((tEnd - t0) / stepMs));
  for (let step = 0; step < nSteps; step++) {
    const s = t0 + step * stepMs;
    const e = s + stepMs;
    const last = step === nSteps - 1;
    while (rec0 < t.records && endMs[rec0]! <= s && startMs[rec0]! < s) rec0++;
    let maxPasses = 0;
    for (let i = rec0; i < t.records && (startMs[i]! < e || last); i++) {
      const len = endMs[i]! - startMs[i]!;
      const overlap = Math.min(e, endMs[i]!) - Math.max(s, startMs[i]!);
      for (let g = off[i]!; g < off[i + 1]!; g++) {
        if (len <= 0) {
          // A record of no length: all its passes in the step where it is.
          passes[g] = startMs[i]! >= s && (startMs[i]! < e || last) ? acc[g]! : 0;
          if (passes[g]! > maxPasses) maxPasses = passes[g]!;
          continue;
        }
        if (overlap <= 0) {
          passes[g] = 0;
          continue;
        }
        const want = carry[g]! + (acc[g]! * overlap) / len;
        // Rounding slack: a record's passes add up to exactly `a` over its steps.
        const n = Math.floor(want + 1e-9);
        carry[g] = want - n;
        passes[g] = n;
        if (n > maxPasses) maxPasses = n;
      }
    }
    for (let pass = 0; pass < maxPasses; pass++) {
      for (let i = rec0; i < t.records && (startMs[i]! < e || last); i++) {
        for (let g = off[i]!; g < off[i + 1]!; g++) {
          if (passes[g]! <= pass) continue;
          const n = nr[g]!;
          const p0 = Math.floor(rnd() * n);
          for (let k = 0; k < n; k++) {
            const q = p0 + k;
            // A page under migration waits for it, as the MMU would.
            while (!touch(first[g]! + (q >= n ? q - n : q))) await migrationWait();
          }
        }
      }
    }
    await misplacedSettled(m.kernel);
    m.clock.advance(stepMs);
    res.steps++;
    res.endMs = Math.min(e, tEnd) - t0;
    await o.onStep?.(e - t0);
  }
  return res;
}
