import type { Kernel, Zone } from '@pagemig/core/internal';
import { traceDefer } from './tracepoints.js';

/**
 * Compaction deferral (mm/compaction.c). Each zone keeps `compact_considered`,
 * `compact_defer_shift` and `compact_order_failed` (core's `zone.compact`, zeroed at boot like the
 * kernel's struct zone). After n consecutive failures the next 2^n − 1 attempts at an order ≥
 * order_failed are skipped (n at most COMPACT_MAX_DEFER_SHIFT = 6, so at most 63).
 */
export const COMPACT_MAX_DEFER_SHIFT = 6;

/** defer_compaction: a sync compaction of `order` failed (ended COMPLETE or PARTIAL_SKIPPED). */
export function deferCompaction(k: Kernel, zone: Zone, order: number): void {
  const c = zone.compact;
  c.considered = 0;
  c.deferShift++;
  if (order < c.orderFailed) c.orderFailed = order;
  if (c.deferShift > COMPACT_MAX_DEFER_SHIFT) c.deferShift = COMPACT_MAX_DEFER_SHIFT;
  traceDefer(k, 'mm_compaction_defer_compaction', zone, order);
}

/** compaction_deferred: true when this attempt at `order` should be skipped. */
export function compactionDeferred(k: Kernel, zone: Zone, order: number): boolean {
  const c = zone.compact;
  const limit = 2 ** c.deferShift;
  if (order < c.orderFailed) return false;
  // Avoid possible overflow: the count is clamped at the limit.
  if (++c.considered >= limit) {
    c.considered = limit;
    return false;
  }
  traceDefer(k, 'mm_compaction_deferred', zone, order);
  return true;
}

/**
 * compaction_defer_reset: compaction (or the allocation after it) succeeded for `order`. Only a
 * real allocation success (`allocSuccess`) clears the backoff; any success raises order_failed
 * above `order`.
 */
export function compactionDeferReset(k: Kernel, zone: Zone, order: number, allocSuccess: boolean): void {
  const c = zone.compact;
  if (allocSuccess) {
    c.considered = 0;
    c.deferShift = 0;
  }
  if (order >= c.orderFailed) c.orderFailed = order + 1;
  traceDefer(k, 'mm_compaction_defer_reset', zone, order);
}

/** compaction_restarting: the backoff is at its maximum and about to let an attempt through. */
export function compactionRestarting(zone: Zone, order: number): boolean {
  const c = zone.compact;
  if (order < c.orderFailed) return false;
  return c.deferShift === COMPACT_MAX_DEFER_SHIFT && c.considered >= 2 ** c.deferShift;
}
