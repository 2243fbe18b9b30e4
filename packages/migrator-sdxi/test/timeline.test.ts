import { checkChromeTrace, type Machine } from '@pagemig/core';
import { createTestMachine, populateRegion } from '@pagemig/testkit';
import { afterEach, describe, expect, it } from 'vitest';
import { createMigrator } from '../dist/index.js';

let m: Machine | undefined;
afterEach(async () => {
  await m?.close();
  m = undefined;
});

describe('timeline of a migration on an emulated SDXI function', () => {
  it('one dma_desc span per copy descriptor on the context used, inside its batch copy, and its completion', async () => {
    m = await createTestMachine({ migrationBatchPages: 256 });
    const mig = createMigrator({ channels: 2 });
    await m.offload.register(mig, 'all');
    const { p, addr, data, heads } = populateRegion(m, { bytes: 4 << 20, thp: 'never', seed: 5 });
    m.timeline.start();
    const r = await m.migrateFolios(heads, { node: 1 });
    const cap = m.timeline.stop();
    expect(r.ret).toBe(0);
    expect(Buffer.compare(p.read(addr, data.length), data)).toBe(0);
    expect(checkChromeTrace(JSON.parse(cap.toChromeJson()))).toEqual([]);
    const copies = cap.find('batch_copy');
    expect(copies).toHaveLength(r.offload.batches);
    let descs = 0;
    // During a run the function's one data mover takes the run's batches on its first context.
    const used = mig.function!.contexts.filter((c) => c.channels[0].stats().completed > 0);
    expect(used.map((c) => c.id)).toEqual([1]);
    for (const c of used) {
      const ch = c.channels[0];
      const spans = cap.find('dma_desc', ch.name);
      expect(spans).toHaveLength(ch.stats().completed);
      expect(cap.thread(spans[0]!.tid)).toMatchObject({ process: 'sdxi', kind: 'dma' });
      // The function's completion interrupt (the fenced DSC_INTR) and the driver's handling of each descriptor.
      expect(cap.find('dma_completion', ch.name).length).toBeGreaterThan(0);
      expect(cap.find('dma_irq', ch.name)).toHaveLength(spans.length);
      for (const d of spans) {
        const bc = copies.find((x) => x.args.batch === d.args.batch)!;
        expect(bc).toBeDefined();
        expect(d.ts).toBeGreaterThanOrEqual(bc.ts - 5);
        expect(d.ts + d.dur).toBeLessThanOrEqual(bc.ts + bc.dur + 5);
      }
      descs += spans.length;
    }
    expect(descs).toBe(mig.stats().descriptors);
    expect(cap.flows().length).toBe(
      new Set(cap.find('dma_desc').map((d) => `${d.args.batch}:${d.tid}`)).size,
    );
  });
});
