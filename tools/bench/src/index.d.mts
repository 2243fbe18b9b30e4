/** Absolute path of the repository root, with a trailing slash. */
export declare const repoRoot: string;

export interface Timing {
  /** Timed runs. */
  runs: number;
  /** Total timed seconds (hooks and warm-up runs excluded). */
  seconds: number;
  /** Median seconds of one run. */
  perRun: number;
  /** Fastest run, seconds. */
  min: number;
  /** Slowest run, seconds. */
  max: number;
}

export interface TimeItOptions<R = unknown> {
  /** Keep running until this many timed milliseconds have passed. Default 200. */
  minMs?: number;
  /** And at least this many runs. Default 3. */
  minRuns?: number;
  /** Untimed runs first. Default 0. */
  warmup?: number;
  /** Untimed, before every run (warm-up runs too). */
  beforeEach?: () => R;
  /** Untimed, after every run (warm-up runs too). */
  afterEach?: () => R;
}

export declare function timeIt(fn: () => unknown, opts?: TimeItOptions): Timing;
export declare function timeItAsync(fn: () => unknown, opts?: TimeItOptions): Promise<Timing>;

export interface RawCopy {
  /** Bytes copied per second. */
  bytesPerSec: number;
  /** `set` calls (pieces of `chunk` bytes) per second. */
  copiesPerSec: number;
  /** Median seconds to copy all `bytes` once. */
  seconds: number;
  bytes: number;
  chunk: number;
  /** Timed passes over `bytes`. */
  runs: number;
}

/** Two pre-faulted buffers of `bytes`; `pass(chunk)` times one warm copy of all of them, in seconds. */
export declare function rawCopier(bytes: number): { readonly bytes: number; pass(chunk: number): number };

/** `TypedArray.prototype.set` between two pre-faulted SharedArrayBuffers, warm, ≥ minMs (200) timed. */
export declare function rawCopy(opts: { bytes: number; chunk: number; minMs?: number }): RawCopy;

/**
 * The ceiling for multi-threaded copies: the calling thread and `threads - 1` workers (spinning
 * when the clock starts) copy contiguous runs of the pieces of two pre-faulted buffers of `bytes`;
 * `pass(chunk, n = threads)` returns the seconds of one warm copy of all of them in pieces of
 * `chunk` bytes on `n` threads (`n = 1`: the one-thread reference); `passBatched(batch, n)` copies
 * one batch of `batch` bytes at a time, each cut into `n` parts copied at once, all threads meeting
 * at the end of each batch (the ceiling of a pool splitting one batch at a time). `close()` ends
 * the workers.
 */
export declare function parallelRawCopier(
  bytes: number,
  threads: number,
): Promise<{
  readonly bytes: number;
  readonly threads: number;
  pass(chunk: number, n?: number): number;
  passBatched(batch: number, n?: number): number;
  close(): Promise<void>;
}>;

export interface Environment {
  node: string;
  v8: string;
  cpuModel: string;
  availableParallelism: number;
  totalMemoryBytes: number;
  platform: string;
  arch: string;
  /** ISO 8601. */
  date: string;
}

export declare function environment(): Environment;

/** Writes `{ schemaVersion: 1, name, environment, results }` to <repo root>/bench-results/<name>.json. */
export declare function writeResults(name: string, results: unknown): string;

export type Column = string | { header: string; align?: 'left' | 'right' | 'center' };

/** Prints an aligned, uncoloured table on stdout with `title` on the line above. */
export declare function printTable(title: string, columns: Column[], rows: unknown[][]): void;

/**
 * 3 significant digits with an SI prefix: `formatRate(1.93e6, 'copies/s')` = '1.93 M copies/s',
 * `formatRate(9.8e9, 'B/s')` = '9.80 GB/s'.
 */
export declare function formatRate(n: number, unit?: string): string;

/** Binary units: `formatBytes(2 ** 31)` = '2 GiB'. */
export declare function formatBytes(n: number): string;

/** The median of `xs` (the mean of the two middle values for an even count). */
export function median(xs: readonly number[]): number;

/** Per-field median over rounds of result objects with the same numeric fields. */
export function medianOf<T extends Record<string, number>>(results: readonly T[]): T;

/** The calling thread's own CPU seconds (schedstat, after a 100 µs sleep that brings it up to date). */
export function threadCpuSeconds(): number;

/** A migrator that marks every row copied without copying (the engine's floor); never verify bytes after it. */
export function markOnlyMigrator(): {
  apiVersion: 'pagemig.migrator/v1';
  name: 'mark-only';
  version: string;
  engines: { core: string };
  capabilities: {
    offloadsCpu: boolean;
    channels: number;
    maxInFlightBatches: number;
    needsSharedMemory: boolean;
  };
  init(): void;
  copyBatch(batch: { rows: number; markCopied(i: number): void }): void;
  dispose(): void;
};
