import { type Machine, PagemigError } from '@pagemig/core';
import { batchOf, markedRows, migrateEachFolioSize, populateRegion, scatteredRows } from '@pagemig/testkit';
import { afterEach, describe, expect, it } from 'vitest';
import {
  createDmaMigrator,
  type DmaMigrator,
  DmaStatusCode,
  type SkeletonOptions,
  skeletonProvider,
} from '../src/index.js';
import { fillPages, never, samePages, smallMachine } from './helpers.js';

let m: Machine | undefined;
afterEach(async () => {
  await m?.close();
  m = undefined;
});

function dcbm(opts: SkeletonOptions = {}, knobs: Record<string, unknown> = {}): DmaMigrator {
  return createDmaMigrator({
    name: 'dcbm-skel',
    version: '0.1.0',
    provider: skeletonProvider(opts),
    ...knobs,
  });
}

const submittedPerChannel = (mig: DmaMigrator) => mig.stats().channels.map((c) => c.submitted);

describe('dcbm over skeleton channels', () => {
  it.each([1, 2, 4, 16])(
    'migrates through %i channel(s): every byte arrives and the model stays consistent',
    async (n) => {
      m = await smallMachine('32MiB');
      const mig = dcbm({ channels: n, order: 'random', seed: n });
      await m.offload.register(mig, 'all');
      const { problems } = await migrateEachFolioSize(m, { bytes: 4 << 20, seed: n });
      expect(problems).toEqual([]);
      expect(mig.params.get('folios_failures')).toBe('0');
      expect(Number(mig.params.get('folios_migrated'))).toBe(1024 + 64 + 2);
      for (const ch of mig.channels) expect(ch.device.iommu.mappedPages()).toBe(0);
      expect(m.offload.status()[0]!.counters).toMatchObject({ folios_migrated: 1024 + 64 + 2 });
    },
  );

  it('slices a batch into near-equal contiguous parts, one per channel', async () => {
    m = await smallMachine();
    const mig = dcbm({ channels: 3 });
    await m.offload.register(mig);
    // Ten 1-page rows that are not physically contiguous: one descriptor each.
    const rows = scatteredRows(10, 100, 300);
    const batch = batchOf(rows);
    await mig.copyBatch(batch, { signal: never });
    expect(submittedPerChannel(mig)).toEqual([3, 3, 4]);
    expect(markedRows(batch)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  });

  it('merges physically contiguous runs of a part into one descriptor and balances parts by pages', async () => {
    m = await smallMachine();
    const mig = dcbm({ channels: 2 });
    await m.offload.register(mig);
    const src = fillPages(m, 1000, 10, 5);
    const batch = batchOf(
      Array.from({ length: 10 }, (_, i) => [1000 + i, 3000 + i, 1] as [number, number, number]),
    );
    await mig.copyBatch(batch, { signal: never });
    expect(submittedPerChannel(mig)).toEqual([1, 1]);
    expect(mig.stats().channels.map((c) => c.bytes)).toEqual([5 * 4096, 5 * 4096]);
    expect(samePages(m, 3000, src)).toBe(true);

    // A 512-page folio and a 1-page one on two channels: the parts are balanced by pages, so the big
    // folio is split (256 + 256 pages) and its row is marked once both halves landed.
    await m.offload.unregister(mig);
    const two = dcbm({ channels: 2 });
    await m.offload.register(two);
    const big = fillPages(m, 2048, 512, 6);
    fillPages(m, 1500, 1, 7);
    const b2 = batchOf([
      [2048, 4096, 512],
      [1500, 6000, 1],
    ]);
    await two.copyBatch(b2, { signal: never });
    expect(two.stats().channels.map((c) => c.bytes)).toEqual([256 * 4096, 257 * 4096]);
    expect(markedRows(b2)).toEqual([0, 1]);
    expect(samePages(m, 4096, big)).toBe(true);
    // A lone folio goes to one channel: two devices' wake-ups cost more than they save.
    const b3 = batchOf([[2048, 7000, 512]]);
    await two.copyBatch(b3, { signal: never });
    expect(two.stats().channels.map((c) => c.submitted)).toEqual([1 + 1, 2]);
  });

  it('waits for every descriptor when the engine completes them out of order', async () => {
    m = await smallMachine();
    for (const order of ['lifo', 'random'] as const) {
      const mig = dcbm({ channels: 2, order, seed: 7 });
      await m.offload.register(mig);
      const data = fillPages(m, 500, 40, 8);
      m.kernel.mem.view(5000, 80).fill(0);
      // Every other destination page: nothing merges, 40 descriptors.
      const batch = batchOf(
        Array.from({ length: 40 }, (_, i) => [500 + i, 5000 + 2 * i, 1] as [number, number, number]),
      );
      await mig.copyBatch(batch, { signal: never });
      expect(markedRows(batch).length).toBe(40);
      for (let i = 0; i < 40; i++) {
        expect(Buffer.compare(m.kernel.mem.view(5000 + 2 * i), data.subarray(i * 4096, (i + 1) * 4096))).toBe(
          0,
        );
      }
      await m.offload.unregister(mig);
    }
  });

  it('marks only the rows whose descriptors succeeded when a device fails one', async () => {
    m = await smallMachine();
    // Channel 1 fails its second descriptor.
    const mig = dcbm({
      channels: 2,
      inject: (ch, i) => (ch === 1 && i === 1 ? DmaStatusCode.BUS_WRITE_ERROR : undefined),
    });
    await m.offload.register(mig);
    fillPages(m, 600, 8, 9);
    m.kernel.mem.view(7000, 16).fill(0xee);
    const batch = batchOf(
      Array.from({ length: 8 }, (_, i) => [600 + i, 7000 + 2 * i, 1] as [number, number, number]),
    );
    await mig.copyBatch(batch, { signal: never });
    // Rows 4..7 went to channel 1; its second descriptor carried row 5.
    expect(markedRows(batch)).toEqual([0, 1, 2, 3, 4, 6, 7]);
    expect(m.kernel.mem.view(7010).every((b) => b === 0xee)).toBe(true);
    expect(mig.params.list()).toMatchObject({ folios_migrated: '7', folios_failures: '1' });
    expect(mig.stats()).toMatchObject({ descriptorFailures: 1 });
    expect(m.offload.log.some((l) => l.includes('BUS_WRITE_ERROR'))).toBe(true);
  });

  it('leaves the rows with the CPU when a run cannot be mapped', async () => {
    m = await smallMachine();
    const mig = dcbm({ channels: 1 });
    await m.offload.register(mig);
    // Both rows read pfn 700: the second mapping of the same frame is refused (EEXIST).
    const batch = batchOf([
      [700, 800, 1],
      [700, 900, 1],
    ]);
    await mig.copyBatch(batch, { signal: never });
    expect(markedRows(batch)).toEqual([0]);
    expect(mig.stats().mapFailures).toBe(1);
    expect(mig.channels[0]!.device.iommu.mappedPages()).toBe(0);
  });

  it('on a timeout terminates the channel, marks nothing, and works again afterwards', async () => {
    m = await smallMachine();
    let hang = true;
    const mig = dcbm({ channels: 2, inject: (ch) => (hang && ch === 0 ? 'hang' : undefined) });
    await m.offload.register(mig);
    const { p, addr: a, data, heads: pfns } = populateRegion(m, { bytes: 1 << 20, thp: 'never', seed: 3 });
    const r = await m.migrateFolios(pfns, { node: 1, copyTimeoutMs: 30 });
    expect(r.ret).toBe(0);
    expect(r.offload.failures).toBeGreaterThan(0);
    expect(r.offload.foliosCopied).toBe(0);
    expect(mig.stats().timeouts).toBeGreaterThan(0);
    expect(mig.stats().channels[0]!.aborted).toBeGreaterThan(0);
    expect(Buffer.compare(p.read(a, data.length), data)).toBe(0);
    for (const ch of mig.channels) expect(ch.device.iommu.mappedPages()).toBe(0);
    m.checkInvariants();
    hang = false;
    const back = pfns.map((_, i) => p.pageInfo(a + i * 4096)!.headPfn);
    // A fresh migrator entry: the host disables one after 3 failed batches.
    await m.offload.unregister(mig);
    const again = dcbm({ channels: 2 });
    await m.offload.register(again);
    const r2 = await m.migrateFolios(back, { node: 0 });
    expect(r2.offload.foliosCopied).toBe(256);
    expect(Buffer.compare(p.read(a, data.length), data)).toBe(0);
  });

  it('groups runs into scatter-gather descriptors on MEMCPY_SG channels (sg_elems)', async () => {
    m = await smallMachine();
    const mig = dcbm({ channels: 1, sgSegments: 16 }, { sg_elems: 4 });
    await m.offload.register(mig);
    const data = fillPages(m, 1200, 10, 11);
    const batch = batchOf(
      Array.from({ length: 10 }, (_, i) => [1200 + i, 4000 + 3 * i, 1] as [number, number, number]),
    );
    await mig.copyBatch(batch, { signal: never });
    expect(submittedPerChannel(mig)).toEqual([3]); // 4 + 4 + 2 runs
    expect(markedRows(batch).length).toBe(10);
    for (let i = 0; i < 10; i++)
      expect(Buffer.compare(m.kernel.mem.view(4000 + 3 * i), data.subarray(i * 4096, (i + 1) * 4096))).toBe(
        0,
      );
  });
});

describe('dcbm knobs and counters', () => {
  it('parses its parameters like the kernel and resets counters on any write', () => {
    const mig = dcbm({ channels: 4 });
    expect(mig.params.list()).toEqual({
      offloading: '1',
      nr_dma_chan: '4',
      reason_mask: 'all',
      sg_elems: '32',
      folios_migrated: '0',
      folios_failures: '0',
    });
    mig.params.set('nr_dma_chan', '16');
    mig.params.set('offloading', 'N');
    mig.params.set('reason_mask', 'compaction,demotion');
    expect(mig.params.list()).toMatchObject({
      nr_dma_chan: '16',
      offloading: '0',
      reason_mask: 'compaction,demotion',
    });
    for (const [k, v] of [
      ['nr_dma_chan', '0'],
      ['nr_dma_chan', 17],
      ['offloading', 'maybe'],
      ['reason_mask', 'bogus'],
    ] as const) {
      try {
        mig.params.set(k, v);
        expect.unreachable();
      } catch (e) {
        expect(PagemigError.isInstance(e) && e.code).toBe('EINVAL');
      }
    }
    expect(mig.params.get('nr_dma_chan')).toBe('16');
    mig.params.set('folios_migrated', '123');
    expect(mig.params.get('folios_migrated')).toBe('0');
  });

  it('rejects bad knobs at creation with ERR_MIGRATOR_OPTION', () => {
    for (const knobs of [
      { nr_dma_chan: 0 },
      { nr_dma_chan: 17 },
      { reason_mask: 'nope' },
      { offloading: 2 },
    ]) {
      try {
        dcbm({}, knobs);
        expect.unreachable();
      } catch (e) {
        expect(PagemigError.isInstance(e) && e.code).toBe('ERR_MIGRATOR_OPTION');
      }
    }
  });

  it('offers batches only while offloading and only for reasons in reason_mask', async () => {
    m = await smallMachine();
    const mig = dcbm({ channels: 2 }, { reason_mask: 'compaction' });
    await m.offload.register(mig, 'all');
    const info = { mode: 2 as const, folios: 1, pages: 1, maxFolioPages: 1 };
    expect(mig.shouldOffload!({ ...info, reason: 0 })).toBe(true);
    expect(mig.shouldOffload!({ ...info, reason: 3 })).toBe(false);
    mig.params.set('offloading', 0);
    expect(mig.shouldOffload!({ ...info, reason: 0 })).toBe(false);
    // nr_dma_chan limits the channels one batch uses.
    mig.params.set('offloading', 1);
    mig.params.set('nr_dma_chan', 1);
    const batch = batchOf([
      [100, 200, 1],
      [102, 202, 1],
    ]);
    await mig.copyBatch(batch, { signal: never });
    expect(submittedPerChannel(mig)).toEqual([2, 0]);
  });

  it('declares a manifest the host accepts and disposes idempotently', async () => {
    const mig = dcbm({ channels: 3 });
    expect(mig.capabilities).toMatchObject({
      offloadsCpu: true,
      channels: 3,
      maxInFlightBatches: 1,
      needsSharedMemory: true,
    });
    m = await smallMachine();
    await m.offload.register(mig);
    expect(mig.channels.length).toBe(3);
    await m.offload.unregister(mig);
    await mig.dispose();
    expect(mig.channels.length).toBe(0);
  });
});
