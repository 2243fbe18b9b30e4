import { type Kernel, NUMA_BALANCING_MEMORY_TIERING, nextDemotionNode } from '@pagemig/core/internal';
import {
  canReclaimAnon,
  inactiveIsLow,
  newScanControl,
  type ReclaimEnv,
  type ScanControl,
  SWAP_CLUSTER_MAX,
  shrinkActiveList,
  shrinkNode,
} from './vmscan.js';

/** enum zone_watermarks: zone.watermark[] indices. */
const WMARK_HIGH = 2;
const WMARK_PROMO = 3;

/**
 * pgdat_balanced: some managed zone up to `highestZoneidx` meets its high watermark (the promo
 * watermark while NUMA_BALANCING_MEMORY_TIERING is on, so promotions find room) for `order`. A
 * node without such a zone needs no balancing.
 */
export function pgdatBalanced(k: Kernel, nid: number, order: number, highestZoneidx: number): boolean {
  const wmark = k.kern.numa_balancing & NUMA_BALANCING_MEMORY_TIERING ? WMARK_PROMO : WMARK_HIGH;
  let eligible = false;
  for (const zone of k.nodes[nid]!.zones) {
    if (zone.zoneIdx > highestZoneidx || zone.managed === 0) continue;
    eligible = true;
    if (zone.watermarkOk(order, zone.watermark[wmark]!)) return true;
  }
  return !eligible;
}

/** compact_gap: twice the request, the free pages compaction needs to make an order-`order` block. */
function compactGap(order: number): number {
  return 2 << order;
}

/**
 * kswapd_shrink_node: reclaims towards the high watermarks of the eligible zones (at least
 * SWAP_CLUSTER_MAX each); a high-order request falls back to order 0 once compact_gap was
 * reclaimed. True when enough was scanned that the priority need not rise.
 */
async function kswapdShrinkNode(
  env: ReclaimEnv,
  nid: number,
  sc: ScanControl,
  stop: () => boolean,
): Promise<boolean> {
  const k = env.kernel;
  const before = sc.nrReclaimed;
  sc.nrToReclaim = 0;
  for (const zone of k.nodes[nid]!.zones) {
    if (zone.zoneIdx > sc.reclaimIdx || zone.managed === 0) continue;
    sc.nrToReclaim += Math.max(zone.watermark[WMARK_HIGH]!, SWAP_CLUSTER_MAX);
  }
  await shrinkNode(env, nid, sc, stop);
  if (sc.order && sc.nrReclaimed >= compactGap(sc.order)) sc.order = 0;
  return Math.max(sc.nrScanned, sc.nrReclaimed - before) >= sc.nrToReclaim;
}

/**
 * balance_pgdat: from DEF_PRIORITY down to 1, ages the anon lists (kswapd_age_node) and shrinks
 * the node until some eligible zone is balanced. A run that went through every priority and
 * reclaimed nothing counts a kswapd failure. Returns the order kswapd finished reclaiming at.
 * (Watermark boosting is not modelled: no zone is ever boosted here.)
 */
export async function balancePgdat(
  env: ReclaimEnv,
  nid: number,
  order: number,
  highestZoneidx: number,
  stop: () => boolean,
): Promise<number> {
  const k = env.kernel;
  const ns = env.nodeStats(nid);
  k.count('pageoutrun');
  ns.balanceRuns++;
  const sc = newScanControl('kswapd', order, highestZoneidx, 0);
  do {
    const before = sc.nrReclaimed;
    let raisePriority = true;
    if (pgdatBalanced(k, nid, sc.order, highestZoneidx)) return sc.order;
    // kswapd_age_node: background aging of the anon lists when they can be reclaimed at all.
    if (canReclaimAnon(k, nid) && inactiveIsLow(k, nid)) shrinkActiveList(env, nid, SWAP_CLUSTER_MAX, sc);
    sc.nrScanned = 0;
    if (await kswapdShrinkNode(env, nid, sc, stop)) raisePriority = false;
    if (stop()) return sc.order;
    if (raisePriority || sc.nrReclaimed === before) sc.priority--;
  } while (sc.priority >= 1);
  if (!sc.nrReclaimed) {
    ns.kswapdFailures++;
    ns.failedRuns++;
    ns.reclaimFailed ??= failureReason(k, nid);
  }
  return sc.order;
}

/** Why a run reclaimed nothing although the node could demote (shrink_node names the other cases). */
function failureReason(k: Kernel, nid: number): string {
  return `node ${nid}: nothing demoted to node ${nextDemotionNode(k, nid)} (every scanned folio was referenced, or the lower tier had no free memory)`;
}
