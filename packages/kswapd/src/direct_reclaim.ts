import { MIGRATE_MOVABLE, zoneNames } from '@pagemig/core';
import { type AllocRequest, highestZoneidxFor, zonelistOf } from '@pagemig/core/internal';
import { gfpText, traceDirectReclaimBegin, traceDirectReclaimEnd } from './tracepoints.js';
import { DEF_PRIORITY, newScanControl, type ReclaimEnv, SWAP_CLUSTER_MAX, shrinkNode } from './vmscan.js';

type AllocstallEvent = 'allocstall_dma' | 'allocstall_dma32' | 'allocstall_normal' | 'allocstall_movable';

/**
 * try_to_free_pages / do_try_to_free_pages for a request that failed: shrinks each node of its
 * zonelist once per priority (shrink_zones), from DEF_PRIORITY down to 0, until SWAP_CLUSTER_MAX
 * pages were reclaimed; counts allocstall_<zone> for the request's highest zone. A pass that
 * reclaimed nothing because the active lists were not aged retries once with forced deactivation.
 * Resolves to the pages reclaimed (demoted) for the allocator's retry.
 */
export async function tryToFreePages(
  env: ReclaimEnv,
  req: AllocRequest,
  stop: () => boolean,
): Promise<number> {
  const k = env.kernel;
  const mt = req.mt ?? MIGRATE_MOVABLE;
  const reclaimIdx = highestZoneidxFor(mt);
  const nodes: number[] = [];
  for (const zone of zonelistOf(k.nodes, req)) {
    if (zone.zoneIdx <= reclaimIdx && !nodes.includes(zone.nid)) nodes.push(zone.nid);
  }
  traceDirectReclaimBegin(k, req.order, gfpText(req.gfp, mt));
  for (const nid of nodes) env.nodeStats(nid).directReclaims++;
  const sc = newScanControl('direct', req.order, reclaimIdx, SWAP_CLUSTER_MAX);
  const allocstall = `allocstall_${zoneNames[reclaimIdx]!.toLowerCase()}` as AllocstallEvent;
  for (;;) {
    k.count(allocstall);
    do {
      sc.nrScanned = 0;
      for (const nid of nodes) {
        if (stop()) break;
        await shrinkNode(env, nid, sc, stop);
      }
      if (sc.nrReclaimed >= sc.nrToReclaim || stop()) break;
    } while (--sc.priority >= 0);
    if (sc.nrReclaimed || !sc.skippedDeactivate || sc.forceDeactivate || stop()) break;
    sc.priority = DEF_PRIORITY;
    sc.forceDeactivate = true;
    sc.skippedDeactivate = false;
  }
  traceDirectReclaimEnd(k, sc.nrReclaimed);
  return sc.nrReclaimed;
}
