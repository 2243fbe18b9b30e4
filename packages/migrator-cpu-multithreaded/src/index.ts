import { availableParallelism } from 'node:os';
import {
  checkMigratorOptions,
  defineMigrator,
  MIGRATOR_API_VERSION,
  type MigrationBatch,
  type MigrationRunInfo,
  type Migrator,
  type MigratorCapabilities,
  type MigratorContext,
  type MigratorOptionsSpec,
} from '@pagemig/core';
import { mtCopyBatch } from './copy_batch.js';
import { mtDispose, mtInit } from './pool.js';
import { mtRunEnd, mtRunStart } from './run_session.js';
import {
  type CopyPool,
  type CpuMultithreadedStats,
  createState,
  type MtState,
  mtStats,
  PAGE_SIZE,
} from './state.js';

export type { ShareRange } from './copy_range.js';
export type { CopyResult, CopyTask, ServeResult, ServeTask } from './protocol.js';
export type { Share } from './split.js';
export { markCutRows, splitBatch } from './split.js';
export type { CopyPool, CpuMultithreadedStats, ThreadStats } from './state.js';
export { workerUrl } from './worker_url.js';

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
/**
 * While a migration run keeps the workers awake (runStart .. runEnd) a batch costs a doorbell and a
 * completion instead of wake-ups, so the defaults drop: shares of at least 256 KiB, and only
 * batches below 512 KiB inline; one 2 MiB folio (the default batch) is split across the threads.
 * Explicit `minChunk` and `inlineBelow` apply to both.
 */
export const DEFAULT_RUN_MIN_CHUNK = 256 << 10;
export const DEFAULT_RUN_INLINE_BELOW = 512 << 10;
/** How long an awake worker polls for the next batch of its run before it sleeps, in µs. */
export const DEFAULT_RUN_SPIN_US = 1000;

const optionSpec = {
  // Defaults that depend on other options are filled in by createMigrator.
  threads: { type: 'integer', min: 1, max: 256 },
  minChunk: { type: 'integer', min: PAGE_SIZE, default: DEFAULT_MIN_CHUNK, unit: 'bytes' },
  inlineBelow: { type: 'integer', min: 0, unit: 'bytes' },
  pool: {
    type: 'custom',
    expected: 'a piscina pool (an object with a run method)',
    parse: (v: unknown) => (typeof (v as { run?: unknown }).run === 'function' ? (v as CopyPool) : undefined),
  },
  callerCopies: { type: 'boolean', default: false },
  runSpinUs: { type: 'number', min: 0, max: 1e6, default: DEFAULT_RUN_SPIN_US, unit: 'µs' },
  adaptive: { type: 'boolean', default: true },
} as const satisfies MigratorOptionsSpec;

/** Option names `createMigrator` accepts (a registry convention). */
export const optionKeys = Object.keys(optionSpec) as readonly (keyof typeof optionSpec)[];

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
  /**
   * During a migration run the workers stay awake between batches: after each one a worker polls
   * for the next this long (µs) before it sleeps, and stops earlier when the run ends or when the
   * scheduler gave its core to another thread for a millisecond (the core is needed). Default 1000.
   */
  runSpinUs?: number;
  /**
   * During a run, copy each batch inline or on the awake workers, whichever measured faster (inline
   * first; a look of two batches at the workers from the run's fourth batch, then now and then):
   * on a host whose other core is busy the workers lose and the engine copies alone. False: every
   * batch of a run big enough to split goes to the workers. Default true.
   */
  adaptive?: boolean;
}

export type CpuMultithreadedMigrator = Omit<Migrator, 'stats'> & {
  stats(): CpuMultithreadedStats;
  /** The resolved options (the pool excepted). */
  readonly options: Readonly<{
    threads: number;
    minChunk: number;
    inlineBelow: number;
    callerCopies: boolean;
    runInlineBelow: number;
    runMinChunk: number;
    runSpinNs: number;
    adaptive: boolean;
  }>;
};

/** The threads of an injected pool (its `maxThreads`, at most 256), else one per CPU. */
function defaultThreads(pool: CopyPool | undefined): number {
  const n = pool?.maxThreads;
  return typeof n === 'number' && Number.isInteger(n) && n >= 1 ? Math.min(n, 256) : availableParallelism();
}

/** The ops every instance shares; each takes the instance's state first (as DPDK's skeldma_ops). */
const mtOps = {
  init: mtInit,
  runStart: mtRunStart,
  runEnd: mtRunEnd,
  copyBatch: mtCopyBatch,
  dispose: mtDispose,
  stats: mtStats,
} as const;

/**
 * A migrator that copies each batch on a piscina pool of worker threads: the batch's bytes are
 * split into balanced shares (one 2 MiB folio is cut into byte ranges, many small folios into
 * contiguous runs), each worker copies its share between the machine's SharedArrayBuffer sections,
 * and a row is marked copied only once every share covering it finished. Small batches are copied
 * inline, because a round trip to a worker costs more than it saves.
 */
export function createMigrator(options: CpuMultithreadedOptions = {}): CpuMultithreadedMigrator {
  const o = checkMigratorOptions('cpu-multithreaded', options, optionSpec);
  const callerCopies = o.callerCopies;
  const resolved = {
    threads: o.threads ?? defaultThreads(o.pool),
    minChunk: o.minChunk,
    inlineBelow: o.inlineBelow ?? (callerCopies ? DEFAULT_INLINE_BELOW_CALLER_COPIES : DEFAULT_INLINE_BELOW),
    callerCopies,
    runInlineBelow: o.inlineBelow ?? DEFAULT_RUN_INLINE_BELOW,
    runMinChunk: options.minChunk === undefined ? DEFAULT_RUN_MIN_CHUNK : o.minChunk,
    runSpinNs: Math.round(o.runSpinUs * 1000),
    adaptive: o.adaptive,
  };
  const state: MtState = createState(resolved, o.pool);
  const capabilities: MigratorCapabilities = {
    offloadsCpu: !callerCopies,
    channels: state.lanes,
    maxInFlightBatches: 16,
    needsSharedMemory: true,
    minFolioBytes: PAGE_SIZE,
    inlineBelowBytes: resolved.inlineBelow,
    minChunkBytes: resolved.minChunk,
    runMinChunkBytes: resolved.runMinChunk,
    runInlineBelowBytes: resolved.runInlineBelow,
    ...(o.pool ? { injectedPool: true } : {}),
  };
  const migrator: CpuMultithreadedMigrator = {
    apiVersion: MIGRATOR_API_VERSION,
    name: 'cpu-multithreaded',
    version: __PACKAGE_VERSION__,
    engines: { core: __CORE_RANGE__ },
    capabilities,
    options: { ...resolved },
    init: (ctx: MigratorContext) => mtOps.init(state, ctx),
    runStart: (info: MigrationRunInfo) => mtOps.runStart(state, info),
    runEnd: (info: MigrationRunInfo) => mtOps.runEnd(state, info),
    copyBatch: (batch: MigrationBatch, opts: { signal: AbortSignal }) => mtOps.copyBatch(state, batch, opts),
    dispose: () => mtOps.dispose(state),
    [Symbol.asyncDispose]: () => mtOps.dispose(state),
    stats: () => mtOps.stats(state),
  };
  return defineMigrator(migrator as CpuMultithreadedMigrator & Migrator) as CpuMultithreadedMigrator;
}

export default createMigrator;
