import type { Kernel } from './kernel.js';
import { HPAGE_PMD_ORDER, MIGRATE_MOVABLE, PAGE_SIZE } from './mmzone.js';
import { PG_head, PG_hugetlb, PG_isolated } from './page.js';

/**
 * mm/hugetlb.c: the hugetlb pool of the default hstate. x86-64's default huge page is 2 MiB
 * (order 9, HPAGE_PMD_ORDER); 1 GiB gigantic pages exceed MAX_PAGE_ORDER, need alloc_contig_range
 * or boot-time memblock and are not modeled, so there is one hstate.
 *
 * A pool folio is an order-9 folio with PG_hugetlb on its head. Free in the pool its refcount is 0
 * (frozen) and it sits on its node's free list; in use it has references and mappings like any
 * folio, but it is on no LRU and is never split. When its last reference goes (folio_put) it comes
 * back here (free_huge_folio), not to the buddy allocator, unless it was a surplus or temporary
 * page. Reservations (HugePages_Rsvd) are taken at mmap and consumed by faults (hugetlb_vma.ts,
 * hugetlb_fault.ts).
 */

export const HUGETLB_ORDER = HPAGE_PMD_ORDER;
/** pages_per_huge_page(h). */
export const HUGETLB_NR = 1 << HUGETLB_ORDER;
/** huge_page_size(h) / SZ_1K: the 2048 of "hugepages-2048kB" and of Hugepagesize. */
export const HUGETLB_SIZE_KB = (HUGETLB_NR * PAGE_SIZE) / 1024;

/** struct hstate: the pool's counters, per node and global, and its free lists. */
export class Hstate {
  /** max_huge_pages: the persistent pool size last set (what /proc/sys/vm/nr_hugepages reads). */
  maxHugePages = 0;
  /** nr_huge_pages: every hugetlb folio, free or in use, persistent, surplus or temporary. */
  nrHugePages = 0;
  freeHugePages = 0;
  /**
   * resv_huge_pages. The kernel's counter is unsigned and can wrap for a while (a private mapping's
   * owner unmaps a page that a child still maps: the close releases its reservation before the
   * page's restored reservation comes back); it is signed here and printed as the u64 it would be.
   */
  resvHugePages = 0;
  surplusHugePages = 0;
  nrOvercommitHugePages = 0;
  readonly nrHugePagesNode: number[];
  readonly freeHugePagesNode: number[];
  readonly surplusHugePagesNode: number[];
  /** hugepage_freelists[nid]: free folio heads; the last one is the list's first (taken first). */
  readonly freelists: number[][];
  /** HPG_temporary: folios allocated for a migration target beyond the pool (freed to the buddy). */
  readonly temporary = new Set<number>();
  /** HPG_restore_reserve: folios whose freeing gives a reservation back (resv_huge_pages++). */
  readonly restoreReserve = new Set<number>();
  /** next_nid_to_alloc / next_nid_to_free: the round robins that spread the pool over nodes. */
  nextNidToAlloc = 0;
  nextNidToFree = 0;

  constructor(nrNodes: number) {
    this.nrHugePagesNode = new Array<number>(nrNodes).fill(0);
    this.freeHugePagesNode = new Array<number>(nrNodes).fill(0);
    this.surplusHugePagesNode = new Array<number>(nrNodes).fill(0);
    this.freelists = Array.from({ length: nrNodes }, () => []);
  }

  /** persistent_huge_pages(h). */
  get persistentHugePages(): number {
    return this.nrHugePages - this.surplusHugePages;
  }

  /** available_huge_pages(h): free pages no reservation holds. */
  get availableHugePages(): number {
    return this.freeHugePages - this.resvHugePages;
  }
}

/** An unsigned long counter as the kernel prints it ("%lu"): a wrapped negative is 2^64 + v. */
export function ulong(v: number): string {
  return v < 0 ? (2n ** 64n + BigInt(v)).toString() : String(v);
}

/** node_states[N_MEMORY]: the nodes with memory, ascending. */
export function memoryNodes(k: Kernel): number[] {
  return k.nodes.filter((n) => n.nrPages > 0).map((n) => n.nid);
}

/** next_node_in: the first node of `mask` after `nid`, wrapping. */
function nextNodeAllowed(nid: number, mask: readonly number[]): number {
  for (const n of mask) if (n > nid) return n;
  return mask[0]!;
}

/** get_valid_node_allowed: `nid` if the mask has it, else the next node of the mask. */
function getValidNodeAllowed(nid: number, mask: readonly number[]): number {
  return mask.includes(nid) ? nid : nextNodeAllowed(nid, mask);
}

/**
 * for_each_node_mask_to_alloc / _to_free: the mask's nodes once each, from the round robin's
 * cursor (hstate_next_node_to_alloc/_free), which moves past every node handed out.
 */
function* nodesRoundRobin(h: Hstate, which: 'nextNidToAlloc' | 'nextNidToFree', mask: readonly number[]) {
  for (let n = mask.length; n > 0; n--) {
    const nid = getValidNodeAllowed(h[which], mask);
    h[which] = nextNodeAllowed(nid, mask);
    yield nid;
  }
}

/**
 * alloc_buddy_hugetlb_folio: an order-9 block from the buddy allocator (GFP_HIGHUSER_MOVABLE,
 * __GFP_RETRY_MAYFAIL: a failure wakes kswapd), counted in htlb_buddy_alloc_success/_fail; the
 * folio is made a hugetlb folio (init_new_hugetlb_folio) and frozen (refcount 0). -1 if none.
 */
function allocBuddyHugetlbFolio(
  k: Kernel,
  nid: number,
  allowed: readonly number[] | null,
  thisNode: boolean,
): number {
  const pfn = k.allocFolio({ order: HUGETLB_ORDER, nid, allowed, thisNode, mt: MIGRATE_MOVABLE });
  if (pfn < 0) {
    k.count('htlb_buddy_alloc_fail');
    return -1;
  }
  k.count('htlb_buddy_alloc_success');
  k.pages.flags[pfn]! |= PG_hugetlb;
  k.pages.refcount[pfn] = 0;
  return pfn;
}

/** __prep_account_new_huge_page: a new folio joins the pool's count. */
function accountNewHugePage(h: Hstate, nid: number): void {
  h.nrHugePages++;
  h.nrHugePagesNode[nid]!++;
}

/** enqueue_hugetlb_folio: a frozen folio goes on its node's free list. */
function enqueueHugetlbFolio(k: Kernel, head: number): void {
  const h = k.hstate;
  const nid = k.nodeOf(head);
  k.pages.refcount[head] = 0;
  h.freelists[nid]!.push(head);
  h.freeHugePages++;
  h.freeHugePagesNode[nid]!++;
}

/** dequeue_hugetlb_folio_node_exact: the first free folio of `nid` (refcount 1), or -1. */
function dequeueHugetlbFolioNodeExact(k: Kernel, nid: number): number {
  const h = k.hstate;
  const head = h.freelists[nid]!.pop();
  if (head === undefined) return -1;
  h.freeHugePages--;
  h.freeHugePagesNode[nid]!--;
  k.pages.refcount[head] = 1;
  return head;
}

/**
 * dequeue_hugetlb_folio_nodemask: a free pool folio from the nodes of `nid`'s zonelist (only `nid`
 * with __GFP_THISNODE), nearest first, within `allowed` (the policy's nodemask and the cpuset;
 * null: any). Returns the head (refcount 1) or -1.
 */
export function dequeueHugetlbFolioNodemask(
  k: Kernel,
  nid: number,
  allowed: readonly number[] | null,
  thisNode = false,
): number {
  for (const node of thisNode ? [nid] : k.nodes[nid]!.fallbackOrder) {
    if (allowed && !allowed.includes(node)) continue;
    const head = dequeueHugetlbFolioNodeExact(k, node);
    if (head >= 0) return head;
  }
  return -1;
}

/**
 * remove_hugetlb_folio: the folio leaves the pool's counts, and with `onFreeList` (it is the last
 * entry of its node's free list, where removePoolHugetlbFolio takes it) that list, in O(1) as the
 * kernel's list_del; with `adjustSurplus` it was a surplus page. It stays a hugetlb folio until it
 * is freed.
 */
function removeHugetlbFolio(k: Kernel, head: number, adjustSurplus: boolean, onFreeList: boolean): void {
  const h = k.hstate;
  const nid = k.nodeOf(head);
  if (onFreeList) {
    h.freelists[nid]!.pop();
    h.freeHugePages--;
    h.freeHugePagesNode[nid]!--;
  }
  if (adjustSurplus) {
    h.surplusHugePages--;
    h.surplusHugePagesNode[nid]!--;
  }
  h.nrHugePages--;
  h.nrHugePagesNode[nid]!--;
}

/** update_and_free_hugetlb_folio: a folio removed from the pool goes back to the buddy allocator. */
function updateAndFreeHugetlbFolio(k: Kernel, head: number): void {
  const h = k.hstate;
  h.temporary.delete(head);
  h.restoreReserve.delete(head);
  k.pages.flags[head]! &= ~PG_hugetlb;
  k.freeFolio(head);
}

/**
 * free_huge_folio: the last reference of a hugetlb folio went (folio_put). A folio that consumed
 * a reservation it must give back restores it; a temporary folio, or any while its node has
 * surplus pages, returns to the buddy allocator; otherwise it goes back on its node's free list.
 */
export function freeHugeFolio(k: Kernel, head: number): void {
  const h = k.hstate;
  const p = k.pages;
  const nid = k.nodeOf(head);
  p.mapping[head] = 0;
  p.index[head] = 0;
  p.mapcount[head] = 0;
  p.flags[head] = PG_head | PG_hugetlb;
  if (h.restoreReserve.delete(head)) h.resvHugePages++;
  if (h.temporary.has(head)) {
    removeHugetlbFolio(k, head, false, false);
    updateAndFreeHugetlbFolio(k, head);
  } else if (h.surplusHugePagesNode[nid]! > 0) {
    removeHugetlbFolio(k, head, true, false);
    updateAndFreeHugetlbFolio(k, head);
  } else {
    enqueueHugetlbFolio(k, head);
  }
}

/**
 * alloc_fresh_hugetlb_folio: a new hugetlb folio from the buddy allocator, counted in the pool,
 * with the reference its caller holds (refcount 1). -1 if the buddy allocator has no block.
 */
function allocFreshHugetlbFolio(
  k: Kernel,
  nid: number,
  allowed: readonly number[] | null,
  thisNode: boolean,
): number {
  const head = allocBuddyHugetlbFolio(k, nid, allowed, thisNode);
  if (head < 0) return -1;
  accountNewHugePage(k.hstate, k.nodeOf(head));
  k.pages.refcount[head] = 1;
  return head;
}

/**
 * alloc_surplus_hugetlb_folio: a folio beyond the persistent pool, allowed while the surplus is
 * below vm.nr_overcommit_hugepages. Returns it in use (refcount 1), or -1.
 */
export function allocSurplusHugetlbFolio(k: Kernel, nid: number, allowed: readonly number[] | null): number {
  const h = k.hstate;
  if (h.surplusHugePages >= h.nrOvercommitHugePages) return -1;
  const head = allocFreshHugetlbFolio(k, nid, allowed, false);
  if (head < 0) return -1;
  const node = k.nodeOf(head);
  h.surplusHugePages++;
  h.surplusHugePagesNode[node]!++;
  return head;
}

/**
 * alloc_hugetlb_folio_nodemask for a migration target on `nid` (alloc_migration_target with
 * __GFP_THISNODE, as move_pages(2) and migrate_pages(2) ask): a free pool folio of the node if the
 * pool has pages no reservation holds; else a temporary folio from the node's buddy allocator
 * (alloc_migrate_hugetlb_folio), not counted as surplus, whatever vm.nr_overcommit_hugepages says.
 * `fresh` allocates that folio (the engine passes the allocator's slow path). Resolves to the head
 * (refcount 1) or -1: then the migration fails with -ENOMEM.
 */
export async function allocHugetlbFolioNodemask(
  k: Kernel,
  nid: number,
  fresh: (nid: number) => Promise<number>,
): Promise<number> {
  const h = k.hstate;
  if (h.availableHugePages > 0) {
    const head = dequeueHugetlbFolioNodemask(k, nid, null, true);
    if (head >= 0) return head;
  }
  const head = await fresh(nid);
  if (head < 0) {
    k.count('htlb_buddy_alloc_fail');
    return -1;
  }
  k.count('htlb_buddy_alloc_success');
  k.pages.flags[head]! |= PG_hugetlb;
  accountNewHugePage(h, k.nodeOf(head));
  h.temporary.add(head);
  return head;
}

/**
 * move_hugetlb_state after a successful migration of `from` to `to`: a temporary target hands its
 * temporary state to the source (which is freed next, to the buddy allocator), and a surplus count
 * on the source's node follows the folio to the target's node.
 */
export function moveHugetlbState(k: Kernel, from: number, to: number): void {
  const h = k.hstate;
  if (!h.temporary.delete(to)) return;
  h.temporary.add(from);
  const oldNid = k.nodeOf(from);
  const newNid = k.nodeOf(to);
  if (oldNid !== newNid && h.surplusHugePagesNode[oldNid]! > 0) {
    h.surplusHugePagesNode[oldNid]!--;
    h.surplusHugePagesNode[newNid]!++;
  }
}

/**
 * folio_isolate_hugetlb: an in-use hugetlb folio not already isolated ("migratable") is taken for
 * migration with a reference of its own; a free pool folio (refcount 0) cannot be.
 */
export function isolateHugetlb(k: Kernel, head: number): boolean {
  const p = k.pages;
  const f = p.flags[head]!;
  if (!(f & PG_hugetlb) || f & PG_isolated || p.refcount[head]! <= 0) return false;
  p.flags[head] = f | PG_isolated;
  p.refcount[head]!++;
  return true;
}

/** folio_test_hugetlb. */
export function folioTestHugetlb(k: Kernel, head: number): boolean {
  return (k.pages.flags[head]! & PG_hugetlb) !== 0;
}

/**
 * alloc_pool_huge_folio: a new persistent pool folio from the first node of the round robin
 * (next_nid_to_alloc) whose buddy allocator has an order-9 block (__GFP_THISNODE), or -1.
 */
function allocPoolHugeFolio(k: Kernel, mask: readonly number[]): number {
  for (const nid of nodesRoundRobin(k.hstate, 'nextNidToAlloc', mask)) {
    const head = allocBuddyHugetlbFolio(k, nid, mask, true);
    if (head >= 0) return head;
  }
  return -1;
}

/**
 * remove_pool_hugetlb_folio: a free folio taken out of the pool from the next node of the round
 * robin (next_nid_to_free) that has one (with `acctSurplus`, a node with surplus pages), or -1.
 */
function removePoolHugetlbFolio(k: Kernel, mask: readonly number[], acctSurplus: boolean): number {
  const h = k.hstate;
  for (const nid of nodesRoundRobin(h, 'nextNidToFree', mask)) {
    const list = h.freelists[nid]!;
    // A persistent page may only come from a node that has one: taking a node's last pages when
    // they are all surplus would leave it counting surplus pages it does not have.
    const surplus = h.surplusHugePagesNode[nid]!;
    if ((acctSurplus ? !surplus : h.nrHugePagesNode[nid]! <= surplus) || !list.length) continue;
    const head = list[list.length - 1]!;
    removeHugetlbFolio(k, head, acctSurplus, true);
    return head;
  }
  return -1;
}

/** adjust_pool_surplus: moves one page into (+1) or out of (-1) the surplus state; false if none can. */
function adjustPoolSurplus(k: Kernel, mask: readonly number[], delta: 1 | -1): boolean {
  const h = k.hstate;
  const nodes = nodesRoundRobin(h, delta < 0 ? 'nextNidToAlloc' : 'nextNidToFree', mask);
  for (const nid of nodes) {
    const ok =
      delta < 0 ? h.surplusHugePagesNode[nid]! > 0 : h.surplusHugePagesNode[nid]! < h.nrHugePagesNode[nid]!;
    if (!ok) continue;
    h.surplusHugePages += delta;
    h.surplusHugePagesNode[nid]! += delta;
    return true;
  }
  return false;
}

/**
 * set_max_huge_pages: resizes the persistent pool to `count` pages over the nodes of `mask`
 * (`nid` >= 0: a node's own nr_hugepages, its count turned into a global one). Growing takes
 * surplus pages into the pool first, then allocates fresh ones round robin over the nodes until
 * the buddy allocators have no order-9 block left (the pool then stays smaller: the kernel
 * reports what it got). Shrinking frees free pages, keeping what reservations and in-use pages
 * need; in-use pages beyond the target become surplus and leave when freed.
 */
export function setMaxHugePages(k: Kernel, count: number, nid: number, mask: readonly number[]): void {
  const h = k.hstate;
  if (nid >= 0) count += h.persistentHugePages - (h.nrHugePagesNode[nid]! - h.surplusHugePagesNode[nid]!);
  while (h.surplusHugePages && count > h.persistentHugePages) {
    if (!adjustPoolSurplus(k, mask, -1)) break;
  }
  let grown = true;
  while (count > h.persistentHugePages) {
    const head = allocPoolHugeFolio(k, mask);
    if (head < 0) {
      grown = false;
      break;
    }
    accountNewHugePage(h, k.nodeOf(head));
    enqueueHugetlbFolio(k, head);
  }
  if (grown) {
    const minCount = Math.max(count, h.resvHugePages + h.nrHugePages - h.freeHugePages);
    while (minCount < h.persistentHugePages) {
      const head = removePoolHugetlbFolio(k, mask, false);
      if (head < 0) break;
      updateAndFreeHugetlbFolio(k, head);
    }
    while (count < h.persistentHugePages) {
      if (!adjustPoolSurplus(k, mask, 1)) break;
    }
  }
  h.maxHugePages = h.persistentHugePages;
}

/**
 * return_unused_surplus_pages: drops `unused` reservations and frees up to as many free surplus
 * pages, spread over the nodes with memory.
 */
function returnUnusedSurplusPages(k: Kernel, unused: number): void {
  const h = k.hstate;
  h.resvHugePages -= unused;
  let n = Math.min(unused, h.surplusHugePages);
  const mask = memoryNodes(k);
  while (n-- > 0) {
    const head = removePoolHugetlbFolio(k, mask, true);
    if (head < 0) break;
    updateAndFreeHugetlbFolio(k, head);
  }
}

/**
 * gather_surplus_pages: reserves `delta` pages, first from free pages no reservation holds, then
 * from surplus pages allocated for it (vm.nr_overcommit_hugepages), on the task's node first, then
 * on the other nodes of `nodes` (the task's MPOL_BIND nodes in its cpuset), each allocation
 * falling back within the cpuset. All or nothing: false (and no change) when the pages cannot be
 * found.
 */
function gatherSurplusPages(
  k: Kernel,
  delta: number,
  nodes: readonly number[],
  cpuset: readonly number[],
  localNid: number,
): boolean {
  const h = k.hstate;
  let needed = h.resvHugePages + delta - h.freeHugePages;
  if (needed <= 0) {
    h.resvHugePages += delta;
    return true;
  }
  const got: number[] = [];
  for (let i = 0; i < needed; i++) {
    let head = nodes.includes(localNid) ? allocSurplusHugetlbFolio(k, localNid, cpuset) : -1;
    for (const node of nodes) {
      if (head >= 0) break;
      if (node !== localNid) head = allocSurplusHugetlbFolio(k, node, cpuset);
    }
    if (head < 0) break;
    got.push(head);
  }
  needed = h.resvHugePages + delta - (h.freeHugePages + got.length);
  const ok = needed <= 0;
  if (ok) {
    h.resvHugePages += delta;
    // The pages the reservation needs join the free lists; any extra goes back.
    needed += got.length;
    while (needed-- > 0) enqueueHugetlbFolio(k, got.shift()!);
  }
  for (const head of got) {
    k.pages.refcount[head] = 0;
    freeHugeFolio(k, head);
  }
  return ok;
}

/** What a reservation needs to know of the task making it. */
export interface HugetlbTask {
  /** cpuset_current_mems_allowed. */
  readonly memsAllowed: readonly number[];
  /** numa_mem_id(): the node the task runs on. */
  readonly node: number;
  /** The task's MPOL_BIND nodes (policy_mbind_nodemask), or null for any other policy. */
  readonly bindNodes: readonly number[] | null;
}

/** hugetlb_acct_memory(h, -n): gives `n` reservations back (and the surplus pages they held). */
export function hugetlbUnacctMemory(k: Kernel, n: number): void {
  if (n > 0) returnUnusedSurplusPages(k, n);
}

/**
 * hugetlb_acct_memory: reserves `delta` pages (> 0) or gives `-delta` back (< 0). A reservation
 * must fit the pool (growing it with surplus pages if allowed) and the free pages of the task's
 * allowed nodes (allowed_mems_nr); otherwise it fails (false) and nothing changes.
 */
export function hugetlbAcctMemory(k: Kernel, delta: number, task: HugetlbTask): boolean {
  if (delta <= 0) {
    hugetlbUnacctMemory(k, -delta);
    return true;
  }
  const cpuset = memoryNodes(k).filter((n) => task.memsAllowed.includes(n));
  // policy_mbind_nodemask: MPOL_BIND counts only where it overlaps the cpuset.
  const bind = task.bindNodes ? cpuset.filter((n) => task.bindNodes!.includes(n)) : [];
  const nodes = bind.length ? bind : cpuset;
  if (!gatherSurplusPages(k, delta, nodes, cpuset, task.node)) return false;
  let free = 0;
  for (const n of nodes) free += k.hstate.freeHugePagesNode[n]!;
  if (delta > free) {
    returnUnusedSurplusPages(k, delta);
    return false;
  }
  return true;
}
