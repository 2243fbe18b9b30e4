import type { Kernel } from './kernel.js';
import { mpolMisplaced } from './mempolicy_alloc.js';
import { NUMA_NO_NODE } from './mempolicy_struct.js';
import { migrateMisplacedFolio, migrateMisplacedFolioPrepare } from './migrate_misplaced.js';
import type { Mm, Vma } from './mm.js';
import { PTE_PFN_SHIFT, PTRS_PER_PTE, pteIsProtnone, pteMkAccessible } from './pagetable.js';
import {
  folioLastNid,
  folioUseAccessTime,
  shouldNumaMigrateMemory,
  TNF_FAULT_LOCAL,
  TNF_MIGRATE_FAIL,
  TNF_MIGRATED,
  taskNumaFault,
} from './task_numa.js';

/**
 * NUMA hinting faults (do_numa_page in mm/memory.c, do_huge_pmd_numa_page in mm/huge_memory.c): a
 * user access to a PROT_NONE entry that change_prot_numa made. The entry is made accessible again,
 * the fault is counted and recorded for the task, and a folio mpol_misplaced finds on the wrong
 * node is isolated and migrated towards the faulting task with migrate_misplaced_folio.
 *
 * pagemig restores the mapping before the migration (the kernel keeps the entry PROT_NONE until
 * the migration's unmap and restores it only when the folio stays): the fault returns at once and
 * the migration runs right after it, so the thread that faulted meets the migration entry like any
 * other thread instead of migrating the folio itself. The NUMA counters and the outcomes are the
 * kernel's; since the entry keeps its write bit, the new folio is mapped writable at once where
 * the kernel maps it read-only and takes one more (write-protect) fault on the next write.
 */

/**
 * numa_migrate_check and what follows it in both fault handlers: counts numa_hint_faults (and
 * numa_hint_faults_local when the folio is on the faulting task's node `thisNid`), asks
 * mpol_misplaced where the folio of `vma` at page `vpn` belongs, and migrates it there, recording
 * the fault with task_numa_fault once the outcome is known.
 */
function numaHintFault(k: Kernel, mm: Mm, vma: Vma, vpn: number, head: number, thisNid: number): void {
  const order = k.folioOrder(head);
  const pages = 1 << order;
  const nid = k.nodeOf(head);
  // "For memory tiering mode, cpupid of slow memory page is used to record page access time. So
  // use default value."
  const lastNid = folioUseAccessTime(k, head) ? -1 : folioLastNid(k, head);
  let flags = 0;
  k.count('numa_hint_faults');
  if (nid === thisNid) {
    k.count('numa_hint_faults_local');
    flags |= TNF_FAULT_LOCAL;
  }
  const target = mpolMisplaced(k, vma, vpn, order, nid, thisNid, () =>
    shouldNumaMigrateMemory(k, head, nid, thisNid),
  );
  if (target === NUMA_NO_NODE) {
    taskNumaFault(k, mm, lastNid, nid, thisNid, pages, flags);
    return;
  }
  if (migrateMisplacedFolioPrepare(k, head, target) < 0) {
    taskNumaFault(k, mm, lastNid, nid, thisNid, pages, flags | TNF_MIGRATE_FAIL);
    return;
  }
  void migrateMisplacedFolio(k, head, target).then((migrated) =>
    taskNumaFault(
      k,
      mm,
      lastNid,
      migrated ? target : nid,
      thisNid,
      pages,
      flags | (migrated ? TNF_MIGRATED : TNF_MIGRATE_FAIL),
    ),
  );
}

/**
 * do_numa_page for the PROT_NONE PTE at `idx` of `mm` (page `vpn` of `vma`), touched by a task on
 * node `thisNid`. A large folio gets every PROT_NONE PTE that maps it within the VMA and the PTE
 * table back at once (numa_rebuild_large_mapping), a base page its one PTE
 * (numa_rebuild_single_mapping); write and dirty bits are kept.
 */
export function doNumaPage(k: Kernel, mm: Mm, vma: Vma, vpn: number, idx: number, thisNid: number): void {
  const ptes = mm.pt.pte;
  const e = ptes[idx]!;
  const pfn = e >>> PTE_PFN_SHIFT;
  const head = k.pages.head(pfn);
  const nr = 1 << k.folioOrder(head);
  if (nr === 1) Atomics.store(ptes, idx, pteMkAccessible(e));
  else {
    const tableStart = vpn & ~(PTRS_PER_PTE - 1);
    const first = vpn - (pfn - head);
    const start = Math.max(first, tableStart, vma.startVpn);
    const end = Math.min(first + nr, tableStart + PTRS_PER_PTE, vma.endVpn);
    for (let v = start; v < end; v++) {
      const i = idx + (v - vpn);
      const pte = ptes[i]!;
      const p = pte >>> PTE_PFN_SHIFT;
      if (pteIsProtnone(pte) && p >= head && p < head + nr) Atomics.store(ptes, i, pteMkAccessible(pte));
    }
  }
  numaHintFault(k, mm, vma, vpn, head, thisNid);
}

/** do_huge_pmd_numa_page for the PROT_NONE huge PMD `pmdIdx` of `mm`, touched from node `thisNid`. */
export function doHugePmdNumaPage(k: Kernel, mm: Mm, vma: Vma, pmdIdx: number, thisNid: number): void {
  const pmd = mm.pt.pmd[pmdIdx]!;
  Atomics.store(mm.pt.pmd, pmdIdx, pteMkAccessible(pmd));
  numaHintFault(k, mm, vma, pmdIdx * PTRS_PER_PTE, pmd >>> PTE_PFN_SHIFT, thisNid);
}
