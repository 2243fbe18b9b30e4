import { describe, expect, it } from 'vitest';
import {
  DMA_FROM_DEVICE,
  DMA_TO_DEVICE,
  type DmaChannel,
  DmaEngine,
  DmaStatus,
  DmaStatusCode,
  type DmaTxResult,
  RamView,
  SkeletonDevice,
  type SkeletonOptions,
} from '../src/index.js';
import { pattern } from './helpers.js';

const PAGES = 256; // 1 MiB of "RAM" in two 512 KiB sections
function rig(opts: SkeletonOptions = {}) {
  const sections = [new SharedArrayBuffer(512 << 10), new SharedArrayBuffer(512 << 10)];
  const ram = new RamView(sections, 7, PAGES);
  const dev = new SkeletonDevice('skel0', ram, PAGES, 0, opts);
  return { ram, dev, ch: dev.channels[0]! as DmaChannel };
}
const tick = () => new Promise((r) => setImmediate(r));

/** Prepares, submits and collects the result of one copy (mapped by the caller). */
function copyTx(ch: DmaChannel, dst: number, src: number, len: number, results: DmaTxResult[]) {
  const tx = ch.prepMemcpy(dst, src, len)!;
  tx.callback = (r) => results.push(r);
  return tx;
}

describe('DMA channel contract (skeleton device)', () => {
  it('copies only after issuePending, completes with a status, and numbers cookies in order', async () => {
    const { ram, dev, ch } = rig();
    ram.view(0, 8192).set(pattern(1, 8192));
    dev.iommu.map(0, 2, DMA_TO_DEVICE);
    dev.iommu.map(150, 2, DMA_FROM_DEVICE);
    const results: DmaTxResult[] = [];
    const tx = copyTx(ch, 150 * 4096, 0, 8192, results);
    const cookie = tx.submit();
    expect(cookie).toBeGreaterThan(0);
    expect(ch.txStatus(cookie)).toBe(DmaStatus.IN_PROGRESS);
    await tick();
    await tick();
    expect(results).toEqual([]); // submitted but not issued: nothing runs
    ch.issuePending();
    await tick();
    expect(results).toEqual([{ status: DmaStatusCode.SUCCESSFUL, residue: 0, deviceCode: 0 }]);
    expect(ch.txStatus(cookie)).toBe(DmaStatus.COMPLETE);
    expect(Buffer.compare(ram.view(150 * 4096, 8192), ram.view(0, 8192))).toBe(0);
    // The next cookie is larger.
    const t2 = copyTx(ch, 150 * 4096, 0, 4096, results);
    expect(t2.submit()).toBe(cookie + 1);
  });

  it('runs bursts of 32 issued at once or in two halves, crossing a section boundary', async () => {
    const { ram, dev, ch } = rig();
    ram.view(0, 64 << 10).set(pattern(2, 64 << 10));
    dev.iommu.map(0, 16, DMA_TO_DEVICE);
    dev.iommu.map(120, 16, DMA_FROM_DEVICE); // pfns 120..135 straddle the 128-page section edge
    const results: DmaTxResult[] = [];
    for (let i = 0; i < 32; i++) copyTx(ch, 120 * 4096 + i * 2048, i * 2048, 2048, results).submit();
    ch.issuePending();
    await tick();
    expect(results.length).toBe(32);
    for (let i = 0; i < 16; i++) copyTx(ch, 120 * 4096 + i * 2048, i * 2048, 2048, results).submit();
    ch.issuePending();
    for (let i = 16; i < 32; i++) copyTx(ch, 120 * 4096 + i * 2048, i * 2048, 2048, results).submit();
    ch.issuePending();
    await tick();
    expect(results.length).toBe(64);
    expect(results.every((r) => r.status === DmaStatusCode.SUCCESSFUL)).toBe(true);
    expect(Buffer.compare(ram.read(120 * 4096, 64 << 10), ram.read(0, 64 << 10))).toBe(0);
    expect(ch.stats()).toMatchObject({ submitted: 64, completed: 64, errors: 0, bytes: 128 << 10 });
  });

  it('reports an access outside the IOMMU windows as a failed descriptor and changes no byte', async () => {
    const { ram, dev, ch } = rig();
    ram.view(0, 4096).set(pattern(3, 4096));
    const before = Buffer.from(ram.view(200 * 4096, 4096));
    const results: DmaTxResult[] = [];
    // Source not mapped.
    dev.iommu.map(200, 1, DMA_FROM_DEVICE);
    copyTx(ch, 200 * 4096, 0, 4096, results).submit();
    ch.issuePending();
    await tick();
    // Destination mapped only for reading.
    dev.iommu.map(0, 1, DMA_TO_DEVICE);
    dev.iommu.map(201, 1, DMA_TO_DEVICE);
    copyTx(ch, 201 * 4096, 0, 4096, results).submit();
    // Past the end of RAM.
    copyTx(ch, PAGES * 4096, 0, 4096, results).submit();
    ch.issuePending();
    await tick();
    expect(results.map((r) => r.status)).toEqual([
      DmaStatusCode.INVALID_SRC_ADDR,
      DmaStatusCode.INVALID_DST_ADDR,
      DmaStatusCode.BUS_WRITE_ERROR,
    ]);
    expect(results[0]!.residue).toBe(4096);
    expect(Buffer.compare(ram.view(200 * 4096, 4096), before)).toBe(0);
    expect(dev.iommu.faults).toBe(2);
    expect(ch.stats()).toMatchObject({ errors: 3, completed: 0 });
  });

  it('rejects descriptors it cannot take at prepare time', () => {
    const { ch } = rig({ maxSegmentBytes: 8192 });
    expect(ch.prepMemcpy(0, 4096, 0)).toBeNull();
    expect(ch.prepMemcpy(0, 4096, 8193)).toBeNull();
    expect(ch.prepMemcpy(-1, 4096, 16)).toBeNull();
    expect(ch.prepMemcpySg?.([{ dst: 0, src: 4096, len: 16 }])).toBeNull(); // no MEMCPY_SG
  });

  it('copies scatter-gather lists on MEMCPY_SG channels', async () => {
    const { ram, dev, ch } = rig({ sgSegments: 4 });
    expect(ch.capabilities).toContain('MEMCPY_SG');
    ram.view(0, 16384).set(pattern(4, 16384));
    dev.iommu.map(0, 4, DMA_TO_DEVICE);
    dev.iommu.map(100, 4, DMA_FROM_DEVICE);
    const segs = [0, 1, 2, 3].map((i) => ({ dst: (103 - i) * 4096, src: i * 4096, len: 4096 }));
    const results: DmaTxResult[] = [];
    const tx = ch.prepMemcpySg!(segs)!;
    expect(tx.bytes).toBe(16384);
    tx.callback = (r) => results.push(r);
    tx.submit();
    ch.issuePending();
    await tick();
    expect(results[0]!.status).toBe(DmaStatusCode.SUCCESSFUL);
    for (let i = 0; i < 4; i++)
      expect(Buffer.compare(ram.view((103 - i) * 4096, 4096), ram.view(i * 4096, 4096))).toBe(0);
    expect(ch.prepMemcpySg!([...segs, segs[0]!])).toBeNull(); // more than maxSgSegments
  });

  it('terminateAll takes back a stuck descriptor with USER_ABORT and the channel keeps working', async () => {
    let hang = true;
    const { ram, dev, ch } = rig({ inject: () => (hang ? 'hang' : undefined) });
    dev.iommu.map(0, 1, DMA_TO_DEVICE);
    dev.iommu.map(10, 1, DMA_FROM_DEVICE);
    const results: DmaTxResult[] = [];
    const cookie = copyTx(ch, 10 * 4096, 0, 4096, results).submit();
    copyTx(ch, 10 * 4096, 0, 4096, results).submit(); // submitted, not issued yet
    ch.issuePending();
    copyTx(ch, 10 * 4096, 0, 4096, results).submit();
    await tick();
    expect(results).toEqual([]);
    await ch.terminateAll();
    expect(results.map((r) => r.status)).toEqual([
      DmaStatusCode.USER_ABORT,
      DmaStatusCode.USER_ABORT,
      DmaStatusCode.USER_ABORT,
    ]);
    expect(ch.txStatus(cookie)).toBe(DmaStatus.ERROR);
    hang = false;
    ram.view(0, 4096).fill(7);
    copyTx(ch, 10 * 4096, 0, 4096, results).submit();
    ch.issuePending();
    await tick();
    expect(results[3]!.status).toBe(DmaStatusCode.SUCCESSFUL);
    expect(ram.view(10 * 4096, 4096).every((b) => b === 7)).toBe(true);
    expect(ch.stats()).toMatchObject({ aborted: 3, completed: 1 });
  });

  it('completes descriptors issued together out of order when the device says so', async () => {
    const { ram, dev, ch } = rig({ order: 'lifo' });
    expect(ch.capabilities).toContain('COMPLETION_NO_ORDER');
    dev.iommu.map(0, 4, DMA_TO_DEVICE);
    dev.iommu.map(50, 4, DMA_FROM_DEVICE);
    const seen: number[] = [];
    for (let i = 0; i < 4; i++) {
      const tx = ch.prepMemcpy((50 + i) * 4096, i * 4096, 4096)!;
      tx.param = i;
      tx.callback = (_r, t) => seen.push(t.param as number);
      tx.submit();
    }
    ch.issuePending();
    await tick();
    expect(seen).toEqual([3, 2, 1, 0]);
    expect(ram.view(50 * 4096, 4096).length).toBe(4096);
  });
});

describe('DmaEngine (channel allocation by capability)', () => {
  it('hands out free channels with the requested capabilities, exclusively, until released', () => {
    const a = rig().dev;
    const b = rig({ sgSegments: 8 }).dev;
    const engine = new DmaEngine();
    engine.registerDevice(a);
    engine.registerDevice(b);
    const sg = engine.requestChannel(['MEMCPY', 'MEMCPY_SG']);
    expect(sg).toBe(b.channels[0]);
    expect(engine.requestChannel('MEMCPY_SG')).toBeNull();
    const plain = engine.requestChannel('MEMCPY');
    expect(plain).toBe(a.channels[0]);
    expect(engine.requestChannel('MEMCPY')).toBeNull();
    engine.releaseChannel(sg!);
    expect(engine.requestChannel('MEMCPY')).toBe(sg);
    expect(engine.requestChannel('MEMCPY', () => false)).toBeNull();
    engine.unregisterDevice(a);
    expect(engine.channels()).toEqual([b.channels[0]]);
  });
});
