import { PAGE_SIZE } from '@pagemig/core';

/**
 * The address scaffold of the DMA fuzz tests: random IOMMU windows, and descriptor addresses
 * drawn mostly inside them, sometimes anywhere in RAM or far beyond it.
 */

/** Where a fuzzed descriptor points: `off` into window `idx` (modulo), or a raw address. */
export type DmaTarget =
  | { kind: 'win'; idx: number; off: number }
  | { kind: 'ram'; addr: number }
  | { kind: 'wild'; addr: number };

/** A window the fuzzer asked for: pages [pfn, pfn + nr), mapped with direction `dir`. */
export interface DmaWindowRequest {
  pfn: number;
  nr: number;
  dir: 1 | 2 | 3;
}

/**
 * Maps the requested windows into `domain` (each cut at `pages`; those overlapping an earlier
 * window, or covering the pfn `keepClear`, are left out) and returns the resolver of targets to
 * bus addresses. A window target with no window mapped resolves to its offset.
 */
export function mapDmaWindows(
  domain: { map(pfn: number, nrPages: number, dir: 1 | 2 | 3): unknown },
  windows: readonly DmaWindowRequest[],
  opts: { pages: number; keepClear?: number },
): (target: DmaTarget) => number {
  const mapped: { pfn: number; nr: number }[] = [];
  for (const w of windows) {
    const nr = Math.min(w.nr, opts.pages - w.pfn);
    if (opts.keepClear !== undefined && w.pfn <= opts.keepClear && opts.keepClear < w.pfn + nr) continue;
    try {
      domain.map(w.pfn, nr, w.dir);
      mapped.push({ pfn: w.pfn, nr });
    } catch {
      // overlaps an earlier window
    }
  }
  return (t) => {
    if (t.kind !== 'win') return t.addr;
    const win = mapped[t.idx % Math.max(mapped.length, 1)];
    return win ? win.pfn * PAGE_SIZE + (t.off % (win.nr * PAGE_SIZE)) : t.off;
  };
}
