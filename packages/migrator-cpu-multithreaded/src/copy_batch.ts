// copyBatch: a small batch is copied inline (a worker round trip costs more than it saves), a large
// one on the pool. The inline path stays synchronous, so the engine arms no timeout for it.
import { type MigrationBatch, PagemigError } from '@pagemig/core';
import { AWAKE, chooseMode, INLINE } from './adaptive.js';
import { copyPooled } from './copy_pooled.js';
import { copyInSession, keepAwake, sessionFor } from './run_session.js';
import { account, type MtState, PAGE_SIZE } from './state.js';

/** The largest folio (order 9, HPAGE_PMD_NR base pages). */
const MAX_FOLIO_BYTES = 512 * PAGE_SIZE;
/** Rows copied inline between checks of the abort signal (as cpu-serial). */
const INLINE_CHECK_EVERY = 64;

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

/** Exactly cpu-serial's loop: one set and one mark per row, the signal checked every 64 rows. */
function copyInline(state: MtState, batch: MigrationBatch, signal: AbortSignal): void {
  const stats = state.stats;
  const bytes = inlineCopy(state.ram, state.shift, batch, signal);
  const rows = inlineRows;
  stats.inlineBatches++;
  stats.folios += rows;
  stats.bytes += bytes;
  if (rows < batch.rows) stats.incompleteBatches++;
  account(state, 'caller', bytes);
}

/** Base pages in a batch (column 2 of each row). */
function batchPages(table: Int32Array, rows: number): number {
  let pages = 0;
  for (let o = 2, end = rows * 4; o < end; o += 4) pages += table[o]!;
  return pages;
}

/** Runs a pooled batch, tracked in `inFlight` (with its stop word) until it settles. */
function startPooled(state: MtState, batch: MigrationBatch, pages: number, signal: AbortSignal) {
  // Word 0 tells the workers to stop between pieces (abort, dispose).
  const stop = new Int32Array(new SharedArrayBuffer(4));
  const run = copyPooled(state, batch, pages, signal, stop);
  const settled: Promise<boolean> = run.then(
    () => state.inFlight.delete(settled),
    () => state.inFlight.delete(settled),
  );
  state.inFlight.set(settled, stop);
  return run;
}

export function mtCopyBatch(
  state: MtState,
  batch: MigrationBatch,
  { signal }: { signal: AbortSignal },
): Promise<void> | void {
  if (!state.pool || state.disposing)
    throw new PagemigError(
      'ERR_MIGRATOR_STATE',
      `cpu-multithreaded: copyBatch ${state.disposing ? 'after dispose' : 'before init'}`,
    );
  const { inlineBelow, minChunk, callerCopies } = state.options;
  state.stats.batches++;
  if (signal.aborted) {
    state.stats.incompleteBatches++;
    return;
  }
  if (state.runs.size > 0) {
    // A run keeps the workers awake: a batch costs a doorbell, so much smaller ones are split.
    const { runInlineBelow, runMinChunk } = state.options;
    const pages = batchPages(batch.table, batch.rows);
    const bytes = pages * PAGE_SIZE;
    const n = Math.min(state.lanes, Math.floor(bytes / runMinChunk));
    if (bytes < runInlineBelow || n <= 1) {
      copyInline(state, batch, signal);
      return;
    }
    const a = state.adapt;
    // A batch of inlineBelow or more wins on the workers even when they must be woken for it;
    // smaller ones go whichever way measured faster.
    const mode =
      state.options.adaptive && bytes < inlineBelow ? chooseMode(a, performance.now(), bytes) : AWAKE;
    // Workers poll only while their batches come: inline batches let them sleep (ACTIVE off), but
    // not a one-batch look at inline, after which they are wanted again.
    keepAwake(state, mode === AWAKE || a.probing);
    if (mode === INLINE) {
      if (!a.probing) state.stats.adaptiveInlineBatches++;
      copyInline(state, batch, signal);
      return;
    }
    const s = sessionFor(state, batch.table);
    if (s) return copyInSession(state, s, batch, pages, n, signal);
  }
  // A folio has at most 512 base pages: a batch with few rows is inline without counting.
  const pages = batch.rows * MAX_FOLIO_BYTES < inlineBelow ? 0 : batchPages(batch.table, batch.rows);
  const bytes = pages * PAGE_SIZE;
  if (bytes < inlineBelow || (callerCopies && Math.min(state.lanes, Math.floor(bytes / minChunk)) <= 1)) {
    copyInline(state, batch, signal);
    return;
  }
  return startPooled(state, batch, pages, signal);
}
