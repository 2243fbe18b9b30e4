import type { HardwareProfile } from './profile.js';

/** `count` folios of `pages` base pages each; PMD-mapped ones (2 MiB THP) have one entry to change. */
export interface FolioGroup {
  readonly pages: number;
  readonly count: number;
  readonly pmdMapped?: boolean;
}

/** `repeat` identical consecutive batches. */
export interface BatchRun {
  readonly folios: readonly FolioGroup[];
  readonly repeat: number;
}

/**
 * Cuts folios into batches like migrate_pages(): folios are added until the batch reaches
 * `batchPages` base pages (the folio reaching it included). Identical consecutive batches come
 * as one run, so a gigabyte of 4 KiB folios is not walked batch by batch.
 */
export function batchesOf(groups: readonly FolioGroup[], batchPages: number): BatchRun[] {
  const out: BatchRun[] = [];
  let batch: FolioGroup[] = [];
  let pages = 0;
  for (const g of groups) {
    let left = g.count;
    while (left > 0) {
      const perBatch = Math.ceil(batchPages / g.pages);
      if (pages === 0 && left >= 2 * perBatch) {
        const repeat = Math.floor(left / perBatch) - 1;
        out.push({ folios: [{ ...g, count: perBatch }], repeat });
        left -= repeat * perBatch;
        continue;
      }
      const take = Math.min(left, Math.ceil((batchPages - pages) / g.pages));
      batch.push({ ...g, count: take });
      pages += take * g.pages;
      left -= take;
      if (pages >= batchPages) {
        out.push({ folios: batch, repeat: 1 });
        batch = [];
        pages = 0;
      }
    }
  }
  if (batch.length) out.push({ folios: batch, repeat: 1 });
  return out;
}

/**
 * Kernel CPU time of a batch outside the copy: per folio isolate, allocate, lock, rmap walk and
 * metadata move (perFolioNs), plus one migration entry set and cleared per mapped entry
 * (perPteNs): one per base page of a PTE-mapped folio, one for a PMD-mapped THP. `unmapShare` of
 * it is charged to unmap, the rest to move.
 */
export function kernelOverhead(
  p: HardwareProfile,
  batch: readonly FolioGroup[],
): { unmap: number; move: number } {
  const k = p.kernel;
  let ns = 0;
  for (const g of batch) ns += g.count * (k.perFolioNs + (g.pmdMapped ? 1 : g.pages) * k.perPteNs);
  const s = ns * 1e-9;
  return { unmap: s * k.unmapShare, move: s * (1 - k.unmapShare) };
}
