import { createMachine, type Machine } from '@pagemig/core';
import type { Zone } from '@pagemig/core/internal';
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import {
  contigPageInfo,
  extfragForOrder,
  extfragOf,
  fragmentationIndex,
  fragmentationIndexOf,
  fragmentationScoreNode,
  fragmentationScoreWmark,
  fragmentationScoreZone,
  nodeFragmentation,
} from '../src/index.js';
import { shapeFreeLists } from './helpers.js';

/** nr_free per order from a list of [order, blocks]. */
function nrFree(...blocks: [number, number][]): number[] {
  const out = new Array(11).fill(0);
  for (const [o, n] of blocks) out[o] += n;
  return out;
}

let m: Machine | undefined;
afterEach(async () => {
  await m?.close();
  m = undefined;
});

describe('fragmentation index (mm/vmstat.c __fragmentation_index)', () => {
  it('reproduces the reference worked values for order 9', () => {
    expect(fragmentationIndexOf(contigPageInfo(nrFree([0, 1024]), 9), 9)).toBe(998);
    expect(fragmentationIndexOf(contigPageInfo(nrFree([8, 4]), 9), 9)).toBe(250);
    expect(fragmentationIndexOf(contigPageInfo(nrFree([8, 2]), 9), 9)).toBe(0);
    expect(fragmentationIndexOf(contigPageInfo(nrFree([9, 1]), 9), 9)).toBe(-1000);
    // Nothing free at all.
    expect(fragmentationIndexOf(contigPageInfo(nrFree(), 9), 9)).toBe(0);
  });

  it('extfrag_for_order: one order-9 block and 512 order-0 pages is 50', () => {
    expect(extfragOf(contigPageInfo(nrFree([9, 1], [0, 512]), 9), 9)).toBe(50);
    expect(extfragOf(contigPageInfo(nrFree(), 9), 9)).toBe(0);
    expect(extfragOf(contigPageInfo(nrFree([10, 3]), 9), 9)).toBe(0);
    expect(extfragOf(contigPageInfo(nrFree([4, 10]), 9), 9)).toBe(100);
  });

  it('stays in its ranges for any free list shape', () => {
    fc.assert(
      fc.property(
        fc.array(fc.nat(5000), { minLength: 11, maxLength: 11 }),
        fc.integer({ min: 1, max: 10 }),
        (nr, order) => {
          const info = contigPageInfo(nr, order);
          const idx = fragmentationIndexOf(info, order);
          const suitable = nr.slice(order).some((n) => n > 0);
          if (suitable) expect(idx).toBe(-1000);
          else expect(idx === 0 || (idx > 0 && idx < 1000)).toBe(true);
          const ef = extfragOf(info, order);
          expect(ef).toBeGreaterThanOrEqual(0);
          expect(ef).toBeLessThanOrEqual(100);
          // BigInt reference of the kernel's integer formula.
          if (!suitable && info.freeBlocksTotal) {
            const ref =
              1000n -
              (1000n + (BigInt(info.freePages) * 1000n) / (1n << BigInt(order))) /
                BigInt(info.freeBlocksTotal);
            expect(idx).toBe(Number(ref));
          }
        },
      ),
    );
  });

  it('reads a live zone: the same worked values from real free lists', async () => {
    m = await createMachine({ nodes: [{ memory: '8MiB' }], prefault: false });
    const zone = m.kernel.zones[0]!;
    // 1024 free order-0 pages on even pfns: none can merge.
    shapeFreeLists(
      m,
      zone,
      Array.from({ length: 1024 }, (_, i) => [2 * i, 0] as [number, number]),
    );
    expect(fragmentationIndex(zone, 9)).toBe(998);
    expect(extfragForOrder(zone, 9)).toBe(100);
  });
});

describe('fragmentation score and proactive thresholds', () => {
  it('wmark_low = 100 - proactiveness, wmark_high = min(low + min(10, low/2), 100)', () => {
    const pairs = [0, 1, 20, 50, 85, 95, 99, 100].map((p) => [
      p,
      fragmentationScoreWmark(p, true),
      fragmentationScoreWmark(p, false),
    ]);
    expect(pairs).toEqual([
      [0, 100, 100],
      [1, 99, 100],
      [20, 80, 90],
      [50, 50, 60],
      [85, 15, 22],
      [95, 5, 7],
      [99, 1, 1],
      [100, 0, 0],
    ]);
  });

  it("weights a zone's score by present pages over node_present + 1 (100 → 99 on a one-zone node)", async () => {
    m = await createMachine({ nodes: [{ memory: '8MiB' }], prefault: false });
    const zone = m.kernel.zones[0]!;
    const node = m.kernel.nodes[0]!;
    shapeFreeLists(
      m,
      zone,
      Array.from({ length: 64 }, (_, i) => [2 * i, 0] as [number, number]),
    );
    expect(fragmentationScoreZone(zone)).toBe(100);
    expect(fragmentationScoreNode(node)).toBe(99);
    const nf = nodeFragmentation(m.kernel, 0);
    expect(nf).toMatchObject({ nid: 0, score: 99, wmarkLow: 80, wmarkHigh: 90 });
    expect(nf.zones[0]).toMatchObject({ zone: 'Normal', score: 100, freePages: 64 });
  });

  it('sums weighted zones over a node with two zones', async () => {
    m = await createMachine({
      nodes: [
        {
          memory: '16MiB',
          zones: [
            { type: 'DMA32', memory: '8MiB' },
            { type: 'Normal', memory: '8MiB' },
          ],
        },
      ],
      prefault: false,
    });
    const [dma32, normal] = m.kernel.nodes[0]!.zones as [Zone, Zone];
    // DMA32: everything free in large blocks (score 0); Normal: every free page alone (score 100).
    shapeFreeLists(m, normal, [
      ...Array.from({ length: 1024 }, (_, i) => [2048 + 2 * i, 0] as [number, number]),
    ]);
    expect(fragmentationScoreZone(dma32)).toBe(0);
    expect(fragmentationScoreZone(normal)).toBe(100);
    // 2048 · 100 / 4097 = 49 (integer division per zone).
    expect(fragmentationScoreNode(m.kernel.nodes[0]!)).toBe(49);
  });
});
