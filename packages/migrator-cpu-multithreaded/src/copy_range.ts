// The copy kernel, shared by the worker threads and the calling thread. It imports nothing: every
// worker thread loads this module, and its import graph is paid once per thread.

/** Int32 words per batch row and the row's columns (BATCH_* of @pagemig/core, contract v1). */
const ROW_INTS = 4;
const SRC = 0;
const DST = 1;
const NR = 2;
const FLAGS = 3;
const COPIED = 1;
const PAGE_SIZE = 4096;
/** Pages copied between two looks at the stop word (1 MiB). */
const STEP_PAGES = 256;

/**
 * What a share of a batch covers: `pages` base pages in batch order, starting `startPage` pages
 * into row `startRow` (a share may begin or end inside a large folio).
 */
export interface ShareRange {
  readonly startRow: number;
  readonly startPage: number;
  readonly pages: number;
}

/** What a share copied: pages (a prefix of the share), and the rows it marked with their pages. */
export interface RangeResult {
  pages: number;
  markedRows: number;
  markedPages: number;
}

/**
 * Copies one share of a batch between the machine's RAM sections with `TypedArray.prototype.set`,
 * walking the rows in order. Rows whose source and destination both continue the previous row's
 * (physically contiguous runs, as `dma_map_sgtable` coalesces them) are copied with one `set` of up
 * to 1 MiB, so 512 contiguous 4 KiB folios cost a couple of calls instead of 512. Every row that
 * lies entirely inside the share is marked as soon as its bytes are copied; rows cut by the share's
 * ends are marked by the caller once every share covering them finished. Before each `set` of the
 * next 1 MiB it looks at `stop[0]` and returns early when it is non-zero (rows of an unfinished run
 * stay unmarked). Returns the pages copied, always a prefix of the share, and the rows it marked.
 *
 * Throws a RangeError, before copying the offending row, if a row points outside the RAM.
 */
export function copyRange(
  ram: readonly Uint8Array[],
  sectionPfnShift: number,
  table: Int32Array,
  share: ShareRange,
  stop: Int32Array | null,
): RangeResult {
  const mask = (1 << sectionPfnShift) - 1;
  let row = share.startRow;
  let from = share.startPage;
  let left = share.pages;
  let done = 0;
  let markedRows = 0;
  let markedPages = 0;
  // The pending run: `runPages` pages from s[runSo] to d[runDo], and the rows it completes.
  let runS: Uint8Array | undefined;
  let runD: Uint8Array | undefined;
  let runSo = 0;
  let runDo = 0;
  let runPages = 0;
  let markFrom = 0;
  let markTo = 0;
  let markPages = 0;
  // Look at the stop word before the first piece too: a share stopped before it started copies nothing.
  let sinceCheck = STEP_PAGES;

  /** Copies the pending run in pieces of at most 1 MiB, then marks its rows; false when stopped. */
  const flush = (): boolean => {
    let so = runSo;
    let dof = runDo;
    let piece = runPages;
    while (piece > 0) {
      if (sinceCheck >= STEP_PAGES) {
        sinceCheck = 0;
        if (stop !== null && Atomics.load(stop, 0) !== 0) return false;
      }
      const n = Math.min(piece, STEP_PAGES);
      const len = n * PAGE_SIZE;
      runD!.set(runS!.subarray(so, so + len), dof);
      so += len;
      dof += len;
      piece -= n;
      done += n;
      sinceCheck += n;
    }
    for (let r = markFrom; r < markTo; r++) Atomics.or(table, r * ROW_INTS + FLAGS, COPIED);
    markedRows += markTo - markFrom;
    markedPages += markPages;
    runPages = 0;
    return true;
  };

  while (left > 0) {
    const o = row * ROW_INTS;
    const src = table[o + SRC]!;
    const dst = table[o + DST]!;
    const nr = table[o + NR]!;
    const take = Math.min(nr - from, left);
    const s = ram[src >>> sectionPfnShift];
    const d = ram[dst >>> sectionPfnShift];
    const so = ((src & mask) + from) * PAGE_SIZE;
    const dof = ((dst & mask) + from) * PAGE_SIZE;
    if (
      s === undefined ||
      d === undefined ||
      src < 0 ||
      dst < 0 ||
      take <= 0 ||
      so + take * PAGE_SIZE > s.length ||
      dof + take * PAGE_SIZE > d.length
    ) {
      if (runPages > 0) flush();
      throw new RangeError(
        `batch row ${row} (src pfn ${src}, dst pfn ${dst}, ${nr} pages) lies outside the machine's RAM`,
      );
    }
    const extends_ =
      runPages > 0 &&
      s === runS &&
      d === runD &&
      so === runSo + runPages * PAGE_SIZE &&
      dof === runDo + runPages * PAGE_SIZE &&
      runPages + take <= STEP_PAGES;
    if (!extends_) {
      if (runPages > 0 && !flush()) return { pages: done, markedRows, markedPages };
      runS = s;
      runD = d;
      runSo = so;
      runDo = dof;
      markFrom = row;
      markTo = row;
      markPages = 0;
    }
    runPages += take;
    if (from === 0 && take === nr) {
      // Rows are consecutive in a run, and only a share's first and last row can be partial.
      if (markTo === markFrom) markFrom = row;
      markTo = row + 1;
      markPages += nr;
    } else if (markTo === markFrom) {
      markFrom = row + 1;
      markTo = row + 1;
    }
    left -= take;
    from = 0;
    row++;
  }
  if (runPages > 0) flush();
  return { pages: done, markedRows, markedPages };
}
