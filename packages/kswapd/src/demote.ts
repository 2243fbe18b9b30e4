import { MIGRATE_MOVABLE, MigrateMode, type MigrationResult } from '@pagemig/core';
import {
  type Kernel,
  migratePages,
  NUMA_NO_NODE,
  nextDemotionNode,
  nodeGetAllowedTargets,
} from '@pagemig/core/internal';

/** Which reclaimer demotes: pgdemote_kswapd or pgdemote_direct (reclaimer_offset). */
export type ReclaimOrigin = 'kswapd' | 'direct';

/**
 * can_demote (mm/vmscan.c): demotion is enabled (/sys/kernel/mm/numa/demotion_enabled) and the
 * node has a demotion target. There is no memcg, so no cgroup can forbid the target.
 */
export function canDemote(k: Kernel, nid: number): boolean {
  return k.demotionEnabled && nextDemotionNode(k, nid) !== NUMA_NO_NODE;
}

/**
 * Why can_reclaim_anon_pages is false for node `nid` (the machine has no swap device, so anon
 * memory is reclaimable only by demotion), or null when it is true.
 */
export function anonUnreclaimableReason(k: Kernel, nid: number): string | null {
  if (nextDemotionNode(k, nid) === NUMA_NO_NODE)
    return `no demotion target for node ${nid} (lowest memory tier) and no swap device`;
  if (!k.demotionEnabled)
    return `demotion is disabled (/sys/kernel/mm/numa/demotion_enabled is false) and there is no swap device`;
  return null;
}

/**
 * alloc_demote_folio: the preferred target first with __GFP_THISNODE, then any node of the lower
 * tiers (node_get_allowed_targets). The mask is GFP_NOWAIT-like: no direct reclaim or compaction
 * (reclaim runs with PF_MEMALLOC), but a target below its low watermark wakes its kswapd.
 */
function allocDemoteFolio(k: Kernel, target: number, allowed: readonly number[]) {
  return (_src: number, order: number): number => {
    const pfn = k.allocFolio({ order, nid: target, thisNode: true, mt: MIGRATE_MOVABLE });
    if (pfn >= 0 || allowed.length === 0) return pfn;
    return k.allocFolio({ order, nid: target, allowed, mt: MIGRATE_MOVABLE });
  };
}

/**
 * demote_folio_list: one migrate_pages() call (MIGRATE_ASYNC, MR_DEMOTION) of the isolated folios
 * `heads` of node `nid` to next_demotion_node, through whatever migrator is routed for demotion.
 * The engine counts pgdemote_<origin> and puts back (on their LRU list) the folios it could not
 * move. Null when the node has no target: nothing was touched.
 */
export function demoteFolioList(
  k: Kernel,
  nid: number,
  heads: readonly number[],
  origin: ReclaimOrigin,
  copyTimeoutMs: number | undefined,
): Promise<MigrationResult> | null {
  const target = nextDemotionNode(k, nid);
  if (target === NUMA_NO_NODE || heads.length === 0) return null;
  const allowed = nodeGetAllowedTargets(k, nid);
  return migratePages(k, heads, {
    node: target,
    mode: MigrateMode.MIGRATE_ASYNC,
    reason: 'demotion',
    demoteOrigin: origin,
    alloc: allocDemoteFolio(k, target, allowed),
    ...(copyTimeoutMs === undefined ? {} : { copyTimeoutMs }),
  });
}
