import type { Mmu } from './mmu.js';
import type { AccessWorkload, ReplayWorkload } from './workload_access.js';

/**
 * Workloads for user threads (examples, benchmarks, stress tests): loops over a region with a
 * per-word generation pattern that can be verified afterwards. This module runs in worker threads
 * (it imports nothing at run time).
 *
 * The region is cut into interleaved *lanes*: lane word j of lane L is the 32-bit word
 * `(j * lanes + L) * strideWords` of the region, so every page is written by every lane. A writer
 * owns one lane; each visit of a word checks that it still holds the writer's last value
 * (`patternWord(L, gen)`), then stores the next generation. A reader visits every lane's words and
 * checks the owner tag (torn or misplaced value) and that generations never go back (stale read).
 * A write lost during migration (made to the source frame after its copy started) shows up as a
 * `lost` error at the writer's next visit and as a mismatch in `verifyPattern` afterwards.
 */
export interface PatternWorkload {
  kind: 'pattern';
  /** Page-aligned start of the region. */
  addr: number;
  bytes: number;
  /** Interleaved lanes (writers) in the region, 1..255. */
  lanes: number;
  /** The lane this thread writes; -1 makes it a reader of every lane. */
  lane: number;
  /** Visit lane words in order, or at random. Default 'sequential'. */
  order?: 'sequential' | 'random';
  /** Words between two lane words of one lane position (1 = every word). Default 1. */
  strideWords?: number;
  /** Stop after this many passes (a pass visits as many words as the lane holds). */
  passes?: number;
  /** Stop after this long. Without passes or durationMs the thread runs until stopped. */
  durationMs?: number;
  /** Seed of the random order. */
  seed?: number;
  /** Errors kept in `firstErrors`. Default 16. */
  keepErrors?: number;
}

/** The built-in workloads: the pattern workload here, the access and replay workloads of workload_access.ts. */
export type Workload = PatternWorkload | AccessWorkload | ReplayWorkload;

export interface PatternError {
  kind: 'lost' | 'torn' | 'stale';
  /** Word index in the region. */
  word: number;
  expected: number;
  got: number;
}

export interface PatternResult {
  lane: number;
  reader: boolean;
  passes: number;
  /** Words visited. */
  ops: number;
  errors: number;
  firstErrors: PatternError[];
  /** Writer: the last generation written to each lane word (verifyPattern needs it). */
  generations: Uint32Array | null;
  seconds: number;
  tlbFlushes: number;
  faults: number;
  migrationWaits: number;
  tlbMisses: number;
}

const GEN_MASK = 0xffffff;

/** The value lane `lane` writes at generation `gen`: (lane + 1) << 24 | gen. */
export function patternWord(lane: number, gen: number): number {
  return (((lane + 1) & 0xff) << 24) | (gen & GEN_MASK);
}

/** Words each lane owns in a region of `bytes`. */
export function laneWords(bytes: number, lanes: number, strideWords = 1): number {
  return Math.floor(bytes / 4 / (lanes * strideWords));
}

/** Word index in the region of lane word `j` of `lane`. */
export function laneWordIndex(j: number, lanes: number, lane: number, strideWords = 1): number {
  return (j * lanes + lane) * strideWords;
}

function checkWorkload(w: PatternWorkload): void {
  const fail = (why: string) => {
    throw new RangeError(`pattern workload: ${why}`);
  };
  if (w.kind !== 'pattern') fail(`kind ${JSON.stringify(w.kind)} is not 'pattern'`);
  if (!Number.isSafeInteger(w.addr) || w.addr % 4096 !== 0) fail(`addr ${w.addr} is not page aligned`);
  if (!Number.isSafeInteger(w.bytes) || w.bytes <= 0) fail(`bytes ${w.bytes} must be positive`);
  if (!Number.isInteger(w.lanes) || w.lanes < 1 || w.lanes > 255) fail(`lanes ${w.lanes} is not in 1..255`);
  if (!Number.isInteger(w.lane) || w.lane < -1 || w.lane >= w.lanes)
    fail(`lane ${w.lane} is not -1 (reader) or in 0..${w.lanes - 1}`);
  const stride = w.strideWords ?? 1;
  if (!Number.isInteger(stride) || stride < 1) fail(`strideWords ${stride} must be a positive integer`);
  if (laneWords(w.bytes, w.lanes, stride) < 1) fail('the region holds no lane word');
}

/** Runs a workload on `mmu` until its passes, its duration or a stop request end it. */
export function runWorkload(mmu: Mmu, w: PatternWorkload): PatternResult {
  checkWorkload(w);
  const t0 = performance.now();
  const deadline = w.durationMs !== undefined ? t0 + w.durationMs : Number.POSITIVE_INFINITY;
  const maxPasses = w.passes ?? Number.POSITIVE_INFINITY;
  const lanes = w.lanes;
  const stride = w.strideWords ?? 1;
  const n = laneWords(w.bytes, lanes, stride);
  const baseVpn = mmu.vpnOf(w.addr);
  const random = w.order === 'random';
  let seed = (w.seed ?? 0x2545f491 + w.lane * 7919) >>> 0 || 1;
  const keep = w.keepErrors ?? 16;
  const firstErrors: PatternError[] = [];
  let errors = 0;
  const report = (kind: PatternError['kind'], word: number, expected: number, got: number) => {
    errors++;
    if (firstErrors.length < keep) firstErrors.push({ kind, word, expected, got });
  };
  let ops = 0;
  let passes = 0;
  let stop = false;
  const reader = w.lane < 0;
  const gens = reader ? null : new Uint32Array(n);
  const seen = reader ? new Uint32Array(n * lanes) : null;
  const tag = (w.lane + 1) & 0xff;

  while (!stop && passes < maxPasses) {
    if (!reader) {
      const g = gens!;
      for (let i = 0; i < n; i++) {
        let j = i;
        if (random) {
          seed ^= seed << 13;
          seed ^= seed >>> 17;
          seed ^= seed << 5;
          j = (seed >>> 0) % n;
        }
        const word = (j * lanes + w.lane) * stride;
        const vpn = baseVpn + (word >>> 10);
        const wi = word & 1023;
        const got = mmu.loadWord(vpn, wi);
        const gen = g[j]!;
        const expected = (tag << 24) | gen;
        if (got !== expected && !(gen === 0 && got === 0)) {
          report(got >>> 24 !== tag ? 'torn' : 'lost', word, expected, got);
        }
        const next = (gen + 1) & GEN_MASK;
        g[j] = next;
        mmu.storeWord(vpn, wi, (tag << 24) | next);
        if ((++ops & 1023) === 0 && (mmu.shouldStop() || performance.now() > deadline)) {
          stop = true;
          break;
        }
      }
    } else {
      const s = seen!;
      const total = n * lanes;
      for (let i = 0; i < total; i++) {
        let k = i;
        if (random) {
          seed ^= seed << 13;
          seed ^= seed >>> 17;
          seed ^= seed << 5;
          k = (seed >>> 0) % total;
        }
        const word = k * stride;
        const got = mmu.loadWord(baseVpn + (word >>> 10), word & 1023);
        if (got === 0) {
          // Zero after a written value: the write was lost (e.g. a stale zero-page translation).
          if (s[k] !== 0) report('stale', word, patternWord(k % lanes, s[k]!), got);
        } else {
          const owner = k % lanes;
          if (got >>> 24 !== ((owner + 1) & 0xff)) report('torn', word, patternWord(owner, s[k]!), got);
          else {
            const gen = got & GEN_MASK;
            const last = s[k]!;
            // Generations only grow (modulo 2^24): a smaller one is a stale read.
            if (((gen - last) & GEN_MASK) > GEN_MASK >>> 1)
              report('stale', word, patternWord(owner, last), got);
            else s[k] = gen;
          }
        }
        if ((++ops & 1023) === 0 && (mmu.shouldStop() || performance.now() > deadline)) {
          stop = true;
          break;
        }
      }
    }
    if (!stop) passes++;
  }
  const st = mmu.stats();
  return {
    lane: w.lane,
    reader,
    passes,
    ops,
    errors,
    firstErrors,
    generations: gens,
    seconds: (performance.now() - t0) / 1000,
    ...st,
  };
}

export interface PatternCheck {
  /** Lane words compared. */
  checked: number;
  mismatches: number;
  first: { word: number; expected: number; got: number }[];
}

/**
 * Verifies afterwards that the region holds every writer's last generation: `read(addr, n)` reads
 * the address space (e.g. `(a, n) => p.read(a, n)`), `results` are the writers' results (readers
 * are ignored). Lanes without a result are not checked.
 */
export function verifyPattern(
  read: (addr: number, n: number) => Uint8Array,
  w: Pick<PatternWorkload, 'addr' | 'bytes' | 'lanes' | 'strideWords'>,
  results: readonly PatternResult[],
): PatternCheck {
  const stride = w.strideWords ?? 1;
  const bytes = read(w.addr, w.bytes);
  const words = new Int32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength >>> 2);
  const out: PatternCheck = { checked: 0, mismatches: 0, first: [] };
  for (const r of results) {
    if (r.reader || !r.generations) continue;
    const g = r.generations;
    for (let j = 0; j < g.length; j++) {
      const word = laneWordIndex(j, w.lanes, r.lane, stride);
      const expected = g[j] === 0 ? null : patternWord(r.lane, g[j]!);
      const got = words[word]!;
      out.checked++;
      if (expected !== null && got !== expected) {
        out.mismatches++;
        if (out.first.length < 16) out.first.push({ word, expected, got });
      }
    }
  }
  return out;
}
