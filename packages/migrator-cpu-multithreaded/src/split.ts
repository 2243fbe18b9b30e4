import type { ShareRange } from './copy_range.js';

const ROW_INTS = 4;
const NR = 2;
const FLAGS = 3;
const COPIED = 1;

/** A share of a batch and where it sits in the batch's pages. */
export interface Share extends ShareRange {
  /** Page offset of the share's first page from the start of the batch. */
  readonly firstPage: number;
}

/**
 * Splits `pages` base pages of a batch into `n` shares balanced by bytes (each share gets
 * floor or ceil of pages / n pages), in batch order, so one 2 MiB folio is cut into n contiguous
 * byte ranges and 512 × 4 KiB folios into n contiguous runs of folios. Share boundaries fall on
 * base pages; a large folio may be cut by one or more of them.
 */
export function splitBatch(table: Int32Array, rows: number, pages: number, n: number): Share[] {
  const shares: Share[] = [];
  let row = 0;
  let rowStart = 0; // batch page offset of `row`
  for (let k = 0; k < n; k++) {
    const first = Math.floor((k * pages) / n);
    const end = Math.floor(((k + 1) * pages) / n);
    if (end === first) continue;
    while (row < rows && rowStart + table[row * ROW_INTS + NR]! <= first) {
      rowStart += table[row * ROW_INTS + NR]!;
      row++;
    }
    shares.push({ startRow: row, startPage: first - rowStart, pages: end - first, firstPage: first });
  }
  return shares;
}

/**
 * Marks the rows cut by share boundaries whose every piece was copied. `done[k]` is the number of
 * pages share k copied (a prefix of the share; 0 for a share that failed). Rows that lie inside
 * one share were marked by whoever copied that share. Returns the rows and pages marked here.
 */
export function markCutRows(
  table: Int32Array,
  shares: readonly Share[],
  done: ArrayLike<number>,
): { rows: number; pages: number } {
  let marked = 0;
  let markedPages = 0;
  for (let k = 1; k < shares.length; k++) {
    const sh = shares[k]!;
    if (sh.startPage === 0) continue;
    // Row sh.startRow began in an earlier share; it is marked once (by the first boundary inside it).
    if (k > 1 && shares[k - 1]!.startRow === sh.startRow && shares[k - 1]!.startPage > 0) continue;
    const rowFirst = sh.firstPage - sh.startPage;
    const rowEnd = rowFirst + table[sh.startRow * ROW_INTS + NR]!;
    let ok = true;
    for (let j = 0; j < shares.length && ok; j++) {
      const s = shares[j]!;
      const e = s.firstPage + s.pages;
      if (e <= rowFirst || s.firstPage >= rowEnd) continue;
      if (s.firstPage + done[j]! < Math.min(e, rowEnd)) ok = false;
    }
    if (ok) {
      Atomics.or(table, sh.startRow * ROW_INTS + FLAGS, COPIED);
      marked++;
      markedPages += rowEnd - rowFirst;
    }
  }
  return { rows: marked, pages: markedPages };
}
