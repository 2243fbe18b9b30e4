import { EBUSY, kernelError, PagemigError } from './errno.js';
import { allocSurplusHugetlbFolio, dequeueHugetlbFolioNodemask, HUGETLB_NR, memoryNodes } from './hugetlb.js';
import { hugeIndex, sharedReservation } from './hugetlb_vma.js';
import type { Kernel } from './kernel.js';
import { policyNodemask, vmaOwnPolicy } from './mempolicy_alloc.js';
import { getTaskPolicy, MPOL_PREFERRED_MANY } from './mempolicy_struct.js';
import type { Mm, Vma } from './mm.js';
import { PAGE_SIZE } from './mmzone.js';
import { PG_anon } from './page.js';
import {
  mkPte,
  PMD_HUGE,
  PTE_ACCESSED,
  PTE_DIRTY,
  PTE_PFN_SHIFT,
  PTE_PRESENT,
  PTE_WRITE,
  PTRS_PER_PTE,
} from './pagetable.js';
import { rmapWalk } from './rmap.js';
import { flushTlbMm } from './tlbflush.js';

/**
 * hugetlb_fault (mm/hugetlb.c): faults of MAP_HUGETLB areas. A missing huge page is taken from the
 * pool (hugetlb_no_page: from the page cache of a shared area, else a new zeroed folio, consuming
 * the area's reservation if it has one); a write to a read-only private page reuses it when only
 * this area maps it, else copies it (hugetlb_wp). No page means a bus error (VM_FAULT_SIGBUS):
 * hugetlb pages are never split or taken from the buddy allocator beyond the surplus limit.
 */

/** The code of the PagemigError a hugetlb fault throws when it has no page: the task gets SIGBUS. */
export const SIGBUS = 'SIGBUS';

function sigbus(vma: Vma, vpn: number, why: string): PagemigError {
  const addr = vma.start + (vpn - vma.startVpn) * PAGE_SIZE;
  return new PagemigError(SIGBUS, `SIGBUS: bus error at 0x${addr.toString(16)}: ${why}`);
}

/** The nodes a task's allocation may use: the policy's nodemask within its cpuset (null: any). */
function allowedNodes(k: Kernel, nodemask: readonly number[] | null, cpuset: readonly number[]) {
  const mems = cpuset.length < k.nodes.length ? cpuset : null;
  if (!nodemask) return mems;
  return mems ? nodemask.filter((n) => mems.includes(n)) : nodemask;
}

/**
 * alloc_hugetlb_folio for the huge page at `vpn` of `vma`, the task running on `localNode`: it
 * consumes the area's reservation for that page if there is one (never for a copy on write by the
 * owner, cow_from_owner), else needs a free page no reservation holds; it dequeues from the
 * nodes of the area's policy (huge_node), nearest first, then tries a surplus page
 * (alloc_buddy_hugetlb_folio_with_mpol). Returns the folio (refcount 1) or -1 (-ENOSPC).
 */
function allocHugetlbFolio(
  k: Kernel,
  vma: Vma,
  vpn: number,
  localNode: number,
  cowFromOwner: boolean,
): number {
  const h = k.hstate;
  const index = vma.index(vpn);
  const resv = vma.hugetlb!.resv;
  const reserved =
    !cowFromOwner &&
    (vma.shared
      ? sharedReservation(vma.mapping, index)
      : resv !== null && !resv.consumed.has(hugeIndex(index)));
  // huge_node: the area's policy (hugetlb areas keep their own), else the task's; an interleave
  // policy interleaves by huge page.
  const task = vma.mm.task;
  const pol = vma.policy ?? vmaOwnPolicy(vma, vpn) ?? getTaskPolicy(task, localNode);
  const { nid, nodemask } = policyNodemask(k, pol, hugeIndex(index), localNode);
  const allowed = allowedNodes(
    k,
    nodemask,
    memoryNodes(k).filter((n) => task.memsAllowed.includes(n)),
  );
  const anyNode = allowedNodes(k, null, task.memsAllowed);
  let head = -1;
  // dequeue_hugetlb_folio_vma: a page no reservation holds only if there is one.
  if (reserved || h.availableHugePages > 0) {
    head = dequeueHugetlbFolioNodemask(k, nid, allowed);
    if (head < 0 && pol.mode === MPOL_PREFERRED_MANY) head = dequeueHugetlbFolioNodemask(k, nid, anyNode);
  }
  if (head < 0) {
    head = allocSurplusHugetlbFolio(k, nid, allowed);
    if (head < 0 && pol.mode === MPOL_PREFERRED_MANY) head = allocSurplusHugetlbFolio(k, nid, anyNode);
  }
  if (head < 0) return -1;
  if (reserved) {
    h.resvHugePages--;
    // vma_commit_reservation: a private owner's map records the reservation consumed.
    if (resv && !vma.shared) resv.consumed.add(hugeIndex(index));
  }
  return head;
}

/**
 * hugetlb_fault for an access to page `vpn` of the hugetlb area `vma`. Throws SIGBUS when no
 * huge page can back it, EBUSY on a migration entry (the caller cannot sleep on it here).
 */
export function hugetlbFault(
  k: Kernel,
  mm: Mm,
  vma: Vma,
  vpn: number,
  write: boolean,
  localNode: number,
): void {
  const pt = mm.pt;
  const pmdIdx = vpn >>> 9;
  const e = pt.pmd[pmdIdx]!;
  if (!(e & PMD_HUGE)) {
    hugetlbNoPage(k, mm, vma, pmdIdx, write, localNode);
    return;
  }
  if (!(e & PTE_PRESENT))
    throw kernelError(
      EBUSY,
      `huge page ${pmdIdx * PTRS_PER_PTE} is under migration (a migration entry is installed); await the migration first`,
    );
  if (!write || e & PTE_WRITE) {
    Atomics.or(pt.pmd, pmdIdx, PTE_ACCESSED | (write ? PTE_DIRTY : 0));
    return;
  }
  hugetlbWp(k, mm, vma, pmdIdx, localNode);
}

/**
 * hugetlb_no_page: the page cache's folio of a shared area, else a new zeroed folio from the pool
 * (added to the page cache of a shared area, made anon in a private one). A shared area maps it
 * writable, a private one read-only unless this is a write (the copy-on-write of a new page
 * reuses it at once).
 */
function hugetlbNoPage(k: Kernel, mm: Mm, vma: Vma, pmdIdx: number, write: boolean, localNode: number): void {
  const vpn = pmdIdx * PTRS_PER_PTE;
  const p = k.pages;
  const index = vma.index(vpn);
  const pc = vma.mapping.pageCache;
  let head = pc ? pc.get(index) : -1;
  if (head >= 0) {
    p.refcount[head]!++;
  } else {
    // The owner took this page back from a forked area: its data is gone, so the task dies.
    if (vma.hugetlb!.unmapped) throw sigbus(vma, vpn, 'killed due to inadequate hugepage pool');
    head = allocHugetlbFolio(k, vma, vpn, localNode, false);
    if (head < 0) throw sigbus(vma, vpn, 'no huge page free in the pool for this area (hugetlb_no_page)');
    if (pc) {
      try {
        pc.store(index, head, HUGETLB_NR);
      } catch (e) {
        // hugetlb_add_to_page_cache failed (host ENOMEM): restore_reserve_on_error, folio_put.
        if (sharedReservation(vma.mapping, index)) k.hstate.restoreReserve.add(head);
        k.folioPut(head);
        throw e;
      }
    }
    k.mem.zeroPages(head, HUGETLB_NR);
    p.mapping[head] = vma.mapping.id;
    p.index[head] = index;
    // hugetlb_add_to_page_cache / hugetlb_add_new_anon_rmap: the page is instantiated.
    k.hstate.restoreReserve.delete(head);
    if (pc) {
      p.refcount[head]! += HUGETLB_NR;
    } else {
      p.flags[head]! |= PG_anon;
    }
  }
  p.mapcount[head]!++;
  const writable = vma.shared || write;
  Atomics.store(
    mm.pt.pmd,
    pmdIdx,
    mkPte(head, PTE_PRESENT | PMD_HUGE | PTE_ACCESSED | (writable ? PTE_WRITE | PTE_DIRTY : 0)),
  );
  // The kernel counts it in hugetlb_usage (hugetlb_count_add); pagemig's rss holds it.
  mm.rss += HUGETLB_NR;
}

/**
 * unmap_ref_private: the owner of a private area could not copy a page on write: it takes the
 * page back from every forked area that maps it (they have no reservation of their own) and
 * marks them HPAGE_RESV_UNMAPPED.
 */
function unmapRefPrivate(k: Kernel, vma: Vma, head: number): void {
  const mapping = k.mappingOf(head);
  if (!mapping) return;
  const hits: { vma: Vma; slot: number }[] = [];
  rmapWalk(mapping, k.pages.index[head]!, head, HUGETLB_NR, (hit) => {
    if (hit.vma !== vma && !hit.vma.shared && !hit.vma.hugetlb?.resv)
      hits.push({ vma: hit.vma, slot: hit.slot });
  });
  for (const hit of hits) {
    const pt = hit.vma.mm.pt;
    Atomics.store(pt.pmd, hit.slot, 0);
    hit.vma.mm.rss -= HUGETLB_NR;
    hit.vma.hugetlb!.unmapped = true;
    k.pages.mapcount[head]!--;
    k.folioPut(head);
    flushTlbMm(pt.tlb);
  }
}

/**
 * hugetlb_wp: a write to a read-only huge page. A shared area makes it writable; an anon page only
 * this area maps is reused; otherwise it is copied into a new page (which needs a page no
 * reservation holds). When there is none, the owner of the area takes the page back from its
 * forked children and reuses it; anyone else gets SIGBUS.
 */
function hugetlbWp(k: Kernel, mm: Mm, vma: Vma, pmdIdx: number, localNode: number): void {
  const pt = mm.pt;
  const p = k.pages;
  const vpn = pmdIdx * PTRS_PER_PTE;
  const e = pt.pmd[pmdIdx]!;
  const old = e >>> PTE_PFN_SHIFT;
  const reuse = () => Atomics.or(pt.pmd, pmdIdx, PTE_WRITE | PTE_DIRTY | PTE_ACCESSED);
  if (vma.shared || (p.mapcount[old] === 1 && p.flags[old]! & PG_anon)) {
    reuse();
    return;
  }
  const cowFromOwner = vma.hugetlb!.resv !== null;
  const head = allocHugetlbFolio(k, vma, vpn, localNode, cowFromOwner);
  if (head < 0) {
    if (!cowFromOwner) throw sigbus(vma, vpn, 'no huge page free in the pool to copy on write (hugetlb_wp)');
    unmapRefPrivate(k, vma, old);
    reuse();
    return;
  }
  k.mem.copyPages(head, old, HUGETLB_NR);
  k.hstate.restoreReserve.delete(head);
  p.flags[head]! |= PG_anon;
  p.mapping[head] = p.mapping[old]!;
  p.index[head] = p.index[old]!;
  p.mapcount[head] = 1;
  Atomics.store(pt.pmd, pmdIdx, mkPte(head, PTE_PRESENT | PMD_HUGE | PTE_WRITE | PTE_DIRTY | PTE_ACCESSED));
  // huge_ptep_clear_flush: other threads may cache the old (read-only) page.
  flushTlbMm(pt.tlb);
  p.mapcount[old]!--;
  k.folioPut(old);
}
