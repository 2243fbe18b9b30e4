import { type Kernel, MIGRATE_MOVABLE, type Zone, zoneNames } from '@pagemig/core';
import {
  type CompactZoneOptions,
  type CompactZoneResult,
  compactZone,
  PAGE_ALLOC_COSTLY_ORDER,
  zoneCompactState,
} from './compaction.js';
import { compactionDeferReset, compactionDeferred, deferCompaction } from './defer.js';
import {
  CompactPriority,
  type CompactPriorityValue,
  CompactResult,
  type CompactResultValue,
  type CompactStatusName,
  compactResultNames,
  DEF_COMPACT_PRIORITY,
  INIT_COMPACT_PRIORITY,
  MIN_COMPACT_PRIORITY,
  traceTryToCompactPages,
} from './tracepoints.js';

/** An allocation that may compact (the arguments of m.kernel.allocFolio plus the gfp text). */
export interface CompactAllocRequest {
  order: number;
  /** Preferred node. */
  nid: number;
  /** Migratetype of the request; default MIGRATE_MOVABLE. */
  mt?: number;
  /** __GFP_THISNODE */
  thisNode?: boolean;
  allowed?: readonly number[] | null;
  /** The gfp_mask as mm_compaction_try_to_compact_pages prints it. */
  gfp?: string;
}

/** One __alloc_pages_direct_compact attempt. */
export interface DirectCompactAttempt {
  priority: CompactPriorityValue;
  /** try_to_compact_pages' result (the largest over the zones tried). */
  status: CompactStatusName;
  zones: CompactZoneResult[];
  /** Whether the allocation succeeded right after. */
  allocated: boolean;
}

export interface CompactAllocResult {
  /** Head pfn of the folio, or -1. */
  pfn: number;
  /** The direct compaction attempts made (none when the fast path succeeded). */
  attempts: DirectCompactAttempt[];
}

/** Hooks of the slow path that belong to other threads (kswapd). */
export interface SlowpathHooks {
  /** wake_all_kswapds: called once per node of the zonelist when the fast path failed. */
  wakeKswapd?: (nid: number, order: number, highestZoneidx: number) => void;
  /** Options for every compact_zone of the direct compaction (cluster size, abort, timeout). */
  compact?: Pick<CompactZoneOptions, 'clusterMax' | 'copyTimeoutMs' | 'shouldAbort'>;
}

/** gfp_zone(): a movable request may use ZONE_MOVABLE, anything else up to ZONE_NORMAL. */
export function highestZoneidxFor(mt: number): number {
  return zoneNames.indexOf(mt === MIGRATE_MOVABLE ? 'Movable' : 'Normal');
}

/** The zonelist of a request: preferred node first, then by distance; zones high to low. */
function zonelist(k: Kernel, req: CompactAllocRequest): Zone[] {
  const mt = req.mt ?? MIGRATE_MOVABLE;
  const preferred = k.nodes[req.nid];
  if (!preferred) throw new RangeError(`node ${req.nid} does not exist (nodes 0..${k.nodes.length - 1})`);
  const out: Zone[] = [];
  for (const nid of preferred.fallbackOrder) {
    if (req.thisNode && nid !== req.nid) break;
    if (req.allowed && !req.allowed.includes(nid)) continue;
    const zones = k.nodes[nid]!.zones;
    for (let zi = zones.length - 1; zi >= 0; zi--) {
      const zone = zones[zi]!;
      if (zone.type === 'Movable' && mt !== MIGRATE_MOVABLE) continue;
      out.push(zone);
    }
  }
  return out;
}

/**
 * try_to_compact_pages: compacts each zone of the zonelist for `order` (MIGRATE_ASYNC at
 * COMPACT_PRIO_ASYNC, else MIGRATE_SYNC_LIGHT; SYNC_FULL scans whole zones and ignores hints and
 * block types), skipping deferred zones, until one reports COMPACT_SUCCESS. Sync runs that fail
 * defer the zone; success resets its deferral (alloc_success = false).
 */
export async function tryToCompactPages(
  k: Kernel,
  req: CompactAllocRequest,
  prio: CompactPriorityValue,
  opts: SlowpathHooks['compact'] = {},
): Promise<{ result: CompactResultValue; zones: CompactZoneResult[] }> {
  const order = req.order;
  const mt = req.mt ?? MIGRATE_MOVABLE;
  const highestZoneidx = highestZoneidxFor(mt);
  traceTryToCompactPages(k, order, req.gfp ?? defaultGfp(mt), prio);
  let rc: CompactResultValue = CompactResult.COMPACT_SKIPPED;
  const zones: CompactZoneResult[] = [];
  for (const zone of zonelist(k, req)) {
    if (prio > MIN_COMPACT_PRIORITY && compactionDeferred(k, zone, order)) {
      rc = Math.max(CompactResult.COMPACT_DEFERRED, rc) as CompactResultValue;
      continue;
    }
    const full = prio === MIN_COMPACT_PRIORITY;
    const r = await compactZone(k, zone, {
      ...opts,
      order,
      mode: prio === CompactPriority.COMPACT_PRIO_ASYNC ? 'MIGRATE_ASYNC' : 'MIGRATE_SYNC_LIGHT',
      migratetype: mt,
      direct: true,
      wholeZone: full,
      ignoreSkipHint: full,
      ignoreBlockSuitable: full,
      highestZoneidx,
    });
    zones.push(r);
    rc = Math.max(r.result, rc) as CompactResultValue;
    if (r.result === CompactResult.COMPACT_SUCCESS) {
      // The allocation should succeed here; the allocator confirms with alloc_success = true.
      compactionDeferReset(k, zone, order, false);
      break;
    }
    if (
      prio !== CompactPriority.COMPACT_PRIO_ASYNC &&
      (r.result === CompactResult.COMPACT_COMPLETE || r.result === CompactResult.COMPACT_PARTIAL_SKIPPED)
    )
      deferCompaction(k, zone, order);
  }
  return { result: rc, zones };
}

/** The gfp text of a hugetlb-pool style request (alloc_buddy_hugetlb_folio on one node). */
function defaultGfp(mt: number): string {
  return `${mt === MIGRATE_MOVABLE ? 'GFP_HIGHUSER_MOVABLE' : 'GFP_HIGHUSER'}|__GFP_NOWARN|__GFP_RETRY_MAYFAIL|__GFP_COMP|__GFP_THISNODE`;
}

/**
 * __alloc_pages_direct_compact: try_to_compact_pages, then the free lists again. Counts
 * compact_stall when some zone was compacted (result ≠ skipped), then compact_success or
 * compact_fail by whether the allocation succeeded; success resets the zone's deferral.
 */
async function directCompact(
  k: Kernel,
  req: CompactAllocRequest,
  prio: CompactPriorityValue,
  opts: SlowpathHooks['compact'],
): Promise<{ pfn: number; attempt: DirectCompactAttempt }> {
  const { result, zones } = await tryToCompactPages(k, req, prio, opts);
  const attempt: DirectCompactAttempt = {
    priority: prio,
    status: compactResultNames[result],
    zones,
    allocated: false,
  };
  if (result === CompactResult.COMPACT_SKIPPED) return { pfn: -1, attempt };
  k.count('compact_stall');
  const pfn = k.allocFolio({
    order: req.order,
    nid: req.nid,
    mt: req.mt,
    thisNode: req.thisNode,
    allowed: req.allowed,
  });
  if (pfn >= 0) {
    const zone = k.zoneOf(pfn);
    zoneCompactState(zone).blockskipFlush = false;
    compactionDeferReset(k, zone, req.order, true);
    k.count('compact_success');
    attempt.allocated = true;
    return { pfn, attempt };
  }
  k.count('compact_fail');
  return { pfn: -1, attempt };
}

/** wake_all_kswapds: `wake(nid, order, highestZoneidx)` once per node of the request's zonelist. */
export function wakeAllKswapds(
  k: Kernel,
  req: CompactAllocRequest,
  wake: (nid: number, order: number, highestZoneidx: number) => void,
): void {
  const highestZoneidx = highestZoneidxFor(req.mt ?? MIGRATE_MOVABLE);
  const seen = new Set<number>();
  for (const zone of zonelist(k, req)) {
    if (seen.has(zone.nid)) continue;
    seen.add(zone.nid);
    wake(zone.nid, req.order, highestZoneidx);
  }
}

/**
 * The allocator's slow path for a request that may compact, on a machine without reclaim:
 * the fast path (m.kernel.allocFolio); on failure kswapd is woken (hooks.wakeKswapd), then
 * direct compaction at INIT_COMPACT_PRIORITY (async) and, for costly orders or non-movable
 * requests, once more at DEF_COMPACT_PRIORITY (sync-light) after the (empty) reclaim step.
 * Without reclaim progress the kernel does not retry compaction further, so neither do we.
 */
export async function allocFolioDirectCompact(
  k: Kernel,
  req: CompactAllocRequest,
  hooks: SlowpathHooks = {},
): Promise<CompactAllocResult> {
  const mt = req.mt ?? MIGRATE_MOVABLE;
  const attempts: DirectCompactAttempt[] = [];
  // kswapd is woken below, through the hook, not by core's allocation-failure watchers.
  let pfn = k.allocFolio({
    order: req.order,
    nid: req.nid,
    mt,
    thisNode: req.thisNode,
    allowed: req.allowed,
    kswapdReclaim: false,
  });
  if (pfn >= 0 || req.order === 0) return { pfn, attempts };
  if (hooks.wakeKswapd) wakeAllKswapds(k, req, hooks.wakeKswapd);
  const costly = req.order > PAGE_ALLOC_COSTLY_ORDER;
  // Costly (or non-movable) requests compact before reclaim.
  if (costly || mt !== MIGRATE_MOVABLE) {
    const r = await directCompact(k, req, INIT_COMPACT_PRIORITY, hooks.compact);
    attempts.push(r.attempt);
    if (r.pfn >= 0) return { pfn: r.pfn, attempts };
  }
  // retry: direct reclaim (nothing to reclaim here), then compaction at the default priority.
  const r = await directCompact(k, req, DEF_COMPACT_PRIORITY, hooks.compact);
  attempts.push(r.attempt);
  pfn = r.pfn;
  return { pfn, attempts };
}
