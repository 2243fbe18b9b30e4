import { MIGRATE_MOVABLE, zoneNames } from '@pagemig/core';
import type { Kernel } from '@pagemig/core/internal';

/*
 * The `vmscan:` tracepoints (include/trace/events/vmscan.h) that kswapd and direct reclaim emit,
 * each with the kernel's field names and TP_printk text.
 */
const SYS = 'vmscan';

/** The vmscan events kswapd and direct reclaim emit (include/trace/events/vmscan.h), defined at attach. */
export const VMSCAN_TRACE_EVENTS = Object.freeze([
  'mm_vmscan_kswapd_sleep',
  'mm_vmscan_kswapd_wake',
  'mm_vmscan_wakeup_kswapd',
  'mm_vmscan_direct_reclaim_begin',
  'mm_vmscan_direct_reclaim_end',
  'mm_vmscan_lru_shrink_inactive',
  'mm_vmscan_lru_shrink_active',
] as const);

/** Makes the vmscan events exist on `k`'s machine, as loading vmscan's code would. */
export function defineVmscanEvents(k: Kernel): void {
  k.trace.define(SYS, VMSCAN_TRACE_EVENTS);
}

/** MAX_NR_ZONES: kswapd_highest_zoneidx's "no request" value. */
export const MAX_NR_ZONES: number = zoneNames.length;
/** ZONE_MOVABLE's index: gfp_zone() of a movable request. */
const ZONE_MOVABLE = zoneNames.indexOf('Movable');

/**
 * The gfp_mask as show_gfp_flags prints it, for a request without one: GFP_HIGHUSER_MOVABLE for
 * a movable request (what faults and migrations allocate with), GFP_KERNEL otherwise.
 */
export function gfpText(gfp: string | undefined, mt: number | undefined): string {
  return gfp ?? ((mt ?? MIGRATE_MOVABLE) === MIGRATE_MOVABLE ? 'GFP_HIGHUSER_MOVABLE' : 'GFP_KERNEL');
}

/** The gfp_mask of a wake-up that only carries the highest zone index (gfp_zone's inverse). */
export function gfpOfZoneidx(highestZoneidx: number): string {
  return highestZoneidx >= ZONE_MOVABLE ? 'GFP_HIGHUSER_MOVABLE' : 'GFP_KERNEL';
}

/** trace_reclaim_flags(file): RECLAIM_WB_ANON|RECLAIM_WB_ASYNC for the anon lists. */
const ANON_FLAGS = 'RECLAIM_WB_ANON|RECLAIM_WB_ASYNC';

export function traceKswapdSleep(k: Kernel, nid: number): void {
  k.trace.emit(SYS, 'mm_vmscan_kswapd_sleep', { nid }, `nid=${nid}`);
}

/** mm_vmscan_kswapd_wake records zid but prints only nid and order. */
export function traceKswapdWake(k: Kernel, nid: number, zid: number, order: number): void {
  k.trace.emit(SYS, 'mm_vmscan_kswapd_wake', { nid, zid, order }, `nid=${nid} order=${order}`);
}

export function traceWakeupKswapd(k: Kernel, nid: number, zid: number, order: number, gfp: string): void {
  k.trace.emit(
    SYS,
    'mm_vmscan_wakeup_kswapd',
    { nid, zid, order, gfp_flags: gfp },
    `nid=${nid} order=${order} gfp_flags=${gfp}`,
  );
}

export function traceDirectReclaimBegin(k: Kernel, order: number, gfp: string): void {
  k.trace.emit(
    SYS,
    'mm_vmscan_direct_reclaim_begin',
    { order, gfp_flags: gfp },
    `order=${order} gfp_flags=${gfp}`,
  );
}

export function traceDirectReclaimEnd(k: Kernel, nrReclaimed: number): void {
  k.trace.emit(
    SYS,
    'mm_vmscan_direct_reclaim_end',
    { nr_reclaimed: nrReclaimed },
    `nr_reclaimed=${nrReclaimed}`,
  );
}

/**
 * The parts of struct reclaim_stat that anon reclaim without swap can make non-zero (there is no
 * dirty, writeback, congested or immediate folio, and demotion unmaps through the migration
 * engine, which puts back what it cannot unmap).
 */
export interface ReclaimStat {
  /** nr_activate[0] (anon): base pages activated. */
  nrActivateAnon: number;
  nrRefKeep: number;
}

export function traceLruShrinkInactive(
  k: Kernel,
  nid: number,
  nrScanned: number,
  nrReclaimed: number,
  stat: ReclaimStat,
  priority: number,
): void {
  k.trace.emit(
    SYS,
    'mm_vmscan_lru_shrink_inactive',
    {
      nid,
      nr_scanned: nrScanned,
      nr_reclaimed: nrReclaimed,
      nr_dirty: 0,
      nr_writeback: 0,
      nr_congested: 0,
      nr_immediate: 0,
      nr_activate0: stat.nrActivateAnon,
      nr_activate1: 0,
      nr_ref_keep: stat.nrRefKeep,
      nr_unmap_fail: 0,
      priority,
      reclaim_flags: ANON_FLAGS,
    },
    `nid=${nid} nr_scanned=${nrScanned} nr_reclaimed=${nrReclaimed} nr_dirty=0 nr_writeback=0 nr_congested=0 nr_immediate=0 nr_activate_anon=${stat.nrActivateAnon} nr_activate_file=0 nr_ref_keep=${stat.nrRefKeep} nr_unmap_fail=0 priority=${priority} flags=${ANON_FLAGS}`,
  );
}

export function traceLruShrinkActive(
  k: Kernel,
  nid: number,
  nrTaken: number,
  nrActive: number,
  nrDeactivated: number,
  nrReferenced: number,
  priority: number,
): void {
  k.trace.emit(
    SYS,
    'mm_vmscan_lru_shrink_active',
    {
      nid,
      nr_taken: nrTaken,
      nr_active: nrActive,
      nr_deactivated: nrDeactivated,
      nr_referenced: nrReferenced,
      priority,
      reclaim_flags: ANON_FLAGS,
    },
    `nid=${nid} nr_taken=${nrTaken} nr_active=${nrActive} nr_deactivated=${nrDeactivated} nr_referenced=${nrReferenced} priority=${priority} flags=${ANON_FLAGS}`,
  );
}
