import { DMA_FROM_DEVICE, DMA_TO_DEVICE } from '@pagemig/dmaengine';
import { patternBytes } from '@pagemig/testkit';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { PT_BYTESWAP_32BIT, PT_BYTESWAP_256BIT, regs } from '../dist/index.js';
import { QCONTROL, RING, Rig, slot } from './rig.js';

const r = regs;
let rig: Rig;
beforeAll(async () => {
  rig = await Rig.create();
});
afterAll(async () => {
  await rig.close();
});
beforeEach(async () => {
  rig.iommu.unmapAll();
  rig.bringUp();
  await rig.idle();
  // Stopping the previous test's queue may have raised QUEUE_STOPPED after bring-up acknowledged.
  rig.write(r.Q_INTERRUPT_STATUS, r.ALL_INTERRUPTS);
});

/** Maps [src, src + n) for reading and [dst, dst + n) for writing (pfns). */
function windows(src: number, dst: number, n: number): void {
  rig.iommu.map(src, n, DMA_TO_DEVICE);
  rig.iommu.map(dst, n, DMA_FROM_DEVICE);
}

describe('PTDMA registers, driven by hand', () => {
  it('reports version 1 with one queue, and bring-up leaves an empty, enabled queue', () => {
    const v = rig.read(r.CMD_PT_VERSION);
    expect(r.versionOf(v)).toBe(1);
    expect(r.queuesOf(v)).toBe(1);
    rig.write(r.CMD_PT_VERSION, 0); // read-only
    expect(rig.read(r.CMD_PT_VERSION)).toBe(v);
    expect(rig.read(r.Q_HEAD_LO)).toBe(RING);
    expect(rig.read(r.Q_TAIL_LO)).toBe(RING);
    expect(rig.read(r.Q_INT_ENABLE)).toBe(r.INT_COMPLETION | r.INT_ERROR);
    expect(rig.read(r.Q_INTERRUPT_STATUS)).toBe(0);
  });

  it('runs one descriptor: the bytes land, head advances one slot, status and MSI report it', async () => {
    const data = patternBytes(8192, 1);
    rig.bytes(100, 2).set(data);
    windows(100, 300, 2);
    const msi = rig.msi;
    rig.copy(0, 300 * 4096, 100 * 4096, 8192);
    rig.ring(1);
    await rig.idle();
    expect(Buffer.compare(rig.bytes(300, 2), data)).toBe(0);
    expect(rig.read(r.Q_HEAD_LO)).toBe(slot(1));
    expect(rig.read(r.Q_INTERRUPT_STATUS)).toBe(r.INT_COMPLETION | r.INT_EMPTY_QUEUE);
    expect(rig.msi).toBe(msi + 1);
    expect(rig.read(r.Q_DMA_STATUS) & r.Q_DMA_BUSY).toBe(0);
    // Write-1-to-clear: acknowledging COMPLETION leaves EMPTY pending.
    rig.write(r.Q_INTERRUPT_STATUS, r.INT_COMPLETION);
    expect(rig.read(r.Q_INTERRUPT_STATUS)).toBe(r.INT_EMPTY_QUEUE);
  });

  it('takes 31 descriptors per doorbell and wraps around the 32-slot ring', async () => {
    const data = patternBytes(64 * 4096, 2);
    rig.bytes(200, 64).set(data);
    windows(200, 400, 64);
    let at = 0;
    for (const n of [31, 31, 2]) {
      for (let i = 0; i < n; i++) {
        const page = (at + i) % 64;
        rig.copy(at + i, (400 + page) * 4096, (200 + page) * 4096, 4096, { ioc: i === n - 1 });
      }
      at += n;
      rig.ring(at);
      await rig.idle();
      expect(rig.read(r.Q_HEAD_LO)).toBe(slot(at));
    }
    expect(Buffer.compare(rig.bytes(400, 64), data)).toBe(0);
    expect(rig.mmio.read(r.EMU_DESCS)).toBeGreaterThanOrEqual(64);
  });

  it('raises no interrupt without IOC, and INT_ENABLE gates the MSI but not the status bits', async () => {
    windows(10, 20, 1);
    let msi = rig.msi;
    rig.copy(0, 20 * 4096, 10 * 4096, 64, { ioc: false });
    rig.copy(1, 20 * 4096 + 64, 10 * 4096, 64, { ioc: false });
    rig.ring(2);
    await rig.idle();
    expect(rig.read(r.Q_HEAD_LO)).toBe(slot(2));
    expect(rig.read(r.Q_INTERRUPT_STATUS)).toBe(r.INT_EMPTY_QUEUE); // EMPTY is not enabled: no MSI
    expect(rig.msi).toBe(msi);
    rig.write(r.Q_INT_ENABLE, 0);
    rig.copy(2, 20 * 4096, 10 * 4096, 64);
    rig.ring(3);
    await rig.idle();
    expect(rig.read(r.Q_INTERRUPT_STATUS) & r.INT_COMPLETION).toBe(r.INT_COMPLETION);
    expect(rig.msi).toBe(msi);
    // Unmasking with COMPLETION latched sends the pending MSI (a completion during the handler).
    rig.write(r.Q_INT_ENABLE, r.ALL_INTERRUPTS);
    expect(rig.msi).toBe(msi + 1);
    rig.write(r.Q_INTERRUPT_STATUS, r.ALL_INTERRUPTS);
    rig.write(r.Q_INT_ENABLE, r.ALL_INTERRUPTS);
    expect(rig.msi).toBe(msi + 1); // nothing pending: nothing sent
    msi = rig.msi;
    rig.copy(3, 20 * 4096, 10 * 4096, 64, { ioc: false });
    rig.ring(4);
    await rig.idle();
    expect(rig.msi).toBe(msi + 1); // EMPTY_QUEUE, now enabled
  });

  it('stops on completion (SOC): RUN clears, QUEUE_STOPPED is raised, the rest waits for RUN', async () => {
    windows(30, 40, 1);
    rig.copy(0, 40 * 4096, 30 * 4096, 16, { soc: true });
    rig.copy(1, 40 * 4096 + 16, 30 * 4096, 16);
    rig.ring(2);
    await rig.idle();
    expect(rig.read(r.Q_HEAD_LO)).toBe(slot(1));
    expect(rig.read(r.Q_CONTROL) & r.CMD_Q_RUN).toBe(0);
    expect(rig.read(r.Q_INTERRUPT_STATUS) & r.INT_QUEUE_STOPPED).toBe(r.INT_QUEUE_STOPPED);
    expect(rig.read(r.Q_DMA_STATUS) & r.Q_DMA_RUNNING).toBe(0);
    rig.write(r.Q_CONTROL, QCONTROL | r.CMD_Q_RUN);
    await rig.idle();
    expect(rig.read(r.Q_HEAD_LO)).toBe(slot(2));
  });

  it('acknowledges HALT with QUEUE_STOPPED and runs nothing until HALT is cleared', async () => {
    windows(50, 60, 1);
    rig.write(r.Q_INT_ENABLE, r.ALL_INTERRUPTS);
    const msi = rig.msi;
    rig.write(r.Q_CONTROL, QCONTROL | r.CMD_Q_RUN | r.CMD_Q_HALT);
    await rig.idle();
    expect(rig.read(r.Q_INTERRUPT_STATUS) & r.INT_QUEUE_STOPPED).toBe(r.INT_QUEUE_STOPPED);
    expect(rig.msi).toBeGreaterThan(msi);
    rig.copy(0, 60 * 4096, 50 * 4096, 32);
    rig.ring(1, QCONTROL | r.CMD_Q_RUN | r.CMD_Q_HALT);
    await rig.idle();
    expect(rig.read(r.Q_HEAD_LO)).toBe(slot(0));
    rig.write(r.Q_CONTROL, QCONTROL | r.CMD_Q_RUN);
    await rig.idle();
    expect(rig.read(r.Q_HEAD_LO)).toBe(slot(1));
  });

  it('holds the queue after an error until ERROR is acknowledged; head stays on the failed slot', async () => {
    windows(70, 80, 1);
    rig.copy(0, 80 * 4096, 70 * 4096, 0); // length 0: ILLEGAL_BUFFER_LENGTH
    rig.copy(1, 80 * 4096, 70 * 4096, 128);
    rig.ring(2);
    await rig.idle();
    expect(rig.read(r.Q_HEAD_LO)).toBe(slot(0));
    expect(r.qError(rig.read(r.Q_STATUS))).toBe(9);
    expect(rig.read(r.Q_INTERRUPT_STATUS) & (r.INT_ERROR | r.INT_QUEUE_STOPPED)).toBe(
      r.INT_ERROR | r.INT_QUEUE_STOPPED,
    );
    // RUN again without acknowledging: still held.
    rig.write(r.Q_CONTROL, QCONTROL | r.CMD_Q_RUN);
    await rig.idle();
    expect(rig.read(r.Q_HEAD_LO)).toBe(slot(0));
    // The driver's way: skip the failed slot (head := slot 1), acknowledge, RUN.
    rig.write(r.Q_HEAD_LO, slot(1));
    rig.write(r.Q_INTERRUPT_STATUS, r.ALL_INTERRUPTS);
    rig.write(r.Q_CONTROL, QCONTROL | r.CMD_Q_RUN);
    await rig.idle();
    expect(rig.read(r.Q_HEAD_LO)).toBe(slot(2));
  });

  it('implements the passthru byteswap functions (32-bit and 256-bit)', async () => {
    const data = patternBytes(64, 3);
    rig.bytes(90).set(data);
    windows(90, 91, 1);
    rig.copy(0, 91 * 4096, 90 * 4096, 64, { function: PT_BYTESWAP_32BIT });
    rig.copy(1, 91 * 4096 + 64, 90 * 4096, 64, { function: PT_BYTESWAP_256BIT });
    rig.ring(2);
    await rig.idle();
    const out = rig.bytes(91);
    for (let i = 0; i < 64; i++) {
      expect(out[i]).toBe(data[(i & ~3) + 3 - (i & 3)]);
      expect(out[64 + i]).toBe(data[(i & ~31) + 31 - (i & 31)]);
    }
  });

  it('copies a run that crosses a section boundary', async () => {
    // 4 MiB sections: pfn 1024 starts the second one.
    const data = patternBytes(8 * 4096, 4);
    rig.bytes(1020, 4).set(data.subarray(0, 4 * 4096));
    rig.bytes(1024, 4).set(data.subarray(4 * 4096));
    windows(1020, 1500, 8);
    rig.copy(0, 1500 * 4096, 1020 * 4096, 8 * 4096);
    rig.ring(1);
    await rig.idle();
    expect(Buffer.compare(rig.bytes(1500, 8), data)).toBe(0);
  });

  it('throttles to its timing profile and abandons a throttled descriptor on HALT', async () => {
    windows(110, 120, 4);
    // 10 MB/s: 16 KiB takes ~1.6 ms.
    rig.write(r.EMU_BW_MBPS, 10);
    const t0 = performance.now();
    rig.copy(0, 120 * 4096, 110 * 4096, 16384);
    rig.ring(1);
    await rig.idle();
    expect(performance.now() - t0).toBeGreaterThan(1.4);
    // A 4 s latency: the HALT (sent after 2 ms, or whenever a busy host gets to it) finds the
    // descriptor still held, abandons it at once and leaves the destination untouched.
    rig.write(r.EMU_BW_MBPS, 0);
    rig.write(r.EMU_LATENCY_NS, 4e9);
    rig.bytes(120, 4).fill(0xaa);
    const t1 = performance.now();
    rig.copy(1, 120 * 4096, 110 * 4096, 16384);
    rig.ring(2);
    await new Promise((res) => setTimeout(res, 2));
    rig.write(r.Q_CONTROL, QCONTROL | r.CMD_Q_HALT);
    await rig.idle();
    expect(performance.now() - t1).toBeLessThan(2000);
    expect(rig.read(r.Q_HEAD_LO)).toBe(slot(1));
    expect(rig.bytes(120, 4).every((b) => b === 0xaa)).toBe(true);
    rig.write(r.EMU_LATENCY_NS, 0);
  });
});
