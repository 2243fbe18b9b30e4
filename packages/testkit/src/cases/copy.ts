import { type Machine, type MmapOptions, PAGE_SIZE } from '@pagemig/core';
import { checkMarks, copyDirect, directBatch } from '../direct_batch.js';
import { checkRegion, machineChecksum, populateRegion, regionNodes, type TestRegion } from '../fixtures.js';
import { expectDeclined, gatedBatch } from '../offload_gate.js';
import type { Suite } from '../suite.js';

const SIZES: [label: string, thp: MmapOptions['thp'], pages: number][] = [
  ['4KiB', 'never', 256],
  ['16KiB', '16KiB', 256],
  ['64KiB', '64KiB', 512],
  ['2MiB', 'always', 1024],
];

/** copy/*: migrations through the engine, and a batch handed to copyBatch directly. */
export function copyCases(s: Suite): void {
  const { expect } = s;

  /**
   * Migrates the regions to node 1 and checks bytes, mapping, checksum and counters. The gate may
   * decline any of these batches, so only `expectCopiedByMigrator` demands that it copied them.
   */
  async function migrateAndCheck(m: Machine, regions: TestRegion[], expectCopiedByMigrator: boolean) {
    const before = machineChecksum(m);
    const heads = regions.flatMap((r) => r.heads);
    const pages = regions.reduce((sum, r) => sum + r.bytes / PAGE_SIZE, 0);
    const res = await m.migrateFolios(heads, { node: 1 });
    expect({ ret: res.ret, nrSucceeded: res.nrSucceeded, nrFailed: res.nrFailed }).toEqual({
      ret: 0,
      nrSucceeded: pages,
      nrFailed: 0,
    });
    for (const r of regions) {
      expect(regionNodes(r)).toEqual([1]);
      expect(checkRegion(m, r)).toEqual([]);
    }
    expect(machineChecksum(m)).toBe(before);
    expect(res.offload.foliosCopied).toBeLessThanOrEqual(res.offload.foliosOffered);
    if (expectCopiedByMigrator) {
      expect(res.offload.failures).toBe(0);
      expect(res.offload.foliosCopied).toBe(heads.length);
    }
  }

  for (const [label, thp, pages] of SIZES) {
    s.test(`copy/${label}`, `migrates ${label} folios through the migrator; every byte arrives`, () =>
      s.withMachine(async (m) => {
        const r = populateRegion(m, { bytes: pages * PAGE_SIZE, thp, seed: pages });
        await migrateAndCheck(m, [r], false);
      }),
    );
  }

  s.test('copy/mixed', 'one migration of 4KiB, 64KiB and 2MiB folios, private and shared', () =>
    s.withMachine(async (m) => {
      const p = m.spawn({ privileged: true });
      const regions = [
        populateRegion(m, { p, bytes: 64 * PAGE_SIZE, thp: 'never', seed: 2 }),
        populateRegion(m, { p, bytes: 2 << 20, thp: 'always', seed: 3 }),
        populateRegion(m, { p, bytes: 128 * PAGE_SIZE, thp: '64KiB', seed: 4 }),
        populateRegion(m, { p, bytes: 32 * PAGE_SIZE, thp: 'never', shared: true, seed: 5 }),
      ];
      await migrateAndCheck(m, regions, false);
    }),
  );

  s.test('copy/direct', 'copies and marks every row of a batch it is handed (4KiB..2MiB rows)', () =>
    s.withMachine(async (m, mig) => {
      const orders = [0, 0, 2, 4, 9, 0, 3];
      const gated = gatedBatch(mig, orders);
      if (!gated) return expectDeclined(expect, m, mig, orders.length);
      const d = directBatch(m, gated.orders, 1, gated);
      try {
        await copyDirect(mig, d);
        const { marked, problems } = checkMarks(m, d);
        expect(problems).toEqual([]);
        expect(marked).toBe(d.batch.rows);
      } finally {
        d.release();
      }
    }),
  );
}
