// dcbm's batch copy, one step per function: slice the rows across channels, map the runs into the
// channels' IOMMU domains, prepare and submit descriptors, wait for each one's completion, stop the
// channels if the wait was cut short, unmap, mark the rows whose every descriptor succeeded, count.
import {
  BATCH_DST,
  BATCH_NR,
  BATCH_ROW_INTS,
  BATCH_SRC,
  type MigrationBatch,
  type MigratorTimeline,
  TL_DMA_IRQ,
} from '@pagemig/core';
import {
  DMA_PREP_INTERRUPT,
  type DmaChannel,
  type DmaSegment,
  DmaStatusCode,
  type DmaTx,
  type DmaTxResult,
  dmaStatusCodeName,
} from './channel.js';
import type { DcbmState } from './dcbm_state.js';
import { DMA_FROM_DEVICE, DMA_TO_DEVICE } from './iommu.js';
import type { InterruptLine } from './irq.js';

const PAGE_SHIFT = 12;
/** During a run, a batch is cut across more channels than it has folios only into parts this big (256 KiB). */
const SPLIT_MIN_PAGES = 64;
/** How long the engine's thread waits for a batch in place before it awaits it instead. */
const SYNC_WAIT_MS = 20;

/** One batch's descriptors in flight, and what their completions report. */
interface BatchRun {
  /** Completed pieces per row: the plan's array of this batch, whenever a completion lands. */
  readonly rowOk: Int32Array;
  /** Channels with descriptors of this batch: issued together, terminated together. */
  readonly used: Set<DmaChannel>;
  outstanding: number;
  descriptors: number;
  failed: number;
  /** The first real error (skipped and aborted descriptors only follow from it) is what gets logged. */
  firstFailure: DmaTxResult | null;
  /** Ends the wait: false once the last descriptor completed, true on abort. */
  settle: ((aborted: boolean) => void) | null;
  /** The machine's timeline while it records (null otherwise), and the batch's number on it. */
  tl: MigratorTimeline | null;
  batchId: number;
}

/**
 * Rows a device could never copy (bad pfns) stay with the CPU: their rowNeed is -1 and they get no
 * piece. Returns the pages of the other rows.
 */
function excludeBadRows(state: DcbmState, batch: MigrationBatch): number {
  const t = batch.table;
  const rowNeed = state.plan.rowNeed;
  const nrPages = state.ctx!.nrPages;
  let total = 0;
  for (let r = 0; r < batch.rows; r++) {
    const o = r * BATCH_ROW_INTS;
    const src = t[o + BATCH_SRC]!;
    const dst = t[o + BATCH_DST]!;
    const nr = t[o + BATCH_NR]!;
    if (nr >= 1 && src >= 0 && dst >= 0 && src + nr <= nrPages && dst + nr <= nrPages) total += nr;
    else rowNeed[r] = -1;
  }
  return total;
}

function countFolios(rowNeed: Int32Array, rows: number): number {
  let folios = 0;
  for (let r = 0; r < rows; r++) if (rowNeed[r] !== -1) folios++;
  return folios;
}

/**
 * Slices the batch's `total` pages into `k` parts, part c on channel c: pages
 * [floor(total*c/k), floor(total*(c+1)/k)) in row order, so a folio may straddle two parts. The
 * physically contiguous pieces of a part merge into one segment up to the channel's segment size
 * (as dma_map_sgtable would). Counts each row's pieces in rowNeed; returns the number of segments.
 */
function sliceRows(state: DcbmState, batch: MigrationBatch, total: number, k: number): number {
  const { plan, taken } = state;
  const t = batch.table;
  const rows = batch.rows;
  const rowNeed = plan.rowNeed;
  let nSeg = 0;
  let nPiece = 0;
  let r = 0;
  let off = 0;
  while (r < rows && rowNeed[r] === -1) r++;
  for (let c = 0; c < k; c++) {
    let left = Math.floor((total * (c + 1)) / k) - Math.floor((total * c) / k);
    const maxPages = Math.max(1, Math.floor(taken[c]!.maxSegmentBytes / (1 << PAGE_SHIFT)));
    let open = -1; // the segment still growing on this channel
    while (left > 0) {
      const o = r * BATCH_ROW_INTS;
      const take = Math.min(t[o + BATCH_NR]! - off, left, maxPages);
      const src = t[o + BATCH_SRC]! + off;
      const dst = t[o + BATCH_DST]! + off;
      plan.pieces(nPiece + 1);
      plan.pieceRow[nPiece] = r;
      rowNeed[r]!++;
      if (
        open >= 0 &&
        plan.segSrc[open]! + plan.segPages[open]! === src &&
        plan.segDst[open]! + plan.segPages[open]! === dst &&
        plan.segPages[open]! + take <= maxPages
      ) {
        plan.segPages[open]! += take;
        plan.segPiece1[open] = nPiece + 1;
      } else {
        plan.segments(nSeg + 1);
        open = nSeg++;
        plan.segSrc[open] = src;
        plan.segDst[open] = dst;
        plan.segPages[open] = take;
        plan.segChan[open] = c;
        plan.segPiece0[open] = nPiece;
        plan.segPiece1[open] = nPiece + 1;
        plan.segState[open] = 0;
      }
      nPiece++;
      left -= take;
      off += take;
      if (off === t[o + BATCH_NR]!) {
        off = 0;
        r++;
        while (r < rows && rowNeed[r] === -1) r++;
      }
    }
  }
  return nSeg;
}

/** Maps each segment into its channel's IOMMU domain; one that cannot be mapped stays with the CPU. */
function mapSegments(state: DcbmState, nSeg: number): void {
  const { plan, taken } = state;
  for (let s = 0; s < nSeg; s++) {
    const mmu = taken[plan.segChan[s]!]!.device.iommu;
    const pages = plan.segPages[s]!;
    try {
      mmu.map(plan.segSrc[s]!, pages, DMA_TO_DEVICE);
      plan.segState[s]! |= 1;
      mmu.map(plan.segDst[s]!, pages, DMA_FROM_DEVICE);
      plan.segState[s]! |= 2;
    } catch (e) {
      state.counters.mapFailures++;
      state.ctx!.logger.warn(`dma map failed, ${pages} pages left to the CPU: ${(e as Error).message}`);
    }
  }
}

/** A descriptor's completion: on success its rows' pieces count as done. */
function descriptorDone(state: DcbmState, run: BatchRun, res: DmaTxResult, tx: DmaTx): void {
  const plan = state.plan;
  const s0 = tx.param as number;
  // The interrupt handler completing a descriptor: an instant on its channel's track.
  const tl = run.tl;
  if (tl?.recording) {
    const track = state.taken[plan.segChan[s0]!]?.timelineTrack;
    if (track !== undefined) {
      const t = tl.writer.now();
      tl.writer.record(TL_DMA_IRQ, track, t, t, run.batchId, tx.bytes, res.status);
    }
  }
  if (res.status === DmaStatusCode.SUCCESSFUL) {
    const s1 = plan.segTxEnd[s0]!;
    for (let s = s0; s < s1; s++) {
      for (let p = plan.segPiece0[s]!; p < plan.segPiece1[s]!; p++) run.rowOk[plan.pieceRow[p]!]!++;
    }
    state.counters.bytes += tx.bytes;
  } else {
    run.failed++;
    const follow = res.status === DmaStatusCode.NOT_ATTEMPTED || res.status === DmaStatusCode.USER_ABORT;
    const first = run.firstFailure;
    if (!first || (!follow && first.status === DmaStatusCode.NOT_ATTEMPTED)) run.firstFailure = res;
  }
  if (--run.outstanding === 0 && run.settle) run.settle(false);
}

/**
 * Prepares and submits the mapped segments: a descriptor takes consecutive mapped segments of one
 * channel (up to sg_elems on MEMCPY_SG channels, else one), and a channel's last one interrupts. A
 * segment that cannot be prepared stays with the CPU.
 */
function submitSegments(state: DcbmState, nSeg: number, run: BatchRun): void {
  const { plan, taken } = state;
  const onDone = (res: DmaTxResult, tx: DmaTx) => descriptorDone(state, run, res, tx);
  const segs: DmaSegment[] = [];
  for (let s = 0; s < nSeg; ) {
    const c = plan.segChan[s]!;
    const ch = taken[c]!;
    const sg = ch.prepMemcpySg && ch.maxSgSegments > 1 && state.sgElems > 1;
    const max = sg ? Math.min(state.sgElems, ch.maxSgSegments) : 1;
    let e = s;
    while (e < nSeg && e - s < max && plan.segChan[e] === c && plan.segState[e] === 3) e++;
    if (e === s) {
      s++;
      continue;
    }
    let tx: DmaTx | null;
    const last = e === nSeg || plan.segChan[e] !== c;
    const flags = last ? DMA_PREP_INTERRUPT : 0;
    if (sg) {
      segs.length = 0;
      for (let i = s; i < e; i++) {
        const len = plan.segPages[i]! << PAGE_SHIFT;
        segs.push({ dst: plan.segDst[i]! * 4096, src: plan.segSrc[i]! * 4096, len });
      }
      tx = ch.prepMemcpySg!(segs, flags);
    } else {
      tx = ch.prepMemcpy(
        plan.segDst[s]! * 4096,
        plan.segSrc[s]! * 4096,
        plan.segPages[s]! << PAGE_SHIFT,
        flags,
      );
    }
    if (tx) {
      plan.segTxEnd[s] = e;
      for (let i = s; i < e; i++) plan.segState[i]! |= 4;
      tx.param = s;
      tx.callback = onDone;
      run.outstanding++;
      run.descriptors++;
      state.counters.descriptors++;
      tx.submit();
      run.used.add(ch);
    }
    s = e;
  }
}

/** Issues every used channel and waits: false once every descriptor completed, true if `signal` aborts first. */
async function waitForCompletion(run: BatchRun, signal: AbortSignal): Promise<boolean> {
  let onAbort: (() => void) | undefined;
  const aborted = await new Promise<boolean>((resolve) => {
    run.settle = resolve;
    onAbort = () => resolve(true);
    signal.addEventListener('abort', onAbort, { once: true });
    for (const ch of run.used) ch.issuePending();
    // The last completion may have landed already: after the wait in place gave up, the line's
    // dispatcher took over and serviced the line before this wait began.
    if (run.outstanding === 0) resolve(false);
  });
  signal.removeEventListener('abort', onAbort!);
  return aborted;
}

/** The one interrupt line every used channel signals, or null (then the batch is awaited). */
function commonLine(run: BatchRun): InterruptLine | null {
  let line: InterruptLine | null = null;
  for (const ch of run.used) {
    const l = ch.irqLine;
    if (!l || (line && l !== line)) return null;
    line = l;
  }
  return line;
}

/**
 * Issues the batch and waits for it in place, as wait_for_completion sleeps in process context:
 * services the interrupt line and sleeps on it (the engine's thread blocks, as a CPU copy would
 * block it) for at most SYNC_WAIT_MS. True once every descriptor completed; otherwise the async
 * dispatcher takes over and the batch is awaited. A batch waited for this way costs the engine a
 * futex sleep per interrupt, not an event-loop turn, a promise and a timer.
 */
function waitInPlace(run: BatchRun): boolean {
  const line = commonLine(run);
  if (!line) return false;
  line.hold();
  let busy = true;
  try {
    for (const ch of run.used) ch.issuePending();
    const end = performance.now() + SYNC_WAIT_MS;
    for (;;) {
      const seen = line.count;
      busy = line.serviceAll();
      if (run.outstanding === 0) return true;
      const left = end - performance.now();
      if (left <= 0) return false;
      line.sleep(seen, left);
    }
  } finally {
    line.release(busy);
  }
}

/**
 * After the wait, or a throw before it ended: descriptors still out (a timeout) stop their channels
 * before anything is unmapped, so no late write can land. Unmaps every segment; returns whether
 * the batch counts as aborted.
 */
async function quiesceAndUnmap(state: DcbmState, run: BatchRun, nSeg: number, aborted: boolean) {
  if (run.outstanding > 0) {
    if (aborted) state.counters.timeouts++;
    const results = await Promise.allSettled([...run.used].map((ch) => ch.terminateAll()));
    for (const r of results) {
      if (r.status === 'rejected') state.ctx!.logger.error(`terminate failed: ${String(r.reason)}`);
    }
    aborted = true;
  }
  unmapSegments(state, nSeg);
  return aborted;
}

/** Unmaps every segment mapped for the batch. */
function unmapSegments(state: DcbmState, nSeg: number): void {
  const { plan, taken } = state;
  for (let s = 0; s < nSeg; s++) {
    const st = plan.segState[s]!;
    const iommu = taken[plan.segChan[s]!]!.device.iommu;
    if (st & 1) iommu.unmap(plan.segSrc[s]!, plan.segPages[s]!);
    if (st & 2) iommu.unmap(plan.segDst[s]!, plan.segPages[s]!);
  }
}

/** Marks exactly the rows all of whose pieces completed; returns how many. */
function markRows(state: DcbmState, batch: MigrationBatch, run: BatchRun): number {
  const rowNeed = state.plan.rowNeed;
  let migrated = 0;
  for (let r = 0; r < batch.rows; r++) {
    const need = rowNeed[r]!;
    if (need > 0 && run.rowOk[r] === need) {
      batch.markCopied(r);
      migrated++;
    }
  }
  return migrated;
}

function accountBatch(state: DcbmState, rows: number, run: BatchRun, migrated: number, aborted: boolean) {
  const ctx = state.ctx!;
  state.counters.descriptorFailures += run.failed;
  const failures = rows - migrated;
  state.foliosMigrated += migrated;
  state.foliosFailures += failures;
  if (migrated) ctx.count('folios_migrated', migrated);
  if (failures) ctx.count('folios_failures', failures);
  const f = run.firstFailure;
  if (run.failed && f && !aborted) {
    ctx.logger.warn(
      `${run.failed} of ${run.descriptors} descriptors did not complete (first ${dmaStatusCodeName(f.status)}, device code ${f.deviceCode}); ${failures} of ${rows} folios left to the CPU`,
    );
  }
}

/**
 * One batch: returns once it is done when the wait in place saw every completion (the usual case:
 * no promise), else a promise of the rest.
 */
function copyBatchNow(state: DcbmState, batch: MigrationBatch, signal: AbortSignal): void | Promise<void> {
  if (signal.aborted || !state.offloading || !state.ctx) return;
  const nrChan = Math.min(state.nrDmaChan, state.taken.length);
  const rows = batch.rows;
  if (!rows || !nrChan) return;
  state.counters.batches++;
  const plan = state.plan;
  plan.rows(rows);
  const total = excludeBadRows(state, batch);
  // As the series: never more channels than folios (a lone folio is not worth two devices' wake-ups),
  // but parts are balanced by pages, so a big folio next to small ones may be split. During a run
  // only the polling channels are used (a sleeping one costs a wake-up per batch), and among them
  // a large folio is cut into parts of at least SPLIT_MIN_PAGES (as mtcopy cuts one THP across
  // threads): another polling channel costs only a doorbell.
  const folios = countFolios(plan.rowNeed, rows);
  const awake = state.awake.size > 0 && state.awakeChannels > 0 ? state.awakeChannels : 0;
  const k = awake
    ? Math.min(nrChan, total, awake, Math.max(folios, Math.floor(total / SPLIT_MIN_PAGES)))
    : Math.min(nrChan, total, folios);
  const nSeg = k > 0 ? sliceRows(state, batch, total, k) : 0;
  const run: BatchRun = {
    rowOk: plan.rowOk,
    used: new Set(),
    outstanding: 0,
    descriptors: 0,
    failed: 0,
    firstFailure: null,
    settle: null,
    tl: null,
    batchId: batch.id,
  };
  // Recording a timeline: each channel's device labels its descriptors with this batch.
  const tl = state.ctx.timeline;
  if (tl?.recording && batch.id) {
    run.tl = tl;
    for (let c = 0; c < k; c++) {
      const track = state.taken[c]!.timelineTrack;
      if (track !== undefined) tl.tag(track, batch.id);
    }
  }
  try {
    mapSegments(state, nSeg);
    submitSegments(state, nSeg, run);
    if (run.outstanding > 0 && !waitInPlace(run)) return finishLater(state, batch, run, nSeg, signal);
  } catch (e) {
    return quiesceAndUnmap(state, run, nSeg, false).then(() => {
      throw e;
    });
  }
  // Every descriptor completed: nothing can write any more.
  unmapSegments(state, nSeg);
  accountBatch(state, rows, run, markRows(state, batch, run), false);
}

/** The batch outlived the wait in place: await its completions (or the abort), then finish it. */
async function finishLater(
  state: DcbmState,
  batch: MigrationBatch,
  run: BatchRun,
  nSeg: number,
  signal: AbortSignal,
): Promise<void> {
  let aborted = false;
  try {
    aborted = await waitForCompletion(run, signal);
  } finally {
    aborted = await quiesceAndUnmap(state, run, nSeg, aborted);
  }
  const migrated = aborted ? 0 : markRows(state, batch, run);
  accountBatch(state, batch.rows, run, migrated, aborted);
}

/**
 * The migrator's copyBatch: one batch at a time, so each page is mapped at most once per device. A
 * batch that finds none in progress starts at once (and often ends before this returns).
 */
export function dcbmCopyBatch(
  state: DcbmState,
  batch: MigrationBatch,
  { signal }: { signal: AbortSignal },
): void | Promise<void> {
  if (state.inFlight === 0) {
    const r = copyBatchNow(state, batch, signal);
    if (!r) return;
    return track(state, r);
  }
  return track(
    state,
    state.queue.then(() => copyBatchNow(state, batch, signal)),
  );
}

/** Counts a batch that did not end synchronously until it settles; later batches queue behind it. */
function track(state: DcbmState, run: Promise<void>): Promise<void> {
  state.inFlight++;
  const settled = run.then(
    () => {
      state.inFlight--;
    },
    () => {
      state.inFlight--;
    },
  );
  state.queue = settled;
  return run;
}
