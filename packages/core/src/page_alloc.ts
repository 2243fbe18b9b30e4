import { EINVAL, kernelError } from './errno.js';
import type { Kernel } from './kernel.js';
import { MAX_PAGE_ORDER, MIGRATE_MOVABLE, MIGRATE_TYPES, WMARK_LOW, WMARK_MIN, zoneNames } from './mmzone.js';
import type { PgData } from './node.js';
import { show } from './show.js';
import type { Zone } from './zone.js';

export interface AllocRequest {
  order: number;
  /** Preferred node. */
  nid: number;
  /** Migratetype (gfp_migratetype). Default MIGRATE_MOVABLE (GFP_HIGHUSER_MOVABLE). */
  mt?: number;
  /** __GFP_THISNODE: never fall back to another node. */
  thisNode?: boolean;
  /** Policy nodemask; null = any node. */
  allowed?: readonly number[] | null;
  /**
   * __GFP_KSWAPD_RECLAIM (default true): a failed high-order request wakes kswapd, which wakes
   * kcompactd (Kernel.onAllocFailure). THP allocations (GFP_TRANSHUGE[_LIGHT]) pass false.
   */
  kswapdReclaim?: boolean;
  /**
   * numa_node_id() of the allocating CPU, for numa_local/numa_other (zone_statistics). Default:
   * the node of the task running now (a process's node, a kcompactd's node; node 0 outside any).
   */
  localNid?: number;
  /** Made by an interleave policy for node `nid` (alloc_pages_mpol): a folio there counts numa_interleave. */
  interleave?: boolean;
  /**
   * The gfp_mask as tracepoints print it (mm_compaction_try_to_compact_pages), e.g.
   * 'GFP_TRANSHUGE|__GFP_THISNODE' for a THP migration target. Informational only.
   */
  gfp?: string;
}

/** enum compact_priority (include/linux/compaction.h): lower is more thorough. */
export const CompactPriority = {
  COMPACT_PRIO_SYNC_FULL: 0,
  COMPACT_PRIO_SYNC_LIGHT: 1,
  COMPACT_PRIO_ASYNC: 2,
} as const;
export type CompactPriorityValue = (typeof CompactPriority)[keyof typeof CompactPriority];
export const MIN_COMPACT_PRIORITY = CompactPriority.COMPACT_PRIO_SYNC_FULL;
/** Costly orders (> PAGE_ALLOC_COSTLY_ORDER) never escalate past SYNC_LIGHT. */
export const MIN_COMPACT_COSTLY_PRIORITY = CompactPriority.COMPACT_PRIO_SYNC_LIGHT;
export const INIT_COMPACT_PRIORITY = CompactPriority.COMPACT_PRIO_ASYNC;
/** The priority of the slow path's compaction after reclaim. */
export const DEF_COMPACT_PRIORITY = CompactPriority.COMPACT_PRIO_SYNC_LIGHT;
/** PAGE_ALLOC_COSTLY_ORDER: above it an allocation is costly (compacts before reclaim). */
export const PAGE_ALLOC_COSTLY_ORDER = 3;

/**
 * build_zonelists: every zone of every node, this node's first, then the other nodes by distance
 * (ties by id), each node's zones from the highest down. Built once per node at boot.
 */
export function buildZonelist(nodes: readonly PgData[], self: PgData): Zone[] {
  const out: Zone[] = [];
  for (const nid of self.fallbackOrder) {
    const zones = nodes[nid]!.zones;
    for (let zi = zones.length - 1; zi >= 0; zi--) out.push(zones[zi]!);
  }
  return out;
}

/**
 * Whether walking `req`'s zonelist visits `zone`: 1 yes, 0 skip it, -1 stop (__GFP_THISNODE and
 * the walk left the preferred node). ZONE_MOVABLE serves only movable requests.
 */
export function zonelistAllows(zone: Zone, req: AllocRequest, mt: number): -1 | 0 | 1 {
  if (req.thisNode && zone.nid !== req.nid) return -1;
  if (req.allowed && !req.allowed.includes(zone.nid)) return 0;
  return zone.type === 'Movable' && mt !== MIGRATE_MOVABLE ? 0 : 1;
}

/** The zones `req` may allocate from, in zonelist order (for_each_zone_zonelist_nodemask). */
export function zonelistOf(nodes: readonly PgData[], req: AllocRequest): Zone[] {
  const preferred = nodes[req.nid];
  if (!preferred) throw kernelError(EINVAL, `node ${req.nid} does not exist (nodes 0..${nodes.length - 1})`);
  const mt = req.mt ?? MIGRATE_MOVABLE;
  const out: Zone[] = [];
  for (const zone of preferred.zonelist) {
    const ok = zonelistAllows(zone, req, mt);
    if (ok < 0) break;
    if (ok) out.push(zone);
  }
  return out;
}

/**
 * first_zones_zonelist: the request's preferred zone (ac->preferred_zoneref), the first zone of
 * its zonelist it may use; null when it may use none.
 */
export function preferredZone(nodes: readonly PgData[], req: AllocRequest): Zone | null {
  const mt = req.mt ?? MIGRATE_MOVABLE;
  for (const zone of nodes[req.nid]!.zonelist) {
    const ok = zonelistAllows(zone, req, mt);
    if (ok < 0) return null;
    if (ok) return zone;
  }
  return null;
}

/** gfp_zone(): a movable request may use ZONE_MOVABLE, anything else up to ZONE_NORMAL. */
export function highestZoneidxFor(mt: number): number {
  return zoneNames.indexOf(mt === MIGRATE_MOVABLE ? 'Movable' : 'Normal');
}

/**
 * get_page_from_freelist over the zonelist against watermark `wmark` (WMARK_LOW for the fast
 * path, WMARK_MIN for the slow path's tries). Returns the block's pfn or -1: no object per call,
 * as every fault and migration calls it.
 */
export function getPageFromFreelist(nodes: readonly PgData[], req: AllocRequest, wmark: number): number {
  const mt = req.mt ?? MIGRATE_MOVABLE;
  const zonelist = nodes[req.nid]!.zonelist;
  for (let i = 0; i < zonelist.length; i++) {
    const zone = zonelist[i]!;
    const ok = zonelistAllows(zone, req, mt);
    if (ok < 0) break;
    if (!ok) continue;
    if (!zone.watermarkOk(req.order, zone.watermark[wmark]! + zone.watermarkBoost)) continue;
    const pfn = zone.rmqueue(req.order, mt);
    if (pfn >= 0) return pfn;
  }
  return -1;
}

/** getPageFromFreelist at WMARK_LOW, then WMARK_MIN, with the zone the block came from, or null. */
export function allocPages(nodes: readonly PgData[], req: AllocRequest): { pfn: number; zone: Zone } | null {
  let pfn = getPageFromFreelist(nodes, req, WMARK_LOW);
  if (pfn < 0) pfn = getPageFromFreelist(nodes, req, WMARK_MIN);
  if (pfn < 0) return null;
  for (const node of nodes) {
    const zone = node.zones.find((z) => z.contains(pfn));
    if (zone) return { pfn, zone };
  }
  return null;
}

/** One direct compaction attempt, as the subsystem that compacted reports it. */
export interface DirectCompactAttempt {
  priority: CompactPriorityValue;
  /** try_to_compact_pages' result name ('skipped', 'success', ...). */
  status: string;
  /** Whether the allocation succeeded right after. */
  allocated: boolean;
}

/**
 * The parts of the allocator's slow path that other subsystems provide, each registered by the
 * daemon package that owns it (Kernel.setAllocHook) and absent on a machine without it.
 */
export interface AllocHooks {
  /** wakeup_kswapd for one node: kswapd reclaims (or demotes) until the high watermark. */
  wakeKswapd?: (nid: number, order: number, highestZoneidx: number) => void;
  /**
   * What kswapd does as it goes back to sleep when it had nothing to reclaim
   * (prepare_kswapd_sleep: reset_isolation_suitable, wakeup_kcompactd). Core calls it in place of
   * wakeKswapd on a machine without a kswapd daemon; kswapd calls it itself otherwise.
   */
  kswapdSleep?: (nid: number, order: number, highestZoneidx: number) => void;
  /**
   * __alloc_pages_direct_compact: compact the request's zonelist at `prio`, then try the free
   * lists again (counting compact_stall/success/fail). Resolves to the folio or -1.
   */
  directCompact?: (
    req: AllocRequest,
    prio: CompactPriorityValue,
  ) => Promise<{ pfn: number; attempt: DirectCompactAttempt }>;
  /**
   * __perform_reclaim (try_to_free_pages) for the request's zonelist: reclaim (here: demote) and
   * resolve to the pages reclaimed. The slow path retries the free lists after progress; the
   * user-thread fault path awaits it with the faulting thread asleep, then retries the fault once.
   */
  directReclaim?: (req: AllocRequest) => Promise<number>;
}

/** What allocPagesSlowpath did: the folio (or -1) and each direct compaction attempt. */
export interface SlowpathResult<A extends DirectCompactAttempt = DirectCompactAttempt> {
  pfn: number;
  attempts: A[];
}

/**
 * The slow path is what subsystems and applications reach (kcompactd's allocFolio): a request it
 * cannot serve is EINVAL naming the field, not a TypeError deep in the allocator.
 */
function checkAllocRequest(nodes: readonly PgData[], req: AllocRequest): void {
  const bad = (what: string) => kernelError(EINVAL, `allocation request: ${what}`);
  if (typeof req !== 'object' || req === null) throw bad('must be an object with order and nid');
  if (!Number.isInteger(req.order) || req.order < 0 || req.order > MAX_PAGE_ORDER)
    throw bad(`order ${show(req.order)} is not an integer in 0..${MAX_PAGE_ORDER}`);
  if (req.nid === undefined) throw bad('nid (the node to allocate on) is missing');
  if (!Number.isInteger(req.nid) || req.nid < 0 || req.nid >= nodes.length)
    throw bad(`nid ${show(req.nid)}: no such node (nodes 0..${nodes.length - 1})`);
  if (req.mt !== undefined && (!Number.isInteger(req.mt) || req.mt < 0 || req.mt >= MIGRATE_TYPES))
    throw bad(`migratetype ${show(req.mt)} is not an integer in 0..${MIGRATE_TYPES - 1}`);
  const allowed = req.allowed;
  if (
    allowed != null &&
    (!Array.isArray(allowed) || allowed.some((n) => !Number.isInteger(n) || n < 0 || n >= nodes.length))
  )
    throw bad('allowed must be a list of existing node ids, or null');
  if (req.gfp !== undefined && typeof req.gfp !== 'string')
    throw bad(`gfp ${show(req.gfp)} is not a gfp_mask text like 'GFP_TRANSHUGE|__GFP_THISNODE'`);
}

/** wake_all_kswapds: every node of the request's zonelist, once, in zonelist order. */
export function wakeAllKswapds(nodes: readonly PgData[], req: AllocRequest, hooks: AllocHooks): void {
  const wake = hooks.wakeKswapd ?? hooks.kswapdSleep;
  if (!wake) return;
  const highestZoneidx = highestZoneidxFor(req.mt ?? MIGRATE_MOVABLE);
  let last = -1;
  for (const zone of zonelistOf(nodes, req)) {
    // A node's zones are adjacent in its zonelist.
    if (zone.nid === last) continue;
    last = zone.nid;
    wake(zone.nid, req.order, highestZoneidx);
  }
}

/**
 * __alloc_pages_slowpath for a request that may sleep: the free lists (fast path at the low
 * watermark, then the min one); when the fast path fails kswapd is woken on every node of the
 * zonelist; on failure a costly (or non-movable) request compacts at INIT_COMPACT_PRIORITY
 * (async) before reclaim, then direct reclaim (the directReclaim hook; the free lists are tried
 * again after progress, __alloc_pages_direct_reclaim) and compaction at DEF_COMPACT_PRIORITY
 * (sync-light). The kernel's further retries (should_reclaim_retry, should_compact_retry) are not
 * modeled. Order 0 never compacts.
 */
export async function allocPagesSlowpath<A extends DirectCompactAttempt>(
  k: Pick<Kernel, 'nodes' | 'allocFolio' | 'lowWmarkFailed'>,
  req: AllocRequest,
  hooks: AllocHooks,
): Promise<SlowpathResult<A>> {
  checkAllocRequest(k.nodes, req);
  const mt = req.mt ?? MIGRATE_MOVABLE;
  const attempts: A[] = [];
  // kswapd is woken here, synchronously, not by allocFolio's own (deferred) wake-up.
  let pfn = k.allocFolio({ ...req, mt, kswapdReclaim: false });
  if (k.lowWmarkFailed && req.kswapdReclaim !== false) wakeAllKswapds(k.nodes, req, hooks);
  if (pfn >= 0) return { pfn, attempts };
  const compact = req.order > 0 ? hooks.directCompact : undefined;
  if (compact && (req.order > PAGE_ALLOC_COSTLY_ORDER || mt !== MIGRATE_MOVABLE)) {
    const r = await compact(req, INIT_COMPACT_PRIORITY);
    attempts.push(r.attempt as A);
    if (r.pfn >= 0) return { pfn: r.pfn, attempts };
  }
  if (hooks.directReclaim && (await hooks.directReclaim(req)) > 0) {
    pfn = k.allocFolio({ ...req, mt, kswapdReclaim: false });
    if (pfn >= 0) return { pfn, attempts };
  }
  if (!compact) return { pfn: -1, attempts };
  const r = await compact(req, DEF_COMPACT_PRIORITY);
  attempts.push(r.attempt as A);
  return { pfn: r.pfn, attempts };
}

/** The default vm.min_free_kbytes: int_sqrt(lowmem_kbytes * 16) clamped to [128, 262144]. */
export function calculateMinFreeKbytes(nodes: readonly PgData[]): number {
  let lowmemPages = 0;
  for (const n of nodes) for (const z of n.zones) if (z.type !== 'Movable') lowmemPages += z.managed;
  const v = Math.floor(Math.sqrt(lowmemPages * 4 * 16));
  return Math.min(Math.max(v, 128), 262144);
}

/** __setup_per_zone_wmarks: min from min_free_kbytes by managed share, then low/high/promo. */
export function setupPerZoneWmarks(
  nodes: readonly PgData[],
  minFreeKbytes: number,
  scaleFactor: number,
): void {
  const pagesMin = minFreeKbytes >> 2;
  let lowmemPages = 0;
  for (const n of nodes) for (const z of n.zones) if (z.type !== 'Movable') lowmemPages += z.managed;
  for (const n of nodes) {
    for (const z of n.zones) {
      const tmp = lowmemPages ? Math.floor((pagesMin * z.managed) / lowmemPages) : 0;
      // ZONE_MOVABLE is treated like highmem: a small fixed reserve.
      const min = z.type === 'Movable' ? Math.min(Math.max(Math.floor(z.managed / 1024), 32), 128) : tmp;
      const delta = Math.max(tmp >> 2, Math.floor((z.managed * scaleFactor) / 10000));
      z.watermark[0] = min;
      z.watermark[1] = min + delta;
      z.watermark[2] = min + 2 * delta;
      z.watermark[3] = min + 3 * delta;
    }
  }
}
