import { PagemigError } from './errno.js';
import { HUGETLB_ORDER } from './hugetlb.js';
import type { Kernel } from './kernel.js';
import { folioLruList, lruNames, NR_LRU_LISTS } from './lru.js';
import type { Vma } from './mm.js';
import { HPAGE_PMD_ORDER, MIGRATE_TYPES, NR_PAGE_ORDERS } from './mmzone.js';
import {
  PG_anon,
  PG_buddy,
  PG_head,
  PG_hugetlb,
  PG_isolated,
  PG_lru,
  PG_mlocked,
  PG_swapbacked,
  PG_tail,
} from './page.js';
import {
  PTE_PFN_SHIFT,
  PTRS_PER_PTE,
  pteIsMigration,
  pteIsPresent,
  pteIsProtnone,
  ZERO_PFN,
} from './pagetable.js';
import { type MmWalkOps, walkPageRange } from './pagewalk.js';
import {
  NR_ANON_MAPPED,
  NR_ANON_THPS,
  NR_FILE_MAPPED,
  NR_MLOCK,
  NR_SHMEM,
  NR_SHMEM_THPS,
  NR_VM_NODE_STAT_ITEMS,
  nodeStatNames,
  nrHugetlbNode,
} from './vmstat.js';

function broken(k: Kernel, pfn: number, rule: string): never {
  // Zone-wide rules (list counts, free page totals) have no pfn: their text names the zone.
  if (pfn < 0) throw new PagemigError('ERR_INVARIANT', `invariant broken: ${rule}`);
  const what = pfn < k.nrPages ? k.pages.describe(pfn) : `pfn ${pfn}`;
  throw new PagemigError('ERR_INVARIANT', `invariant broken at ${what}: ${rule}`);
}

/** Whether rmap owner `id` is in `vma`'s chain. */
function linkedTo(vma: Vma, id: number): boolean {
  for (const o of vma.owners) if (o.id === id) return true;
  return false;
}

/** `vma`'s own rmap owner, and the ancestors' it is linked into if any. */
function ownersOf(vma: Vma): string {
  const up = vma.owners.slice(0, -1).map((o) => o.id);
  return up.length ? `${vma.mapping.id} (linked into ${up.join(', ')})` : `${vma.mapping.id}`;
}

/**
 * Verifies the whole model: every frame is free in exactly one buddy block or part of one
 * allocated folio; free lists, counts and buddyinfo agree; every page-table entry is present,
 * PROT_NONE or a migration entry and points at an allocated frame of a folio whose rmap owner
 * is in its VMA's chain; every VMA is in each chain owner's tree; mapcounts equal the mappings
 * found; references cover mappings and page cache; each address space's rss counter equals the
 * pages its entries map; the nodes' vmstat counters equal what the folios add up to. Throws
 * naming the pfn and rule.
 */
export function checkInvariants(k: Kernel): void {
  const p = k.pages;
  const n = k.nrPages;
  const free = new Uint8Array(n);

  for (const z of k.zones) {
    let pages = 0;
    for (let o = 0; o < NR_PAGE_ORDERS; o++) {
      for (let mt = 0; mt < MIGRATE_TYPES; mt++) {
        let count = 0;
        let prev = -1;
        for (let pfn = z.freeHead[o * MIGRATE_TYPES + mt]!; pfn >= 0; pfn = p.next[pfn]!) {
          if (++count > n) broken(k, pfn, 'free list is cyclic');
          if (!z.contains(pfn) || pfn + (1 << o) > z.endPfn)
            broken(k, pfn, `free block of order ${o} outside zone ${z.type} of node ${z.nid}`);
          if (!(p.flags[pfn]! & PG_buddy) || p.order[pfn] !== o)
            broken(k, pfn, `block on the order-${o} free list is not a free buddy of that order`);
          if ((pfn & ((1 << o) - 1)) !== 0) broken(k, pfn, `free block not aligned to its order ${o}`);
          if (p.prev[pfn] !== prev) broken(k, pfn, 'free list back link is wrong');
          if (k.pageblocks.migratetype(pfn) !== mt)
            broken(
              k,
              pfn,
              `free block on the ${mt} list but its pageblock is type ${k.pageblocks.migratetype(pfn)}`,
            );
          for (let i = pfn; i < pfn + (1 << o); i++) {
            if (free[i]) broken(k, i, 'frame is in two free blocks');
            free[i] = 1;
          }
          pages += 1 << o;
          prev = pfn;
        }
        if (count !== z.nrFreeList[o * MIGRATE_TYPES + mt])
          broken(
            k,
            -1,
            `node ${z.nid} ${z.type}: order ${o} type ${mt} list has ${count} blocks, counted ${z.nrFreeList[o * MIGRATE_TYPES + mt]}`,
          );
      }
    }
    if (pages !== z.freePages)
      broken(k, -1, `node ${z.nid} ${z.type}: free lists hold ${pages} pages, zone counts ${z.freePages}`);
    let bi = 0;
    for (let o = 0; o < NR_PAGE_ORDERS; o++) bi += k.nrFreeBlocks(z, o) << o;
    if (bi !== z.freePages)
      broken(k, -1, `node ${z.nid} ${z.type}: buddyinfo adds up to ${bi} pages, zone counts ${z.freePages}`);
  }

  const poolFree = checkHugetlbPool(k, free);
  // Every other frame belongs to an allocated folio (or is a free hugetlb folio, refcount 0).
  for (let pfn = 0; pfn < n; ) {
    if (free[pfn]) {
      if (p.flags[pfn]! & PG_tail) broken(k, pfn, 'free frame still marked as a folio tail');
      pfn++;
      continue;
    }
    const f = p.flags[pfn]!;
    if (f & (PG_buddy | PG_tail))
      broken(k, pfn, f & PG_buddy ? 'buddy frame is on no free list' : 'tail page without a head');
    if (p.refcount[pfn]! <= 0 && !poolFree.has(pfn))
      broken(k, pfn, 'allocated folio with no reference (leaked or freed without the allocator)');
    const order = f & PG_head ? p.order[pfn]! : 0;
    if ((pfn & ((1 << order) - 1)) !== 0) broken(k, pfn, `folio not aligned to its order ${order}`);
    for (let i = pfn + 1; i < pfn + (1 << order); i++) {
      if (!(p.flags[i]! & PG_tail) || p.order[i] !== order)
        broken(k, i, `page is not a tail of the order-${order} folio at ${pfn}`);
      if (free[i]) broken(k, i, 'tail page is also free');
    }
    pfn += 1 << order;
  }

  // Page tables against folios and rmap.
  const mapped = new Int32Array(n);
  const check = (pfn: number, vpn: number, vma: Vma, index: number, huge: boolean, migration: boolean) => {
    if (pfn === ZERO_PFN) return;
    if (pfn >= n || free[pfn])
      broken(k, pfn < n ? pfn : -1, `page table maps page ${vpn} to a free or missing frame ${pfn}`);
    const head = p.head(pfn);
    if (huge && (head !== pfn || k.folioOrder(head) !== HPAGE_PMD_ORDER))
      broken(k, pfn, 'PMD maps something that is not a PMD-size folio');
    // The folio's owner is one the area is linked into: its own or an ancestor's (fork).
    if (!linkedTo(vma, p.mapping[head]!))
      broken(
        k,
        head,
        `mapped at page ${vpn} of a VMA whose rmap owner is ${ownersOf(vma)}, folio says ${p.mapping[head]}`,
      );
    if (p.index[head]! + (pfn - head) !== index)
      broken(k, pfn, `rmap index ${p.index[head]! + (pfn - head)} but mapped at index ${index}`);
    if (!migration) mapped[head]!++;
  };
  let vma: Vma;
  let pid = 0;
  /** The pages the entries of the process being walked map (get_mm_rss recomputed). */
  let rss = 0;
  // A PROT_NONE entry (NUMA hinting) is a mapping like a present one; it never maps the zero page
  // (change_prot_numa skips it). Any other non-empty entry is garbage.
  const entry = (e: number, vpn: number, huge: boolean) => {
    const migration = pteIsMigration(e);
    if (!migration && !pteIsPresent(e))
      broken(
        k,
        -1,
        `page ${vpn} of pid ${pid} has an entry 0x${(e >>> 0).toString(16)} that is neither present, PROT_NONE nor migration`,
      );
    if (pteIsProtnone(e) && e >>> PTE_PFN_SHIFT === ZERO_PFN)
      broken(k, -1, `page ${vpn} of pid ${pid} maps the zero page PROT_NONE`);
    if (e >>> PTE_PFN_SHIFT !== ZERO_PFN) rss += huge ? PTRS_PER_PTE : 1;
    check(e >>> PTE_PFN_SHIFT, vpn, vma, vma.index(vpn), huge, migration);
  };
  const tableOps: MmWalkOps = {
    pmdEntry(_pt, _pmdIdx, e, vpn) {
      entry(e, vpn, true);
    },
    pteEntry(_pt, _slot, e, vpn) {
      entry(e, vpn, false);
    },
  };
  for (const proc of k.processes.values()) {
    pid = proc.pid;
    rss = 0;
    for (vma of proc.mm.vmas) walkPageRange(proc.mm.pt, vma.startVpn, vma.endVpn, tableOps);
    if (proc.mm.rss !== rss)
      broken(k, -1, `pid ${pid}: its rss counter is ${proc.mm.rss} but its page tables map ${rss} pages`);
  }
  checkOwnerTrees(k);
  if (k.hstate.nrHugePages) checkHugetlbMappings(k);
  for (const m of k.mappings) {
    if (!m?.pageCache) continue;
    m.pageCache.forEach((pfn, index) => {
      if (free[pfn]) broken(k, pfn, `shmem page cache index ${index} holds a free frame`);
      const head = p.head(pfn);
      if (p.mapping[head] !== m.id || p.index[head]! + (pfn - head) !== index)
        broken(k, pfn, `shmem page cache index ${index} disagrees with the folio's rmap owner`);
    });
  }
  for (let pfn = 0; pfn < n; ) {
    if (free[pfn] || p.flags[pfn]! & PG_tail) {
      pfn++;
      continue;
    }
    if (p.mapcount[pfn] !== mapped[pfn])
      broken(k, pfn, `mapcount ${p.mapcount[pfn]} but rmap finds ${mapped[pfn]} mappings`);
    const order = p.flags[pfn]! & PG_head ? p.order[pfn]! : 0;
    const cache = k.mappingOf(pfn)?.pageCache ? 1 << order : 0;
    if (p.refcount[pfn]! < mapped[pfn]! + cache)
      broken(k, pfn, `refcount ${p.refcount[pfn]} is below mappings ${mapped[pfn]} + page cache ${cache}`);
    pfn += 1 << order;
  }
  checkLru(k, free);
  checkVmstat(k);
}

/**
 * The LRU lists (lru.ts): each list is well linked and holds only heads of allocated folios of
 * its node whose flags name that list (PG_lru set, not isolated); its page count is its
 * lruvec's; every PG_lru folio is on exactly one list, every anon or shmem folio in use (an rmap
 * owner) is on one or isolated, never both; NR_ISOLATED_ANON adds up the isolated ones per node.
 */
function checkLru(k: Kernel, free: Uint8Array): void {
  const p = k.pages;
  const v = k.lru;
  const n = k.nrPages;
  const linked = new Uint8Array(n);
  for (let nid = 0; nid < k.nodes.length; nid++) {
    for (let lru = 0; lru < NR_LRU_LISTS; lru++) {
      const l = nid * NR_LRU_LISTS + lru;
      const name = `node ${nid} ${lruNames[lru]} list`;
      let pages = 0;
      let prev = -1;
      for (let pfn = v.first[l]!; pfn >= 0; pfn = p.next[pfn]!) {
        if (pfn >= n) broken(k, -1, `${name} links to pfn ${pfn}, which is not RAM`);
        if (linked[pfn]) broken(k, pfn, `on the ${name} twice, or on two lists`);
        linked[pfn] = 1;
        const f = p.flags[pfn]!;
        if (free[pfn] || f & (PG_tail | PG_hugetlb | PG_isolated) || !(f & PG_lru))
          broken(k, pfn, `on the ${name} but not a PG_lru folio head (free, tail, hugetlb or isolated)`);
        if (folioLruList(f) !== lru)
          broken(k, pfn, `on the ${name} but its flags name ${lruNames[folioLruList(f)]}`);
        if (k.nodeOf(pfn) !== nid) broken(k, pfn, `on the ${name} but on node ${k.nodeOf(pfn)}`);
        if (p.prev[pfn] !== prev) broken(k, pfn, `${name} back link is wrong`);
        pages += k.folioOrder(pfn) ? 1 << k.folioOrder(pfn) : 1;
        prev = pfn;
      }
      if (v.last[l] !== prev) broken(k, -1, `${name} ends at ${v.last[l]}, its links end at ${prev}`);
      if (v.nrPages[l] !== pages)
        broken(k, -1, `${name} holds ${pages} pages, its lruvec counts ${v.nrPages[l]}`);
    }
  }
  const isolated = new Float64Array(k.nodes.length);
  for (let pfn = 0; pfn < n; ) {
    const f = p.flags[pfn]!;
    const nr = f & PG_head ? 1 << p.order[pfn]! : 1;
    if (free[pfn] || f & PG_hugetlb) {
      pfn += free[pfn] ? 1 : nr;
      continue;
    }
    if (f & PG_lru && !linked[pfn]) broken(k, pfn, 'PG_lru folio on no LRU list');
    if (f & PG_lru && f & PG_isolated) broken(k, pfn, 'folio both on an LRU and isolated');
    if (p.mapping[pfn] && !(f & (PG_lru | PG_isolated)))
      broken(k, pfn, 'anon or shmem folio in use on no LRU and not isolated');
    if (f & PG_isolated) isolated[k.nodeOf(pfn)]! += nr;
    pfn += nr;
  }
  isolated.forEach((pages, nid) => {
    if (v.nrIsolated[nid] !== pages)
      broken(
        k,
        -1,
        `node ${nid}: ${pages} pages isolated from the LRU, nr_isolated_anon counts ${v.nrIsolated[nid]}`,
      );
  });
}

/**
 * The hugetlb pool (mm/hugetlb.c's counters): every free folio is on its node's free list once,
 * frozen (refcount 0) and unmapped, and on no buddy free list; every hugetlb folio is an order-9
 * head on no LRU; the per-node and global counts agree with the folios; reservations fit the free
 * pages and surplus pages the pool. Returns the free folios' heads.
 */
function checkHugetlbPool(k: Kernel, free: Uint8Array): Set<number> {
  const h = k.hstate;
  const p = k.pages;
  const poolFree = new Set<number>();
  const nr = new Array<number>(k.nodes.length).fill(0);
  for (let pfn = 0; pfn < k.nrPages; pfn++) {
    if (!(p.flags[pfn]! & PG_hugetlb)) continue;
    if (free[pfn]) broken(k, pfn, 'hugetlb folio on a buddy free list');
    if (!(p.flags[pfn]! & PG_head) || p.order[pfn] !== HUGETLB_ORDER)
      broken(k, pfn, `hugetlb page that is not the head of an order-${HUGETLB_ORDER} folio`);
    if (p.flags[pfn]! & PG_lru) broken(k, pfn, 'hugetlb folio on an LRU');
    nr[k.nodeOf(pfn)]!++;
  }
  let freeTotal = 0;
  let surplusTotal = 0;
  h.freelists.forEach((list, nid) => {
    for (const head of list) {
      if (poolFree.has(head)) broken(k, head, 'hugetlb folio twice on the free lists');
      poolFree.add(head);
      if (!(p.flags[head]! & PG_hugetlb))
        broken(k, head, `on node ${nid}'s hugetlb free list but no hugetlb folio`);
      if (k.nodeOf(head) !== nid)
        broken(k, head, `on node ${nid}'s hugetlb free list but on node ${k.nodeOf(head)}`);
      if (
        p.refcount[head] !== 0 ||
        p.mapcount[head] !== 0 ||
        p.mapping[head] !== 0 ||
        p.flags[head]! & PG_isolated
      )
        broken(k, head, 'free hugetlb folio with references, mappings, an owner or isolated');
    }
    const node = `hugetlb node ${nid}`;
    if (h.freeHugePagesNode[nid] !== list.length)
      broken(
        k,
        -1,
        `${node}: free_huge_pages_node ${h.freeHugePagesNode[nid]}, free list holds ${list.length}`,
      );
    if (h.nrHugePagesNode[nid] !== nr[nid])
      broken(k, -1, `${node}: nr_huge_pages_node ${h.nrHugePagesNode[nid]}, ${nr[nid]} hugetlb folios`);
    if (h.surplusHugePagesNode[nid]! < 0 || h.surplusHugePagesNode[nid]! > nr[nid]!)
      broken(k, -1, `${node}: surplus_huge_pages_node ${h.surplusHugePagesNode[nid]} of ${nr[nid]} pages`);
    freeTotal += list.length;
    surplusTotal += h.surplusHugePagesNode[nid]!;
  });
  const total = nr.reduce((a, b) => a + b, 0);
  if (h.nrHugePages !== total || h.freeHugePages !== freeTotal || h.surplusHugePages !== surplusTotal)
    broken(
      k,
      -1,
      `hugetlb: nr/free/surplus_huge_pages ${h.nrHugePages}/${h.freeHugePages}/${h.surplusHugePages}, nodes add up to ${total}/${freeTotal}/${surplusTotal}`,
    );
  if (h.resvHugePages > h.freeHugePages)
    broken(k, -1, `hugetlb: ${h.resvHugePages} pages reserved but ${h.freeHugePages} free`);
  for (const head of h.temporary)
    if (!(p.flags[head]! & PG_hugetlb) || poolFree.has(head))
      broken(k, head, 'temporary hugetlb folio that is not a hugetlb folio in use');
  return poolFree;
}

/**
 * The rmap owners' trees against the areas: every area is in the tree of each live owner of its
 * chain (its own last), the trees hold nothing else, and an owner no area is linked into is gone.
 */
function checkOwnerTrees(k: Kernel): void {
  let links = 0;
  for (const proc of k.processes.values()) {
    for (const vma of proc.mm.vmas) {
      const where = `pid ${proc.pid} area at page ${vma.startVpn}`;
      if (vma.owners[vma.owners.length - 1] !== vma.mapping)
        broken(k, -1, `${where}: its own rmap owner ${vma.mapping.id} does not end its chain`);
      for (const o of vma.owners) {
        if (k.mappings[o.id] !== o) broken(k, -1, `${where}: rmap owner ${o.id} of its chain was released`);
        if (!o.vmas.has(vma)) broken(k, -1, `${where}: not in the tree of rmap owner ${o.id} of its chain`);
      }
      links += vma.owners.length;
    }
  }
  let held = 0;
  for (const m of k.mappings) {
    if (!m) continue;
    if (m.vmas.size === 0)
      broken(k, -1, `rmap owner ${m.id} has no area linked into it but was not released`);
    held += m.vmas.size;
  }
  if (held !== links) broken(k, -1, `rmap owners' trees hold ${held} areas, the areas' chains link ${links}`);
}

/** Hugetlb areas map only hugetlb folios, by PMD; other areas never map one. */
function checkHugetlbMappings(k: Kernel): void {
  const p = k.pages;
  let vma: Vma;
  const ops: MmWalkOps = {
    pmdEntry(_pt, _pmdIdx, e, vpn) {
      const pfn = e >>> PTE_PFN_SHIFT;
      if (pfn !== ZERO_PFN && !(p.flags[pfn]! & PG_hugetlb) !== !vma.hugetlb)
        broken(
          k,
          pfn,
          `page ${vpn} maps ${vma.hugetlb ? 'a folio that is not hugetlb in a hugetlb area' : 'a hugetlb folio outside a hugetlb area'}`,
        );
    },
    pteEntry(_pt, _slot, e, vpn) {
      const pfn = e >>> PTE_PFN_SHIFT;
      if (vma.hugetlb || (pfn !== ZERO_PFN && p.flags[p.head(pfn)]! & PG_hugetlb))
        broken(
          k,
          pfn === ZERO_PFN ? -1 : pfn,
          `page ${vpn}: a PTE maps hugetlb memory or lies in a hugetlb area`,
        );
    },
  };
  for (const proc of k.processes.values())
    for (vma of proc.mm.vmas) walkPageRange(proc.mm.pt, vma.startVpn, vma.endVpn, ops);
}

/**
 * The gauges the nodes count as folios change (vmstat.ts folioModStat, rmap.ts folioModMapcount)
 * equal what a scan of every folio finds: NR_MLOCK, NR_ANON_MAPPED and NR_ANON_THPS over anon
 * folios with an rmap owner, NR_SHMEM and NR_SHMEM_THPS over shmem folios with one, NR_FILE_MAPPED
 * over those mapped, NR_HUGETLB over hugetlb folios in use (refcount > 0).
 */
function checkVmstat(k: Kernel): void {
  const p = k.pages;
  for (const node of k.nodes) {
    const want = new Float64Array(NR_VM_NODE_STAT_ITEMS);
    let hugetlb = 0;
    for (let pfn = node.startPfn; pfn < node.endPfn; ) {
      const f = p.flags[pfn]!;
      const nr = f & PG_head ? 1 << p.order[pfn]! : 1;
      if (f & PG_hugetlb && p.refcount[pfn]! > 0) hugetlb += nr;
      if (f & PG_swapbacked && p.mapping[pfn]) {
        const thp = f & PG_head && p.order[pfn] === HPAGE_PMD_ORDER ? 1 : 0;
        if (f & PG_mlocked) want[NR_MLOCK]! += nr;
        if (f & PG_anon) {
          want[NR_ANON_MAPPED]! += nr;
          want[NR_ANON_THPS]! += thp;
        } else {
          want[NR_SHMEM]! += nr;
          want[NR_SHMEM_THPS]! += thp;
          if (p.mapcount[pfn]! > 0) want[NR_FILE_MAPPED]! += nr;
        }
      }
      pfn += nr;
    }
    want.forEach((n, item) => {
      if (node.vmStat[item] !== n)
        broken(
          k,
          -1,
          `node ${node.nid}: the folios add up to ${nodeStatNames[item]} ${n}, the node counts ${node.vmStat[item]}`,
        );
    });
    if (nrHugetlbNode(k, node.nid) !== hugetlb)
      broken(
        k,
        -1,
        `node ${node.nid}: hugetlb folios in use hold ${hugetlb} pages, nr_hugetlb is ${nrHugetlbNode(k, node.nid)}`,
      );
  }
}
