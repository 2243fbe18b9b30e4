// The pooled path of copyBatch: a batch cut into shares by bytes, copied by the workers (and the
// calling thread with `callerCopies`); a row is marked only once every share covering it finished.
import type { MigrationBatch } from '@pagemig/core';
import { copyRange } from './copy_range.js';
import type { CopyResult } from './protocol.js';
import { markCutRows, type Share, splitBatch } from './split.js';
import { account, type MtState, PAGE_SIZE } from './state.js';
import { workerUrl } from './worker_url.js';

/** After a task fails, time for a terminated worker to leave its last piece (at most 1 MiB). */
const QUIESCE_MS = 5;

/** What the shares of one batch copied and marked, gathered as they finish. */
interface Tally {
  /** Pages copied per share (a prefix of it): what `markCutRows` needs. */
  readonly done: Float64Array;
  rows: number;
  pages: number;
  /** The first error of a share, thrown if nothing at all was copied. */
  firstError: unknown;
}

/** Runs shares `first..` on the pool; a pool that throws instead of rejecting fails that share only. */
function submitShares(
  state: MtState,
  batch: MigrationBatch,
  shares: readonly Share[],
  first: number,
  stop: Int32Array,
): Promise<CopyResult>[] {
  const tl = state.ctx!.timeline;
  const base = {
    ramId: state.ramId,
    sections: state.ctx!.sections,
    sectionPfnShift: state.shift,
    table: batch.table,
    stop,
    ...(tl?.recording && state.timelineTrack !== undefined
      ? { tl: { buffer: tl.buffer, track: state.timelineTrack, batch: batch.id } }
      : {}),
  };
  const runs: Promise<CopyResult>[] = [];
  for (let k = first; k < shares.length; k++) {
    const s = shares[k]!;
    const task = { ...base, startRow: s.startRow, startPage: s.startPage, pages: s.pages };
    try {
      runs.push(state.pool!.run(task, { filename: workerUrl }));
    } catch (e) {
      runs.push(Promise.reject(e));
    }
  }
  return runs;
}

/** With `callerCopies`, the calling thread copies share 0 while the workers copy the rest. */
function copyCallerShare(
  state: MtState,
  batch: MigrationBatch,
  share: Share,
  stop: Int32Array,
  tally: Tally,
) {
  try {
    const r = copyRange(state.ram, state.shift, batch.table, share, stop);
    tally.done[0] = r.pages;
    tally.rows += r.markedRows;
    tally.pages += r.markedPages;
    account(state, 'caller', r.pages * PAGE_SIZE);
  } catch (e) {
    tally.firstError = e;
  }
}

/** Adds the workers' results (shares `first..`) to the tally; returns how many tasks failed. */
function collectWorkerShares(
  state: MtState,
  settled: readonly PromiseSettledResult<CopyResult>[],
  first: number,
  tally: Tally,
): number {
  let failed = 0;
  settled.forEach((r, i) => {
    if (r.status === 'fulfilled') {
      tally.done[first + i] = r.value.pages;
      tally.rows += r.value.markedRows;
      tally.pages += r.value.markedPages;
      account(state, `worker-${r.value.threadId}`, r.value.pages * PAGE_SIZE);
    } else {
      failed++;
      tally.firstError ??= r.reason;
    }
  });
  return failed;
}

async function reportFailedTasks(state: MtState, failed: number, tasks: number, error: unknown) {
  const c = state.ctx!;
  state.stats.failedTasks += failed;
  c.count('tasks_failed', failed);
  const why = error instanceof Error ? error.message : String(error);
  c.logger.warn(`${failed} of ${tasks} copy tasks failed; their rows stay unmarked: ${why}`);
  // A worker terminated under a task may still finish the piece (<= 1 MiB) it was copying.
  await new Promise((r) => setTimeout(r, QUIESCE_MS));
}

/** A task that threw may have marked rows before it did: count the marks themselves. */
function recountMarks(batch: MigrationBatch, tally: Tally): void {
  tally.rows = 0;
  tally.pages = 0;
  for (let i = 0; i < batch.rows; i++) {
    if (batch.isCopied(i)) {
      tally.rows++;
      tally.pages += batch.nrPages(i);
    }
  }
}

/**
 * Copies a batch of `pages` base pages on the pool. `stop` word 0 tells the workers to stop between
 * pieces; an abort of `signal` sets it. Rows not finished stay unmarked for the engine to copy.
 */
export async function copyPooled(
  state: MtState,
  batch: MigrationBatch,
  pages: number,
  signal: AbortSignal,
  stop: Int32Array,
): Promise<void> {
  const { minChunk, callerCopies } = state.options;
  const stats = state.stats;
  const n = Math.max(1, Math.min(state.lanes, Math.floor((pages * PAGE_SIZE) / minChunk)));
  const shares = splitBatch(batch.table, batch.rows, pages, n);
  const onAbort = () => Atomics.store(stop, 0, 1);
  signal.addEventListener('abort', onAbort, { once: true });
  stats.pooledBatches++;
  const first = callerCopies ? 1 : 0;
  const runs = submitShares(state, batch, shares, first, stop);
  stats.tasks += runs.length;
  const tally: Tally = { done: new Float64Array(shares.length), rows: 0, pages: 0, firstError: undefined };
  if (callerCopies) copyCallerShare(state, batch, shares[0]!, stop, tally);
  const settled = await Promise.allSettled(runs);
  signal.removeEventListener('abort', onAbort);
  const failed = collectWorkerShares(state, settled, first, tally);
  if (failed) await reportFailedTasks(state, failed, runs.length, tally.firstError);
  const cut = markCutRows(batch.table, shares, tally.done);
  tally.rows += cut.rows;
  tally.pages += cut.pages;
  if (failed) recountMarks(batch, tally);
  stats.folios += tally.rows;
  stats.bytes += tally.pages * PAGE_SIZE;
  if (tally.rows < batch.rows) stats.incompleteBatches++;
  // Nothing copied because of an error (not an abort): tell the host, which counts the failure.
  if (tally.rows === 0 && tally.firstError !== undefined && !signal.aborted && Atomics.load(stop, 0) === 0) {
    throw tally.firstError;
  }
}
