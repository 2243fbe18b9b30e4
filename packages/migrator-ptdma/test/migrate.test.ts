import type { Machine } from '@pagemig/core';
import { DmaStatusCode } from '@pagemig/dmaengine';
import {
  batchOf,
  copyBatchRounds,
  createTestMachine,
  engineTimeoutProblems,
  markedRows,
  migrateEachFolioSize,
  migratorOptionError,
  patternBytes,
  populateRegion,
  scatteredRows,
} from '@pagemig/testkit';
import { afterEach, describe, expect, it } from 'vitest';
import { createMigrator, optionKeys, PtdmaError, type PtdmaMigrator } from '../dist/index.js';

let m: Machine | undefined;
afterEach(async () => {
  await m?.close();
  m = undefined;
});

const never = new AbortController().signal;

describe('migration through emulated PTDMA engines', () => {
  it.each([1, 2, 4, 16])('migrates with %i channel(s): bytes verified, invariants hold', async (channels) => {
    m = await createTestMachine();
    const mig = createMigrator({ channels });
    await m.offload.register(mig, 'all');
    expect(mig.devices.length).toBe(channels);
    const { folios, problems } = await migrateEachFolioSize(m, { bytes: 8 << 20, seed: channels });
    expect(problems).toEqual([]);
    const s = mig.stats();
    expect(s.folios_migrated).toBe(folios);
    expect(s.folios_failures).toBe(0);
    expect(s.descriptorFailures).toBe(0);
    // Only the rings stay mapped; every batch window was unmapped.
    for (const d of mig.devices) expect(d.iommu.mappedPages()).toBe(1);
    expect(mig.devices.reduce((n, d) => n + d.deviceCounters().bytes, 0)).toBe(3 * (8 << 20));
    expect(mig.devices.every((d) => d.deviceCounters().errors === 0)).toBe(true);
  });

  it('a device error in the middle of a batch leaves exactly those folios to the CPU', async () => {
    m = await createTestMachine();
    const mig = createMigrator({ channels: 2 });
    await m.offload.register(mig);
    const mem = m.kernel.mem;
    // Eight 1-page rows that do not merge: channel 0 gets rows 0-3, channel 1 rows 4-7.
    const rows = scatteredRows(8, 1000, 9000);
    for (const [s] of rows) mem.view(s).set(patternBytes(4096, s));
    for (const [, d] of rows) mem.view(d).fill(0xee);
    // Engine 1 fails its second descriptor (row 5); the driver skips the rest of its queue (6, 7).
    mig.devices[1]!.injectError(PtdmaError.ODMA0_AXI_SLVERR, 2);
    const batch = batchOf(rows);
    await mig.copyBatch(batch, { signal: never });
    expect(markedRows(batch)).toEqual([0, 1, 2, 3, 4]);
    for (const [i, [s, d]] of rows.entries()) {
      if (i <= 4) expect(Buffer.compare(mem.view(d), mem.view(s))).toBe(0);
      else expect(mem.view(d).every((b) => b === 0xee)).toBe(true);
    }
    const ch = mig.devices[1]!.channels[0].stats();
    expect(ch).toMatchObject({ completed: 1, errors: 1, notAttempted: 2 });
    expect(mig.stats()).toMatchObject({ folios_migrated: 5, folios_failures: 3, descriptorFailures: 3 });
    expect(m.offload.log.join('\n')).toContain('INVALID_DST_ADDR, device code 38');

    // Through the engine: the CPU copies what the device did not, and every byte arrives.
    const { p, addr: a, data, heads: pfns } = populateRegion(m, { bytes: 4 << 20, thp: 'never', seed: 9 });
    mig.devices[0]!.injectError(PtdmaError.LSB_PARITY_ERR, 1);
    const r = await m.migrateFolios(pfns, { node: 1 });
    expect(r.ret).toBe(0);
    const failed = mig.stats().folios_failures - 3;
    expect(failed).toBeGreaterThan(0);
    expect(r.offload.foliosCopied).toBe(pfns.length - failed);
    expect(Buffer.compare(p.read(a, data.length), data)).toBe(0);
    m.checkInvariants();
    // The channels work again afterwards.
    const back = pfns.map((_, i) => p.pageInfo(a + i * 4096)!.headPfn);
    const r2 = await m.migrateFolios(back, { node: 0 });
    expect(r2.offload.foliosCopied).toBe(pfns.length);
  });

  it('loses no completion that lands while the interrupt handler runs (many refills of one ring)', async () => {
    m = await createTestMachine();
    const mig = createMigrator({ channels: 1 });
    await m.offload.register(mig);
    // 40 one-page rows that do not merge: more than the ring holds, so every batch refills it from
    // the half-ring interrupt while the device keeps completing descriptors behind the handler.
    const rows = scatteredRows(40, 2000, 6000);
    expect(await copyBatchRounds(m, mig, rows, 300)).toEqual([]);
    expect(mig.stats()).toMatchObject({
      folios_migrated: 300 * rows.length,
      folios_failures: 0,
      timeouts: 0,
    });
  });

  it('on the engine timeout aborts and resets the channels, marks nothing, and recovers', async () => {
    m = await createTestMachine();
    // 20 MB/s: 4 MiB would take ~200 ms; the engine gives up after 20 ms.
    const mig = createMigrator({ channels: 2, timing: { bandwidth: '20MB/s' } });
    await m.offload.register(mig);
    const { p, addr: a, data, heads: pfns } = populateRegion(m, { bytes: 4 << 20, thp: 'always', seed: 4 });
    const t0 = performance.now();
    const r = await m.migrateFolios(pfns, { node: 1, copyTimeoutMs: 20 });
    expect(performance.now() - t0).toBeLessThan(1000);
    expect(engineTimeoutProblems(r, mig.stats())).toEqual([]);
    expect(Buffer.compare(p.read(a, data.length), data)).toBe(0);
    for (const d of mig.devices) expect(d.iommu.mappedPages()).toBe(1);
    m.checkInvariants();
    // Host speed again: the same channels copy the next migration.
    await m.offload.unregister(mig);
    const fast = createMigrator({ channels: 2 });
    await m.offload.register(fast);
    const back = pfns.map((_, i) => p.pageInfo(a + i * (2 << 20))!.headPfn);
    const r2 = await m.migrateFolios(back, { node: 0 });
    expect(r2.offload.foliosCopied).toBe(2);
    expect(Buffer.compare(p.read(a, data.length), data)).toBe(0);
  });

  it('resets an engine that does not stop in time, and the reset engine copies again', async () => {
    m = await createTestMachine();
    const mig = createMigrator({ channels: 2, resetTimeoutMs: 20 });
    await m.offload.register(mig);
    // Engine 0 wedges on its next descriptor: HALT goes unanswered, so terminate resets it. One
    // 2 MiB folio: one batch, on one channel (engine 0).
    mig.devices[0]!.injectWedge(1);
    const { p, addr: a, data, heads: pfns } = populateRegion(m, { bytes: 2 << 20, thp: 'always', seed: 5 });
    // The wedged descriptor never completes, so the timeout always fires; 1 s (not 30 ms) so that on
    // a loaded host the device thread has fetched it (and wedged) before the engine gives up.
    const r = await m.migrateFolios(pfns, { node: 1, copyTimeoutMs: 1000 });
    expect(r.ret).toBe(0);
    expect(r.offload.foliosCopied).toBe(0);
    expect(mig.devices.map((d) => d.resets)).toEqual([1, 0]);
    expect(m.offload.log.join('\n')).toContain(
      'pt0: resetting the engine: the queue did not stop after HALT',
    );
    expect(Buffer.compare(p.read(a, data.length), data)).toBe(0);
    // The new device boots in the background; work issued meanwhile starts when it is up.
    const back = pfns.map((_, i) => p.pageInfo(a + i * (2 << 20))!.headPfn);
    const r2 = await m.migrateFolios(back, { node: 0 });
    expect(r2.offload.foliosCopied).toBe(pfns.length);
    expect(mig.devices[0]!.state).toBe('up');
    expect(Buffer.compare(p.read(a, data.length), data)).toBe(0);
    m.checkInvariants();
  });

  it('fails outstanding work with DEV_LINK_ERROR when a device thread dies, then brings it back', async () => {
    m = await createTestMachine();
    // Held for 4 s, so the plug is pulled while the descriptor is in flight however busy the host.
    const mig = createMigrator({ channels: 1, timing: { latencyUs: 4_000_000 } });
    await m.offload.register(mig);
    const dev = mig.devices[0]!;
    const mem = m.kernel.mem;
    mem.view(2000, 4).fill(7);
    const batch = batchOf([[2000, 9000, 4]]);
    const run = mig.copyBatch(batch, { signal: never });
    await new Promise((res) => setTimeout(res, 5));
    // Pull the plug on the device thread behind the driver's back.
    await (dev as unknown as { dev: { worker: { terminate(): Promise<number> } } }).dev.worker.terminate();
    await run;
    expect(markedRows(batch)).toEqual([]);
    expect(dev.channels[0].stats().errors).toBe(1);
    for (let i = 0; i < 100 && dev.state !== 'up'; i++) await new Promise((res) => setTimeout(res, 10));
    expect(dev.state).toBe('up');
    dev.setTiming({ bandwidthMBps: 0, latencyNs: 0 });
    const again = batchOf([[2000, 9000, 4]]);
    await mig.copyBatch(again, { signal: never });
    expect(markedRows(again)).toEqual([0]);
    expect(mem.view(9000, 4).every((b) => b === 7)).toBe(true);
    expect(DmaStatusCode.DEV_LINK_ERROR).toBe(13);
  });
});

describe('the ptdma migrator object', () => {
  it('declares a manifest and options the registry can check', () => {
    const mig = createMigrator({ channels: 4, timing: { bandwidth: '4GB/s', latencyUs: 1 } });
    expect(mig.name).toBe('ptdma');
    expect(mig.capabilities).toMatchObject({
      offloadsCpu: true,
      channels: 4,
      maxInFlightBatches: 1,
      needsSharedMemory: true,
      device: 'AMD PTDMA (emulated)',
      queueDepth: 32,
    });
    expect((mig.capabilities.timing as unknown[])[0]).toEqual({ bandwidthBytesPerSec: 4e9, latencyUs: 1 });
    expect(JSON.parse(JSON.stringify(mig.capabilities))).toEqual(mig.capabilities);
    expect(optionKeys).toEqual([
      'channels',
      'timing',
      'offloading',
      'nr_dma_chan',
      'reason_mask',
      'deviceSpinUs',
      'runSpinUs',
      'minBatchPages',
      'driverSpinUs',
      'resetTimeoutMs',
    ]);
    expect(mig.devices).toEqual([]); // nothing starts before init
    expect(mig.params.list()).toMatchObject({ nr_dma_chan: '4', offloading: '1', reason_mask: 'all' });
  });

  it.each([
    [{ chanels: 2 }, /unknown option "chanels"/],
    [{ channels: 0 }, /channels must be an integer in 1\.\.16/],
    [{ channels: 17 }, /channels must be an integer in 1\.\.16/],
    [{ timing: { bandwidth: 'fast' } }, /is not a rate/],
    [{ timing: [{}, {}] }, /2 profiles for 1 channels/],
    [{ nr_dma_chan: 40 }, /nr_dma_chan must be 1\.\.16/],
    [{ reason_mask: 'sometimes' }, /unknown migrate reason/],
    [{ deviceSpinUs: -1 }, /deviceSpinUs/],
  ])('rejects %j with ERR_MIGRATOR_OPTION', (opts, msg) => {
    expect(migratorOptionError(() => createMigrator(opts as never))).toMatch(msg);
  });

  it('stops its device threads on dispose, idempotently, and frees the rings', async () => {
    m = await createTestMachine();
    const free0 = m.vmstat().nr_free_pages;
    const mig: PtdmaMigrator = createMigrator({ channels: 3 });
    await m.offload.register(mig);
    expect(m.vmstat().nr_free_pages).toBe(free0 - 3);
    const devices = [...mig.devices];
    await m.close();
    expect(devices.every((d) => d.state === 'removed')).toBe(true);
    await mig.dispose();
    expect(mig.devices).toEqual([]);
    m = undefined;
  });
});
