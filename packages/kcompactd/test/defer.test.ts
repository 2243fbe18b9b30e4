import { createMachine, type Machine } from '@pagemig/core';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  COMPACT_MAX_DEFER_SHIFT,
  compactionDeferReset,
  compactionDeferred,
  compactionRestarting,
  deferCompaction,
} from '../src/index.js';

let m: Machine;
beforeEach(async () => {
  m = await createMachine({ nodes: [{ memory: '8MiB' }], prefault: false });
});
afterEach(async () => {
  await m.close();
});

/** How many of the next `n` attempts at `order` are skipped, as a string of s (skipped) / r (run). */
function attempts(n: number, order = 9): string {
  const zone = m.kernel.zones[0]!;
  let out = '';
  for (let i = 0; i < n; i++) out += compactionDeferred(m.kernel, zone, order) ? 's' : 'r';
  return out;
}

describe('compaction deferral (compact_defer_shift)', () => {
  it('a fresh zone (all zero) lets every attempt through', () => {
    expect(attempts(5)).toBe('rrrrr');
    expect(m.kernel.zones[0]!.compact).toEqual({ considered: 1, deferShift: 0, orderFailed: 0 });
  });

  it('after n consecutive failures the next 2^n − 1 attempts are skipped, at most 63', () => {
    const zone = m.kernel.zones[0]!;
    for (let n = 1; n <= 8; n++) {
      deferCompaction(m.kernel, zone, 9);
      const skipped = 2 ** Math.min(n, COMPACT_MAX_DEFER_SHIFT) - 1;
      expect(attempts(skipped + 1)).toBe(`${'s'.repeat(skipped)}r`);
    }
    expect(zone.compact.deferShift).toBe(6);
    // At the maximum the considered count stays clamped at the limit: every attempt runs.
    expect(attempts(3)).toBe('rrr');
    expect(zone.compact.considered).toBe(64);
  });

  it('orders below order_failed are never deferred; a success raises order_failed', () => {
    const zone = m.kernel.zones[0]!;
    deferCompaction(m.kernel, zone, 9);
    expect(zone.compact.orderFailed).toBe(0);
    expect(attempts(1, 3)).toBe('s');
    // Compaction reported success (the allocation is not confirmed yet): backoff stays.
    compactionDeferReset(m.kernel, zone, 4, false);
    expect(zone.compact).toEqual({ considered: 1, deferShift: 1, orderFailed: 5 });
    expect(attempts(3, 4)).toBe('rrr');
    expect(attempts(1, 9)).toBe('r');
    expect(attempts(1, 9)).toBe('r');
    // A confirmed allocation success clears the backoff.
    deferCompaction(m.kernel, zone, 9);
    deferCompaction(m.kernel, zone, 9);
    expect(zone.compact.orderFailed).toBe(5);
    compactionDeferReset(m.kernel, zone, 9, true);
    expect(zone.compact).toEqual({ considered: 0, deferShift: 0, orderFailed: 10 });
    expect(attempts(2, 9)).toBe('rr');
    // A failure at a lower order lowers order_failed.
    deferCompaction(m.kernel, zone, 2);
    expect(zone.compact.orderFailed).toBe(2);
  });

  it('compaction_restarting is true once the maximal backoff lets an attempt through', () => {
    const zone = m.kernel.zones[0]!;
    for (let i = 0; i < COMPACT_MAX_DEFER_SHIFT; i++) deferCompaction(m.kernel, zone, 9);
    expect(compactionRestarting(zone, 9)).toBe(false);
    expect(attempts(63)).toBe(`${'s'.repeat(63)}`);
    expect(attempts(1)).toBe('r');
    expect(compactionRestarting(zone, 9)).toBe(true);
    compactionDeferReset(m.kernel, zone, 9, false);
    expect(compactionRestarting(zone, 9)).toBe(false);
  });

  it('traces mm_compaction_defer_compaction / deferred / defer_reset with the kernel text', () => {
    const zone = m.kernel.zones[0]!;
    m.trace.clear();
    deferCompaction(m.kernel, zone, 9);
    compactionDeferred(m.kernel, zone, 9);
    compactionDeferred(m.kernel, zone, 9);
    compactionDeferReset(m.kernel, zone, 9, true);
    expect(m.trace.events('compaction').map((r) => `${r.event}: ${r.text}`)).toEqual([
      'mm_compaction_defer_compaction: node=0 zone=Normal   order=9 order_failed=0 consider=0 limit=2',
      'mm_compaction_deferred: node=0 zone=Normal   order=9 order_failed=0 consider=1 limit=2',
      'mm_compaction_defer_reset: node=0 zone=Normal   order=9 order_failed=10 consider=0 limit=1',
    ]);
    const rec = m.trace.events('mm_compaction_deferred')[0]!;
    expect(rec.fields).toEqual({ nid: 0, idx: 2, order: 9, considered: 1, defer_shift: 1, order_failed: 0 });
  });
});
