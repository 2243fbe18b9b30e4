import type { Machine } from '@pagemig/core';
import {
  DMA_FROM_DEVICE,
  DMA_TO_DEVICE,
  DmaStatusCode,
  type DmaTxResult,
  HOST_TIMING,
} from '@pagemig/dmaengine';
import {
  createTestMachine,
  engineTimeoutProblems,
  migratorOptionError,
  patternBytes,
} from '@pagemig/testkit';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  copyDescriptor,
  createMigrator,
  cxtStartDescriptor,
  cxtStopDescriptor,
  regs,
  tables,
} from '../dist/index.js';
import { P, Rig } from './rig.js';

const r = regs;
const MiB = 1 << 20;
/** What the profile says `len` bytes take, in ms. */
const modelMs = (len: number, mbps: number, latencyUs = 0) => len / (mbps * 1e3) + latencyUs / 1e3;
const same = (a: Uint8Array, b: Uint8Array) => Buffer.compare(a, b) === 0;
const sleep = (ms: number) => new Promise((res) => setTimeout(res, ms));

describe('the SDXI function throttled to a timing profile, driven by hand', () => {
  let rig: Rig;
  // Sources in the first 4 MiB section, destinations in the second.
  const SRC = 512;
  const DST = 1024;
  beforeAll(async () => {
    rig = await Rig.create();
  });
  afterAll(async () => {
    await rig.close();
  });
  beforeEach(async () => {
    rig.mmio.write(r.EMU_BW_MBPS, 0);
    rig.mmio.write(r.EMU_LATENCY_NS, 0);
    await rig.activate();
    rig.spaces[0]!.map(SRC, 512, DMA_TO_DEVICE);
    rig.spaces[0]!.map(DST, 512, DMA_FROM_DEVICE);
    rig.bytes(SRC, 512).set(patternBytes(2 * MiB, 1));
    rig.bytes(DST, 512).fill(0xaa);
  });
  const copy = (len: number) => copyDescriptor({ dst: DST * P, src: SRC * P, len });

  it('holds a copy for its modelled time, then its bytes land', async () => {
    // 2 MiB at 20 MB/s: ~105 ms.
    rig.mmio.write(r.EMU_BW_MBPS, 20);
    const t0 = performance.now();
    const i = rig.put(1, copy(2 * MiB));
    rig.doorbell(1);
    await rig.idle();
    expect(performance.now() - t0).toBeGreaterThanOrEqual(0.95 * modelMs(2 * MiB, 20));
    expect(same(rig.bytes(DST, 512), rig.bytes(SRC, 512))).toBe(true);
    expect(rig.readIndex(1)).toBe(1n);
    expect(rig.u64(rig.cst(1, i))).toBe(0n);
  });

  it('adds the latency per descriptor and keeps time across descriptors (a virtual clock)', async () => {
    // 8 × 4 KiB with 5 ms each: ~40 ms, however coarse the sleeps.
    rig.mmio.write(r.EMU_LATENCY_NS, 5_000_000);
    const t0 = performance.now();
    for (let k = 0; k < 8; k++)
      rig.put(1, copyDescriptor({ dst: (DST + k) * P, src: (SRC + k) * P, len: P }));
    rig.doorbell(1);
    await rig.idle();
    expect(performance.now() - t0).toBeGreaterThanOrEqual(0.95 * 8 * modelMs(P, 1e6, 5000));
    expect(rig.readIndex(1)).toBe(8n);
    expect(same(rig.bytes(DST, 8), rig.bytes(SRC, 8))).toBe(true);
  });

  it('a context stop abandons the held copy: nothing written, not consumed, no error', async () => {
    // 1 MiB at 1 MB/s would take ~1 s.
    rig.mmio.write(r.EMU_BW_MBPS, 1);
    const descs = Atomics.load(rig.mmio.i32, r.EMU_DESCS >>> 2);
    const t0 = performance.now();
    const i = rig.put(1, copy(MiB));
    rig.doorbell(1);
    await sleep(10);
    rig.put(0, cxtStopDescriptor({ first: 1, last: 1 }));
    rig.doorbell(0);
    await rig.idle();
    expect(performance.now() - t0).toBeLessThan(modelMs(MiB, 1) / 2);
    expect(rig.state(1)).toBe(tables.CXTV_STOP_SW);
    expect(rig.readIndex(1)).toBe(0n);
    expect(rig.u64(rig.cst(1, i))).toBe(1n);
    expect(rig.u32(rig.cst(1, i) + 8) & tables.CST_ER).toBe(0);
    expect(rig.bytes(DST, 256).every((b) => b === 0xaa)).toBe(true);
    // Only the admin stop completed.
    expect(Atomics.load(rig.mmio.i32, r.EMU_DESCS >>> 2) - descs).toBe(1);
    expect(rig.drainLog()).toEqual([]);
    // Started again at host speed, the descriptor runs.
    rig.mmio.write(r.EMU_BW_MBPS, 0);
    rig.put(0, cxtStartDescriptor({ first: 1, last: 1, doorbell: rig.write[1]! }));
    rig.doorbell(0);
    await rig.idle();
    expect(rig.readIndex(1)).toBe(1n);
    expect(same(rig.bytes(DST, 256), rig.bytes(SRC, 256))).toBe(true);
  });

  it('a function reset abandons the held copy', async () => {
    rig.mmio.write(r.EMU_BW_MBPS, 1);
    const t0 = performance.now();
    rig.put(1, copy(MiB));
    rig.doorbell(1);
    await sleep(10);
    rig.write64(r.MMIO_CTL0, r.GSR_RESET);
    await rig.waitGsv(r.GSV_STOP);
    await rig.idle();
    expect(performance.now() - t0).toBeLessThan(modelMs(MiB, 1) / 2);
    expect(rig.readIndex(1)).toBe(0n);
    expect(rig.bytes(DST, 256).every((b) => b === 0xaa)).toBe(true);
  });

  it('admin work for another context does not cost the held copy its bytes', async () => {
    // 512 KiB at 10 MB/s: ~52 ms; context 2 is stopped meanwhile.
    rig.mmio.write(r.EMU_BW_MBPS, 10);
    const t0 = performance.now();
    rig.put(1, copy(512 << 10));
    rig.doorbell(1);
    await sleep(10);
    rig.put(0, cxtStopDescriptor({ first: 2, last: 2 }));
    rig.doorbell(0);
    await rig.idle();
    expect(performance.now() - t0).toBeGreaterThanOrEqual(0.95 * modelMs(512 << 10, 10));
    expect(rig.state(2)).toBe(tables.CXTV_STOP_SW);
    expect(rig.readIndex(1)).toBe(1n);
    expect(same(rig.bytes(DST, 128), rig.bytes(SRC, 128))).toBe(true);
  });
});

describe('the sdxi migrator with a timing profile', () => {
  let m: Machine | undefined;
  afterEach(async () => {
    await m?.close();
    m = undefined;
  });

  it('terminateAll during a throttled copy completes it USER_ABORT and writes nothing', async () => {
    m = await createTestMachine();
    const mig = createMigrator({ channels: 1, timing: { bandwidth: '1MB/s' } });
    await m.offload.register(mig);
    const ctx = mig.function!.contexts[0]!;
    const ch = ctx.channels[0];
    const mem = m.kernel.mem;
    ctx.iommu.map(1000, 256, DMA_TO_DEVICE);
    ctx.iommu.map(3000, 256, DMA_FROM_DEVICE);
    mem.view(1000, 256).set(patternBytes(MiB, 4));
    mem.view(3000, 256).fill(0xaa);
    const tx = ch.prepMemcpy(3000 * P, 1000 * P, MiB)!;
    const done = new Promise<DmaTxResult>((res) => {
      tx.callback = res;
    });
    tx.submit();
    ch.issuePending();
    await sleep(10);
    const t0 = performance.now();
    await ch.terminateAll();
    expect(performance.now() - t0).toBeLessThan(modelMs(MiB, 1) / 2);
    expect((await done).status).toBe(DmaStatusCode.USER_ABORT);
    expect(mem.view(3000, 256).every((b) => b === 0xaa)).toBe(true);
    expect(ctx.ring.state()).toBe(tables.CXTV_RUN);
    ctx.iommu.unmapAll();
  });

  it('on the engine timeout aborts the contexts, the CPU copies the batch, and it recovers', async () => {
    m = await createTestMachine();
    // 20 MB/s: 4 MiB would take ~200 ms; the engine gives up after 20 ms.
    const mig = createMigrator({ channels: 2, timing: { bandwidth: '20MB/s' } });
    await m.offload.register(mig);
    const p = m.spawn();
    const a = p.mmap(4 * MiB, { thp: 'always', node: 0 });
    const data = patternBytes(4 * MiB, 5);
    p.write(a, data);
    const heads = () => [0, 2 * MiB].map((off) => p.pageInfo(a + off)!.headPfn);
    const t0 = performance.now();
    const r1 = await m.migrateFolios(heads(), { node: 1, copyTimeoutMs: 20 });
    expect(performance.now() - t0).toBeLessThan(1000);
    expect(engineTimeoutProblems(r1, mig.stats())).toEqual([]);
    expect(Buffer.compare(p.read(a, data.length), data)).toBe(0);
    for (const c of mig.function!.contexts) expect(c.iommu.mappedPages()).toBe(0);
    m.checkInvariants();
    // Host speed again: the same contexts copy the next migration.
    mig.function!.setTiming(HOST_TIMING);
    const r2 = await m.migrateFolios(heads(), { node: 0 });
    expect(r2.offload.foliosCopied).toBe(2);
    expect(Buffer.compare(p.read(a, data.length), data)).toBe(0);
    m.checkInvariants();
  });

  it('shows its profile in the manifest', () => {
    const mig = createMigrator({ timing: { bandwidth: '1.5GB/s', latencyUs: 2 } });
    expect(mig.capabilities.timing).toEqual({ bandwidthBytesPerSec: 1.5e9, latencyUs: 2 });
    expect(createMigrator().capabilities.timing).toBe('host');
  });

  it.each([
    [{ timing: { bandwidth: 'fast' } }, /sdxi: timing: bandwidth "fast" is not a rate like '4GB\/s'/],
    [{ timing: { bandwidth: -5 } }, /sdxi: timing: bandwidth must be a positive number of bytes\/s, got -5/],
    [{ timing: { latencyUs: -1 } }, /sdxi: timing: latencyUs must be 0\.\.4000000, got -1/],
    [{ timing: { bw: '1GB/s' } }, /sdxi: timing: unknown field "bw"; known: bandwidth, latencyUs/],
    [{ timing: [{}, {}] }, /sdxi: timing: one profile for the function, whose contexts share it/],
    [{ timing: 'slow' }, /sdxi: timing: expected \{ bandwidth\?, latencyUs\? \}/],
  ])('rejects %j with ERR_MIGRATOR_OPTION', (opts, msg) => {
    expect(migratorOptionError(() => createMigrator(opts as never))).toMatch(msg);
  });
});
