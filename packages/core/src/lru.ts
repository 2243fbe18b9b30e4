import { EINVAL, kernelError } from './errno.js';
import type { Kernel } from './kernel.js';
import {
  PG_active,
  PG_head,
  PG_hugetlb,
  PG_isolated,
  PG_lru,
  PG_referenced,
  PG_tail,
  PG_unevictable,
} from './page.js';
import { PTE_ACCESSED, pteIsPresent } from './pagetable.js';
import { type RmapHit, rmapWalk } from './rmap.js';
import { show } from './show.js';

/**
 * The per-node LRU lists (struct lruvec; mm/swap.c, include/linux/mm_inline.h and the
 * isolate/putback/folio_referenced mechanism of mm/vmscan.c and mm/rmap.c). Memory here is anon
 * or shmem, both swap-backed, so only the anon lists and the unevictable one exist (enum lru_list
 * without the file lists). A list is intrusive and doubly linked through the head page's
 * next/prev words, the ones the buddy free lists use while the frame is free (the kernel's
 * page->lru serves both too): the LRU adds no byte to struct page. The first entry of a list is
 * the youngest (lruvec_add_folio is list_add), the last the oldest (isolate_lru_folios takes
 * lru_to_folio, the tail). Which list a folio is on follows from its flags (folio_lru_list).
 * Unevictable folios are linked too (the kernel only counts them), so every PG_lru folio is on a
 * list. All of it runs on the main thread: user threads only set accessed bits in page tables.
 */
export const LRU_INACTIVE_ANON = 0;
export const LRU_ACTIVE_ANON = 1;
export const LRU_UNEVICTABLE = 2;
export const NR_LRU_LISTS = 3;
/** The lists' vmstat names (NR_INACTIVE_ANON + lru), for messages. */
export const lruNames = ['inactive_anon', 'active_anon', 'unevictable'] as const;

/** Every node's lruvec: list ends, pages per list (lruvec->lists, lru_zone_size) and NR_ISOLATED_ANON. */
export class Lruvecs {
  /** Youngest folio head of list nid * NR_LRU_LISTS + lru, -1 when empty. */
  readonly first: Int32Array;
  /** Oldest folio head of each list, -1 when empty. */
  readonly last: Int32Array;
  /** Base pages on each list (NR_INACTIVE_ANON, NR_ACTIVE_ANON, NR_UNEVICTABLE). */
  readonly nrPages: Float64Array;
  /** Base pages isolated from the LRU per node (NR_ISOLATED_ANON: shmem is swap-backed, so anon too). */
  readonly nrIsolated: Float64Array;

  constructor(readonly nrNodes: number) {
    this.first = new Int32Array(nrNodes * NR_LRU_LISTS).fill(-1);
    this.last = new Int32Array(nrNodes * NR_LRU_LISTS).fill(-1);
    this.nrPages = new Float64Array(nrNodes * NR_LRU_LISTS);
    this.nrIsolated = new Float64Array(nrNodes);
  }
}

/** folio_lru_list: the list a folio's flags put it on. */
export function folioLruList(flags: number): number {
  if (flags & PG_unevictable) return LRU_UNEVICTABLE;
  return flags & PG_active ? LRU_ACTIVE_ANON : LRU_INACTIVE_ANON;
}

function nrPagesOf(k: Kernel, head: number): number {
  return k.pages.flags[head]! & PG_head ? 1 << k.pages.order[head]! : 1;
}

/** lruvec_add_folio: links `head` first (youngest) on `lru` of its node. */
function lruvecAddFolio(k: Kernel, head: number, lru: number): void {
  const p = k.pages;
  const v = k.lru;
  const l = k.nodeOf(head) * NR_LRU_LISTS + lru;
  const old = v.first[l]!;
  p.prev[head] = -1;
  p.next[head] = old;
  if (old >= 0) p.prev[old] = head;
  else v.last[l] = head;
  v.first[l] = head;
  v.nrPages[l]! += nrPagesOf(k, head);
}

/** list_add_tail(&folio->lru, &before->lru): links `head` just before (younger than) `before`. */
function lruvecAddBefore(k: Kernel, head: number, before: number, lru: number): void {
  const p = k.pages;
  const v = k.lru;
  const l = k.nodeOf(head) * NR_LRU_LISTS + lru;
  const prev = p.prev[before]!;
  p.prev[head] = prev;
  p.next[head] = before;
  p.prev[before] = head;
  if (prev >= 0) p.next[prev] = head;
  else v.first[l] = head;
  v.nrPages[l]! += nrPagesOf(k, head);
}

/** lruvec_del_folio: unlinks `head` from the list its flags name. */
function lruvecDelFolio(k: Kernel, head: number): void {
  const p = k.pages;
  const v = k.lru;
  const l = k.nodeOf(head) * NR_LRU_LISTS + folioLruList(p.flags[head]!);
  const next = p.next[head]!;
  const prev = p.prev[head]!;
  if (prev >= 0) p.next[prev] = next;
  else v.first[l] = next;
  if (next >= 0) p.prev[next] = prev;
  else v.last[l] = prev;
  v.nrPages[l]! -= nrPagesOf(k, head);
}

function checkNid(k: Kernel, what: string, nid: number): void {
  if (!Number.isInteger(nid) || nid < 0 || nid >= k.nodes.length)
    throw kernelError(EINVAL, `${what}: node ${show(nid)} does not exist (nodes 0..${k.nodes.length - 1})`);
}

function checkHead(k: Kernel, what: string, head: number): void {
  if (!Number.isInteger(head) || head < 0 || head >= k.nrPages)
    throw kernelError(EINVAL, `${what}: head ${show(head)} is not RAM (0..${k.nrPages - 1})`);
  if (k.pages.flags[head]! & PG_tail)
    throw kernelError(EINVAL, `${what}: pfn ${head} is a tail page, not a folio head`);
}

function checkLru(what: string, lru: number): void {
  if (lru !== LRU_INACTIVE_ANON && lru !== LRU_ACTIVE_ANON && lru !== LRU_UNEVICTABLE)
    throw kernelError(
      EINVAL,
      `${what}: lru ${show(lru)} is not LRU_INACTIVE_ANON (0), LRU_ACTIVE_ANON (1) or LRU_UNEVICTABLE (2)`,
    );
}

/** lruvec_page_state(NR_INACTIVE_ANON + lru): base pages on list `lru` of node `nid`. */
export function lruSize(k: Kernel, nid: number, lru: number): number {
  checkNid(k, 'lruSize', nid);
  checkLru('lruSize', lru);
  return k.lru.nrPages[nid * NR_LRU_LISTS + lru]!;
}

/** node_page_state(NR_ISOLATED_ANON): base pages of node `nid` isolated from the LRU now. */
export function nrIsolatedAnon(k: Kernel, nid: number): number {
  checkNid(k, 'nrIsolatedAnon', nid);
  return k.lru.nrIsolated[nid]!;
}

/** folio_lru_list of a folio on an LRU, -1 if it is on none (isolated, free, hugetlb, not anon). */
export function folioLru(k: Kernel, head: number): number {
  checkHead(k, 'folioLru', head);
  const f = k.pages.flags[head]!;
  return f & PG_lru ? folioLruList(f) : -1;
}

/**
 * folio_add_lru_vma for a new anon or shmem folio: PG_lru set, linked first on its node's list
 * (inactive, or unevictable when mlocked: mlock_new_folio). Hugetlb folios never get here.
 */
export function folioAddLru(k: Kernel, head: number): void {
  checkHead(k, 'folioAddLru', head);
  const p = k.pages;
  const f = p.flags[head]!;
  if (f & (PG_lru | PG_hugetlb | PG_isolated))
    throw kernelError(EINVAL, `folioAddLru: ${p.describe(head)} cannot go on an LRU`);
  p.flags[head] = f | PG_lru;
  lruvecAddFolio(k, head, folioLruList(f));
}

/**
 * folio_isolate_lru plus the caller's NR_ISOLATED_ANON count (every caller here counts it):
 * unlinks the folio, clears PG_lru, marks it isolated and takes the isolation reference. False
 * when it is not on an LRU (free, hugetlb, already isolated).
 */
export function folioIsolateLru(k: Kernel, head: number): boolean {
  const p = k.pages;
  const f = p.flags[head]!;
  if (!(f & PG_lru) || f & PG_isolated || p.refcount[head]! <= 0) return false;
  lruvecDelFolio(k, head);
  p.flags[head] = (f & ~PG_lru) | PG_isolated;
  p.refcount[head]!++;
  k.lru.nrIsolated[k.nodeOf(head)]! += nrPagesOf(k, head);
  return true;
}

/**
 * The end of an isolation that does not put the folio back (migrate_folio_done: migrated, or
 * freed under the migration): PG_isolated goes and NR_ISOLATED_ANON drops; the caller drops the
 * isolation reference.
 */
export function folioIsolationDone(k: Kernel, head: number): void {
  const p = k.pages;
  const f = p.flags[head]!;
  if (!(f & PG_isolated)) return;
  p.flags[head] = f & ~PG_isolated;
  if (!(f & PG_hugetlb)) k.lru.nrIsolated[k.nodeOf(head)]! -= nrPagesOf(k, head);
}

/**
 * isolate_lru_folios: takes folios from the tail (oldest end) of list `lru` of node `nid` until
 * `nrToScan` base pages were scanned or the list is empty. Each taken folio leaves the list, loses
 * PG_lru, gains PG_isolated and the isolation reference and counts in NR_ISOLATED_ANON; its head
 * goes to `out` (oldest first). Returns the base pages scanned and taken.
 */
export function isolateLruFolios(
  k: Kernel,
  nid: number,
  lru: number,
  nrToScan: number,
  out: number[],
): { scanned: number; taken: number } {
  checkNid(k, 'isolateLruFolios', nid);
  checkLru('isolateLruFolios', lru);
  if (!Number.isInteger(nrToScan) || nrToScan < 0)
    throw kernelError(EINVAL, `isolateLruFolios: nrToScan ${show(nrToScan)} is not an integer >= 0`);
  if (!Array.isArray(out)) throw kernelError(EINVAL, 'isolateLruFolios: out must be an array');
  const l = nid * NR_LRU_LISTS + lru;
  let scanned = 0;
  let taken = 0;
  // Every folio on a list can be isolated here (nothing else holds the lru lock), so the scan
  // never rotates one to the head as the kernel does with folios it fails to get.
  while (scanned < nrToScan) {
    const head = k.lru.last[l]!;
    if (head < 0) break;
    const nr = nrPagesOf(k, head);
    scanned += nr;
    folioIsolateLru(k, head);
    taken += nr;
    out.push(head);
  }
  return { scanned, taken };
}

/**
 * folio_putback_lru for an isolated folio: linked first (youngest) on list `lru` of its node,
 * PG_active set or cleared to match (an unevictable folio goes on the unevictable list whatever
 * `lru` says, as lru_add does), NR_ISOLATED_ANON drops and the isolation reference is put.
 */
export function folioPutbackLru(k: Kernel, head: number, lru: number): void {
  const p = k.pages;
  const f = p.flags[head]!;
  checkHead(k, 'folioPutbackLru', head);
  checkLru('folioPutbackLru', lru);
  if (!(f & PG_isolated) || f & (PG_lru | PG_hugetlb))
    throw kernelError(EINVAL, `folioPutbackLru: ${p.describe(head)} is not isolated from an LRU`);
  if (lru === LRU_UNEVICTABLE && !(f & PG_unevictable))
    throw kernelError(EINVAL, `folioPutbackLru: ${p.describe(head)} is evictable, not for LRU_UNEVICTABLE`);
  folioIsolationDone(k, head);
  const g = f & PG_unevictable || lru === LRU_INACTIVE_ANON ? f & ~PG_active : f | PG_active;
  p.flags[head] = (g & ~PG_isolated) | PG_lru;
  lruvecAddFolio(k, head, folioLruList(g));
  k.folioPut(head);
}

/**
 * putback_movable_pages for one LRU folio: back on the list its flags name (folio_putback_lru
 * keeps PG_active), the isolation reference put.
 */
export function folioPutback(k: Kernel, head: number): void {
  const f = k.pages.flags[head]!;
  folioPutbackLru(k, head, folioLruList(f));
}

/**
 * lru_add_split_folio for a folio split while on an LRU: `head` (now the first piece) stays where
 * it was, counting only its own pages, and every other piece goes on the same list just before
 * (younger than) it. __folio_split walks the new folios in address order, each linked before the
 * head (list_add_tail(&new_folio->lru, &folio->lru)): the head stays the oldest, the last piece
 * next to it, the second piece youngest. `oldOrder` is the folio's order before the split;
 * `pieces` are the other new heads in address order, already carrying the head's flags.
 */
export function lruAddSplitFolios(
  k: Kernel,
  head: number,
  oldOrder: number,
  pieces: readonly number[],
): void {
  const lru = folioLruList(k.pages.flags[head]!);
  k.lru.nrPages[k.nodeOf(head) * NR_LRU_LISTS + lru]! -= (1 << oldOrder) - nrPagesOf(k, head);
  for (const piece of pieces) lruvecAddBefore(k, piece, head, lru);
}

/** __page_cache_release for a folio whose last reference went: off its LRU, PG_lru cleared. */
export function lruRemoveFolio(k: Kernel, head: number): void {
  if (k.pages.flags[head]! & PG_lru) {
    lruvecDelFolio(k, head);
    k.pages.flags[head]! &= ~PG_lru;
  }
}

let refYoung = 0;
function referencedOne(hit: RmapHit): void {
  const arr = hit.huge ? hit.mm.pt.pmd : hit.mm.pt.pte;
  for (;;) {
    const e = Atomics.load(arr, hit.slot);
    if (!pteIsPresent(e) || !(e & PTE_ACCESSED)) return;
    // ptep_test_and_clear_young / pmdp_test_and_clear_young: a compare-and-swap, as user threads
    // set the bit with their own (their page walk's locked cmpxchg) at the same time.
    if (Atomics.compareExchange(arr, hit.slot, e, e & ~PTE_ACCESSED) === e) {
      refYoung++;
      return;
    }
  }
}

/**
 * folio_referenced: the rmap walk that tests and clears the accessed bit of every mapping of the
 * folio (present or PROT_NONE entries; migration entries carry none to clear) and returns how
 * many were young; a PMD mapping counts once. x86 semantics: ptep_clear_flush_young clears the
 * bit without a TLB flush, so a user thread that still caches the translation does not set it
 * again until that TLB entry goes (evicted, or shot down by a flush); an access through the page
 * tables (a TLB miss, or the main thread's p.read/p.write/p.touch) sets it at once.
 */
export function folioReferenced(k: Kernel, head: number): number {
  checkHead(k, 'folioReferenced', head);
  const p = k.pages;
  if (p.mapcount[head]! <= 0) return 0;
  const mapping = k.mappingOf(head);
  if (!mapping) return 0;
  refYoung = 0;
  rmapWalk(mapping, p.index[head]!, head, nrPagesOf(k, head), referencedOne);
  return refYoung;
}

/** folio_test_clear_referenced / folio_set_referenced for reclaim's second-chance logic. */
export function folioTestClearReferenced(k: Kernel, head: number): boolean {
  const f = k.pages.flags[head]!;
  k.pages.flags[head] = f & ~PG_referenced;
  return (f & PG_referenced) !== 0;
}
