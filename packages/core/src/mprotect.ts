import { splitHugePmd } from './huge_memory.js';
import type { Kernel } from './kernel.js';
import { nodeIsToptier } from './memory_tiers.js';
import { vmaOwnPolicy } from './mempolicy_alloc.js';
import { getTaskPolicy, MPOL_F_MOF } from './mempolicy_struct.js';
import { GUP_PIN_COUNTING_BIAS } from './migrate.js';
import type { Mm, Vma } from './mm.js';
import { folioStampScanTime } from './numa_promotion.js';
import {
  PMD_HUGE,
  PMD_TABLE,
  PTE_PFN_SHIFT,
  PTE_PRESENT,
  PTE_WRITE,
  PTRS_PER_PTE,
  pteIsMigration,
  pteIsProtnone,
  pteMkProtnone,
  ZERO_PFN,
} from './pagetable.js';
import { folioMaybeMappedShared } from './rmap.js';
import { folioUseAccessTime, NUMA_BALANCING_NORMAL } from './task_numa.js';
import { shootdownAsync } from './tlbflush.js';

/**
 * mm/mprotect.c's change_protection with MM_CP_PROT_NUMA, as change_prot_numa (mm/mempolicy.c)
 * calls it for the NUMA balancing scanner: present entries become PROT_NONE, so the next user
 * access takes a NUMA hinting fault.
 */

/**
 * vma_policy_mof (mm/mempolicy.c): whether the policy in force over `vma` lets NUMA balancing move
 * its folios (MPOL_F_MOF), for a task on node `thisNid`. shmem asks its object's policy at the
 * area's start and has none by default, so shared memory is scanned only under a policy set with
 * MPOL_F_NUMA_BALANCING; other areas fall back to the task's policy, whose default has MPOL_F_MOF.
 */
export function vmaPolicyMof(vma: Vma, thisNid: number): boolean {
  const own = vmaOwnPolicy(vma, vma.startVpn);
  const pol = vma.shared ? own : (own ?? getTaskPolicy(vma.mm.task, thisNid));
  return pol !== null && (pol.flags & MPOL_F_MOF) !== 0;
}

/** A present entry becomes PROT_NONE; user threads may set accessed/dirty meanwhile (a CAS). */
function mkProtnone(arr: Int32Array, i: number, e: number): void {
  for (;;) {
    const seen = Atomics.compareExchange(arr, i, e, pteMkProtnone(e));
    if (seen === e) return;
    e = seen;
  }
}

/** folio_maybe_dma_pinned: references beyond mappings and page cache reach GUP_PIN_COUNTING_BIAS. */
function folioMaybeDmaPinned(k: Kernel, head: number): boolean {
  const p = k.pages;
  const cache = k.mappingOf(head)?.pageCache ? 1 << k.folioOrder(head) : 0;
  return p.refcount[head]! - p.mapcount[head]! - cache >= GUP_PIN_COUNTING_BIAS;
}

/**
 * folio_can_map_prot_numa (mm/mempolicy.c; change_pte_range and change_huge_pmd both ask it):
 * not a copy-on-write folio another process maps, not a pinned one, not one already on the node
 * `targetNode` a single-threaded process runs on, and, unless NUMA_BALANCING_NORMAL is on, not a
 * top-tier one. A slow-tier folio it accepts under memory tiering gets the scan time
 * (folio_xchg_access_time), from which its hint fault measures its latency. (The file-folio and
 * KSM cases do not arise: memory here is anon or shmem.)
 */
function folioCanMapProtNuma(
  k: Kernel,
  head: number,
  vma: Vma,
  targetNode: number,
  normal: boolean,
): boolean {
  if (!vma.shared && folioMaybeMappedShared(k, head)) return false;
  if (folioMaybeDmaPinned(k, head)) return false;
  const nid = k.nodeOf(head);
  if (nid === targetNode) return false;
  if (!normal && nodeIsToptier(k, nid)) return false;
  if (folioUseAccessTime(k, head)) folioStampScanTime(k, head);
  return true;
}

/**
 * change_huge_pmd for prot_numa: the zero page and a PMD already PROT_NONE are left alone, and a
 * folio folio_can_map_prot_numa refuses; a writable PMD migration entry becomes a readable one
 * (not counted). True when the PMD became PROT_NONE.
 */
function changeHugePmd(
  k: Kernel,
  vma: Vma,
  pmdIdx: number,
  pmd: number,
  normal: boolean,
  targetNode: number,
): boolean {
  const pmds = vma.mm.pt.pmd;
  if (pteIsMigration(pmd)) {
    // "A protection check is difficult so just be safe and disable write."
    if (pmd & PTE_WRITE) Atomics.store(pmds, pmdIdx, pmd & ~PTE_WRITE);
    return false;
  }
  const pfn = pmd >>> PTE_PFN_SHIFT;
  if (pfn === ZERO_PFN || pteIsProtnone(pmd)) return false;
  if (!folioCanMapProtNuma(k, pfn, vma, targetNode, normal)) return false;
  mkProtnone(pmds, pmdIdx, pmd);
  return true;
}

/**
 * change_pte_range for prot_numa over pages [start, end) of `vma` (one PTE table): skips PROT_NONE
 * entries, the zero page and folios folio_can_map_prot_numa refuses; a writable migration entry
 * becomes readable and counts. Returns the entries changed.
 */
function changePteRange(
  k: Kernel,
  vma: Vma,
  start: number,
  end: number,
  normal: boolean,
  targetNode: number,
): number {
  const pt = vma.mm.pt;
  const ptes = pt.pte;
  const base = pt.pteIndex(start) - (start & (PTRS_PER_PTE - 1));
  let pages = 0;
  // The decision for the last folio seen: the PTEs of a large folio share it.
  let lastHead = -1;
  let skip = false;
  for (let v = start; v < end; v++) {
    const i = base + (v & (PTRS_PER_PTE - 1));
    const e = ptes[i]!;
    if (e & PTE_PRESENT) {
      const pfn = e >>> PTE_PFN_SHIFT;
      // vm_normal_folio: the zero page has no folio to trap faults against.
      if (pfn === ZERO_PFN) continue;
      const head = k.pages.head(pfn);
      if (head !== lastHead) {
        lastHead = head;
        skip = !folioCanMapProtNuma(k, head, vma, targetNode, normal);
      }
      if (skip) continue;
      mkProtnone(ptes, i, e);
      pages++;
    } else if (pteIsMigration(e) && e & PTE_WRITE) {
      Atomics.store(ptes, i, e & ~PTE_WRITE);
      pages++;
    }
  }
  return pages;
}

/**
 * change_prot_numa(vma, start, end): makes the present entries of pages [startVpn, endVpn) of
 * `vma` PROT_NONE and returns how many it changed (nr_updated: a huge PMD counts HPAGE_PMD_NR),
 * counting numa_pte_updates and numa_huge_pte_updates. A huge PMD the range covers in part is
 * split first (__split_huge_pmd, whose PTEs come out accessible). `targetNode` is the node the
 * process's only thread runs on (change_pte_range's target_node for a single-threaded process),
 * else -1; it applies to private areas only. The caller shoots the TLB down (flushProtNuma) before
 * it counts on the entries.
 */
export function changeProtNuma(
  k: Kernel,
  vma: Vma,
  startVpn: number,
  endVpn: number,
  targetNode: number,
): number {
  const mm = vma.mm;
  const pt = mm.pt;
  const normal = (k.kern.numa_balancing & NUMA_BALANCING_NORMAL) !== 0;
  const target = vma.shared ? -1 : targetNode;
  let pages = 0;
  let huge = 0;
  for (let vpn = startVpn; vpn < endVpn; ) {
    const pmdIdx = vpn >>> 9;
    const next = Math.min(endVpn, (pmdIdx + 1) * PTRS_PER_PTE);
    let pmd = pt.pmd[pmdIdx]!;
    if (pmd & PMD_HUGE) {
      if (next - vpn === PTRS_PER_PTE) {
        if (changeHugePmd(k, vma, pmdIdx, pmd, normal, target)) {
          pages += PTRS_PER_PTE;
          huge++;
        }
        vpn = next;
        continue;
      }
      // pagemig's split does not take PMD migration entries: such a PMD waits for the next pass.
      if (pteIsMigration(pmd)) {
        vpn = next;
        continue;
      }
      splitHugePmd(k, mm, pmdIdx);
      pmd = pt.pmd[pmdIdx]!;
    }
    if (pmd & PMD_TABLE) pages += changePteRange(k, vma, vpn, next, normal, target);
    vpn = next;
  }
  if (huge) k.count('numa_huge_pte_updates', huge);
  if (pages) k.count('numa_pte_updates', pages);
  return pages;
}

/**
 * tlb_finish_mmu after change_prot_numa: resolves once no thread of `mm` can use a translation
 * cached before the call (at once without threads). It does not take the engine's pending flush.
 */
export function flushProtNuma(mm: Mm): Promise<void> {
  const t = mm.pt.tlb;
  return t !== null && t.live > 0 ? shootdownAsync([t]) : Promise.resolve();
}
