import { PAGE_SIZE } from '@pagemig/core';
import { checkMarks, directBatch, within } from '../direct_batch.js';
import { checkRegion, migrateRegion, populateRegion, regionNodes } from '../fixtures.js';
import { expectDeclined, gatedBatch } from '../offload_gate.js';
import type { Suite } from '../suite.js';

/** concurrency/*: batches and migrations in flight at once. */
export function concurrencyCases(s: Suite): void {
  const { expect } = s;

  s.test('concurrency/batches', 'concurrent batches (up to maxInFlightBatches) each copy correctly', () =>
    s.withMachine(
      async (m, mig) => {
        const orders = [0, 2, 0, 4, 0, 0];
        const gated = gatedBatch(mig, orders);
        if (!gated) return expectDeclined(expect, m, mig, orders.length);
        const n = Math.min(4, mig.capabilities.maxInFlightBatches);
        const ds = Array.from({ length: n }, (_, i) => directBatch(m, gated.orders, 10 + i, gated));
        try {
          await within(
            Promise.all(ds.map((d) => mig.copyBatch(d.batch, { signal: new AbortController().signal }))),
            10_000,
            'concurrent copyBatch',
          );
          ds.forEach((d, i) => {
            const { marked, problems } = checkMarks(m, d, 10 + i);
            expect(problems).toEqual([]);
            expect(marked).toBe(d.batch.rows);
          });
        } finally {
          for (const d of ds) d.release();
        }
      },
      // Room for four batches of 2 MiB rows (and their guards) when the gate takes nothing smaller.
      { nodeMemory: '128MiB' },
    ),
  );

  s.test('concurrency/migrations', 'two migrations in flight at once through the engine', () =>
    s.withMachine(async (m) => {
      const a = populateRegion(m, { bytes: 512 * PAGE_SIZE, thp: 'never', seed: 21 });
      const b = populateRegion(m, { bytes: 4 << 20, thp: 'always', seed: 22 });
      const [ra, rb] = await Promise.all([migrateRegion(m, a, 1), migrateRegion(m, b, 1)]);
      expect([ra.ret, rb.ret]).toEqual([0, 0]);
      expect(checkRegion(m, a)).toEqual([]);
      expect(checkRegion(m, b)).toEqual([]);
      expect(regionNodes(a).concat(regionNodes(b))).toEqual([1, 1]);
    }),
  );
}
