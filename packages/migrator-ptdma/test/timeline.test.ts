import { checkChromeTrace, type Machine } from '@pagemig/core';
import { devicePollers } from '@pagemig/dmaengine';
import { createTestMachine, populateRegion } from '@pagemig/testkit';
import { afterEach, describe, expect, it } from 'vitest';
import { createMigrator } from '../dist/index.js';

let m: Machine | undefined;
afterEach(async () => {
  await m?.close();
  m = undefined;
});

describe('timeline of a migration on emulated PTDMA engines', () => {
  it('one dma_desc span per descriptor on each channel used, inside its batch copy, with a flow from the batch', async () => {
    m = await createTestMachine({ migrationBatchPages: 256 });
    const mig = createMigrator({ channels: 2 });
    await m.offload.register(mig, 'all');
    const { p, addr, data, heads } = populateRegion(m, { bytes: 4 << 20, thp: 'never', seed: 3 });
    m.timeline.start();
    const r = await m.migrateFolios(heads, { node: 1 });
    const cap = m.timeline.stop();
    expect(r.ret).toBe(0);
    expect(Buffer.compare(p.read(addr, data.length), data)).toBe(0);
    expect(checkChromeTrace(JSON.parse(cap.toChromeJson()))).toEqual([]);

    const copies = cap.find('batch_copy');
    expect(copies).toHaveLength(r.offload.batches);
    expect(copies).toHaveLength(4);
    let descs = 0;
    // The run's batches go to the engines that poll during it (one per core beside the engine's).
    const used = mig.devices.filter((d) => d.channels[0].stats().completed > 0);
    expect(used).toHaveLength(Math.min(2, devicePollers()));
    for (const dev of used) {
      const ch = dev.channels[0];
      const spans = cap.find('dma_desc', ch.name);
      expect(spans).toHaveLength(ch.stats().completed);
      expect(cap.thread(spans[0]!.tid)).toMatchObject({ process: 'ptdma', kind: 'dma' });
      // The interrupt handler completed each descriptor: one dma_irq instant each.
      expect(cap.find('dma_irq', ch.name)).toHaveLength(spans.length);
      for (const d of spans) {
        expect(d.args.status).toBe(0);
        // The device's own span lies inside the engine's wait for that batch (one clock).
        const bc = copies.find((c) => c.args.batch === d.args.batch)!;
        expect(bc).toBeDefined();
        expect(d.ts).toBeGreaterThanOrEqual(bc.ts - 5);
        expect(d.ts + d.dur).toBeLessThanOrEqual(bc.ts + bc.dur + 5);
      }
      descs += spans.length;
    }
    expect(descs).toBe(mig.stats().descriptors);
    // A flow per batch and channel that served it.
    const flows = cap.flows();
    const pairs = new Set(cap.find('dma_desc').map((d) => `${d.args.batch}:${d.tid}`));
    expect(flows).toHaveLength(pairs.size);
    expect(flows.every((f) => f.from.name === 'batch_copy' && f.to.args.batch === f.batch)).toBe(true);
  });

  it('records nothing while off, and the migrator works on a host without a timeline', async () => {
    m = await createTestMachine();
    const mig = createMigrator({ channels: 1 });
    await m.offload.register(mig, 'all');
    const { heads } = populateRegion(m, { bytes: 1 << 20, thp: 'never', seed: 4 });
    await m.migrateFolios(heads, { node: 1 });
    m.timeline.start();
    const cap = m.timeline.stop();
    expect(cap.events).toEqual([]);
  });
});
