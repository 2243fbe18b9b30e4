// Migration runs on emulated PTDMA engines: the devices poll for doorbells between the batches of
// a run (no thread wake-up per batch), raise one completion interrupt per channel per batch, and
// sleep once the run ends or their bounded poll runs out.
import { type Machine, MigrateMode, MigrateReason, type MigrationRunInfo } from '@pagemig/core';
import { devicePollers } from '@pagemig/dmaengine';
import { batchOf, createTestMachine, markedRows, populateRegion } from '@pagemig/testkit';
import { afterEach, describe, expect, it } from 'vitest';
import { createMigrator, type PtdmaEngine, regs } from '../dist/index.js';

let m: Machine | undefined;
afterEach(async () => {
  await m?.close();
  m = undefined;
});

async function until(cond: () => boolean, what: string): Promise<void> {
  const t0 = performance.now();
  while (!cond()) {
    if (performance.now() - t0 > 5000) throw new Error(`timed out waiting until ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

const msis = (d: PtdmaEngine) => d.mmio.read(regs.EMU_MSI);
const runFlag = (d: PtdmaEngine) => d.mmio.read(regs.EMU_RUN);

describe('ptdma: migration runs', () => {
  it('one descriptor and one completion interrupt per polling channel per 2 MiB batch; asleep after', async () => {
    m = await createTestMachine();
    const mig = createMigrator({ channels: 2, runSpinUs: 1e6 });
    await m.offload.register(mig, 'all');
    const devs = mig.devices;
    const r = populateRegion(m, { bytes: 8 << 20, thp: 'always', seed: 3 });
    const msi0 = devs.map(msis);
    const desc0 = devs.map((d) => d.deviceCounters().descriptors);
    const res = await m.migrateFolios(r.heads, { node: 1 });
    expect(res.ret).toBe(0);
    expect(res.offload.foliosCopied).toBe(4);
    expect(Buffer.compare(r.p.read(r.addr, r.bytes), r.data)).toBe(0);
    // Four batches of one 2 MiB folio on the engines that poll during the run (as many as the host
    // has cores beside the engine's thread): cut in halves when both poll, whole on one otherwise.
    // A descriptor and an interrupt (on its last descriptor only) per polling engine per batch.
    const used = Math.min(2, devicePollers()) === 2 ? [4, 4] : [4, 0];
    expect(devs.map((d, i) => d.deviceCounters().descriptors - desc0[i]!)).toEqual(used);
    expect(devs.map((d, i) => msis(d) - msi0[i]!)).toEqual(used);
    expect(mig.stats()).toMatchObject({ runs: 1, folios_migrated: 4 });
    // The run is over: the devices stop polling (a poll budget of 1 s notwithstanding) and sleep.
    expect(devs.map(runFlag)).toEqual([0, 0]);
    await until(() => devs.every((d) => d.sleeping), 'the devices sleep after the run');
    m.checkInvariants();
  });

  it('a device polls for a bounded time, then sleeps even while the run goes on', async () => {
    m = await createTestMachine();
    const mig = createMigrator({ channels: 2, runSpinUs: 2000 });
    await m.offload.register(mig, 'all');
    const devs = mig.devices;
    await until(() => devs.every((d) => d.sleeping), 'idle devices sleep');
    const sleeps0 = devs.map((d) => d.deviceCounters().sleeps);
    const info: MigrationRunInfo = {
      reason: MigrateReason.MR_SYSCALL,
      mode: MigrateMode.MIGRATE_SYNC,
      node: 1,
      folios: 4,
      pages: 2048,
    };
    mig.runStart!(info);
    // runStart woke the engines that poll (one per core beside the engine's thread) ...
    const polling = devs.slice(0, devicePollers());
    expect(devs.map(runFlag)).toEqual(devs.map((_, i) => (i < polling.length ? 1 : 0)));
    await until(() => polling.every((d, i) => d.deviceCounters().sleeps > sleeps0[i]!), 'the polls run out');
    // ... and with no doorbell for 2 ms, each went back to sleep: the run flag is still up.
    expect(devs.every((d) => d.sleeping)).toBe(true);
    expect(polling.map(runFlag)).toEqual(polling.map(() => 1));
    mig.runEnd!(info);
    expect(devs.map(runFlag)).toEqual([0, 0]);
  });

  it('waits for a batch in place: copyBatch returns done (no promise) once the engine completed it', async () => {
    m = await createTestMachine();
    const mig = createMigrator({ channels: 1 });
    await m.offload.register(mig, 'all');
    const src = m.kernel.mem.view(4096, 64);
    for (let i = 0; i < src.length; i++) src[i] = (i * 13 + 7) & 255;
    m.kernel.mem.view(8192, 64).fill(0);
    const mapped = mig.devices[0]!.iommu.mappedPages(); // the ring's own page
    // The engine's thread sleeps on the interrupt line until the completion, as a CPU copy blocks
    // it. (A host too loaded to run the device thread within the 20 ms wait gets a promise: of five
    // tries, one must end in place.)
    let inPlace = false;
    let batch = batchOf([[4096, 8192, 64]]);
    for (let i = 0; i < 5 && !inPlace; i++) {
      batch = batchOf([[4096, 8192, 64]]);
      const ret = mig.copyBatch(batch, { signal: new AbortController().signal });
      inPlace = ret === undefined;
      await ret;
    }
    expect(inPlace).toBe(true);
    expect(markedRows(batch)).toEqual([0]);
    expect(Buffer.compare(m.kernel.mem.view(8192, 64), src)).toBe(0);
    expect(mig.devices[0]!.iommu.mappedPages()).toBe(mapped);
  });

  it('awaits a batch the engine does not finish within the wait in place; an abort then ends it', async () => {
    m = await createTestMachine();
    const mig = createMigrator({ channels: 1, resetTimeoutMs: 50 });
    await m.offload.register(mig, 'all');
    mig.devices[0]!.injectWedge(1);
    const mapped = mig.devices[0]!.iommu.mappedPages();
    const ac = new AbortController();
    const batch = batchOf([[4096, 8192, 16]]);
    const t0 = performance.now();
    const ret = mig.copyBatch(batch, { signal: ac.signal });
    // It waited in place (20 ms) before handing the batch to the event loop.
    expect(performance.now() - t0).toBeGreaterThanOrEqual(19);
    expect(ret).toBeInstanceOf(Promise);
    ac.abort();
    await ret;
    expect(markedRows(batch)).toEqual([]);
    expect(mig.stats()).toMatchObject({ timeouts: 1, folios_migrated: 0 });
    expect(mig.devices[0]!.iommu.mappedPages()).toBe(mapped);
  });
});
