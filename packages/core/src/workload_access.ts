import type { Mmu } from './mmu.js';

/**
 * Access workloads for user threads (memory tiering experiments): page-granular access streams
 * with a chosen popularity (uniform, Zipf, a moving hot set, a sequential scan) and the replay of
 * a recorded access trace (DAMON, CSV; compiled by access_replay.ts). Runs in worker threads: it
 * imports nothing at run time; tables that cost more than O(1) per access (the Zipf alias table,
 * a compiled trace) are built on the main side and shared through SharedArrayBuffers.
 *
 * Every access reads one 32-bit word of a page (word `word` of every page, so threads that use
 * different words share a region safely) or, with probability `writeShare`, writes it. A write
 * stores `accessWord(page, gen)` with the page's next generation; every access first checks that
 * the word still holds the value of the last write (a write lost during a migration shows up as
 * a `lost` error), and `verifyAccess` checks every written page afterwards.
 */

interface AccessCommon {
  /** Page-aligned start of the region. */
  addr: number;
  /** Bytes of the region (whole pages are used). */
  bytes: number;
  /** Share of accesses that write, 0..1. Default 0 (reads only). */
  writeShare?: number;
  /** The word (0..1023) of each page this thread reads and writes. Default 0. */
  word?: number;
  /** Seed of every random choice. Default 1. */
  seed?: number;
  /** Stop after this many accesses. */
  ops?: number;
  /** Stop after this long (ms of wall time). Without ops or durationMs the thread runs until stopped. */
  durationMs?: number;
  /** Return the number of accesses of every page (`pageAccesses`). Default false. */
  histogram?: boolean;
  /** Errors kept in `firstErrors`. Default 16. */
  keepErrors?: number;
}

/** Shared tables of a Zipf workload (built by `prepareAccessWorkload`). */
export interface ZipfTable {
  /** Pages of the region the table was built for. */
  pages: number;
  s: number;
  seed: number;
  /** Alias method (Vose): per rank, the probability of keeping it (Float64) and its alias rank (Int32). */
  prob: SharedArrayBuffer;
  alias: SharedArrayBuffer;
  /** Rank → page (Int32): a seeded permutation, so the hottest pages are scattered. */
  perm: SharedArrayBuffer;
}

export interface AccessWorkload extends AccessCommon {
  kind: 'access';
  /**
   * 'uniform': pages at random; 'zipf': page popularity follows Zipf's law with exponent `zipfS`
   * (rank r has weight 1/r^s); 'hotset': `hotShare` of the accesses go to a hot range of
   * `hotBytes` (pages at random there), the rest to pages at random in the whole region; 'scan':
   * pages in order, wrapping.
   */
  pattern: 'uniform' | 'zipf' | 'hotset' | 'scan';
  /** Zipf exponent. Default 0.99. */
  zipfS?: number;
  /** The Zipf table (set by `prepareAccessWorkload`; spawning a thread prepares it). */
  zipf?: ZipfTable;
  /** Bytes of the hot range (hotset; default an eighth of the region) or of the reported hot ranks (zipf with moveEveryMs). */
  hotBytes?: number;
  /** Share of accesses that go to the hot range, 0..1. Default 0.9. */
  hotShare?: number;
  /**
   * Move the hot range to a new seeded random place every this many ms (hotset). With zipf, the
   * popularity moves instead: rank r is page (r + offset) mod pages (no scattering permutation)
   * and the offset moves; the top ranks covering hotBytes (default a tenth of the region) are the
   * hot range reported in `hotRanges`.
   */
  moveEveryMs?: number;
}

/**
 * A trace compiled for replay (`compileAccessTrace` in access_replay.ts): regions as page ranges
 * of the replay region, in shared typed arrays.
 */
export interface CompiledTrace {
  records: number;
  /** Float64 per record: start and end in ms from the trace's start. */
  startMs: SharedArrayBuffer;
  endMs: SharedArrayBuffer;
  /** Int32, records + 1 entries: record i owns regions regionOffset[i] .. regionOffset[i+1]-1. */
  regionOffset: SharedArrayBuffer;
  /** Int32 per region: first page (in the replay region), pages, and accesses per page in its record. */
  firstPage: SharedArrayBuffer;
  nrPages: SharedArrayBuffer;
  accesses: SharedArrayBuffer;
  /** Pages of the replay region the trace was compiled for. */
  pages: number;
}

export interface ReplayWorkload extends AccessCommon {
  kind: 'replay';
  trace: CompiledTrace;
  /** Trace time per wall-clock time: 2 replays twice as fast. Default 1. */
  speed?: number;
  /** Start over at the end of the trace (until ops, durationMs or a stop). Default false. */
  loop?: boolean;
}

export interface AccessError {
  kind: 'lost';
  page: number;
  expected: number;
  got: number;
}

/** Where the hot range was from `atMs` (ms since the workload started; `epochMs` = Date-based time). */
export interface HotRange {
  atMs: number;
  epochMs: number;
  addr: number;
  bytes: number;
}

/** The thread's MMU counters (Mmu.stats(): shootdowns, faults, migration waits, accesses by node, ...). */
export type MmuCounters = ReturnType<Mmu['stats']>;

export interface AccessResult extends MmuCounters {
  kind: 'access' | 'replay';
  pattern: AccessWorkload['pattern'] | 'replay';
  /** Accesses made, and how many of them were reads and writes. */
  ops: number;
  reads: number;
  writes: number;
  /** scan: complete passes over the region; replay: complete passes over the trace. */
  passes: number;
  /** hotset (and zipf with moveEveryMs): every place the hot range took, the first at atMs 0; moves = hotRanges.length - 1. */
  hotRanges: HotRange[];
  /** replay: accesses left out because the thread fell behind the trace's time. */
  skipped: number;
  errors: number;
  firstErrors: AccessError[];
  /** Per page: the generation of its last write (0: never written); `verifyAccess` needs it. */
  generations: Uint32Array;
  /** Per page: accesses (with `histogram`), else null. */
  pageAccesses: Uint32Array | null;
  seconds: number;
}

/** The word written to a page at generation `gen` (>= 1): a hash of both, never 0 for gen 1. */
export function accessWord(page: number, gen: number): number {
  return (Math.imul(page + 1, 0x9e3779b1) ^ Math.imul(gen, 0x85ebca6b) ^ 0x5bd1e995) | 0;
}

/** mulberry32: a small seeded generator; returns a float in [0, 1). */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * The Zipf table of `pages` pages: rank r (0-based) has weight 1/(r+1)^s; Vose's alias method
 * samples a rank in O(1); `perm` maps ranks to pages (seeded Fisher-Yates).
 */
export function zipfTable(pages: number, s: number, seed: number): ZipfTable {
  const t: ZipfTable = {
    pages,
    s,
    seed,
    prob: new SharedArrayBuffer(pages * 8),
    alias: new SharedArrayBuffer(pages * 4),
    perm: new SharedArrayBuffer(pages * 4),
  };
  const prob = new Float64Array(t.prob);
  const alias = new Int32Array(t.alias);
  const perm = new Int32Array(t.perm);
  const scaled = new Float64Array(pages);
  let sum = 0;
  for (let r = 0; r < pages; r++) sum += (r + 1) ** -s;
  for (let r = 0; r < pages; r++) scaled[r] = ((r + 1) ** -s * pages) / sum;
  const small = new Int32Array(pages);
  const large = new Int32Array(pages);
  let ns = 0;
  let nl = 0;
  for (let r = pages - 1; r >= 0; r--) {
    if (scaled[r]! < 1) small[ns++] = r;
    else large[nl++] = r;
  }
  while (ns > 0 && nl > 0) {
    const l = small[--ns]!;
    const g = large[--nl]!;
    prob[l] = scaled[l]!;
    alias[l] = g;
    scaled[g] = scaled[g]! + scaled[l]! - 1;
    if (scaled[g]! < 1) small[ns++] = g;
    else large[nl++] = g;
  }
  // What is left is 1 up to rounding.
  while (nl > 0) prob[large[--nl]!] = 1;
  while (ns > 0) prob[small[--ns]!] = 1;
  const rnd = seededRandom(seed ^ 0x2f6b1d3);
  for (let i = 0; i < pages; i++) perm[i] = i;
  for (let i = pages - 1; i > 0; i--) {
    const j = Math.floor(rnd() * (i + 1));
    const x = perm[i]!;
    perm[i] = perm[j]!;
    perm[j] = x;
  }
  return t;
}

/** Pages an access workload covers. */
export function accessPages(w: Pick<AccessCommon, 'bytes'>): number {
  return Math.floor(w.bytes / 4096);
}

/** The workload with its shared tables built (main side; spawning a thread calls it). */
export function prepareAccessWorkload<W extends AccessWorkload | ReplayWorkload>(w: W): W {
  checkAccessWorkload(w);
  if (w.kind !== 'access' || w.pattern !== 'zipf') return w;
  const pages = accessPages(w);
  const s = w.zipfS ?? 0.99;
  const seed = w.seed ?? 1;
  const z = w.zipf;
  if (z && z.pages === pages && z.s === s && z.seed === seed) return w;
  return { ...w, zipf: zipfTable(pages, s, seed) };
}

/** The checks of an access or replay workload: a RangeError naming the bad field. */
export function checkAccessWorkload(w: AccessWorkload | ReplayWorkload): void {
  const fail = (why: string): never => {
    throw new RangeError(`${w?.kind} workload: ${why}`);
  };
  const share = (name: string, v: number | undefined) => {
    if (v !== undefined && !(typeof v === 'number' && v >= 0 && v <= 1)) fail(`${name} ${v} is not in 0..1`);
  };
  const positive = (name: string, v: number | undefined) => {
    if (v !== undefined && !(typeof v === 'number' && v > 0 && Number.isFinite(v)))
      fail(`${name} ${v} must be a positive number`);
  };
  if (!Number.isSafeInteger(w.addr) || w.addr % 4096 !== 0) fail(`addr ${w.addr} is not page aligned`);
  if (!Number.isSafeInteger(w.bytes) || w.bytes < 4096) fail(`bytes ${w.bytes} must hold at least one page`);
  share('writeShare', w.writeShare);
  const word = w.word ?? 0;
  if (!Number.isInteger(word) || word < 0 || word > 1023) fail(`word ${word} is not in 0..1023`);
  if (w.seed !== undefined && !Number.isInteger(w.seed)) fail(`seed ${w.seed} is not an integer`);
  if (w.ops !== undefined && !(Number.isSafeInteger(w.ops) && w.ops >= 0))
    fail(`ops ${w.ops} must be a non-negative integer`);
  positive('durationMs', w.durationMs);
  if (w.kind === 'access') {
    if (!['uniform', 'zipf', 'hotset', 'scan'].includes(w.pattern))
      fail(`pattern ${JSON.stringify(w.pattern)} is not 'uniform', 'zipf', 'hotset' or 'scan'`);
    positive('zipfS', w.zipfS);
    share('hotShare', w.hotShare);
    positive('moveEveryMs', w.moveEveryMs);
    if (
      w.hotBytes !== undefined &&
      !(Number.isSafeInteger(w.hotBytes) && w.hotBytes >= 4096 && w.hotBytes <= w.bytes)
    )
      fail(`hotBytes ${w.hotBytes} must be at least a page and at most bytes (${w.bytes})`);
  } else if (w.kind === 'replay') {
    positive('speed', w.speed);
    if (!w.trace || w.trace.pages !== accessPages(w))
      fail(`trace was compiled for ${w.trace?.pages} pages, the region has ${accessPages(w)}`);
  } else fail(`kind ${JSON.stringify((w as { kind: unknown }).kind)} is not 'access' or 'replay'`);
}

/**
 * Runs an access or replay workload on `mmu` until its ops, its duration, the end of the trace
 * (replay without loop) or a stop request end it. Async because a replay sleeps (parked) while it
 * is ahead of the trace's time.
 */
export async function runAccessWorkload(mmu: Mmu, w: AccessWorkload | ReplayWorkload): Promise<AccessResult> {
  w = prepareAccessWorkload(w);
  const t0 = performance.now();
  const deadline = w.durationMs !== undefined ? t0 + w.durationMs : Number.POSITIVE_INFINITY;
  const maxOps = w.ops ?? Number.POSITIVE_INFINITY;
  const pages = accessPages(w);
  const baseVpn = mmu.vpnOf(w.addr);
  const wi = w.word ?? 0;
  const writeShare = w.writeShare ?? 0;
  const rnd = seededRandom(w.seed ?? 1);
  const keep = w.keepErrors ?? 16;
  const gens = new Uint32Array(pages);
  const hist = w.histogram ? new Uint32Array(pages) : null;
  const res: Omit<AccessResult, keyof MmuCounters> = {
    kind: w.kind,
    pattern: w.kind === 'access' ? w.pattern : 'replay',
    ops: 0,
    reads: 0,
    writes: 0,
    passes: 0,
    hotRanges: [],
    skipped: 0,
    errors: 0,
    firstErrors: [],
    generations: gens,
    pageAccesses: hist,
    seconds: 0,
  };
  /** One access to `page`; false once the workload must end. */
  const access = (page: number): boolean => {
    const vpn = baseVpn + page;
    const got = mmu.loadWord(vpn, wi);
    const gen = gens[page]!;
    if (gen !== 0 && got !== accessWord(page, gen)) {
      res.errors++;
      if (res.firstErrors.length < keep)
        res.firstErrors.push({ kind: 'lost', page, expected: accessWord(page, gen), got });
    }
    if (writeShare > 0 && rnd() < writeShare) {
      const next = gen + 1 === 0x100000000 ? 1 : gen + 1;
      gens[page] = next;
      mmu.storeWord(vpn, wi, accessWord(page, next));
      res.writes++;
    } else res.reads++;
    if (hist) hist[page]!++;
    const ops = ++res.ops;
    if (ops >= maxOps) return false;
    return (ops & 1023) !== 0 || !(mmu.shouldStop() || performance.now() > deadline);
  };

  // ops: 0 makes no access.
  if (maxOps > 0) {
    if (w.kind === 'replay') await replay(mmu, w, access, res, t0, deadline);
    else {
      const pick = picker(w, pages, rnd, res, t0);
      while (access(pick()));
    }
  }
  res.seconds = (performance.now() - t0) / 1000;
  return { ...res, ...mmu.stats() };
}

/** The page chooser of an access pattern (O(1) per access). */
function picker(
  w: AccessWorkload,
  pages: number,
  rnd: () => number,
  res: Pick<AccessResult, 'hotRanges' | 'passes' | 'skipped'>,
  t0: number,
): () => number {
  switch (w.pattern) {
    case 'uniform':
      return () => Math.floor(rnd() * pages);
    case 'scan': {
      let next = 0;
      return () => {
        const p = next;
        if (++next === pages) {
          next = 0;
          res.passes++;
        }
        return p;
      };
    }
    case 'zipf': {
      const z = w.zipf!;
      const prob = new Float64Array(z.prob);
      const alias = new Int32Array(z.alias);
      const perm = new Int32Array(z.perm);
      const rank = () => {
        const u = rnd() * pages;
        const r = Math.floor(u);
        return u - r < prob[r]! ? r : alias[r]!;
      };
      if (w.moveEveryMs === undefined) return () => perm[rank()]!;
      // A moving popularity: rank r is page (r + offset) mod pages, the offset moves; the top
      // ranks (hotBytes, default a tenth of the region) are the reported hot range.
      const hot = hotPages(w, pages, pages / 10);
      const mover = hotMover(w, pages, hot, rnd, res, t0);
      return () => {
        const r = rank() + mover();
        return r >= pages ? r - pages : r;
      };
    }
    case 'hotset': {
      const hot = hotPages(w, pages, pages / 8);
      const share = w.hotShare ?? 0.9;
      const mover = hotMover(w, pages, hot, rnd, res, t0);
      return () => {
        const start = mover();
        return rnd() < share ? start + Math.floor(rnd() * hot) : Math.floor(rnd() * pages);
      };
    }
  }
}

/** Pages of the hot range: hotBytes, else `dflt` pages; at least 1, at most the region. */
function hotPages(w: AccessWorkload, pages: number, dflt: number): number {
  const want = w.hotBytes !== undefined ? Math.ceil(w.hotBytes / 4096) : Math.floor(dflt);
  return Math.max(1, Math.min(pages, want));
}

/**
 * The hot range's first page, moved to a seeded random place (the range never wraps) every
 * moveEveryMs; every place is recorded in `res.hotRanges`. The clock is read every 256 calls: a
 * move is late by at most that many accesses.
 */
function hotMover(
  w: AccessWorkload,
  pages: number,
  hot: number,
  rnd: () => number,
  res: Pick<AccessResult, 'hotRanges' | 'passes' | 'skipped'>,
  t0: number,
): () => number {
  const every = w.moveEveryMs ?? Number.POSITIVE_INFINITY;
  let start = 0;
  let nextMove = 0;
  const place = (now: number) => {
    start = Math.floor(rnd() * (pages - hot + 1));
    res.hotRanges.push({
      atMs: now - t0,
      epochMs: performance.timeOrigin + now,
      addr: w.addr + start * 4096,
      bytes: hot * 4096,
    });
    nextMove = t0 + (Math.floor((now - t0) / every) + 1) * every;
  };
  place(t0);
  if (every === Number.POSITIVE_INFINITY) return () => start;
  let n = 0;
  return () => {
    if ((++n & 255) === 0) {
      const now = performance.now();
      if (now >= nextMove) place(now);
    }
    return start;
  };
}

/**
 * Replays a compiled trace in real time (scaled by `speed`): in record i, a region with `a`
 * accesses per page gets `a` passes over its pages, the passes spread evenly over the record; a
 * pass starts at a seeded random page of the region. Ahead of time, the thread sleeps (parked, so
 * shootdowns do not wait for it); behind, it drops the passes whose record already ended
 * (counted in `skipped`).
 */
async function replay(
  mmu: Mmu,
  w: ReplayWorkload,
  access: (page: number) => boolean,
  res: Pick<AccessResult, 'hotRanges' | 'passes' | 'skipped'>,
  t0: number,
  deadline: number,
): Promise<void> {
  const tr = w.trace;
  const startMs = new Float64Array(tr.startMs);
  const endMs = new Float64Array(tr.endMs);
  const off = new Int32Array(tr.regionOffset);
  const first = new Int32Array(tr.firstPage);
  const nr = new Int32Array(tr.nrPages);
  const acc = new Int32Array(tr.accesses);
  const speed = w.speed ?? 1;
  const rnd = seededRandom((w.seed ?? 1) ^ 0x51ed27);
  const sleep = (ms: number) => mmu.park(new Promise<void>((r) => setTimeout(r, ms)));
  // Nothing to replay: a loop over records without accesses would never wait or end.
  if (tr.records === 0 || !acc.some((a) => a > 0)) return;
  const t0Trace = startMs[0]!;
  let span = 0;
  for (const x of endMs) span = Math.max(span, x - t0Trace);
  let base = t0;
  for (;;) {
    for (let i = 0; i < tr.records; i++) {
      const recStart = base + (startMs[i]! - t0Trace) / speed;
      const recEnd = base + (endMs[i]! - t0Trace) / speed;
      let maxA = 0;
      for (let g = off[i]!; g < off[i + 1]!; g++) maxA = Math.max(maxA, acc[g]!);
      for (let pass = 0; pass < maxA; pass++) {
        const at = recStart + ((recEnd - recStart) * pass) / maxA;
        let now = performance.now();
        if (now > deadline || mmu.shouldStop()) return;
        if (at > now) {
          await sleep(Math.min(at, deadline) - now);
          now = performance.now();
          if (now > deadline || mmu.shouldStop()) return;
        }
        for (let g = off[i]!; g < off[i + 1]!; g++) {
          if (acc[g]! <= pass) continue;
          const n = nr[g]!;
          if (now >= recEnd) {
            res.skipped += n;
            continue;
          }
          const p0 = Math.floor(rnd() * n);
          for (let k = 0; k < n; k++) {
            const q = p0 + k;
            if (!access(first[g]! + (q >= n ? q - n : q))) return;
          }
        }
      }
    }
    res.passes++;
    if (!w.loop) return;
    base += span / speed;
    // Catch up rather than replay a backlog: a loop starts no earlier than now.
    base = Math.max(base, performance.now());
  }
}

export interface AccessCheck {
  /** Written pages compared. */
  checked: number;
  mismatches: number;
  first: { page: number; expected: number; got: number }[];
}

/**
 * Verifies afterwards that every page a workload wrote holds its last write: `read(addr, n)`
 * reads the address space (e.g. `(a, n) => p.read(a, n)`); `results` are the results of threads
 * that ran on the region with different `word`s (`words[i]` for results[i], default 0).
 */
export function verifyAccess(
  read: (addr: number, n: number) => Uint8Array,
  w: Pick<AccessCommon, 'addr' | 'bytes'>,
  results: readonly Pick<AccessResult, 'generations'>[],
  words: readonly number[] = [],
): AccessCheck {
  const pages = accessPages(w);
  const bytes = read(w.addr, pages * 4096);
  const view = new Int32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength >>> 2);
  const out: AccessCheck = { checked: 0, mismatches: 0, first: [] };
  results.forEach((r, i) => {
    const wi = words[i] ?? 0;
    const g = r.generations;
    for (let page = 0; page < Math.min(pages, g.length); page++) {
      if (g[page] === 0) continue;
      out.checked++;
      const expected = accessWord(page, g[page]!);
      const got = view[page * 1024 + wi]!;
      if (got !== expected) {
        out.mismatches++;
        if (out.first.length < 16) out.first.push({ page, expected, got });
      }
    }
  });
  return out;
}
