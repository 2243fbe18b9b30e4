import type { FaultPlan } from './fault_inject.js';
import type { MigrateModeValue, MigrateReasonValue } from './migrate_mode.js';
import type { MigratorTimeline } from './timeline.js';

/**
 * The migrator contract (pagemig.migrator/v1), after `struct migrator` of the batch-copy series:
 * a copy engine gets a batch of (src, dst, nrPages) rows after the batched TLB flush, copies what
 * it can, and marks each row it copied (FOLIO_CONTENT_COPIED). The engine copies every unmarked
 * row on the CPU, so a migrator may decline, copy part of a batch, fail, or throw without losing
 * data.
 */
export const MIGRATOR_API_VERSION = 'pagemig.migrator/v1';

/** Ints per batch row: srcPfn, dstPfn, nrPages, flags. */
export const BATCH_ROW_INTS = 4;
export const BATCH_SRC = 0;
export const BATCH_DST = 1;
export const BATCH_NR = 2;
export const BATCH_FLAGS = 3;
/** Row flag: the migrator copied this row's content (FOLIO_CONTENT_COPIED). */
export const BATCH_COPIED = 1;

/** A static, serialisable description of what a migrator does. */
export interface MigratorCapabilities {
  /** Copies run off the engine's thread (worker threads or a device), freeing its CPU. */
  offloadsCpu: boolean;
  /** Parallel copy lanes (threads, DMA channels, SDXI contexts). */
  channels: number;
  /** Folios smaller than this (bytes) are better copied on the CPU; a hint for routing. */
  minFolioBytes?: number;
  /** Batches it accepts at once from concurrent migrations. */
  maxInFlightBatches: number;
  /** Needs the machine's RAM in SharedArrayBuffers (backing 'shared'). */
  needsSharedMemory: boolean;
  /** Driver fault sites (fault_inject.ts) it honours from `ctx.faults`; the testkit runs those cases. */
  faultSites?: readonly string[];
  /** Driver-specific facts (device model, queue depth, ...). Must stay JSON-serialisable. */
  [key: string]: unknown;
}

export interface MigratorLogger {
  info(message: string): void;
  warn(message: string): void;
  error(message: string): void;
}

/** What the host hands a migrator at init. */
export interface MigratorContext {
  /** The machine's RAM: section i holds pfns [i << pfnShift, (i + 1) << pfnShift). */
  readonly sections: readonly SharedArrayBuffer[];
  /** log2 of pages per section. */
  readonly sectionPfnShift: number;
  readonly pageSize: number;
  readonly nrPages: number;
  readonly logger: MigratorLogger;
  /** Adds to a named counter shown in `m.offload.status()`. */
  count(name: string, delta?: number): void;
  /**
   * dma_alloc_coherent: `pages` contiguous frames of kernel (Unmovable) memory on `nid` (default
   * node 0) for rings and control structures a device reads; returns the first pfn. Throws ENOMEM.
   */
  allocCoherent(pages: number, nid?: number): number;
  /** Frees what allocCoherent returned. */
  freeCoherent(pfn: number): void;
  /**
   * The fault plan in force on the machine (tests), or null/absent. A driver honours the driver
   * sites it declares in `capabilities.faultSites` (see fault_inject.ts); read it per batch.
   */
  readonly faults?: FaultPlan | null;
  /**
   * The machine's timeline recorder (absent on hosts that predate it, e.g. a test's own context).
   * Optional for a migrator: one that ignores it still works. A driver registers a track per
   * channel or worker (`track(name, process)`) and hands `{ buffer, track }` to the thread that
   * copies; that thread records with `TimelineWriter` from `@pagemig/core/timeline-writer`, labelling
   * its records with `MigrationBatch.id` (or the track's tag word).
   */
  readonly timeline?: MigratorTimeline;
  readonly host: { readonly coreVersion: string; readonly apiVersion: typeof MIGRATOR_API_VERSION };
}

/**
 * One batch: `rows` rows of BATCH_ROW_INTS Int32 words in a SharedArrayBuffer, so a migrator can
 * hand the table itself to worker threads or a device. Mark rows with `markCopied` (Atomics), from
 * any thread.
 */
export class MigrationBatch {
  constructor(
    readonly table: Int32Array,
    readonly rows: number,
    readonly reason: MigrateReasonValue,
    readonly mode: MigrateModeValue,
    /**
     * The batch's number on the machine's timeline (m.timeline) while it records, else 0. A
     * migrator that records its own spans (a device's descriptors, a worker's share) labels them
     * with it, so the timeline links the batch to its copies.
     */
    readonly id: number = 0,
  ) {}

  src(i: number): number {
    return this.table[i * BATCH_ROW_INTS + BATCH_SRC]!;
  }
  dst(i: number): number {
    return this.table[i * BATCH_ROW_INTS + BATCH_DST]!;
  }
  nrPages(i: number): number {
    return this.table[i * BATCH_ROW_INTS + BATCH_NR]!;
  }
  markCopied(i: number): void {
    Atomics.or(this.table, i * BATCH_ROW_INTS + BATCH_FLAGS, BATCH_COPIED);
  }
  isCopied(i: number): boolean {
    return (Atomics.load(this.table, i * BATCH_ROW_INTS + BATCH_FLAGS) & BATCH_COPIED) !== 0;
  }
  /** Total base pages in the batch. */
  get pages(): number {
    let n = 0;
    for (let i = 0; i < this.rows; i++) n += this.nrPages(i);
    return n;
  }
}

/** What `shouldOffload` sees before a batch is offered. */
export interface OffloadInfo {
  readonly reason: MigrateReasonValue;
  readonly mode: MigrateModeValue;
  readonly folios: number;
  readonly pages: number;
  /** The largest folio of the batch, in base pages. */
  readonly maxFolioPages: number;
}

/**
 * What `runStart` tells a migrator about the migration run that begins: one migrate_pages() call
 * (a move_pages(2) or migrate_pages(2) call, m.migrateFolios, one compaction cluster, ...) whose
 * batches of `reason` are offered to this migrator.
 */
export interface MigrationRunInfo {
  readonly reason: MigrateReasonValue;
  readonly mode: MigrateModeValue;
  /** The target node. */
  readonly node: number;
  /**
   * Folios the run was given (isolated heads), and their base pages. A daemon's pass (compact_zone,
   * which migrates cluster by cluster, each a run of its own inside the pass) has 0 folios and the
   * base pages it may move.
   */
  readonly folios: number;
  readonly pages: number;
}

export interface Migrator {
  readonly apiVersion: typeof MIGRATOR_API_VERSION;
  readonly name: string;
  readonly version: string;
  /** Semver range of @pagemig/core this migrator works with. */
  readonly engines: { readonly core: string };
  readonly capabilities: MigratorCapabilities;
  init(ctx: MigratorContext): void | Promise<void>;
  /**
   * Copies rows and marks those copied. May reject or throw: the engine falls back to the CPU.
   * `signal` aborts when the engine gives up on this batch; consecutive batches (of one run and of
   * the runs after it) may share a signal until it aborts, so remove any abort listener when the
   * batch settles.
   */
  copyBatch(batch: MigrationBatch, options: { signal: AbortSignal }): void | Promise<void>;
  /** Per-batch gate; declining costs nothing (the CPU copies the batch). */
  shouldOffload?(info: OffloadInfo): boolean;
  /**
   * Optional, and still pagemig.migrator/v1 (a migrator without it works as before): a run whose
   * batches this migrator is routed begins. One whose copy threads or devices sleep between batches
   * keeps them awake (polling for a bounded time) until `runEnd`, so a batch costs a doorbell and a
   * completion rather than a thread wake-up. Called synchronously before the run's first batch; a
   * throw is logged and ignored. Runs may overlap (concurrent migrations): count them.
   */
  runStart?(info: MigrationRunInfo): void;
  /**
   * Optional: the run announced by `runStart` ended; `info` is the object runStart got. Every
   * runStart gets exactly one runEnd, also when a batch failed, aborted or the run threw; it may
   * come after `dispose` (the migrator was unregistered during the run), and must then do nothing.
   */
  runEnd?(info: MigrationRunInfo): void;
  dispose(): void | Promise<void>;
  [Symbol.asyncDispose]?(): Promise<void>;
  stats?(): Record<string, unknown>;
}

/** Identity helper that types a migrator object (validation happens at registration). */
export function defineMigrator<M extends Migrator>(migrator: M): M {
  return migrator;
}
