// What one migrator instance keeps between calls: its resolved options, the machine it is
// initialised on, its pool and its counters. Every op takes it as its first argument.
import type { MigratorContext } from '@pagemig/core';
import type { Piscina } from 'piscina';
import type { CopyResult, CopyTask } from './protocol.js';

export const PAGE_SIZE = 4096;

/** Just the part of a piscina pool this migrator uses, so an application can inject its own. */
export interface CopyPool {
  run(task: CopyTask, options: { filename: string; name?: string }): Promise<CopyResult>;
  /** piscina's thread limit: the number of shares per batch when `threads` is not given. */
  readonly maxThreads?: number;
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

/** The options after defaults (the pool excepted). */
export interface ResolvedOptions {
  readonly threads: number;
  readonly minChunk: number;
  readonly inlineBelow: number;
  readonly callerCopies: boolean;
}

export interface MtState {
  readonly options: ResolvedOptions;
  /** Copying threads per pooled batch: the workers, plus the caller with `callerCopies`. */
  readonly lanes: number;
  /** The application's pool, used instead of one of our own and never destroyed. */
  readonly injected: CopyPool | undefined;
  ctx: MigratorContext | null;
  ram: Uint8Array[];
  shift: number;
  /** Changes at every init: workers rebuild their RAM views when it does. */
  ramId: number;
  /** The pool batches run on (injected or own); null before init and after dispose. */
  pool: CopyPool | null;
  /** The pool this migrator created, which dispose destroys. */
  ownPool: Piscina | null;
  disposing: Promise<void> | null;
  /** The workers' track on the machine's timeline (undefined on a host without one). */
  timelineTrack: number | undefined;
  /** Stop words of the batches in flight, by their completions (dispose sets and awaits them). */
  readonly inFlight: Map<Promise<unknown>, Int32Array>;
  readonly stats: CpuMultithreadedStats;
}

export function createState(options: ResolvedOptions, injected: CopyPool | undefined): MtState {
  return {
    options,
    lanes: options.threads + (options.callerCopies ? 1 : 0),
    injected,
    ctx: null,
    ram: [],
    shift: 0,
    ramId: 0,
    pool: null,
    ownPool: null,
    disposing: null,
    timelineTrack: undefined,
    inFlight: new Map(),
    stats: {
      batches: 0,
      inlineBatches: 0,
      pooledBatches: 0,
      incompleteBatches: 0,
      folios: 0,
      bytes: 0,
      tasks: 0,
      failedTasks: 0,
      threads: {},
    },
  };
}

/** Counts a share (or an inline batch) copied by thread `who`. */
export function account(state: MtState, who: string, bytes: number): void {
  const t = (state.stats.threads[who] ??= { tasks: 0, bytes: 0 });
  t.tasks++;
  t.bytes += bytes;
}

/** A copy of the counters the caller cannot change under us. */
export function mtStats(state: MtState): CpuMultithreadedStats {
  const stats = state.stats;
  return {
    ...stats,
    threads: Object.fromEntries(Object.entries(stats.threads).map(([k, v]) => [k, { ...v }])),
  };
}
