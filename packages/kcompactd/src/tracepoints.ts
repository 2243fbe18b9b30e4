import { type ZoneName, zoneNames } from '@pagemig/core';
import type { Kernel, Zone } from '@pagemig/core/internal';

/**
 * enum compact_result (include/linux/compaction.h), in the kernel's order: results are compared
 * with max(), so the order matters (try_to_compact_pages keeps the largest).
 */
export const CompactResult = {
  COMPACT_NOT_SUITABLE_ZONE: 0,
  COMPACT_SKIPPED: 1,
  COMPACT_DEFERRED: 2,
  COMPACT_NO_SUITABLE_PAGE: 3,
  COMPACT_CONTINUE: 4,
  COMPACT_COMPLETE: 5,
  COMPACT_PARTIAL_SKIPPED: 6,
  COMPACT_CONTENDED: 7,
  COMPACT_SUCCESS: 8,
} as const;
export type CompactResultValue = (typeof CompactResult)[keyof typeof CompactResult];

/** COMPACTION_STATUS (include/trace/events/mmflags.h): the strings the tracepoints print. */
export const compactResultNames = [
  'not_suitable_zone',
  'skipped',
  'deferred',
  'no_suitable_page',
  'continue',
  'complete',
  'partial_skipped',
  'contended',
  'success',
] as const;
export type CompactStatusName = (typeof compactResultNames)[number];

/** zone_idx(): the zone's index in enum zone_type (DMA, DMA32, Normal, Movable). */
export function zoneIdx(zone: Zone): number {
  return zoneNames.indexOf(zone.type);
}

/** The ZONE_TYPE symbol of a zone index, as __print_symbolic prints it. */
export function zoneTypeName(idx: number): ZoneName | string {
  return zoneNames[idx] ?? String(idx);
}

const hex = (n: number) => `0x${n.toString(16)}`;
const SYS = 'compaction';

/** The compaction events kcompactd and direct compaction emit (include/trace/events/compaction.h), defined at attach. */
export const COMPACTION_TRACE_EVENTS = Object.freeze([
  'mm_compaction_isolate_migratepages',
  'mm_compaction_isolate_freepages',
  'mm_compaction_migratepages',
  'mm_compaction_begin',
  'mm_compaction_end',
  'mm_compaction_try_to_compact_pages',
  'mm_compaction_finished',
  'mm_compaction_suitable',
  'mm_compaction_deferred',
  'mm_compaction_defer_compaction',
  'mm_compaction_defer_reset',
  'mm_compaction_kcompactd_sleep',
  'mm_compaction_wakeup_kcompactd',
  'mm_compaction_kcompactd_wake',
] as const);

/** Makes the compaction events exist on `k`'s machine, as loading compaction's code would. */
export function defineCompactionEvents(k: Kernel): void {
  k.trace.define(SYS, COMPACTION_TRACE_EVENTS);
}

/*
 * The `compaction:` tracepoints (include/trace/events/compaction.h), each with the kernel's field
 * names and TP_printk text. `%-8s` pads the zone name to eight characters (trailing spaces kept).
 */

export function traceIsolateMigratepages(
  k: Kernel,
  start: number,
  end: number,
  scanned: number,
  taken: number,
) {
  k.trace.emit(
    SYS,
    'mm_compaction_isolate_migratepages',
    { start_pfn: start, end_pfn: end, nr_scanned: scanned, nr_taken: taken },
    `range=(${hex(start)} ~ ${hex(end)}) nr_scanned=${scanned} nr_taken=${taken}`,
  );
}

export function traceIsolateFreepages(k: Kernel, start: number, end: number, scanned: number, taken: number) {
  k.trace.emit(
    SYS,
    'mm_compaction_isolate_freepages',
    { start_pfn: start, end_pfn: end, nr_scanned: scanned, nr_taken: taken },
    `range=(${hex(start)} ~ ${hex(end)}) nr_scanned=${scanned} nr_taken=${taken}`,
  );
}

export function traceMigratepages(k: Kernel, migrated: number, failed: number) {
  k.trace.emit(
    SYS,
    'mm_compaction_migratepages',
    { nr_migrated: migrated, nr_failed: failed },
    `nr_migrated=${migrated} nr_failed=${failed}`,
  );
}

export function traceBegin(
  k: Kernel,
  zoneStart: number,
  migratePfn: number,
  freePfn: number,
  zoneEnd: number,
  sync: boolean,
) {
  k.trace.emit(
    SYS,
    'mm_compaction_begin',
    {
      zone_start: zoneStart,
      migrate_pfn: migratePfn,
      free_pfn: freePfn,
      zone_end: zoneEnd,
      sync: sync ? 1 : 0,
    },
    `zone_start=${hex(zoneStart)} migrate_pfn=${hex(migratePfn)} free_pfn=${hex(freePfn)} zone_end=${hex(zoneEnd)}, mode=${sync ? 'sync' : 'async'}`,
  );
}

export function traceEnd(
  k: Kernel,
  zoneStart: number,
  migratePfn: number,
  freePfn: number,
  zoneEnd: number,
  sync: boolean,
  status: CompactResultValue,
) {
  k.trace.emit(
    SYS,
    'mm_compaction_end',
    {
      zone_start: zoneStart,
      migrate_pfn: migratePfn,
      free_pfn: freePfn,
      zone_end: zoneEnd,
      sync: sync ? 1 : 0,
      status,
    },
    `zone_start=${hex(zoneStart)} migrate_pfn=${hex(migratePfn)} free_pfn=${hex(freePfn)} zone_end=${hex(zoneEnd)}, mode=${sync ? 'sync' : 'async'} status=${compactResultNames[status]}`,
  );
}

export function traceTryToCompactPages(k: Kernel, order: number, gfpMask: string, prio: number) {
  k.trace.emit(
    SYS,
    'mm_compaction_try_to_compact_pages',
    { order, gfp_mask: gfpMask, prio },
    `order=${order} gfp_mask=${gfpMask} priority=${prio}`,
  );
}

function traceSuitableTemplate(
  k: Kernel,
  event: 'mm_compaction_finished' | 'mm_compaction_suitable',
  zone: Zone,
  order: number,
  ret: CompactResultValue,
) {
  k.trace.emit(
    SYS,
    event,
    { nid: zone.nid, idx: zoneIdx(zone), order, ret },
    `node=${zone.nid} zone=${zone.type.padEnd(8)} order=${order} ret=${compactResultNames[ret]}`,
  );
}

export function traceFinished(k: Kernel, zone: Zone, order: number, ret: CompactResultValue) {
  traceSuitableTemplate(k, 'mm_compaction_finished', zone, order, ret);
}

export function traceSuitable(k: Kernel, zone: Zone, order: number, ret: CompactResultValue) {
  traceSuitableTemplate(k, 'mm_compaction_suitable', zone, order, ret);
}

export function traceDefer(
  k: Kernel,
  event: 'mm_compaction_deferred' | 'mm_compaction_defer_compaction' | 'mm_compaction_defer_reset',
  zone: Zone,
  order: number,
) {
  const c = zone.compact;
  k.trace.emit(
    SYS,
    event,
    {
      nid: zone.nid,
      idx: zoneIdx(zone),
      order,
      considered: c.considered,
      defer_shift: c.deferShift,
      order_failed: c.orderFailed,
    },
    `node=${zone.nid} zone=${zone.type.padEnd(8)} order=${order} order_failed=${c.orderFailed} consider=${c.considered} limit=${2 ** c.deferShift}`,
  );
}

export function traceKcompactdSleep(k: Kernel, nid: number) {
  k.trace.emit(SYS, 'mm_compaction_kcompactd_sleep', { nid }, `nid=${nid}`);
}

function traceWakeTemplate(
  k: Kernel,
  event: 'mm_compaction_wakeup_kcompactd' | 'mm_compaction_kcompactd_wake',
  nid: number,
  order: number,
  highestZoneidx: number,
) {
  k.trace.emit(
    SYS,
    event,
    { nid, order, highest_zoneidx: highestZoneidx },
    `nid=${nid} order=${order} classzone_idx=${String(zoneTypeName(highestZoneidx)).padEnd(8)}`,
  );
}

export function traceWakeupKcompactd(k: Kernel, nid: number, order: number, highestZoneidx: number) {
  traceWakeTemplate(k, 'mm_compaction_wakeup_kcompactd', nid, order, highestZoneidx);
}

export function traceKcompactdWake(k: Kernel, nid: number, order: number, highestZoneidx: number) {
  traceWakeTemplate(k, 'mm_compaction_kcompactd_wake', nid, order, highestZoneidx);
}
