import { EINVAL, HPAGE_PMD_ORDER, kernelError, MAX_PAGE_ORDER, NR_PAGE_ORDERS } from '@pagemig/core';
import type { Kernel, PgData, Zone } from '@pagemig/core/internal';

/** struct contig_page_info (mm/vmstat.c): what the free lists say about one request order. */
export interface ContigPageInfo {
  /** Σ nr_free[k]·2^k */
  freePages: number;
  /** Σ nr_free[k] */
  freeBlocksTotal: number;
  /** Σ_{k ≥ order} nr_free[k]·2^(k−order): blocks of the request's size the free lists hold */
  freeBlocksSuitable: number;
}

/**
 * fill_contig_page_info from free block counts per order (`nrFree[k]` = free_area[k].nr_free),
 * so the formulas can be checked on any distribution, not only a live zone's.
 */
export function contigPageInfo(nrFree: ArrayLike<number>, suitableOrder: number): ContigPageInfo {
  let freePages = 0;
  let freeBlocksTotal = 0;
  let freeBlocksSuitable = 0;
  for (let order = 0; order < nrFree.length; order++) {
    const blocks = nrFree[order] ?? 0;
    freeBlocksTotal += blocks;
    freePages += blocks * 2 ** order;
    if (order >= suitableOrder) freeBlocksSuitable += blocks * 2 ** (order - suitableOrder);
  }
  return { freePages, freeBlocksTotal, freeBlocksSuitable };
}

/** free_area[k].nr_free for every order of a zone. */
export function zoneNrFree(zone: Zone): number[] {
  const out: number[] = [];
  for (let o = 0; o < NR_PAGE_ORDERS; o++) out.push(zone.nrFree(o));
  return out;
}

/**
 * __fragmentation_index: 0 when there is nothing free, −1000 when a block of `order` is free
 * already, otherwise `1000 − (1000 + free_pages·1000/2^order) / free_blocks_total` in integer
 * arithmetic. Towards 0 an allocation of `order` would fail for lack of memory, towards 1000
 * because of fragmentation.
 */
export function fragmentationIndexOf(info: ContigPageInfo, order: number): number {
  if (order > MAX_PAGE_ORDER) return 0;
  if (!info.freeBlocksTotal) return 0;
  if (info.freeBlocksSuitable) return -1000;
  const requested = 2 ** order;
  return 1000 - Math.floor((1000 + Math.floor((info.freePages * 1000) / requested)) / info.freeBlocksTotal);
}

/** fragmentation_index(zone, order) (mm/vmstat.c). */
export function fragmentationIndex(zone: Zone, order: number): number {
  return fragmentationIndexOf(contigPageInfo(zoneNrFree(zone), order), order);
}

/** extfrag_for_order from an info: percent of free pages in blocks smaller than `order`. */
export function extfragOf(info: ContigPageInfo, order: number): number {
  if (info.freePages === 0) return 0;
  return Math.floor(((info.freePages - info.freeBlocksSuitable * 2 ** order) * 100) / info.freePages);
}

/** extfrag_for_order(zone, order): 0..100, the share of free memory unusable for `order`. */
export function extfragForOrder(zone: Zone, order: number): number {
  return extfragOf(contigPageInfo(zoneNrFree(zone), order), order);
}

/** fragmentation_score_zone: extfrag_for_order(zone, COMPACTION_HPAGE_ORDER). */
export function fragmentationScoreZone(zone: Zone): number {
  return extfragForOrder(zone, HPAGE_PMD_ORDER);
}

/** fragmentation_score_zone_weighted: score · present / (node_present + 1), integer division. */
export function fragmentationScoreZoneWeighted(zone: Zone, node: PgData): number {
  return Math.floor((zone.present * fragmentationScoreZone(zone)) / (node.nrPages + 1));
}

/** fragmentation_score_node: the weighted zone scores summed over the node's populated zones. */
export function fragmentationScoreNode(node: PgData): number {
  let score = 0;
  for (const zone of node.zones) if (zone.present > 0) score += fragmentationScoreZoneWeighted(zone, node);
  return score;
}

/**
 * fragmentation_score_wmark: low = 100 − proactiveness; high = min(low + min(10, low/2), 100).
 * Proactiveness 20 → 80/90, 50 → 50/60, 100 → 0/0.
 */
export function fragmentationScoreWmark(proactiveness: number, low: boolean): number {
  const wmarkLow = 100 - proactiveness;
  const leeway = Math.min(10, Math.floor(wmarkLow / 2));
  return low ? wmarkLow : Math.min(wmarkLow + leeway, 100);
}

/** One node's fragmentation picture, as kcompactd's proactive check sees it. */
export interface NodeFragmentation {
  nid: number;
  /** fragmentation_score_node */
  score: number;
  /** The proactive thresholds for the current vm.compaction_proactiveness. */
  wmarkLow: number;
  wmarkHigh: number;
  zones: {
    zone: string;
    /** fragmentation_score_zone (unweighted) */
    score: number;
    /** fragmentation_index for order 9 (−1000 .. 1000) */
    fragindex: number;
    freePages: number;
  }[];
}

/** The fragmentation score, thresholds and per-zone index of a node. */
export function nodeFragmentation(k: Kernel, nid: number): NodeFragmentation {
  const node = k.nodes[nid];
  if (!node) throw kernelError(EINVAL, `node ${nid} does not exist (nodes 0..${k.nodes.length - 1})`);
  const p = k.vm.compaction_proactiveness;
  return {
    nid,
    score: fragmentationScoreNode(node),
    wmarkLow: fragmentationScoreWmark(p, true),
    wmarkHigh: fragmentationScoreWmark(p, false),
    zones: node.zones.map((z) => ({
      zone: z.type,
      score: fragmentationScoreZone(z),
      fragindex: fragmentationIndex(z, HPAGE_PMD_ORDER),
      freePages: z.freePages,
    })),
  };
}
