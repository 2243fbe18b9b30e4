import { EBUSY, ENOMEM, kernelError } from './errno.js';
import { folioRemoveRmapCheck, mmGetHugeZeroFolio, splitHugePmd } from './huge_memory.js';
import { hugetlbFault } from './hugetlb_fault.js';
import type { Kernel } from './kernel.js';
import { folioAddLru } from './lru.js';
import { vmaAllocFolio, vmaOwnPolicy } from './mempolicy_alloc.js';
import { mpolToStr } from './mempolicy_struct.js';
import type { Mm, Vma } from './mm.js';
import { HPAGE_PMD_ORDER, PAGE_SIZE } from './mmzone.js';
import { doHugePmdNumaPage, doNumaPage } from './numa_hinting.js';
import { PG_anon, PG_head, PG_mlocked, PG_swapbacked, PG_unevictable } from './page.js';
import {
  mkPte,
  PMD_HUGE,
  PMD_TABLE,
  PTE_ACCESSED,
  PTE_DIRTY,
  PTE_PFN_SHIFT,
  PTE_PRESENT,
  PTE_WRITE,
  PTRS_PER_PTE,
  pteIsMigration,
  pteIsPresent,
  pteIsProtnone,
  ZERO_PFN,
} from './pagetable.js';
import { anonVmaPrepare, folioModMapcount, folioMoveAnonRmap } from './rmap.js';
import { flushTlbMm } from './tlbflush.js';
import { folioModStat } from './vmstat.js';

/** mm/memory.c: page faults, copy-on-write, zapping and fork's copy of page tables. */

function migrationBusy(vpn: number): never {
  throw kernelError(
    EBUSY,
    `page ${vpn} is under migration (a migration entry is installed); await the migration first`,
  );
}

/** Allocates a folio for `vma` at `vpn` by the memory policy in force there; -1 on failure. */
function allocVmaFolio(k: Kernel, _mm: Mm, vma: Vma, vpn: number, order: number, localNode: number): number {
  return vmaAllocFolio(k, vma, vpn, order, localNode);
}

/** Sets up a freshly allocated folio as anon or shmem memory of `vma` at page offset `index`. */
function initFolio(k: Kernel, vma: Vma, head: number, order: number, index: number): void {
  const p = k.pages;
  const mapping = anonVmaPrepare(k, vma);
  const pc = mapping.pageCache;
  if (pc) {
    try {
      pc.store(index, head, 1 << order);
    } catch (e) {
      // shmem_add_to_page_cache failed (host ENOMEM): the new folio goes back.
      k.folioPut(head);
      throw e;
    }
  }
  k.mem.zeroPages(head, 1 << order);
  let f = p.flags[head]! | PG_swapbacked | (vma.shared ? 0 : PG_anon);
  if (vma.locked) f |= PG_mlocked | PG_unevictable;
  p.flags[head] = f;
  p.mapping[head] = mapping.id;
  p.index[head] = index;
  // The page cache holds one reference per page.
  p.refcount[head] = pc ? 1 << order : 0;
  // folio_add_new_anon_rmap / shmem_add_to_page_cache: NR_ANON_MAPPED or NR_SHMEM (and the THP and
  // mlock counts); the folio is not mapped yet.
  folioModStat(k, head, 1);
  // folio_add_lru_vma: on the inactive list (unevictable when mlocked, as mlock_new_folio does).
  folioAddLru(k, head);
}

/** Maps `nr` pages of a folio into `mm` and takes their references (folio_add_*_rmap + ref). */
function mapFolioPtes(
  k: Kernel,
  mm: Mm,
  head: number,
  first: number,
  nr: number,
  vpn: number,
  flags: number,
) {
  let idx = mm.pt.pteIndex(vpn);
  if (idx < 0) idx = mm.pt.allocTable(vpn >>> 9);
  const ptes = mm.pt.pte;
  for (let i = 0; i < nr; i++) Atomics.store(ptes, idx + i, mkPte(first + i, flags));
  mm.rss += nr;
  folioModMapcount(k, head, nr);
  k.pages.refcount[head]! += nr;
}

/**
 * handle_mm_fault for a user access to page `vpn` of `vma`. Allocation failure raises ENOMEM
 * (VM_FAULT_OOM); a migration entry raises EBUSY because the caller cannot sleep on it here.
 */
export function handleMmFault(
  k: Kernel,
  mm: Mm,
  vma: Vma,
  vpn: number,
  write: boolean,
  localNode: number,
): void {
  k.count('pgfault');
  if (vma.hugetlb) {
    hugetlbFault(k, mm, vma, vpn, write, localNode);
    return;
  }
  const pt = mm.pt;
  const pmdIdx = vpn >>> 9;
  let pmd = pt.pmd[pmdIdx]!;

  if (pmd === 0 && vma.order === HPAGE_PMD_ORDER) {
    const start = pmdIdx * PTRS_PER_PTE;
    if (start >= vma.startVpn && start + PTRS_PER_PTE <= vma.endVpn && !vma.shared) {
      if (!write) {
        // do_huge_pmd_anonymous_page: a read maps the huge zero page.
        mmGetHugeZeroFolio(k);
        Atomics.store(pt.pmd, pmdIdx, mkPte(ZERO_PFN, PTE_PRESENT | PMD_HUGE | PTE_ACCESSED));
        return;
      }
      if (faultInHugePmd(k, mm, vma, pmdIdx, localNode)) return;
    } else if (start >= vma.startVpn && start + PTRS_PER_PTE <= vma.endVpn && vma.shared) {
      if (shmemHugeFault(k, mm, vma, pmdIdx, write, localNode)) return;
    }
    pmd = pt.pmd[pmdIdx]!;
  }

  if (pmd & PMD_HUGE) {
    // do_huge_pmd_numa_page: a NUMA hinting fault; the access is retried afterwards.
    if (pteIsProtnone(pmd)) {
      doHugePmdNumaPage(k, mm, vma, pmdIdx, localNode);
      return;
    }
    if (!(pmd & PTE_PRESENT)) migrationBusy(vpn);
    if (!write || pmd & PTE_WRITE) {
      Atomics.store(pt.pmd, pmdIdx, pmd | PTE_ACCESSED | (write ? PTE_DIRTY : 0));
      return;
    }
    const pfn = pmd >>> PTE_PFN_SHIFT;
    if (pfn === ZERO_PFN) {
      // do_huge_zero_wp_pmd: try a real THP, else split the PMD into zero PTEs (a counted
      // __split_huge_pmd, as do_huge_pmd_wp_page's fallback does).
      if (faultInHugePmd(k, mm, vma, pmdIdx, localNode)) {
        // Threads may still cache the huge zero page: shoot it down before anyone writes.
        flushTlbMm(pt.tlb);
        return;
      }
      splitHugePmd(k, mm, pmdIdx);
    } else if (k.pages.mapcount[pfn] === 1 && k.pages.refcount[pfn] === 1) {
      // do_huge_pmd_wp_page: an exclusive THP is reused in place.
      if (!vma.shared) folioMoveAnonRmap(k, pfn, vma);
      Atomics.store(pt.pmd, pmdIdx, pmd | PTE_WRITE | PTE_DIRTY | PTE_ACCESSED);
      k.count('pgreuse');
      return;
    } else {
      // A shared THP is not copied whole: split the PMD and copy the 4 KiB page.
      splitHugePmd(k, mm, pmdIdx);
    }
  } else if (!(pmd & PMD_TABLE)) {
    pt.allocTable(pmdIdx);
  }

  const idx = pt.pteIndex(vpn);
  const ptes = pt.pte;
  const e = ptes[idx]!;
  if (e === 0) {
    doAnonOrShmemPage(k, mm, vma, vpn, write, localNode);
    return;
  }
  // do_numa_page: a NUMA hinting fault; the access is retried afterwards.
  if (pteIsProtnone(e)) {
    doNumaPage(k, mm, vma, vpn, idx, localNode);
    return;
  }
  if (!(e & PTE_PRESENT)) migrationBusy(vpn);
  if (!write || e & PTE_WRITE) {
    Atomics.store(ptes, idx, e | PTE_ACCESSED | (write ? PTE_DIRTY : 0));
    return;
  }
  doWpPage(k, mm, vma, vpn, idx, e, localNode);
}

function faultInHugePmd(k: Kernel, mm: Mm, vma: Vma, pmdIdx: number, localNode: number): boolean {
  const vpn = pmdIdx * PTRS_PER_PTE;
  const head = allocVmaFolio(k, mm, vma, vpn, HPAGE_PMD_ORDER, localNode);
  if (head < 0) {
    k.count('thp_fault_fallback');
    return false;
  }
  k.count('thp_fault_alloc');
  initFolio(k, vma, head, HPAGE_PMD_ORDER, vma.index(vpn));
  folioModMapcount(k, head, 1);
  k.pages.refcount[head]! += 1;
  Atomics.store(
    mm.pt.pmd,
    pmdIdx,
    mkPte(head, PTE_PRESENT | PMD_HUGE | PTE_WRITE | PTE_DIRTY | PTE_ACCESSED),
  );
  // The PMD was empty or the huge zero page, which counts nothing.
  mm.rss += PTRS_PER_PTE;
  return true;
}

/** shmem with huge=always: reuse a cached PMD-size folio or allocate one; false = use PTEs. */
function shmemHugeFault(k: Kernel, mm: Mm, vma: Vma, pmdIdx: number, write: boolean, localNode: number) {
  const vpn = pmdIdx * PTRS_PER_PTE;
  const index = vma.index(vpn);
  const pc = vma.mapping.pageCache!;
  const cached = pc.get(index);
  let head = -1;
  if (cached >= 0) {
    if (!(k.pages.flags[cached]! & PG_head) || k.pages.order[cached] !== HPAGE_PMD_ORDER) return false;
    head = cached;
  } else {
    if (pc.rangeHasPage(index, PTRS_PER_PTE)) return false;
    head = allocVmaFolio(k, mm, vma, vpn, HPAGE_PMD_ORDER, localNode);
    if (head < 0) {
      k.count('thp_fault_fallback');
      return false;
    }
    initFolio(k, vma, head, HPAGE_PMD_ORDER, index);
    k.count('thp_fault_alloc');
  }
  folioModMapcount(k, head, 1);
  k.pages.refcount[head]! += 1;
  const flags = PTE_PRESENT | PMD_HUGE | PTE_WRITE | PTE_ACCESSED | (write ? PTE_DIRTY : 0);
  Atomics.store(mm.pt.pmd, pmdIdx, mkPte(head, flags));
  mm.rss += PTRS_PER_PTE;
  return true;
}

/** do_anonymous_page / shmem_fault for a missing PTE. */
function doAnonOrShmemPage(
  k: Kernel,
  mm: Mm,
  vma: Vma,
  vpn: number,
  write: boolean,
  localNode: number,
): void {
  const ptes = mm.pt.pte;
  const idx = mm.pt.pteIndex(vpn);
  if (vma.shared) {
    const index = vma.index(vpn);
    const pc = vma.mapping.pageCache!;
    let pfn = pc.get(index);
    if (pfn < 0) {
      const got = allocOrFallback(k, mm, vma, vpn, pickOrder(k, mm, vma, vpn, idx), localNode);
      initFolio(k, vma, got.pfn, got.order, vma.index(got.first));
      pfn = pc.get(index);
    }
    const head = k.pages.head(pfn);
    mapFolioPtes(k, mm, head, pfn, 1, vpn, PTE_PRESENT | PTE_WRITE | PTE_ACCESSED | (write ? PTE_DIRTY : 0));
    return;
  }
  if (!write) {
    // A read of untouched private anon memory maps the shared zero page.
    Atomics.store(ptes, idx, mkPte(ZERO_PFN, PTE_PRESENT | PTE_ACCESSED));
    return;
  }
  const got = allocOrFallback(k, mm, vma, vpn, pickOrder(k, mm, vma, vpn, idx), localNode);
  initFolio(k, vma, got.pfn, got.order, vma.index(got.first));
  mapFolioPtes(
    k,
    mm,
    got.pfn,
    got.pfn,
    1 << got.order,
    got.first,
    PTE_PRESENT | PTE_WRITE | PTE_DIRTY | PTE_ACCESSED,
  );
}

/** The VMA's folio order if its aligned range fits in the VMA and has no PTEs yet, else 0. */
function pickOrder(_k: Kernel, mm: Mm, vma: Vma, vpn: number, idx: number): number {
  let order = Math.min(vma.order, HPAGE_PMD_ORDER - 1);
  if (vma.order === HPAGE_PMD_ORDER) order = 0;
  if (order === 0) return 0;
  const nr = 1 << order;
  const first = vpn & ~(nr - 1);
  if (first < vma.startVpn || first + nr > vma.endVpn) return 0;
  const base = idx - (vpn - first);
  const ptes = mm.pt.pte;
  for (let i = 0; i < nr; i++) if (ptes[base + i] !== 0) return 0;
  if (vma.shared && vma.mapping.pageCache!.rangeHasPage(vma.index(first), nr)) return 0;
  return order;
}

/** Allocates the folio of `order` around `vpn`, else an order-0 page; ENOMEM if both fail. */
function allocOrFallback(k: Kernel, mm: Mm, vma: Vma, vpn: number, order: number, localNode: number) {
  if (order > 0) {
    const first = vpn & ~((1 << order) - 1);
    const pfn = allocVmaFolio(k, mm, vma, first, order, localNode);
    if (pfn >= 0) return { pfn, order, first };
  }
  const pfn = allocVmaFolio(k, mm, vma, vpn, 0, localNode);
  if (pfn < 0)
    throw kernelError(
      ENOMEM,
      `out of memory faulting in page at 0x${(vpn * PAGE_SIZE).toString(16)} (mempolicy ${mpolToStr(vmaOwnPolicy(vma, vpn) ?? mm.task.mempolicy)})`,
    );
  return { pfn, order: 0, first: vpn };
}

/** do_wp_page: write to a read-only PTE (zero page or copy-on-write after fork). */
function doWpPage(k: Kernel, mm: Mm, vma: Vma, vpn: number, idx: number, e: number, localNode: number): void {
  const ptes = mm.pt.pte;
  const pfn = e >>> PTE_PFN_SHIFT;
  const p = k.pages;
  if (pfn !== ZERO_PFN) {
    const head = p.head(pfn);
    if (vma.shared) {
      Atomics.store(ptes, idx, e | PTE_WRITE | PTE_DIRTY | PTE_ACCESSED);
      k.count('pgreuse');
      return;
    }
    if (head === pfn && !(p.flags[head]! & PG_head) && p.mapcount[head] === 1 && p.refcount[head] === 1) {
      // wp_page_reuse of an exclusive anon folio.
      folioMoveAnonRmap(k, head, vma);
      Atomics.store(ptes, idx, e | PTE_WRITE | PTE_DIRTY | PTE_ACCESSED);
      k.count('pgreuse');
      return;
    }
  }
  const got = allocVmaFolio(k, mm, vma, vpn, 0, localNode);
  if (got < 0) throw kernelError(ENOMEM, `out of memory breaking copy-on-write at page ${vpn}`);
  initFolio(k, vma, got, 0, vma.index(vpn));
  if (pfn !== ZERO_PFN) k.mem.copyPages(got, pfn, 1);
  folioModMapcount(k, got, 1);
  p.refcount[got] = 1;
  Atomics.store(ptes, idx, mkPte(got, PTE_PRESENT | PTE_WRITE | PTE_DIRTY | PTE_ACCESSED));
  // wp_page_copy: a copy of the zero page is a new page in the rss; a copied folio replaces one.
  if (pfn === ZERO_PFN) mm.rss++;
  // ptep_clear_flush: other threads may cache the old (read-only) page; the faulting one sleeps.
  flushTlbMm(mm.pt.tlb);
  if (pfn !== ZERO_PFN) {
    const head = p.head(pfn);
    folioModMapcount(k, head, -1);
    k.folioPut(head);
    folioRemoveRmapCheck(k, head);
  }
}

/** zap_page_range: unmaps [vpn, vpn + n) of `mm`, dropping mapcounts and references. */
export function zapRange(k: Kernel, mm: Mm, vpn: number, n: number): void {
  const pt = mm.pt;
  const end = vpn + n;
  const p = k.pages;
  /** Large folios that lost mappings here (in order, each once per run of its pages). */
  let unmapped: number[] | undefined;
  /** Pages unmapped (zap_pte_range's rss[], added to the counter once at the end). */
  let rss = 0;
  while (vpn < end) {
    const pmdIdx = vpn >>> 9;
    const stop = Math.min(end, (pmdIdx + 1) * PTRS_PER_PTE);
    let pmd = pt.pmd[pmdIdx]!;
    if (pmd & PMD_HUGE) {
      if (vpn === pmdIdx * PTRS_PER_PTE && stop === vpn + PTRS_PER_PTE) {
        Atomics.store(pt.pmd, pmdIdx, 0);
        const pfn = pmd >>> PTE_PFN_SHIFT;
        if (pfn !== ZERO_PFN) rss += PTRS_PER_PTE;
        // zap_huge_pmd: a migration entry holds no mapping or reference (it counts in rss only);
        // the migration's rmap walk finds the mapping gone.
        if (pfn !== ZERO_PFN && !pteIsMigration(pmd)) {
          (unmapped ??= []).push(pfn);
          folioModMapcount(k, pfn, -1);
          k.folioPut(pfn);
        }
        vpn = stop;
        continue;
      }
      splitHugePmd(k, mm, pmdIdx);
      pmd = pt.pmd[pmdIdx]!;
    }
    if (pmd & PMD_TABLE) {
      const ptes = pt.pte;
      for (; vpn < stop; vpn++) {
        const idx = pt.pteIndex(vpn);
        const e = ptes[idx]!;
        if (e === 0) continue;
        Atomics.store(ptes, idx, 0);
        const pfn = e >>> PTE_PFN_SHIFT;
        if (pfn === ZERO_PFN) continue;
        rss++;
        // zap_nonpresent_ptes: a migration entry is dropped; it holds no mapping or reference.
        if (pteIsMigration(e)) continue;
        const head = p.head(pfn);
        if (p.flags[head]! & PG_head && unmapped?.[unmapped.length - 1] !== head)
          (unmapped ??= []).push(head);
        folioModMapcount(k, head, -1);
        k.folioPut(head);
      }
      if (pt.tableEmpty(pmdIdx)) pt.freeTable(pmdIdx);
    }
    vpn = stop;
  }
  mm.rss -= rss;
  // __folio_remove_rmap: a large folio left with some pages unmapped goes on the deferred split list.
  if (unmapped) for (const head of unmapped) folioRemoveRmapCheck(k, head);
  // tlb_finish_mmu: nothing is reallocated before this returns, so stray writes through a stale
  // translation land in frames that the next allocation zeroes.
  flushTlbMm(pt.tlb);
}

/**
 * copy_page_range for a private VMA at fork: share every folio read-only (copy-on-write). A
 * migration entry (a folio under migration) is copied as copy_nonpresent_pte and copy_huge_pmd
 * do: both sides get a read-only migration entry (make_readable_migration_entry) and no reference
 * is taken; when the engine ends the migration, remove_migration_pte finds the child's entry
 * through rmap (the child's VMA is linked into the folio's anon_vma) and maps the folio there too,
 * counting it.
 */
export function copyPageRange(k: Kernel, dst: Mm, src: Mm, vma: Vma): void {
  const p = k.pages;
  const sp = src.pt;
  const dp = dst.pt;
  // The child's rss grows by every page copied, migration entries included (copy_nonpresent_pte
  // and copy_huge_pmd count them too).
  let rss = 0;
  for (let vpn = vma.startVpn; vpn < vma.endVpn; ) {
    const pmdIdx = vpn >>> 9;
    const stop = Math.min(vma.endVpn, (pmdIdx + 1) * PTRS_PER_PTE);
    const pmd = sp.pmd[pmdIdx]!;
    if (pmd & PMD_HUGE) {
      const ro = pmd & ~PTE_WRITE;
      Atomics.store(sp.pmd, pmdIdx, ro);
      Atomics.store(dp.pmd, pmdIdx, ro);
      const pfn = pmd >>> PTE_PFN_SHIFT;
      if (pfn !== ZERO_PFN) rss += PTRS_PER_PTE;
      // A PMD migration entry holds no mapping or reference: remove_migration_pmd adds them.
      // A PROT_NONE one does, and stays PROT_NONE in both.
      if (pteIsPresent(pmd) && pfn !== ZERO_PFN) {
        folioModMapcount(k, pfn, 1);
        p.refcount[pfn]!++;
      }
    } else if (pmd & PMD_TABLE) {
      const sbase = sp.pteIndex(pmdIdx * PTRS_PER_PTE);
      // Two small VMAs can share a PMD: reuse the child's table made for the first one.
      const have = dp.pteIndex(pmdIdx * PTRS_PER_PTE);
      const dbase = have >= 0 ? have : dp.allocTable(pmdIdx);
      const sptes = sp.pte;
      const dptes = dp.pte;
      for (let v = vpn; v < stop; v++) {
        const i = v & 511;
        const e = sptes[sbase + i]!;
        if (e === 0) continue;
        const ro = e & ~PTE_WRITE;
        Atomics.store(sptes, sbase + i, ro);
        dptes[dbase + i] = ro;
        const pfn = e >>> PTE_PFN_SHIFT;
        if (pfn === ZERO_PFN) continue;
        rss++;
        // A migration entry holds no mapping or reference: remove_migration_pte adds them.
        if (!pteIsPresent(e)) continue;
        const head = p.head(pfn);
        folioModMapcount(k, head, 1);
        p.refcount[head]!++;
      }
    }
    vpn = stop;
  }
  dst.rss += rss;
  // dup_mmap ends with flush_tlb_mm: the parent's threads must not keep writable translations
  // to pages that are copy-on-write now.
  flushTlbMm(sp.tlb);
}

/**
 * Undoes copyPageRange in a child that fork gives up on (copy_process' bad_fork_cleanup_mm):
 * drops the mappings and references the copy took and clears the child's migration entries
 * (they hold none), so no half-built child keeps a folio mapped.
 */
export function dropForkedRange(k: Kernel, mm: Mm, vma: Vma): void {
  const pt = mm.pt;
  const p = k.pages;
  let rss = 0;
  for (let vpn = vma.startVpn; vpn < vma.endVpn; ) {
    const pmdIdx = vpn >>> 9;
    const stop = Math.min(vma.endVpn, (pmdIdx + 1) * PTRS_PER_PTE);
    const pmd = pt.pmd[pmdIdx]!;
    if (pmd & PMD_HUGE) {
      Atomics.store(pt.pmd, pmdIdx, 0);
      const pfn = pmd >>> PTE_PFN_SHIFT;
      if (pfn !== ZERO_PFN) rss += PTRS_PER_PTE;
      if (pteIsPresent(pmd) && pfn !== ZERO_PFN) {
        folioModMapcount(k, pfn, -1);
        k.folioPut(pfn);
      }
    } else if (pmd & PMD_TABLE) {
      for (let v = vpn; v < stop; v++) {
        const idx = pt.pteIndex(v);
        const e = pt.pte[idx]!;
        if (e === 0) continue;
        Atomics.store(pt.pte, idx, 0);
        const pfn = e >>> PTE_PFN_SHIFT;
        if (pfn === ZERO_PFN) continue;
        rss++;
        if (!pteIsPresent(e)) continue;
        const head = p.head(pfn);
        folioModMapcount(k, head, -1);
        k.folioPut(head);
      }
      if (pt.tableEmpty(pmdIdx)) pt.freeTable(pmdIdx);
    }
    vpn = stop;
  }
  mm.rss -= rss;
}
