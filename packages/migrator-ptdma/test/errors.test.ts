import { DMA_FROM_DEVICE, DMA_TO_DEVICE, DmaStatusCode } from '@pagemig/dmaengine';
import { fillMemory } from '@pagemig/testkit';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { PtdmaError, ptdmaErrorName, raisedCodes, regs, statusOfCode } from '../dist/index.js';
import { QCONTROL, RING_PFN, Rig, slot } from './rig.js';

const r = regs;
const SRC = 100; // mapped for reading
const DST = 300; // mapped for writing
const RO = 500; // mapped for reading only
const BEYOND = 4096; // past the end of the 8 MiB of RAM
const P = 4096;

let rig: Rig;
beforeAll(async () => {
  rig = await Rig.create();
  // Every page of the machine holds data, so a stray write anywhere changes the checksum.
  fillMemory(rig.m);
});
afterAll(async () => {
  await rig.close();
});
beforeEach(async () => {
  rig.iommu.unmapAll();
  rig.write(r.EMU_BW_MBPS, 0);
  rig.write(r.CMD_TIMEOUT_OFFSET, 0);
  rig.bringUp();
  rig.iommu.map(SRC, 4, DMA_TO_DEVICE);
  rig.iommu.map(RO, 1, DMA_TO_DEVICE);
  rig.iommu.map(DST, 4, DMA_FROM_DEVICE);
  await rig.idle();
  rig.write(r.Q_INTERRUPT_STATUS, r.ALL_INTERRUPTS);
});

interface Case {
  code: number;
  why: string;
  /** Puts the bad descriptor in slot 0 (and any register setup); may change the doorbell's values. */
  arrange: () => { control?: number; tail?: number } | undefined;
  faults?: number;
}

const copy = (patch: object = {}, dst = DST * P, src = SRC * P, len = 2 * P) =>
  rig.copy(0, dst, src, len, patch);
const cases: Case[] = [
  { code: 1, why: 'engine 4 instead of PASSTHRU', arrange: () => void copy({ engine: 4 }) },
  { code: 3, why: 'a bitwise function (AND)', arrange: () => void copy({ function: 1 << 2 }) },
  { code: 4, why: 'a reflect function', arrange: () => void copy({ function: 1 << 5 }) },
  { code: 4, why: 'a fixed (non-incrementing) source', arrange: () => void copy({ srcFixed: true }) },
  {
    code: 6,
    why: 'a 256-bit byteswap of 100 bytes',
    arrange: () => void copy({ function: 2 }, DST * P, SRC * P, 100),
  },
  { code: 8, why: 'a reserved dword (dw6)', arrange: () => void copy({ dw6: 1 }) },
  { code: 8, why: 'reserved dw0 bit 2', arrange: () => void copy({ dw0Reserved: 4 }) },
  { code: 9, why: 'length 0', arrange: () => void copy({}, DST * P, SRC * P, 0) },
  { code: 10, why: 'source memory type SB', arrange: () => void copy({ srcMemType: 1 }) },
  { code: 11, why: 'a source range past 2^48', arrange: () => void copy({}, DST * P, 2 ** 48 - 16, 64) },
  {
    code: 11,
    why: 'a tail that is not a ring slot',
    arrange: () => {
      copy();
      return { tail: slot(1) + 4 };
    },
  },
  { code: 12, why: 'destination memory type local', arrange: () => void copy({ dstMemType: 2 }) },
  { code: 13, why: 'a non-zero LSB context id', arrange: () => void copy({ lsbCtxId: 5 }) },
  {
    code: 18,
    why: 'a descriptor the timing profile says outlasts CMD_TIMEOUT',
    arrange: () => {
      rig.write(r.EMU_BW_MBPS, 1); // 8 KiB at 1 MB/s: 8 ms
      rig.write(r.CMD_TIMEOUT_OFFSET, 100); // µs
      copy();
      return undefined;
    },
  },
  {
    code: 19,
    why: 'a source not mapped in the IOMMU',
    arrange: () => void copy({}, DST * P, 700 * P),
    faults: 1,
  },
  { code: 20, why: 'a source past the end of RAM', arrange: () => void copy({}, DST * P, BEYOND * P) },
  {
    code: 22,
    why: 'a ring the IOMMU does not map (descriptor fetch)',
    arrange: () => {
      copy();
      rig.iommu.unmap(RING_PFN, 1);
      return undefined;
    },
    faults: 1,
  },
  {
    code: 23,
    why: 'a ring base past the end of RAM (bits 47:32 in Q_CONTROL)',
    arrange: () => {
      copy();
      return { control: QCONTROL | r.CMD_Q_RUN | (1 << r.CMD_Q_BASE_HI_SHIFT) };
    },
  },
  { code: 38, why: 'a destination mapped only for reading', arrange: () => void copy({}, RO * P), faults: 1 },
  { code: 39, why: 'a destination past the end of RAM', arrange: () => void copy({}, BEYOND * P) },
];

describe('PTDMA error codes', () => {
  it('covers every code the device raises', () => {
    expect([...new Set(cases.map((c) => c.code))].sort((a, b) => a - b)).toEqual([...raisedCodes]);
  });

  it.each(cases.map((c) => [c.code, ptdmaErrorName(c.code), c.why, c] as const))(
    '%i %s: %s — the queue stops and no byte of the machine changes',
    async (code, _name, _why, c) => {
      const bell = c.arrange();
      const before = rig.checksum();
      const faults = rig.iommu.faults;
      const msi = rig.msi;
      rig.write(r.Q_TAIL_LO, bell?.tail ?? slot(1));
      rig.write(r.Q_CONTROL, bell?.control ?? QCONTROL | r.CMD_Q_RUN);
      await rig.idle();
      expect(r.qError(rig.read(r.Q_STATUS))).toBe(code);
      const st = rig.read(r.Q_INTERRUPT_STATUS);
      expect(st & (r.INT_ERROR | r.INT_QUEUE_STOPPED)).toBe(r.INT_ERROR | r.INT_QUEUE_STOPPED);
      expect(st & r.INT_COMPLETION).toBe(0);
      expect(rig.read(r.Q_HEAD_LO)).toBe(slot(0));
      expect(rig.read(r.Q_CONTROL) & r.CMD_Q_RUN).toBe(0);
      expect(rig.msi).toBe(msi + 1);
      expect(rig.iommu.faults - faults).toBe(c.faults ?? 0);
      expect(rig.checksum()).toBe(before);
      // The queue recovers the driver's way and runs a good descriptor.
      rig.write(r.EMU_BW_MBPS, 0);
      rig.write(r.CMD_TIMEOUT_OFFSET, 0);
      if (!rig.iommu.permissions(RING_PFN)) rig.iommu.map(RING_PFN, 1, DMA_TO_DEVICE);
      rig.write(r.Q_TAIL_LO, slot(0));
      rig.recover();
      rig.copy(0, DST * 4096, SRC * 4096, 64);
      rig.ring(1);
      await rig.idle();
      expect(rig.read(r.Q_HEAD_LO)).toBe(slot(1));
      expect(rig.read(r.Q_INTERRUPT_STATUS) & r.INT_ERROR).toBe(0);
    },
  );

  it('fails the n-th descriptor with an injected code (EMU_INJECT) and runs the ones before it', async () => {
    for (let i = 0; i < 3; i++) rig.copy(i, (DST + i) * P, (SRC + i) * P, P);
    rig.bytes(DST + 1).fill(0x5a);
    rig.write(r.EMU_INJECT, (2 << 8) | PtdmaError.LSB_PARITY_ERR);
    rig.ring(3);
    await rig.idle();
    expect(rig.read(r.Q_HEAD_LO)).toBe(slot(1));
    expect(r.qError(rig.read(r.Q_STATUS))).toBe(43);
    expect(Buffer.compare(rig.bytes(DST), rig.bytes(SRC))).toBe(0);
    expect(rig.bytes(DST + 1).every((b) => b === 0x5a)).toBe(true);
    expect(rig.read(r.EMU_INJECT)).toBe(0);
  });

  it('maps every code to a dmaengine status', () => {
    expect(statusOfCode(PtdmaError.IDMA0_AXI_SLVERR)).toBe(DmaStatusCode.INVALID_SRC_ADDR);
    expect(statusOfCode(PtdmaError.ODMA0_AXI_SLVERR)).toBe(DmaStatusCode.INVALID_DST_ADDR);
    expect(statusOfCode(PtdmaError.ILLEGAL_BUFFER_LENGTH)).toBe(DmaStatusCode.INVALID_LENGTH);
    expect(statusOfCode(PtdmaError.IDMA1_AXI_DECERR)).toBe(DmaStatusCode.DESCRIPTOR_READ_ERROR);
    expect(statusOfCode(PtdmaError.LSB_PARITY_ERR)).toBe(DmaStatusCode.DATA_POISON);
    for (const code of raisedCodes) expect(statusOfCode(code)).not.toBe(DmaStatusCode.SUCCESSFUL);
    expect(ptdmaErrorName(15)).toBe('RESERVED_15');
    expect(ptdmaErrorName(22)).toBe('IDMA1_AXI_SLAVE_FAULT');
  });
});
