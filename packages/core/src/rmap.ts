import { PageCache } from './filemap.js';
import { VmaIntervalTree } from './interval_tree.js';
import type { Kernel } from './kernel.js';
import type { Mm, Vma } from './mm.js';
import { PMD_HUGE, PTE_PFN_SHIFT, pteIsMigration, pteIsPresent } from './pagetable.js';
import { type MmWalkOps, pageEntry, walkPageRange } from './pagewalk.js';
import { folioModMapped } from './vmstat.js';

/**
 * An rmap owner: the anon_vma of private anonymous memory, or the shmem object behind shared
 * anonymous memory (with its page cache). A folio records its owner (`page.mapping`) and its page
 * offset in it (`page.index`); every VMA that may map the owner's folios is listed here (an anon
 * owner's area and the areas forked from it, which link it in their chains: `Vma.owners`), so a
 * folio's mappings are found from the folio alone (mm/rmap.c).
 */
export class Mapping {
  /** The VMAs mapping this owner, by the page offsets they map. */
  readonly vmas = new VmaIntervalTree();
  /** shmem only: the pages cached by page offset. */
  readonly pageCache: PageCache | null;

  constructor(
    readonly id: number,
    readonly kind: 'anon' | 'shmem',
  ) {
    this.pageCache = kind === 'shmem' ? new PageCache() : null;
  }
}

/** One mapping of a folio found by the rmap walk. */
export interface RmapHit {
  mm: Mm;
  vma: Vma;
  /** Index of the entry in `mm.pt.pmd` (huge) or `mm.pt.pte`. */
  slot: number;
  huge: boolean;
  /** First virtual page the entry maps. */
  vpn: number;
}

// One hit record reused by every walk (walks do not nest), so a walk allocates nothing.
const walkHit: RmapHit = {
  mm: undefined as unknown as Mm,
  vma: undefined as unknown as Vma,
  slot: 0,
  huge: false,
  vpn: 0,
};

// The walk's target and visitor live here, not in a closure, so a walk allocates nothing.
let wIndex = 0;
let wHead = 0;
let wNr = 0;
let wVisit: (hit: RmapHit) => unknown = () => undefined;
let wStop = false;
const rmapOps: MmWalkOps = {
  pmdEntry(_pt, pmdIdx, entry, vpn) {
    if (wStop || entry >>> PTE_PFN_SHIFT !== wHead) return;
    walkHit.slot = pmdIdx;
    walkHit.huge = true;
    walkHit.vpn = vpn;
    if (wVisit(walkHit)) wStop = true;
  },
  pteEntry(_pt, slot, entry, vpn) {
    if (wStop || !(pteIsPresent(entry) || pteIsMigration(entry))) return;
    const pfn = entry >>> PTE_PFN_SHIFT;
    if (pfn < wHead || pfn >= wHead + wNr) return;
    walkHit.slot = slot;
    walkHit.huge = false;
    walkHit.vpn = vpn;
    if (wVisit(walkHit)) wStop = true;
  },
};

/** The part of one VMA that maps the folio: its entries go to the visitor. */
function walkVma(vma: Vma): boolean {
  const lo = Math.max(wIndex, vma.pgoff);
  const hi = Math.min(wIndex + wNr, vma.pgoff + vma.npages);
  walkHit.mm = vma.mm;
  walkHit.vma = vma;
  const vpn = vma.startVpn + (lo - vma.pgoff);
  const pt = vma.mm.pt;
  if (hi - lo === 1) {
    // One page (a base folio): its entry directly, without a range walk.
    const e = pageEntry(pt, vpn);
    if (e & PMD_HUGE) rmapOps.pmdEntry!(pt, vpn >>> 9, e, vpn & ~511);
    else if (e !== 0) rmapOps.pteEntry!(pt, pt.pteIndex(vpn), e, vpn);
  } else walkPageRange(pt, vpn, vpn + (hi - lo), rmapOps);
  return wStop;
}

/**
 * rmap_walk: calls `visit` for every PMD or PTE (present, PROT_NONE or migration entry) that maps a
 * page of the folio [head, head + nr). `visit` may rewrite the entry; returning true ends the walk.
 */
export function rmapWalk(
  mapping: Mapping,
  index: number,
  head: number,
  nr: number,
  visit: (hit: RmapHit) => unknown,
): void {
  wIndex = index;
  wHead = head;
  wNr = nr;
  wVisit = visit;
  wStop = false;
  // Only the VMAs that map the folio's offsets: O(log n + k) in the owner's interval tree; an
  // owner with one VMA (most of them) skips the tree.
  const only = mapping.vmas.single();
  if (only) {
    if (only.pgoff < index + nr && only.pgoff + only.npages > index) walkVma(only);
  } else mapping.vmas.overlapping(index, index + nr, walkVma);
}

/**
 * folio_move_anon_rmap: an anon folio that a write fault reuses as `vma`'s alone joins the area's
 * own anon_vma, whose tree holds only this area and its descendants, so later rmap walks of the
 * folio skip the areas of its former owner (e.g. a fork's siblings). Its index stays: a chain
 * shares page offsets.
 */
export function folioMoveAnonRmap(k: Kernel, head: number, vma: Vma): void {
  k.pages.mapping[head] = anonVmaPrepare(k, vma).id;
}

/**
 * anon_vma_prepare: the owner `vma`'s new folios go to. A forked area gets its own here, at its
 * first new folio, linked last into its chain; the areas split from it before then make their own.
 */
export function anonVmaPrepare(k: Kernel, vma: Vma): Mapping {
  if (!vma.ownPending) return vma.mapping;
  const own = k.newMapping('anon');
  vma.ownPending = false;
  vma.mapping = own;
  vma.owners = [...vma.owners, own];
  own.vmas.insert(vma);
  return own;
}

/** folio_maybe_mapped_shared: whether more than one address space maps the folio. */
export function folioMaybeMappedShared(k: Kernel, head: number): boolean {
  const p = k.pages;
  if (p.mapcount[head]! <= 1) return false;
  const mapping = k.mappingOf(head);
  if (!mapping) return false;
  let first: Mm | null = null;
  let shared = false;
  rmapWalk(mapping, p.index[head]!, head, 1 << k.folioOrder(head), (hit) => {
    if (first === null) first = hit.mm;
    else if (hit.mm !== first) shared = true;
    return shared;
  });
  return shared;
}

/**
 * The mapcount side of folio_add_*_rmap and folio_remove_rmap_*: `delta` more (or, negative,
 * fewer) page-table entries map the folio. A shmem folio's first mapping and its last one move it
 * into and out of nr_mapped (__folio_mod_stat), so every mapcount change of a folio that may be
 * shmem goes through here. Hugetlb folios are never in nr_mapped: their mapcounts change directly.
 */
export function folioModMapcount(k: Kernel, head: number, delta: number): void {
  const mc = k.pages.mapcount;
  const old = mc[head]!;
  const now = old + delta;
  mc[head] = now;
  if (old > 0 !== now > 0) folioModMapped(k, head, now > 0 ? 1 : -1);
}
