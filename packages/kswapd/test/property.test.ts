import { PAGE_SIZE } from '@pagemig/core';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { attachKswapd } from '../src/index.js';
import { pageBytes, tierMachine, wmarks } from './helpers.js';

/*
 * Whatever the sequence of fills and unmaps bound to DRAM: once kswapd has settled, node 0 is
 * above its high watermark if kswapd ran, else above its low one, every byte of every live
 * region is intact wherever its pages went, nothing stays isolated, and the machine's invariants
 * hold (the LRU's among them).
 */
describe('kswapd under random fills and unmaps', () => {
  it('keeps every byte and leaves DRAM balanced', async () => {
    let demoted = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.array(
          fc.oneof(
            {
              weight: 3,
              arbitrary: fc.record({
                op: fc.constant('fill' as const),
                share: fc.double({ min: 0.3, max: 1, noNaN: true }),
              }),
            },
            { weight: 1, arbitrary: fc.record({ op: fc.constant('unmap' as const), pick: fc.nat() }) },
          ),
          { minLength: 2, maxLength: 8 },
        ),
        async (ops) => {
          const m = await tierMachine(4, 16);
          try {
            const ks = attachKswapd(m, { demotion: true, napMs: 1 });
            const w = wmarks(m, 0);
            const p = m.spawn({ comm: 'prop', node: 0 });
            const live: { addr: number; pages: number; seed: number }[] = [];
            let seed = 0;
            for (const o of ops) {
              const wakes = ks.stats().wakes;
              if (o.op === 'fill') {
                // Never below min: the main thread's faults cannot wait for reclaim.
                const room = m.freePages(0) - w.min - 16;
                const pages = Math.min(Math.max(1, Math.floor(room * o.share)), room);
                if (pages <= 0) continue;
                const addr = p.mmap(pages * PAGE_SIZE, { node: 0, thp: 'never' });
                p.write(addr, pageBytes(pages, ++seed));
                live.push({ addr, pages, seed });
              } else if (live.length) {
                const [r] = live.splice(o.pick % live.length, 1);
                p.munmap(r!.addr, r!.pages * PAGE_SIZE);
              }
              await ks.settled();
              const s = ks.stats();
              expect(s.reclaimFailed).toBeNull();
              // Woken (below low): balanced to high. Not woken: never went below low.
              expect(m.freePages(0)).toBeGreaterThan(s.wakes > wakes ? w.high : w.low);
              expect(m.vmstat().nr_isolated_anon).toBe(0);
            }
            for (const r of live)
              expect(Buffer.compare(p.read(r.addr, r.pages * PAGE_SIZE), pageBytes(r.pages, r.seed))).toBe(0);
            m.checkInvariants();
            demoted += ks.stats().demoted;
            await ks.stop();
          } finally {
            await m.close();
          }
        },
      ),
      { numRuns: 10, seed: 19 },
    );
    // The runs did make kswapd demote (the property is not only about idle machines).
    expect(demoted).toBeGreaterThan(0);
  }, 120_000);
});
