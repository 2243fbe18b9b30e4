// The messages between the migrator and its worker threads (types only: nothing here is emitted).
import type { RangeResult, ShareRange } from './copy_range.js';

/** One piscina task: a share of a batch. Every SharedArrayBuffer in it is shared, not copied. */
export interface CopyTask extends ShareRange {
  /** Identifies `sections`: a worker keeps its views of the RAM while this does not change. */
  readonly ramId: number;
  /** The machine's RAM sections; section i holds pfns [i << sectionPfnShift, (i + 1) << sectionPfnShift). */
  readonly sections: readonly SharedArrayBuffer[];
  readonly sectionPfnShift: number;
  /** The batch table (`MigrationBatch.table`): rows of (srcPfn, dstPfn, nrPages, flags). */
  readonly table: Int32Array;
  /** Word 0 becomes non-zero when the batch is aborted or the migrator is disposed. */
  readonly stop: Int32Array;
  /**
   * While the machine's timeline records: its buffer, the workers' track and the batch's number; the
   * worker records its share as a `copy_share` span (sub-track: its threadId).
   */
  readonly tl?: { readonly buffer: SharedArrayBuffer; readonly track: number; readonly batch: number };
}

/** Pages copied (a prefix of the share: fewer than asked when stopped) and the rows marked. */
export interface CopyResult extends RangeResult {
  /** The worker's `threadId`. */
  readonly threadId: number;
}

/**
 * The task that keeps a worker awake for a migration run (`serve`): the machine's RAM, the batch
 * table the run's batches use, and the session's control block (session_words.ts).
 */
export interface ServeTask {
  readonly ramId: number;
  readonly sections: readonly SharedArrayBuffer[];
  readonly sectionPfnShift: number;
  readonly table: Int32Array;
  readonly ctl: Int32Array;
  /** While the machine's timeline records: its buffer and the workers' track. */
  readonly tl?: { readonly buffer: SharedArrayBuffer; readonly track: number };
}

/** What a worker did in a session: shares copied, and the times it slept waiting for a batch. */
export interface ServeResult {
  readonly threadId: number;
  readonly shares: number;
  readonly sleeps: number;
}
