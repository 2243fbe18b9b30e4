import { EINVAL, ENOMEM, kernelError } from './errno.js';
import { HUGETLB_NR, type HugetlbTask, hugetlbAcctMemory, hugetlbUnacctMemory } from './hugetlb.js';
import type { Kernel } from './kernel.js';
import type { Vma } from './mm.js';
import { PG_anon } from './page.js';
import { PMD_HUGE, PTE_PFN_SHIFT, PTE_PRESENT } from './pagetable.js';
import type { Mapping } from './rmap.js';
import { flushTlbMm } from './tlbflush.js';

/**
 * The hugetlb side of an area's life (mm/hugetlb.c, fs/hugetlbfs): the reservation taken at mmap
 * (hugetlb_reserve_pages), the alignment rules of a split (hugetlb_vm_op_split), unmapping
 * (__unmap_hugepage_range), the reservations given back when an area closes
 * (hugetlb_vm_op_close) or its hugetlbfs file goes (hugetlb_unreserve_pages), and fork's copy
 * (hugetlb_dup_vma_private).
 *
 * A MAP_HUGETLB area is backed by an unlinked hugetlbfs file. MAP_PRIVATE: the area that mmap
 * made owns a reservation map (HPAGE_RESV_OWNER) in which a fault marks its huge page consumed;
 * areas a fork made own nothing and fault without reservations. MAP_SHARED: the file reserves
 * every huge page of it once, for all who map it; its pages live in its page cache.
 */

/** A private owner's struct resv_map: the huge-page indexes whose reservation a fault consumed. */
export class HugetlbResvMap {
  readonly consumed = new Set<number>();
}

/** What a hugetlb area keeps (its vm_private_data: the reservation map and HPAGE_RESV_* flags). */
export interface HugetlbVma {
  /** MAP_PRIVATE, made by mmap: the reservation map it owns (HPAGE_RESV_OWNER); else null. */
  readonly resv: HugetlbResvMap | null;
  /**
   * HPAGE_RESV_UNMAPPED: the owner took a page back from this (forked) area when it could not
   * copy it on write: any later fault here that needs a page is a bus error.
   */
  unmapped: boolean;
}

/** The reservations of each MAP_SHARED hugetlb file (its inode's resv_map): huge pages reserved. */
const sharedReserved = new WeakMap<Mapping, { reserved: number }>();

/** The huge-page index of page offset `index` (vma_hugecache_offset). */
export function hugeIndex(index: number): number {
  return Math.floor(index / HUGETLB_NR);
}

/**
 * hugetlb_reserve_pages for a new MAP_HUGETLB area of `npages` (a multiple of 512): reserves its
 * huge pages (for a shared one, in its file) and marks `vma` as a hugetlb area. ENOMEM when the
 * pool cannot cover it, with nothing changed.
 */
export function hugetlbReservePages(k: Kernel, task: HugetlbTask, vma: Vma): void {
  const chg = vma.npages / HUGETLB_NR;
  if (!hugetlbAcctMemory(k, chg, task))
    throw kernelError(
      ENOMEM,
      `mmap of ${chg} huge pages: the hugetlb pool cannot reserve them (HugePages_Free ${k.hstate.freeHugePages}, HugePages_Rsvd ${k.hstate.resvHugePages}, vm.nr_overcommit_hugepages ${k.hstate.nrOvercommitHugePages})`,
    );
  if (vma.shared) sharedReserved.set(vma.mapping, { reserved: chg });
  vma.hugetlb = { resv: vma.shared ? null : new HugetlbResvMap(), unmapped: false };
}

/** Whether a shared hugetlb file still holds the reservation of huge page `hidx`: not yet faulted. */
export function sharedReservation(mapping: Mapping, index: number): boolean {
  return sharedReserved.has(mapping) && mapping.pageCache!.get(index) < 0;
}

/**
 * hugetlb_vm_op_split: a hugetlb area splits only at a huge page boundary. EINVAL for an unmap of
 * [lo, hi) that would split `vma` elsewhere (checked before anything is unmapped).
 */
export function hugetlbCheckSplit(vma: Vma, lo: number, hi: number): void {
  for (const at of [lo, hi]) {
    if (at > vma.startVpn && at < vma.endVpn && at % HUGETLB_NR !== 0)
      throw kernelError(
        EINVAL,
        `munmap would split a MAP_HUGETLB area at 0x${(vma.start + (at - vma.startVpn) * 4096).toString(16)}, which is not a multiple of the 2MiB huge page size`,
      );
  }
}

/**
 * __unmap_hugepage_range over the huge pages [lo, hi) of `vma` (both 512-aligned). A folio unmapped
 * from its private owner's area gets its reservation back when it is freed (restore_reserve),
 * unless the pool has surplus pages. A migration entry is just cleared: the folio under migration
 * already gave up this mapping's reference, and the migration finds the mapping gone.
 */
export function unmapHugepageRange(k: Kernel, vma: Vma, lo: number, hi: number): void {
  const pt = vma.mm.pt;
  const p = k.pages;
  const h = k.hstate;
  for (let pmdIdx = lo >>> 9; pmdIdx < hi >>> 9; pmdIdx++) {
    const e = pt.pmd[pmdIdx]!;
    if (!(e & PMD_HUGE)) continue;
    Atomics.store(pt.pmd, pmdIdx, 0);
    vma.mm.rss -= HUGETLB_NR;
    if (!(e & PTE_PRESENT)) continue;
    const head = e >>> PTE_PFN_SHIFT;
    p.mapcount[head]!--;
    const resv = vma.hugetlb!.resv;
    if (resv && !h.surplusHugePages && p.flags[head]! & PG_anon) {
      // Restore the reservation, or another task could take the page the owner counts on.
      h.restoreReserve.add(head);
      resv.consumed.delete(hugeIndex(vma.index(pmdIdx * 512)));
    }
    k.folioPut(head);
  }
  flushTlbMm(pt.tlb);
}

/**
 * munmap or exit of the pages [lo, hi) of the hugetlb area `vma`: its huge pages are unmapped,
 * then the area (or the part of it that goes) closes.
 */
export function unmapHugetlbArea(k: Kernel, vma: Vma, lo: number, hi: number): void {
  unmapHugepageRange(k, vma, lo, hi);
  hugetlbVmOpClose(k, vma, lo, hi);
}

/**
 * hugetlb_vm_op_close for the pages [lo, hi) of `vma` that go away: a private owner gives back
 * the reservations its faults did not consume.
 */
export function hugetlbVmOpClose(k: Kernel, vma: Vma, lo: number, hi: number): void {
  const resv = vma.hugetlb?.resv;
  if (!resv) return;
  const first = hugeIndex(vma.index(lo));
  const last = hugeIndex(vma.index(hi));
  let consumed = 0;
  for (let i = first; i < last; i++) if (resv.consumed.delete(i)) consumed++;
  hugetlbUnacctMemory(k, last - first - consumed);
}

/**
 * The last mapper of a MAP_SHARED hugetlb file is gone: the file is evicted
 * (remove_inode_hugepages) and the reservations its pages did not consume are given back
 * (hugetlb_unreserve_pages). False for a mapping that is not one.
 */
export function hugetlbEvictMapping(k: Kernel, mapping: Mapping): boolean {
  const file = sharedReserved.get(mapping);
  if (!file) return false;
  sharedReserved.delete(mapping);
  const pc = mapping.pageCache!;
  let freed = 0;
  pc.forEach((head, index) => {
    // A huge page at each multiple of HUGETLB_NR (the file's pages are huge page aligned).
    if (index % HUGETLB_NR) return;
    freed++;
    k.folioPut(head, HUGETLB_NR);
  });
  pc.clear();
  hugetlbUnacctMemory(k, file.reserved - freed);
  k.releaseMapping(mapping);
  return true;
}

/** hugetlb_dup_vma_private: what a forked child's copy of a hugetlb area keeps (no reservations). */
export function hugetlbDupVmaPrivate(vma: Vma): HugetlbVma | null {
  return vma.hugetlb ? { resv: null, unmapped: false } : null;
}
