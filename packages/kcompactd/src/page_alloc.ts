import { MIGRATE_MOVABLE } from '@pagemig/core';
import {
  type AllocRequest,
  CompactPriority,
  type CompactPriorityValue,
  highestZoneidxFor,
  type Kernel,
  MIN_COMPACT_PRIORITY,
  zonelistOf,
} from '@pagemig/core/internal';
import {
  type CompactZoneOptions,
  type CompactZoneResult,
  compactZone,
  zoneCompactState,
} from './compaction.js';
import { compactionDeferReset, compactionDeferred, deferCompaction } from './defer.js';
import {
  CompactResult,
  type CompactResultValue,
  type CompactStatusName,
  compactResultNames,
  traceTryToCompactPages,
} from './tracepoints.js';

/** An allocation that may compact (an AllocRequest of core plus the gfp text). */
export interface CompactAllocRequest extends AllocRequest {
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

/** Options of the slow path's direct compaction when called without an attached kcompactd. */
export interface SlowpathHooks {
  /** wake_all_kswapds: called once per node of the zonelist when the fast path failed. */
  wakeKswapd?: (nid: number, order: number, highestZoneidx: number) => void;
  /** Options for every compact_zone of the direct compaction (cluster size, abort, timeout). */
  compact?: Pick<CompactZoneOptions, 'clusterMax' | 'copyTimeoutMs' | 'shouldAbort'>;
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
  for (const zone of zonelistOf(k.nodes, req)) {
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
export async function directCompact(
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
  // get_page_from_freelist after compaction: the slow path already woke kswapd if it could.
  const pfn = k.allocFolio({
    order: req.order,
    nid: req.nid,
    mt: req.mt,
    thisNode: req.thisNode,
    allowed: req.allowed,
    kswapdReclaim: false,
    localNid: req.localNid,
    interleave: req.interleave,
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

/**
 * The allocator's slow path with this package's direct compaction, for a machine without an
 * attached kcompactd (attachKcompactd installs the same steps as the machine's own hooks): core's
 * allocFolioSlowpath, with `hooks.wakeKswapd` as kswapd's wake-up.
 */
export function allocFolioDirectCompact(
  k: Kernel,
  req: CompactAllocRequest,
  hooks: SlowpathHooks = {},
): Promise<CompactAllocResult> {
  return k.allocFolioSlowpath<DirectCompactAttempt>(req, {
    ...(hooks.wakeKswapd ? { wakeKswapd: hooks.wakeKswapd } : {}),
    directCompact: (r, prio) => directCompact(k, r, prio, hooks.compact),
  });
}
