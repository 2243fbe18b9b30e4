// Benchmark harness for pagemig (DESIGN.md "Measurement"): every throughput is reported next to the
// same run's raw copy of the same bytes (TypedArray.prototype.set between warm SharedArrayBuffers),
// results go to JSON under <repo root>/bench-results/, and a plain table goes to stdout.
import { mkdirSync, openSync, readSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import Table from 'cli-table3';

const PAGE = 4096;
/** Largest Uint8Array on Node 20 (2^32 elements); rawCopy uses one view per buffer. */
const MAX_VIEW_BYTES = 2 ** 32;

/** <repo root>: this file is <repo root>/tools/bench/src/index.mjs. */
export const repoRoot = fileURLToPath(new URL('../../../', import.meta.url));

/**
 * @typedef {object} Timing
 * @property {number} runs     timed runs
 * @property {number} seconds  total timed seconds (hooks and warm-up excluded)
 * @property {number} perRun   median seconds of one run
 * @property {number} min      fastest run, seconds
 * @property {number} max      slowest run, seconds
 */

/**
 * @typedef {object} TimeItOptions
 * @property {number} [minMs]    keep running until this many timed milliseconds have passed (200)
 * @property {number} [minRuns]  and at least this many runs (3)
 * @property {number} [warmup]   untimed runs first (0)
 * @property {() => unknown} [beforeEach]  untimed, before every run (warm-up runs too)
 * @property {() => unknown} [afterEach]   untimed, after every run (warm-up runs too)
 */

/**
 * The median of `xs` (the mean of the two middle values for an even count).
 * @param {readonly number[]} xs
 * @returns {number}
 */
export function median(xs) {
  const sorted = [...xs].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/** @param {number[]} samples */
function summarize(samples) {
  const sorted = [...samples].sort((a, b) => a - b);
  const perRun = median(sorted);
  return {
    runs: samples.length,
    seconds: samples.reduce((s, x) => s + x, 0),
    perRun,
    min: sorted[0],
    max: sorted[sorted.length - 1],
  };
}

/** @param {TimeItOptions} opts */
function checkOptions({ minMs = 200, minRuns = 3, warmup = 0 }) {
  if (!(minMs >= 0) || !Number.isInteger(minRuns) || minRuns < 1 || !Number.isInteger(warmup) || warmup < 0) {
    throw new RangeError(
      `timeIt: minMs must be >= 0, minRuns an integer >= 1, warmup an integer >= 0 (got ${minMs}, ${minRuns}, ${warmup})`,
    );
  }
  return { minMs, minRuns, warmup };
}

/**
 * Runs the synchronous `fn` until at least `minMs` of timed work and `minRuns` runs, and returns
 * the median time of one run. Only `fn` is timed; `beforeEach`/`afterEach` are not.
 * @param {() => unknown} fn
 * @param {TimeItOptions} [opts]
 * @returns {Timing}
 */
export function timeIt(fn, opts = {}) {
  const { minMs, minRuns, warmup } = checkOptions(opts);
  const { beforeEach, afterEach } = opts;
  for (let i = 0; i < warmup; i++) {
    beforeEach?.();
    fn();
    afterEach?.();
  }
  /** @type {number[]} */
  const samples = [];
  let total = 0;
  while (samples.length < minRuns || total * 1000 < minMs) {
    beforeEach?.();
    const t0 = performance.now();
    fn();
    const dt = (performance.now() - t0) / 1000;
    afterEach?.();
    samples.push(dt);
    total += dt;
  }
  return summarize(samples);
}

/**
 * Like `timeIt`, but awaits `fn` and the hooks (for `createMachine`, `close`, workers).
 * @param {() => unknown} fn
 * @param {{ minMs?: number, minRuns?: number, warmup?: number,
 *   beforeEach?: () => unknown, afterEach?: () => unknown }} [opts]
 * @returns {Promise<Timing>}
 */
export async function timeItAsync(fn, opts = {}) {
  const { minMs, minRuns, warmup } = checkOptions(opts);
  const { beforeEach, afterEach } = opts;
  for (let i = 0; i < warmup; i++) {
    await beforeEach?.();
    await fn();
    await afterEach?.();
  }
  /** @type {number[]} */
  const samples = [];
  let total = 0;
  while (samples.length < minRuns || total * 1000 < minMs) {
    await beforeEach?.();
    const t0 = performance.now();
    await fn();
    const dt = (performance.now() - t0) / 1000;
    await afterEach?.();
    samples.push(dt);
    total += dt;
  }
  return summarize(samples);
}

/**
 * @typedef {object} RawCopy
 * @property {number} bytesPerSec   bytes copied per second
 * @property {number} copiesPerSec  `set` calls (pieces of `chunk` bytes) per second
 * @property {number} seconds       median seconds to copy all `bytes` once
 * @property {number} bytes
 * @property {number} chunk
 * @property {number} runs          timed passes over `bytes`
 */

/**
 * The same-run reference, kept for interleaving: two pre-faulted SharedArrayBuffers of `bytes`
 * bytes (every 4 KiB page written, one untimed pass run), and `pass(chunk)` copies all of `src`
 * to `dst` with `TypedArray.prototype.set` in pieces of `chunk` bytes and returns its seconds.
 * Timing a pass right after each measured migration keeps the ratio honest on a noisy machine.
 * @param {number} bytes
 * @returns {{ bytes: number, pass(chunk: number): number }}
 */
export function rawCopier(bytes) {
  if (!Number.isSafeInteger(bytes) || bytes <= 0 || bytes > MAX_VIEW_BYTES) {
    throw new RangeError(`rawCopy: bytes must be an integer in 1..2^32 (got ${bytes})`);
  }
  const src = new Uint8Array(new SharedArrayBuffer(bytes));
  const dst = new Uint8Array(new SharedArrayBuffer(bytes));
  // Commit every page of both buffers: first-touch faults are ~6x slower than warm copies.
  for (let i = 0; i < bytes; i += PAGE) {
    src[i] = (i / PAGE) % 251;
    dst[i] = 255;
  }
  const last = Math.floor((bytes - 1) / PAGE) * PAGE;
  let warm = false;
  return {
    bytes,
    pass(chunk) {
      if (!Number.isSafeInteger(chunk) || chunk <= 0 || chunk > bytes) {
        throw new RangeError(`rawCopy: chunk must be an integer in 1..bytes (got ${chunk})`);
      }
      const copy = () => {
        for (let off = 0; off < bytes; off += chunk)
          dst.set(src.subarray(off, Math.min(off + chunk, bytes)), off);
      };
      if (!warm) {
        copy();
        warm = true;
      }
      dst[0] = 255;
      const t0 = performance.now();
      copy();
      const seconds = (performance.now() - t0) / 1000;
      // A copy that does not land is a broken reference, not a fast one.
      if (dst[0] !== src[0] || dst[last] !== src[last]) throw new Error('rawCopy: the copy did not land');
      return seconds;
    },
  };
}

/**
 * The same-run reference: `TypedArray.prototype.set` copying `bytes` bytes from one
 * SharedArrayBuffer to another in pieces of `chunk` bytes, warm (see `rawCopier`); passes repeat
 * until at least `minMs` (200) milliseconds were timed.
 * @param {{ bytes: number, chunk: number, minMs?: number }} opts
 * @returns {RawCopy}
 */
export function rawCopy({ bytes, chunk, minMs = 200 }) {
  const copier = rawCopier(bytes);
  /** @type {number[]} */
  const samples = [];
  let total = 0;
  while (samples.length < 3 || total * 1000 < minMs) {
    const dt = copier.pass(chunk);
    samples.push(dt);
    total += dt;
  }
  const perRun = median(samples);
  return {
    bytesPerSec: bytes / perRun,
    copiesPerSec: Math.ceil(bytes / chunk) / perRun,
    seconds: perRun,
    bytes,
    chunk,
    runs: samples.length,
  };
}

/**
 * Per-field median over rounds of result objects with the same numeric fields.
 * @template {Record<string, number>} T
 * @param {readonly T[]} results
 * @returns {T}
 */
export function medianOf(results) {
  const out = /** @type {Record<string, number>} */ ({});
  for (const k of Object.keys(results[0])) out[k] = median(results.map((r) => r[k]));
  return /** @type {T} */ (out);
}

/** @type {{ fd: number, buf: Buffer, nap: Int32Array } | null} */
let schedstat = null;

/**
 * The calling thread's own CPU time in seconds (Linux /proc/thread-self/schedstat). The kernel
 * brings schedstat up to date only when the thread is switched out or at a tick, so a 100 µs sleep
 * (Atomics.wait) comes first: spans of milliseconds are then exact to tens of microseconds, where
 * an unforced read can lag by a scheduler tick.
 * @returns {number}
 */
export function threadCpuSeconds() {
  schedstat ??= {
    fd: openSync('/proc/thread-self/schedstat', 'r'),
    buf: Buffer.alloc(128),
    nap: new Int32Array(new SharedArrayBuffer(4)),
  };
  const { fd, buf, nap } = schedstat;
  Atomics.wait(nap, 0, 0, 0.1);
  return Number(buf.toString('latin1', 0, readSync(fd, buf, 0, 128, 0)).split(' ')[0]) / 1e9;
}

/**
 * A migrator that marks every row copied without copying: what the engine costs besides the copy
 * (the floor no offload can go below). Its migrations leave destinations unwritten: never verify
 * bytes after one.
 */
export function markOnlyMigrator() {
  return {
    apiVersion: 'pagemig.migrator/v1',
    name: 'mark-only',
    version: '0.0.0',
    engines: { core: '*' },
    capabilities: { offloadsCpu: true, channels: 1, maxInFlightBatches: 1, needsSharedMemory: false },
    init() {},
    /** @param {{ rows: number, markCopied(i: number): void }} batch */
    copyBatch(batch) {
      for (let i = 0; i < batch.rows; i++) batch.markCopied(i);
    },
    dispose() {},
  };
}

/** Where and with what the numbers were taken. */
export function environment() {
  const cpus = os.cpus();
  return {
    node: process.versions.node,
    v8: process.versions.v8,
    cpuModel: cpus[0]?.model ?? 'unknown',
    availableParallelism: os.availableParallelism(),
    totalMemoryBytes: os.totalmem(),
    platform: process.platform,
    arch: process.arch,
    date: new Date().toISOString(),
  };
}

/**
 * Writes `{ schemaVersion: 1, name, environment, results }` to <repo root>/bench-results/<name>.json
 * and returns the file's path.
 * @param {string} name
 * @param {unknown} results
 * @returns {string}
 */
export function writeResults(name, results) {
  if (!/^[A-Za-z0-9._-]+$/.test(name))
    throw new RangeError(`writeResults: ${JSON.stringify(name)} is not a file name`);
  const dir = `${repoRoot}bench-results`;
  mkdirSync(dir, { recursive: true });
  const path = `${dir}/${name}.json`;
  const doc = { schemaVersion: 1, name, environment: environment(), results };
  writeFileSync(path, `${JSON.stringify(doc, null, 2)}\n`);
  return path;
}

/**
 * @typedef {string | { header: string, align?: 'left' | 'right' | 'center' }} Column
 */

/**
 * Prints an aligned table (no colours) on stdout, with `title` on the line above.
 * @param {string} title
 * @param {Column[]} columns  headers; strings are left aligned
 * @param {unknown[][]} rows  cells are printed with String()
 */
export function printTable(title, columns, rows) {
  const cols = columns.map((c) => (typeof c === 'string' ? { header: c, align: 'left' } : c));
  const table = new Table({
    head: cols.map((c) => c.header),
    colAligns: /** @type {any} */ (cols.map((c) => c.align ?? 'left')),
    style: { head: [], border: [] },
    // No rule between body rows: one line per row.
    chars: { mid: '', 'left-mid': '', 'mid-mid': '', 'right-mid': '' },
  });
  for (const row of rows) table.push(row.map((cell) => String(cell)));
  process.stdout.write(`${title}\n${table.toString()}\n`);
}

const SI = [
  [1e9, 'G'],
  [1e6, 'M'],
  [1e3, 'k'],
];

/**
 * `n` with 3 significant digits and an SI prefix: formatRate(1.93e6, 'copies/s') = '1.93 M copies/s',
 * formatRate(9.8e9, 'B/s') = '9.80 GB/s' (byte units take the prefix without a space).
 * @param {number} n
 * @param {string} [unit]
 */
export function formatRate(n, unit = '') {
  const [div, prefix] = SI.find(([d]) => Math.abs(n) >= /** @type {number} */ (d)) ?? [1, ''];
  const text = (n / /** @type {number} */ (div)).toPrecision(3);
  if (!unit) return prefix ? `${text} ${prefix}` : text;
  if (unit.startsWith('B')) return `${text} ${prefix}${unit}`;
  return prefix ? `${text} ${prefix} ${unit}` : `${text} ${unit}`;
}

/**
 * Bytes in binary units: formatBytes(2 ** 31) = '2 GiB', formatBytes(4096) = '4 KiB'.
 * @param {number} n
 */
export function formatBytes(n) {
  for (const [shift, unit] of [
    [40, 'TiB'],
    [30, 'GiB'],
    [20, 'MiB'],
    [10, 'KiB'],
  ]) {
    const d = 2 ** /** @type {number} */ (shift);
    if (n >= d) return `${Number((n / d).toPrecision(3))} ${unit}`;
  }
  return `${n} B`;
}

export { parallelRawCopier } from './parallel-raw-copy.mjs';
