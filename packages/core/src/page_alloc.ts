import { MIGRATE_MOVABLE, WMARK_LOW, WMARK_MIN } from './mmzone.js';
import type { PgData } from './node.js';
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
}

/**
 * __alloc_pages: the fast path walks the zonelist (preferred node's zones from the highest
 * usable one down, then other nodes by distance) against WMARK_LOW; the slow path repeats it
 * against WMARK_MIN. There is no reclaim, so a request that fails both passes fails.
 */
export function allocPages(nodes: readonly PgData[], req: AllocRequest): { pfn: number; zone: Zone } | null {
  const mt = req.mt ?? MIGRATE_MOVABLE;
  const preferred = nodes[req.nid]!;
  const order = preferred.fallbackOrder;
  for (let wmark = WMARK_LOW; wmark >= WMARK_MIN; wmark--) {
    for (let ni = 0; ni < order.length; ni++) {
      const nid = order[ni]!;
      if (req.thisNode && nid !== req.nid) break;
      if (req.allowed && !req.allowed.includes(nid)) continue;
      const zones = nodes[nid]!.zones;
      for (let zi = zones.length - 1; zi >= 0; zi--) {
        const zone = zones[zi]!;
        if (zone.type === 'Movable' && mt !== MIGRATE_MOVABLE) continue;
        if (!zone.watermarkOk(req.order, zone.watermark[wmark]! + zone.watermarkBoost)) continue;
        const pfn = zone.rmqueue(req.order, mt);
        if (pfn >= 0) return { pfn, zone };
      }
    }
  }
  return null;
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
