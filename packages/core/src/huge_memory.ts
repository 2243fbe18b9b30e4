import { EAGAIN, EINVAL, kernelError } from './errno.js';
import type { Kernel } from './kernel.js';
import { lruAddSplitFolios } from './lru.js';
import type { Mm } from './mm.js';
import { HPAGE_PMD_NR, HPAGE_PMD_ORDER } from './mmzone.js';
import {
  PG_anon,
  PG_buddy,
  PG_head,
  PG_hugetlb,
  PG_isolated,
  PG_lru,
  PG_partially_mapped,
  PG_tail,
} from './page.js';
import {
  mkPte,
  PMD_HUGE,
  PTE_ACCESSED,
  PTE_DIRTY,
  PTE_MIGRATION,
  PTE_PFN_SHIFT,
  PTE_PRESENT,
  PTE_WRITE,
  PTRS_PER_PTE,
  pteIsMigration,
  pteIsPresent,
  pteIsProtnone,
  ZERO_PFN,
} from './pagetable.js';
import { folioModMapcount, type RmapHit, rmapWalk } from './rmap.js';
import { folioModStat } from './vmstat.js';

/** Flags a folio passes on to the folios it is split into. */
const INHERITED = ~(PG_head | PG_tail);

/** The folio layout a split produces: [pfn, order] pairs in address order. */
export function splitLayout(
  head: number,
  order: number,
  newOrder: number,
  at: number | undefined,
  anon: boolean,
) {
  const out: [number, number][] = [];
  if (at === undefined) {
    for (let p = head; p < head + (1 << order); p += 1 << newOrder) out.push([p, newOrder]);
    return out;
  }
  // Non-uniform (buddy-style) split: halve repeatedly, keeping the half without `at` whole.
  let cur = head;
  let o = order;
  while (o > newOrder) {
    let next = o - 1;
    // Order-1 anonymous folios do not exist: go from order 2 straight to order 0.
    if (anon && next === 1 && newOrder === 0) next = 0;
    const size = 1 << next;
    const start = cur;
    for (let p = start; p < start + (1 << o); p += size) {
      if (at >= p && at < p + size) cur = p;
      else out.push([p, next]);
    }
    o = next;
  }
  out.push([cur, newOrder]);
  return out.sort((a, b) => a[0] - b[0]);
}

/**
 * split_huge_page_to_list_to_order: splits a large folio into folios of `newOrder` (uniform), or
 * buddy-style around page `at` (non-uniform, as folio_split does). PMD mappings become PTE
 * mappings first. The folio must hold only its mappings' (and page cache's) references plus
 * `callerRefs`; otherwise EAGAIN, as the kernel refuses a split with extra pins. The caller's
 * references stay with the folio that contains `at` (or the head). Returns the heads of the new
 * folios still in use: unless the folio is isolated (split onto a list, see isolateSplitFolios),
 * pieces left with no reference are freed, as the kernel's split does.
 */
export function splitFolio(
  k: Kernel,
  head: number,
  newOrder: number,
  opts: { at?: number; callerRefs?: number } = {},
): number[] {
  const p = k.pages;
  if (!(p.flags[head]! & PG_head)) throw kernelError(EINVAL, `pfn ${head} is not the head of a large folio`);
  // A hugetlb folio is no THP: split_huge_page refuses it (it is only ever freed whole).
  if (p.flags[head]! & PG_hugetlb)
    throw kernelError(EINVAL, `pfn ${head} is a hugetlb folio, which is never split`);
  const order = p.order[head]!;
  const anon = (p.flags[head]! & PG_anon) !== 0;
  if (!Number.isInteger(newOrder) || newOrder < 0 || newOrder >= order) {
    throw kernelError(EINVAL, `cannot split an order-${order} folio to order ${newOrder}`);
  }
  if (anon && newOrder === 1) throw kernelError(EINVAL, 'anonymous folios cannot be split to order 1');
  const nr = 1 << order;
  const at = opts.at;
  if (at !== undefined && (at < head || at >= head + nr))
    throw kernelError(EINVAL, `pfn ${at} is not in the folio`);
  const callerRefs = opts.callerRefs ?? 0;
  const mapping = k.mappingOf(head);
  const cacheRefs = mapping?.pageCache ? nr : 0;
  if (p.refcount[head] !== p.mapcount[head]! + cacheRefs + callerRefs) {
    throw kernelError(
      EAGAIN,
      `folio ${head} has extra references (refcount ${p.refcount[head]}, mapcount ${p.mapcount[head]})`,
    );
  }

  // Turn PMD mappings into PTE mappings, then count PTEs per page for the new mapcounts.
  const perPage = new Int32Array(nr);
  if (mapping) {
    const index = p.index[head]!;
    const pmds: { mm: import('./mm.js').Mm; slot: number }[] = [];
    rmapWalk(mapping, index, head, nr, (hit) => {
      if (hit.huge) pmds.push({ mm: hit.mm, slot: hit.slot });
    });
    for (const { mm, slot } of pmds) splitHugePmd(k, mm, slot);
    rmapWalk(mapping, index, head, nr, (hit) => {
      const e = hit.mm.pt.pte[hit.slot]!;
      if (pteIsPresent(e)) perPage[(e >>> PTE_PFN_SHIFT) - head]!++;
    });
  }

  // The large folio leaves the counters; each new folio joins them with its own order and mapcount
  // (__split_huge_page's stat updates).
  folioModStat(k, head, -1);
  const flags = p.flags[head]! & INHERITED;
  const lastNid = p.lastNid[head]!;
  const index = p.index[head]!;
  const mappingId = p.mapping[head]!;
  const keep = at ?? head;
  const heads: number[] = [];
  for (const [pfn, o] of splitLayout(head, order, newOrder, at, anon)) {
    const n = 1 << o;
    p.order.fill(o, pfn, pfn + n);
    if (o > 0) {
      p.flags.fill(PG_tail, pfn + 1, pfn + n);
      p.flags[pfn] = flags | PG_head;
    } else p.flags[pfn] = flags;
    let maps = 0;
    for (let i = 0; i < n; i++) maps += perPage[pfn - head + i]!;
    p.mapcount[pfn] = maps;
    p.refcount[pfn] = maps + (cacheRefs ? n : 0) + (keep >= pfn && keep < pfn + n ? callerRefs : 0);
    p.mapping[pfn] = mappingId;
    p.index[pfn] = index + (pfn - head);
    // folio_set_last_cpupid(new_folio, folio_last_cpupid(folio)), as __split_folio_to_order does.
    p.lastNid[pfn] = lastNid;
    folioModStat(k, pfn, 1);
    heads.push(pfn);
  }
  if (order === HPAGE_PMD_ORDER) k.count('thp_split_page');
  // lru_add_split_folio: the pieces of a folio on an LRU go on its list next to it (before any is
  // freed below, which takes it off again).
  if (flags & PG_lru) lruAddSplitFolios(k, head, order, heads.slice(1));
  // An isolated folio is split onto the caller's list (lru_add_split_folio takes a reference on
  // every piece; isolateSplitFolios does that here). Otherwise __folio_split ends with a
  // folio_put of each new folio but the caller's: a piece that no mapping, page cache or caller
  // holds is freed (e.g. the unmapped part of a partially unmapped THP).
  if (flags & PG_isolated) return heads;
  const live: number[] = [];
  for (const h of heads) {
    if (p.refcount[h] === 0) k.freeFolio(h);
    else live.push(h);
  }
  return live;
}

/** Marks the folios made by splitting an isolated folio as isolated too (split_folio_to_list). */
export function isolateSplitFolios(k: Kernel, heads: readonly number[], keep: number): void {
  for (const h of heads) {
    if (h === keep) continue;
    k.pages.flags[h]! |= PG_isolated;
    k.pages.refcount[h]!++;
  }
}

/** __split_huge_pmd: replaces a PMD mapping by a PTE table mapping the same 512 pages. */
export function splitHugePmd(k: Kernel, mm: Mm, pmdIdx: number): void {
  const pt = mm.pt;
  const pmd = pt.pmd[pmdIdx]!;
  if (!(pmd & PMD_HUGE)) return;
  // The table first: it replaces the huge entry, so a host that cannot give it (ENOMEM) leaves
  // the PMD mapped as it was.
  const idx = pt.allocTable(pmdIdx);
  const pfn = pmd >>> PTE_PFN_SHIFT;
  let flags = pmd & (PTE_PRESENT | PTE_WRITE | PTE_DIRTY | PTE_ACCESSED | PTE_MIGRATION);
  // __split_huge_pmd_locked builds the PTEs from vm_page_prot: a PROT_NONE PMD's pages come out
  // accessible (the NUMA hint is dropped).
  if (pteIsProtnone(pmd)) flags |= PTE_PRESENT;
  // __split_huge_pmd_locked counts every split, the huge zero page's included.
  k.count('thp_split_pmd');
  const ptes = pt.pte;
  if (pfn === ZERO_PFN) {
    for (let i = 0; i < PTRS_PER_PTE; i++) ptes[idx + i] = mkPte(ZERO_PFN, flags);
    return;
  }
  for (let i = 0; i < PTRS_PER_PTE; i++) ptes[idx + i] = mkPte(pfn + i, flags);
  // A PMD migration entry becomes PTE migration entries: like it, they hold no mapping or
  // reference (the migration's remap adds one per entry it finds).
  if (pteIsMigration(pmd)) return;
  folioModMapcount(k, pfn, PTRS_PER_PTE - 1);
  k.pages.refcount[pfn]! += PTRS_PER_PTE - 1;
}

/** split_huge_pmd_if_needed: a cut of an area at `vpn` inside a huge PMD splits the PMD first. */
export function splitHugePmdIfNeeded(k: Kernel, mm: Mm, vpn: number): void {
  if (vpn % PTRS_PER_PTE) splitHugePmd(k, mm, Math.floor(vpn / PTRS_PER_PTE));
}

/** folio_test_partially_mapped: an anon large folio on the deferred split list with unmapped pages. */
export function folioTestPartiallyMapped(k: Kernel, head: number): boolean {
  const p = k.pages;
  return (
    (p.flags[head]! & PG_head) !== 0 && p.order[head]! > 1 && (p.flags[head + 1]! & PG_partially_mapped) !== 0
  );
}

/**
 * deferred_split_folio(folio, partially_mapped = true): queues the folio for a split and marks it
 * partially mapped (on its second page), counting thp_deferred_split_page for a PMD-size folio.
 * Order-1 folios have no deferred list. The mark goes when the folio is split or freed.
 */
export function deferredSplitFolio(k: Kernel, head: number): void {
  const p = k.pages;
  if (!(p.flags[head]! & PG_head) || p.order[head]! <= 1 || p.flags[head + 1]! & PG_partially_mapped) return;
  p.flags[head + 1]! |= PG_partially_mapped;
  if (p.order[head] === HPAGE_PMD_ORDER) k.count('thp_deferred_split_page');
}

// The walk of folioRemoveRmapCheck keeps its state here: a walk allocates nothing.
const mappedPage = new Uint8Array(HPAGE_PMD_NR);
let mHead = 0;
let mNr = 0;
let mSeen = 0;
let mWhole = false;
function countMapped(hit: RmapHit): boolean {
  const pt = hit.mm.pt;
  if (hit.huge) {
    // A PMD still maps every page; a PMD migration entry holds no mapping.
    if (!pteIsPresent(pt.pmd[hit.slot]!)) return false;
    mWhole = true;
    return true;
  }
  const e = pt.pte[hit.slot]!;
  // Migration entries hold no mapcount (try_to_migrate dropped it), so they do not count.
  if (!pteIsPresent(e)) return false;
  const i = (e >>> PTE_PFN_SHIFT) - mHead;
  if (mappedPage[i]) return false;
  mappedPage[i] = 1;
  return ++mSeen === mNr;
}

/**
 * The partially-mapped test at the end of __folio_remove_rmap, for a folio some of whose mappings
 * were just removed (munmap, exit, copy-on-write): an anon large folio that still has a mapping
 * but some page of which has none left is queued with deferred_split_folio(folio, true). A page
 * counts as mapped while any address space maps it (its own _mapcount), so pages another process
 * still maps after fork are not "unmapped".
 */
export function folioRemoveRmapCheck(k: Kernel, head: number): void {
  const p = k.pages;
  const f = p.flags[head]!;
  // Freed meanwhile (its last mapping went too), not anon, not large, or marked already.
  if (f & PG_buddy || !(f & PG_head) || !(f & PG_anon) || p.refcount[head]! <= 0) return;
  if (p.mapcount[head]! <= 0 || folioTestPartiallyMapped(k, head)) return;
  const mapping = k.mappingOf(head);
  if (!mapping) return;
  mHead = head;
  mNr = 1 << p.order[head]!;
  mSeen = 0;
  mWhole = false;
  rmapWalk(mapping, p.index[head]!, head, mNr, countMapped);
  mappedPage.fill(0, 0, mNr);
  if (!mWhole && mSeen > 0 && mSeen < mNr) deferredSplitFolio(k, head);
}

/**
 * mm_get_huge_zero_folio: the first user of the huge zero folio allocates it and counts
 * thp_zero_page_alloc (get_huge_zero_folio); later users share it.
 */
export function mmGetHugeZeroFolio(k: Kernel): void {
  if (k.hugeZeroFolio) return;
  k.hugeZeroFolio = true;
  k.count('thp_zero_page_alloc');
}
