// What one migrator instance keeps between calls: its resolved options, the machine it is
// initialised on, its pool and its counters. Every op takes it as its first argument.
import type { MigratorContext } from '@pagemig/core';
import type { Piscina } from 'piscina';
import { newAdaptiveCopy } from './adaptive.js';
import type { CopyResult, CopyTask } from './protocol.js';
import type { RunSession } from './run_session.js';
import { SERVING, SLEEPERS, SLEEPS } from './session_words.js';

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
  /** Migration runs announced (runStart). */
  runs: number;
  /** Times the workers were woken for a run (once per run that had a pooled batch). */
  sessions: number;
  /** Batches copied by workers kept awake for their run (no task, no wake-up). */
  awakeBatches: number;
  /** Times an awake worker found no batch within its poll and slept (the next batch woke it). */
  workerSleeps: number;
  /**
   * Batches of a run copied inline because the awake workers measured slower than the engine's
   * thread alone (the other core was needed); the rate probes are not counted.
   */
  adaptiveInlineBatches: number;
  /** Batches of a run posted while no worker polled (sleepers were woken, or the caller copied). */
  coldBatches: number;
  /** Now: workers of the latest run still in its loop (0 once back in the pool), and those asleep on its doorbell. */
  awakeWorkers: number;
  sleepingWorkers: number;
};

/**
 * What decides, during a run, between the awake workers and an inline copy (adaptive.ts): the
 * measured cost per byte of each (from one batch to the next), and the batch before this one.
 */
export interface AdaptiveCopy {
  inlineNsPerByte: number;
  awakeNsPerByte: number;
  /** The previous batch's mode (0: none in this run), when it started (ms) and its bytes. */
  lastMode: number;
  lastAt: number;
  lastBytes: number;
  /** The previous batch is the first measured one of a look at the slower mode. */
  lastFresh: boolean;
  /** Batches in a row of the previous batch's mode in this run (1: it was a switch). */
  streak: number;
  /** A look at the slower mode is going (probeMode), with probeLeft more batches after this one. */
  probing: boolean;
  probeMode: number;
  probeLeft: number;
  sinceProbe: number;
  /** Batches between two looks. */
  probeEvery: number;
  /** The mode the measurements chose (0: none yet, inline). */
  chosen: number;
}

/** The options after defaults (the pool excepted). */
export interface ResolvedOptions {
  readonly threads: number;
  readonly minChunk: number;
  readonly inlineBelow: number;
  readonly callerCopies: boolean;
  /** While a run keeps the workers awake: inline below this many bytes, shares never smaller than runMinChunk. */
  readonly runInlineBelow: number;
  readonly runMinChunk: number;
  /** How long an awake worker polls for the next batch, in nanoseconds. */
  readonly runSpinNs: number;
  /** Choose between the workers and inline by measurement (adaptive.ts); false: always the workers. */
  readonly adaptive: boolean;
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
  /** The runs in progress (their runStart infos). */
  readonly runs: Set<object>;
  /** The workers kept awake for them, started by the first pooled batch of a run. */
  session: RunSession | null;
  /** Serve tasks of sessions that ended, until their workers are back in the pool (dispose awaits them). */
  readonly ending: Set<Promise<void>>;
  /** The control block of the latest session (running or ended), for the live counts in stats(). */
  lastCtl: Int32Array | null;
  /** Ends the session once no run came for a while after the last one ended. */
  linger: ReturnType<typeof setTimeout> | undefined;
  readonly adapt: AdaptiveCopy;
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
    runs: new Set(),
    session: null,
    ending: new Set(),
    lastCtl: null,
    linger: undefined,
    adapt: newAdaptiveCopy(),
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
      runs: 0,
      sessions: 0,
      awakeBatches: 0,
      workerSleeps: 0,
      adaptiveInlineBatches: 0,
      coldBatches: 0,
      awakeWorkers: 0,
      sleepingWorkers: 0,
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
  const ctl = state.lastCtl;
  return {
    ...stats,
    workerSleeps: stats.workerSleeps + (ctl ? Atomics.load(ctl, SLEEPS) : 0),
    awakeWorkers: ctl ? Atomics.load(ctl, SERVING) : 0,
    sleepingWorkers: ctl ? Atomics.load(ctl, SLEEPERS) : 0,
    threads: Object.fromEntries(Object.entries(stats.threads).map(([k, v]) => [k, { ...v }])),
  };
}
