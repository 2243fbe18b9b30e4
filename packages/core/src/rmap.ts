import type { Mm, Vma } from './mm.js';
import { PMD_HUGE, PMD_TABLE, PTE_MIGRATION, PTE_PFN_SHIFT, PTE_PRESENT, PTRS_PER_PTE } from './pagetable.js';

/**
 * An rmap owner: the anon_vma of private anonymous memory, or the shmem object behind shared
 * anonymous memory (with its page cache). A folio records its owner (`page.mapping`) and its page
 * offset in it (`page.index`); every VMA that maps the owner is listed here, so a folio's mappings
 * are found from the folio alone (mm/rmap.c).
 */
export class Mapping {
  /** The VMAs mapping this owner (an array: rmap walks iterate it on every migration). */
  readonly vmas: Vma[] = [];
  /** shmem only: page offset -> pfn of the page cached there, -1 if none. */
  readonly pageCache: Int32Array | null;

  constructor(
    readonly id: number,
    readonly kind: 'anon' | 'shmem',
    nrPages: number,
  ) {
    this.pageCache = kind === 'shmem' ? new Int32Array(nrPages).fill(-1) : null;
  }
}

/** One mapping of a folio found by the rmap walk. */
export interface RmapHit {
  mm: Mm;
  vma: Vma;
  /** Index of the entry in `mm.pt.pmd` (huge) or `mm.pt.pte`. */
  slot: number;
  huge: boolean;
  /** First virtual page the entry maps. */
  vpn: number;
}

// One hit record reused by every walk (walks do not nest), so a walk allocates nothing.
const walkHit: RmapHit = {
  mm: undefined as unknown as Mm,
  vma: undefined as unknown as Vma,
  slot: 0,
  huge: false,
  vpn: 0,
};

/**
 * rmap_walk: calls `visit` for every PMD or PTE (present or migration entry) that maps a page of
 * the folio [head, head + nr). `visit` may rewrite the entry.
 */
export function rmapWalk(
  mapping: Mapping,
  index: number,
  head: number,
  nr: number,
  visit: (hit: RmapHit) => void,
): void {
  const hit = walkHit;
  const vmas = mapping.vmas;
  for (let vi = 0; vi < vmas.length; vi++) {
    const vma = vmas[vi]!;
    const lo = Math.max(index, vma.pgoff);
    const hi = Math.min(index + nr, vma.pgoff + vma.npages);
    if (lo >= hi) continue;
    const pt = vma.mm.pt;
    hit.mm = vma.mm;
    hit.vma = vma;
    let vpn = vma.startVpn + (lo - vma.pgoff);
    const end = vpn + (hi - lo);
    while (vpn < end) {
      const pmdIdx = vpn >>> 9;
      const pmd = pt.pmd[pmdIdx]!;
      if (pmd & PMD_TABLE) {
        const base = (pmd >>> PTE_PFN_SHIFT) * PTRS_PER_PTE;
        const stop = Math.min(end, (pmdIdx + 1) * PTRS_PER_PTE);
        const ptes = pt.pte;
        for (; vpn < stop; vpn++) {
          const slot = base + (vpn & 511);
          const e = ptes[slot]!;
          if (!(e & (PTE_PRESENT | PTE_MIGRATION))) continue;
          const pfn = e >>> PTE_PFN_SHIFT;
          if (pfn < head || pfn >= head + nr) continue;
          hit.slot = slot;
          hit.huge = false;
          hit.vpn = vpn;
          visit(hit);
        }
      } else {
        if (pmd & PMD_HUGE && pmd >>> PTE_PFN_SHIFT === head) {
          hit.slot = pmdIdx;
          hit.huge = true;
          hit.vpn = pmdIdx * PTRS_PER_PTE;
          visit(hit);
        }
        vpn = (pmdIdx + 1) * PTRS_PER_PTE;
      }
    }
  }
}
