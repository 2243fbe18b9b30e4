import { type PageTables, PMD_HUGE, PMD_TABLE, PTE_PFN_SHIFT, PTRS_PER_PTE, ZERO_PFN } from './pagetable.js';

/**
 * What walkPageRange calls (mm/pagewalk.c's mm_walk_ops). Only non-empty entries are visited:
 * present, PROT_NONE (NUMA hinting) and migration entries alike; the callee decodes the bits it
 * cares about (pteIsPresent is the kernel's pte_present: accessible or PROT_NONE). Keep
 * one ops object per walker kind (module-level, state in its fields): a walk then allocates nothing.
 */
export interface MmWalkOps {
  /** A PMD that maps a 2 MiB folio (PMD_HUGE: present, PROT_NONE or migration); `vpn` is its first page. */
  pmdEntry?(pt: PageTables, pmdIdx: number, entry: number, vpn: number): void;
  /** A PTE of page `vpn`; `slot` indexes `pt.pte`. */
  pteEntry?(pt: PageTables, slot: number, entry: number, vpn: number): void;
}

/**
 * walk_page_range: visits the entries that map pages [startVpn, endVpn) of one address space. A
 * huge PMD is visited once if the range touches it.
 */
export function walkPageRange(pt: PageTables, startVpn: number, endVpn: number, ops: MmWalkOps): void {
  let vpn = startVpn;
  while (vpn < endVpn) {
    const pmdIdx = vpn >>> 9;
    const stop = Math.min(endVpn, (pmdIdx + 1) * PTRS_PER_PTE);
    const pmd = pt.pmd[pmdIdx]!;
    if (pmd & PMD_HUGE) {
      if (ops.pmdEntry) ops.pmdEntry(pt, pmdIdx, pmd, pmdIdx * PTRS_PER_PTE);
    } else if (pmd & PMD_TABLE && ops.pteEntry) {
      const base = (pmd >>> PTE_PFN_SHIFT) * PTRS_PER_PTE;
      const ptes = pt.pte;
      for (let v = vpn; v < stop; v++) {
        const e = ptes[base + (v & 511)]!;
        if (e !== 0) ops.pteEntry(pt, base + (v & 511), e, v);
      }
    }
    vpn = stop;
  }
}

/**
 * The leaf entry that maps page `vpn` (follow_page's lookup): a huge PMD word (PMD_HUGE set), a
 * PTE word, or 0 when nothing maps it.
 */
export function pageEntry(pt: PageTables, vpn: number): number {
  const pmd = pt.pmd[vpn >>> 9]!;
  if (pmd & PMD_HUGE) return pmd;
  if (pmd & PMD_TABLE) return pt.pte[(pmd >>> PTE_PFN_SHIFT) * PTRS_PER_PTE + (vpn & 511)]!;
  return 0;
}

/** The pfn of page `vpn` under leaf `entry` (the shared zero page stays ZERO_PFN). */
export function entryPfn(entry: number, vpn: number): number {
  const base = entry >>> PTE_PFN_SHIFT;
  return entry & PMD_HUGE && base !== ZERO_PFN ? base + (vpn & 511) : base;
}
