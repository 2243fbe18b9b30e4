import { availableParallelism } from 'node:os';
import {
  defineMigrator,
  MIGRATOR_API_VERSION,
  type MigrationBatch,
  type Migrator,
  type MigratorCapabilities,
  type MigratorContext,
  PagemigError,
} from '@pagemig/core';
import { Piscina } from 'piscina';
import { copyRange } from './copy-range.js';
import type { CopyResult, CopyTask } from './protocol.js';
import { markCutRows, splitBatch } from './split.js';

export type { ShareRange } from './copy-range.js';
export type { CopyResult, CopyTask } from './protocol.js';
export type { Share } from './split.js';
export { markCutRows, splitBatch } from './split.js';

/**
 * The worker module, resolved next to this file in the built package (dist/copy-worker.js). Pass it
 * as `filename` when you build a pool to inject, or let `run` name it (this migrator always does).
 */
export const workerUrl: string = new URL('./copy-worker.js', import.meta.url).href;

/** Option names `createMigrator` accepts (a registry convention). */
export const optionKeys = ['threads', 'minChunk', 'inlineBelow', 'pool', 'callerCopies'] as const;

/**
 * Defaults measured on the project's machine (2 vCPU AMD EPYC VM, Node 20.20) with
 * `node --expose-gc bench/defaults.mjs`; the README has the numbers.
 * - A share smaller than 4 MiB is not worth a thread: two shares beat one from batches of ~8 MiB.
 * - Woken worker threads cost 100-400 µs per batch here, so the pool beats an inline copy only
 *   from ~32-64 MiB per batch; with `callerCopies` (one thread fewer to wake) from ~4-8 MiB.
 */
export const DEFAULT_MIN_CHUNK = 4 << 20;
export const DEFAULT_INLINE_BELOW = 64 << 20;
export const DEFAULT_INLINE_BELOW_CALLER_COPIES = 8 << 20;

/** Just the part of a piscina pool this migrator uses, so an application can inject its own. */
export interface CopyPool {
  run(task: CopyTask, options: { filename: string; name?: string }): Promise<CopyResult>;
  /** piscina's thread limit: the number of shares per batch when `threads` is not given. */
  readonly maxThreads?: number;
}

export interface CpuMultithreadedOptions {
  /**
   * Worker threads: the pool this migrator creates has exactly this many, and a batch is split into
   * at most this many worker shares. Default `os.availableParallelism()` (an injected pool's
   * `maxThreads`).
   */
  threads?: number;
  /** Bytes: a batch is split into at most one share per this many bytes (shares are never smaller). Default 4 MiB. */
  minChunk?: number;
  /**
   * Bytes: a batch smaller than this is copied on the calling thread, as cpu-serial does. Default
   * 64 MiB, or 8 MiB with `callerCopies`.
   */
  inlineBelow?: number;
  /**
   * A piscina pool the application already has. The migrator runs its worker module on it (by
   * `filename`), never creates threads of its own, and never destroys it.
   */
  pool?: CopyPool;
  /**
   * The calling thread copies one share of every pooled batch while the workers copy the rest
   * (one fewer thread to wake; the engine's thread is then not freed: `offloadsCpu` is false).
   * Default false.
   */
  callerCopies?: boolean;
}

export interface ThreadStats {
  tasks: number;
  bytes: number;
}

export type CpuMultithreadedStats = {
  /** Batches offered (copyBatch calls). */
  batches: number;
  /** Batches copied on the calling thread because they were smaller than `inlineBelow`. */
  inlineBatches: number;
  /** Batches split across the pool. */
  pooledBatches: number;
  /** Batches that ended with rows left unmarked (aborted, disposed, or a task failed). */
  incompleteBatches: number;
  /** Rows (folios) marked copied. */
  folios: number;
  /** Bytes of the rows marked copied. */
  bytes: number;
  /** Worker tasks run, and those that failed (threw, or the pool went away). */
  tasks: number;
  failedTasks: number;
  /** Shares and bytes per copying thread: `caller` (inline batches and caller shares), `worker-<threadId>`. */
  threads: Record<string, ThreadStats>;
};

export type CpuMultithreadedMigrator = Omit<Migrator, 'stats'> & {
  stats(): CpuMultithreadedStats;
  /** The resolved options (the pool excepted). */
  readonly options: Readonly<{
    threads: number;
    minChunk: number;
    inlineBelow: number;
    callerCopies: boolean;
  }>;
};

const PAGE_SIZE = 4096;
/** The largest folio (order 9, HPAGE_PMD_NR base pages). */
const MAX_FOLIO_BYTES = 512 * PAGE_SIZE;
/** Rows copied inline between checks of the abort signal (as cpu-serial). */
const INLINE_CHECK_EVERY = 64;
/** After a task fails, time for a terminated worker to leave its last piece (at most 1 MiB). */
const QUIESCE_MS = 5;

/** Rows copied by the last `inlineCopy` (a module variable: no result object per batch). */
let inlineRows = 0;

/**
 * cpu-serial's copy loop, at module level so every migrator instance shares one optimised copy of
 * it. Returns the bytes copied; `inlineRows` holds the rows.
 */
function inlineCopy(
  ram: readonly Uint8Array[],
  shift: number,
  batch: MigrationBatch,
  signal: AbortSignal,
): number {
  const mask = (1 << shift) - 1;
  let bytes = 0;
  let i = 0;
  for (; i < batch.rows; i++) {
    if (i % INLINE_CHECK_EVERY === 0 && signal.aborted) break;
    const src = batch.src(i);
    const dst = batch.dst(i);
    const len = batch.nrPages(i) * 4096;
    const from = (src & mask) * 4096;
    ram[dst >>> shift]!.set(ram[src >>> shift]!.subarray(from, from + len), (dst & mask) * 4096);
    batch.markCopied(i);
    bytes += len;
  }
  inlineRows = i;
  return bytes;
}

/** Base pages in a batch (column 2 of each row). */
function batchPages(table: Int32Array, rows: number): number {
  let pages = 0;
  for (let o = 2, end = rows * 4; o < end; o += 4) pages += table[o]!;
  return pages;
}

function optionError(message: string): PagemigError {
  return new PagemigError('ERR_MIGRATOR_OPTION', `cpu-multithreaded: ${message}`);
}

function nonNegativeInt(name: string, value: number): number {
  if (!Number.isSafeInteger(value) || value < 0)
    throw optionError(`${name} must be a non-negative integer (bytes), got ${value}`);
  return value;
}

/**
 * A migrator that copies each batch on a piscina pool of worker threads: the batch's bytes are
 * split into balanced shares (one 2 MiB folio is cut into byte ranges, many small folios into
 * contiguous runs), each worker copies its share between the machine's SharedArrayBuffer sections,
 * and a row is marked copied only once every share covering it finished. Small batches are copied
 * inline, because a round trip to a worker costs more than it saves.
 */
export function createMigrator(options: CpuMultithreadedOptions = {}): CpuMultithreadedMigrator {
  for (const key of Object.keys(options)) {
    if (!(optionKeys as readonly string[]).includes(key)) {
      throw optionError(`unknown option ${JSON.stringify(key)}; known: ${optionKeys.join(', ')}`);
    }
  }
  const injected = options.pool;
  if (injected !== undefined && (typeof injected !== 'object' || typeof injected?.run !== 'function'))
    throw optionError('pool must be a piscina pool (an object with a run method)');
  const threads =
    options.threads ??
    (typeof injected?.maxThreads === 'number' ? Math.min(injected.maxThreads, 256) : availableParallelism());
  if (!Number.isInteger(threads) || threads < 1 || threads > 256)
    throw optionError(`threads must be an integer from 1 to 256, got ${threads}`);
  const minChunk = nonNegativeInt('minChunk', options.minChunk ?? DEFAULT_MIN_CHUNK);
  if (minChunk < PAGE_SIZE) throw optionError(`minChunk must be at least 4096 bytes, got ${minChunk}`);
  const callerCopies = options.callerCopies ?? false;
  if (typeof callerCopies !== 'boolean')
    throw optionError(`callerCopies must be a boolean, got ${JSON.stringify(callerCopies)}`);
  const inlineBelow = nonNegativeInt(
    'inlineBelow',
    options.inlineBelow ?? (callerCopies ? DEFAULT_INLINE_BELOW_CALLER_COPIES : DEFAULT_INLINE_BELOW),
  );
  const lanes = threads + (callerCopies ? 1 : 0);

  let ctx: MigratorContext | null = null;
  let ram: Uint8Array[] = [];
  let shift = 0;
  let ramId = 0;
  let pool: CopyPool | null = null;
  let ownPool: Piscina | null = null;
  let disposing: Promise<void> | null = null;
  /** Stop words of the batches in flight, and their completions (dispose waits for them). */
  const inFlight = new Map<Promise<unknown>, Int32Array>();

  const stats: CpuMultithreadedStats = {
    batches: 0,
    inlineBatches: 0,
    pooledBatches: 0,
    incompleteBatches: 0,
    folios: 0,
    bytes: 0,
    tasks: 0,
    failedTasks: 0,
    threads: {},
  };
  const account = (who: string, bytes: number, tasks = 1) => {
    const t = (stats.threads[who] ??= { tasks: 0, bytes: 0 });
    t.tasks += tasks;
    t.bytes += bytes;
  };

  const capabilities: MigratorCapabilities = {
    offloadsCpu: !callerCopies,
    channels: lanes,
    maxInFlightBatches: 16,
    needsSharedMemory: true,
    minFolioBytes: PAGE_SIZE,
    inlineBelowBytes: inlineBelow,
    minChunkBytes: minChunk,
    ...(injected ? { injectedPool: true } : {}),
  };

  /** Exactly cpu-serial's loop: one set and one mark per row, the signal checked every 64 rows. */
  function copyInline(batch: MigrationBatch, signal: AbortSignal): void {
    const bytes = inlineCopy(ram, shift, batch, signal);
    const rows = inlineRows;
    stats.inlineBatches++;
    stats.folios += rows;
    stats.bytes += bytes;
    if (rows < batch.rows) stats.incompleteBatches++;
    account('caller', bytes);
  }

  async function copyPooled(
    batch: MigrationBatch,
    pages: number,
    signal: AbortSignal,
    stop: Int32Array,
  ): Promise<void> {
    const p = pool!;
    const c = ctx!;
    const n = Math.max(1, Math.min(lanes, Math.floor((pages * PAGE_SIZE) / minChunk)));
    const shares = splitBatch(batch.table, batch.rows, pages, n);
    const onAbort = () => Atomics.store(stop, 0, 1);
    signal.addEventListener('abort', onAbort, { once: true });
    stats.pooledBatches++;
    const base = {
      ramId,
      sections: c.sections,
      sectionPfnShift: shift,
      table: batch.table,
      stop,
    };
    const first = callerCopies ? 1 : 0;
    const runs: Promise<CopyResult>[] = [];
    for (let k = first; k < shares.length; k++) {
      const s = shares[k]!;
      const task = { ...base, startRow: s.startRow, startPage: s.startPage, pages: s.pages };
      try {
        runs.push(p.run(task, { filename: workerUrl }));
      } catch (e) {
        // A pool that throws instead of rejecting (closed, queue full) fails this share only.
        runs.push(Promise.reject(e));
      }
    }
    stats.tasks += runs.length;
    const done = new Float64Array(shares.length);
    let rows = 0;
    let markedPages = 0;
    let firstError: unknown;
    if (callerCopies) {
      try {
        const r = copyRange(ram, shift, batch.table, shares[0]!, stop);
        done[0] = r.pages;
        rows += r.markedRows;
        markedPages += r.markedPages;
        account('caller', r.pages * PAGE_SIZE);
      } catch (e) {
        firstError = e;
      }
    }
    const settled = await Promise.allSettled(runs);
    signal.removeEventListener('abort', onAbort);
    let failed = 0;
    settled.forEach((r, i) => {
      if (r.status === 'fulfilled') {
        done[first + i] = r.value.pages;
        rows += r.value.markedRows;
        markedPages += r.value.markedPages;
        account(`worker-${r.value.threadId}`, r.value.pages * PAGE_SIZE);
      } else {
        failed++;
        firstError ??= r.reason;
      }
    });
    stats.failedTasks += failed;
    if (failed) {
      c.count('tasks_failed', failed);
      const why = firstError instanceof Error ? firstError.message : String(firstError);
      c.logger.warn(`${failed} of ${runs.length} copy tasks failed; their rows stay unmarked: ${why}`);
      // A worker terminated under a task may still finish the piece (<= 1 MiB) it was copying.
      await new Promise((r) => setTimeout(r, QUIESCE_MS));
    }
    const cut = markCutRows(batch.table, shares, done);
    rows += cut.rows;
    markedPages += cut.pages;
    if (failed) {
      // A task that threw may have marked rows before it did: count the marks themselves.
      rows = 0;
      markedPages = 0;
      for (let i = 0; i < batch.rows; i++) {
        if (batch.isCopied(i)) {
          rows++;
          markedPages += batch.nrPages(i);
        }
      }
    }
    stats.folios += rows;
    stats.bytes += markedPages * PAGE_SIZE;
    if (rows < batch.rows) stats.incompleteBatches++;
    // Nothing copied because of an error (not an abort): tell the host, which counts the failure.
    if (rows === 0 && firstError !== undefined && !signal.aborted && Atomics.load(stop, 0) === 0) {
      throw firstError;
    }
  }

  async function disposeNow(): Promise<void> {
    for (const stop of inFlight.values()) Atomics.store(stop, 0, 1);
    await Promise.allSettled([...inFlight.keys()]);
    const own = ownPool;
    ownPool = null;
    pool = null;
    ram = [];
    ctx = null;
    if (own) await own.destroy();
  }

  const migrator: CpuMultithreadedMigrator = {
    apiVersion: MIGRATOR_API_VERSION,
    name: 'cpu-multithreaded',
    version: __PACKAGE_VERSION__,
    engines: { core: __CORE_RANGE__ },
    capabilities,
    options: { threads, minChunk, inlineBelow, callerCopies },

    async init(c: MigratorContext) {
      if (disposing) await disposing;
      disposing = null;
      ctx = c;
      ram = c.sections.map((s) => new Uint8Array(s));
      shift = c.sectionPfnShift;
      // Workers keep their views of the RAM while this id stays the same.
      ramId = Math.random();
      if (injected) {
        pool = injected;
        return;
      }
      if (!pool) {
        const own = new Piscina({
          filename: workerUrl,
          minThreads: threads,
          maxThreads: threads,
          // Threads never exceed minThreads, so this only matters if piscina replaces a thread.
          idleTimeout: 30_000,
        });
        // Start every thread and load the worker module now, not during the first batch.
        try {
          await Promise.all(Array.from({ length: threads }, () => own.run(null, { name: 'ping' })));
        } catch (e) {
          await own.destroy();
          throw new PagemigError(
            'ERR_MIGRATOR_INIT',
            `cpu-multithreaded: the worker pool did not start (${workerUrl}): ${e instanceof Error ? e.message : String(e)}`,
            { cause: e },
          );
        }
        ownPool = own;
        pool = own as unknown as CopyPool;
      }
    },

    copyBatch(batch: MigrationBatch, { signal }: { signal: AbortSignal }): Promise<void> | void {
      if (!pool || disposing)
        throw new PagemigError(
          'ERR_MIGRATOR_STATE',
          `cpu-multithreaded: copyBatch ${disposing ? 'after dispose' : 'before init'}`,
        );
      stats.batches++;
      if (signal.aborted) {
        stats.incompleteBatches++;
        return;
      }
      // A folio has at most 512 base pages: a batch with few rows is inline without counting.
      const pages = batch.rows * MAX_FOLIO_BYTES < inlineBelow ? 0 : batchPages(batch.table, batch.rows);
      const bytes = pages * PAGE_SIZE;
      if (bytes < inlineBelow || (callerCopies && Math.min(lanes, Math.floor(bytes / minChunk)) <= 1)) {
        copyInline(batch, signal);
        return;
      }
      // Word 0 tells the workers to stop between pieces (abort, dispose).
      const stop = new Int32Array(new SharedArrayBuffer(4));
      const run = copyPooled(batch, pages, signal, stop);
      const settled: Promise<boolean> = run.then(
        () => inFlight.delete(settled),
        () => inFlight.delete(settled),
      );
      inFlight.set(settled, stop);
      return run;
    },

    dispose(): Promise<void> {
      disposing ??= disposeNow();
      return disposing;
    },

    [Symbol.asyncDispose](): Promise<void> {
      disposing ??= disposeNow();
      return disposing;
    },

    stats: (): CpuMultithreadedStats => ({
      ...stats,
      threads: Object.fromEntries(Object.entries(stats.threads).map(([k, v]) => [k, { ...v }])),
    }),
  };
  return defineMigrator(migrator as CpuMultithreadedMigrator & Migrator) as CpuMultithreadedMigrator;
}

export default createMigrator;
