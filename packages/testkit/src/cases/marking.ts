import type { FaultRule } from '@pagemig/core';
import { checkMarks, copyDirect, directBatch } from '../direct_batch.js';
import { expectDeclined, gatedBatch } from '../offload_gate.js';
import type { Suite } from '../suite.js';

/** marking/*: a mark is a promise that the row's bytes are at the destination. */
export function markingCases(s: Suite): void {
  const { expect } = s;

  s.test('marking/only-copied', 'marks only rows it really copied, never writes outside them', () =>
    s.withMachine(async (m, mig) => {
      const orders = [0, 0, 0, 0, 0, 1, 0, 2];
      const gated = gatedBatch(mig, orders);
      if (!gated) return expectDeclined(expect, m, mig, orders.length);
      // Also with the rows' own faults when the driver honours them: rows 1 and 3 fail.
      const sites = mig.capabilities.faultSites ?? [];
      const rules: FaultRule[] = [];
      if (sites.includes('copy_row')) {
        rules.push(
          { site: 'copy_row', action: 'skip', nth: 2 },
          { site: 'copy_row', action: 'garbage', nth: 4 },
        );
      }
      if (rules.length) m.injectFaults(rules);
      const d = directBatch(m, gated.orders, 5, gated);
      try {
        await copyDirect(mig, d);
        const { marked, problems } = checkMarks(m, d, 5);
        expect(problems).toEqual([]);
        if (rules.length) {
          expect(d.batch.isCopied(1)).toBe(false);
          expect(d.batch.isCopied(3)).toBe(false);
          expect(marked).toBe(d.batch.rows - 2);
        }
      } finally {
        d.release();
      }
    }),
  );
}
