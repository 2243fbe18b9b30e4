import { DMA_FROM_DEVICE, DMA_TO_DEVICE } from '@pagemig/dmaengine';
import { patternBytes } from '@pagemig/testkit';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  adminIntrDescriptor,
  copyDescriptor,
  cxtStartDescriptor,
  cxtStopDescriptor,
  DW0_VL,
  ErrStep,
  intrDescriptor,
  nopDescriptor,
  regs,
  repCopyDescriptor,
  syncDescriptor,
  tables,
  writeImmDescriptor,
} from '../dist/index.js';
import { P, Rig } from './rig.js';

const r = regs;
const t = tables;
let rig: Rig;
beforeAll(async () => {
  rig = await Rig.create();
});
afterAll(async () => {
  await rig.close();
});
beforeEach(async () => {
  rig.mmio.write(r.EMU_ORDER, r.EMU_ORDER_RING);
  await rig.activate();
});

/** Context 1 may read pfns [src, src + n) and write [dst, dst + n). */
function windows(src: number, dst: number, n: number, c = 1): void {
  rig.spaces[c - 1]!.map(src, n, DMA_TO_DEVICE);
  rig.spaces[c - 1]!.map(dst, n, DMA_FROM_DEVICE);
}
const copy = (dst: number, src: number, len: number, f = {}) => copyDescriptor({ dst, src, len }, f);
const same = (a: Uint8Array, b: Uint8Array) => Buffer.compare(a, b) === 0;

describe('SDXI function registers and rings, driven by hand', () => {
  it('reports SDXI 1.0 and its capabilities; read-only registers keep their values', () => {
    expect(rig.read(r.MMIO_VERSION)).toBe(1 << 16);
    const cap0 = rig.read(r.MMIO_CAP0);
    expect(r.doorbellStride(cap0)).toBe(4096);
    expect(r.maxRingEntries(cap0)).toBe(65536);
    const cap1 = rig.read(r.MMIO_CAP1);
    expect(r.maxCxtOf(cap1)).toBe(63);
    expect(r.opbOf(cap1)).toBe(r.OPB_DMAB | r.OPB_ADMIN | r.OPB_INTR);
    rig.write64(r.MMIO_CAP1, 0);
    rig.write64(r.MMIO_STS0, 0);
    expect(rig.read(r.MMIO_CAP1)).toBe(cap1);
    expect(rig.read(r.MMIO_STS0)).toBe(r.GSV_ACTIVE);
  });

  it('copies: the bytes land, the read index advances, the CST_BLK reaches 0, vl is cleared behind', async () => {
    const data = patternBytes(2 * P, 1);
    rig.bytes(400, 2).set(data);
    windows(400, 600, 2);
    const i = rig.put(1, copy(600 * P, 400 * P, 2 * P));
    rig.doorbell(1);
    await rig.idle();
    expect(same(rig.bytes(600, 2), data)).toBe(true);
    expect(rig.readIndex(1)).toBe(1n);
    expect(rig.u64(rig.cst(1, i))).toBe(0n);
    expect(rig.u32(rig.cst(1, i) + 8)).toBe(0);
    expect(rig.u32(rig.ring(1)) & DW0_VL).toBe(0);
    expect(rig.state(1)).toBe(t.CXTV_RUN);
  });

  it('counts a shared completion block down once per descriptor', async () => {
    windows(400, 600, 3);
    const blk = rig.cst(1, 500);
    rig.setU64(blk, 3);
    for (let k = 0; k < 3; k++) rig.put(1, copy((600 + k) * P, (400 + k) * P, P), blk);
    rig.doorbell(1);
    await rig.idle();
    expect(rig.u64(blk)).toBe(0n);
    expect(rig.readIndex(1)).toBe(3n);
  });

  it('write-immediate writes exactly its bytes, repeat-copy replicates a 4 KiB block, nop completes', async () => {
    windows(400, 600, 8);
    rig.bytes(600, 8).fill(0xee);
    const block = patternBytes(P, 2);
    rig.bytes(400).set(block);
    const imm = patternBytes(20, 3);
    const a = rig.put(1, writeImmDescriptor({ dst: 600 * P + 100, data: imm }));
    const b = rig.put(1, repCopyDescriptor({ dst: 602 * P, src: 400 * P, len: 4 * P }));
    const c = rig.put(1, nopDescriptor());
    rig.doorbell(1);
    await rig.idle();
    const out = rig.bytes(600);
    expect(same(out.subarray(100, 120), imm)).toBe(true);
    expect(out[99]).toBe(0xee);
    expect(out[120]).toBe(0xee);
    for (let k = 0; k < 4; k++) expect(same(rig.bytes(602 + k), block)).toBe(true);
    expect(rig.bytes(606).every((x) => x === 0xee)).toBe(true);
    for (const i of [a, b, c]) expect(rig.u64(rig.cst(1, i))).toBe(0n);
    expect(rig.readIndex(1)).toBe(3n);
  });

  it('DSC_INTR raises the vector its AKey names; a key without iv raises none; so does the admin interrupt', async () => {
    rig.setAkey(1, 1, { interrupt: false });
    const before = rig.msis(1);
    rig.put(1, intrDescriptor(0));
    rig.put(1, intrDescriptor(1));
    rig.doorbell(1);
    await rig.idle();
    expect(rig.msis(1)).toBe(before + 1);
    expect(rig.readIndex(1)).toBe(2n);
    rig.setAkey(0, 1, { interrupt: true, vector: 5, pasid: 0 });
    const v5 = rig.msis(5);
    const i = rig.put(0, adminIntrDescriptor(1));
    rig.doorbell(0);
    await rig.idle();
    expect(rig.msis(5)).toBe(v5 + 1);
    expect(rig.u64(rig.cst(0, i))).toBe(0n);
  });

  it('waits at a slot whose vl is clear and resumes on the next doorbell', async () => {
    windows(400, 600, 2);
    rig.put(1, copy(600 * P, 400 * P, P));
    const late = rig.put(1, { ...copy(601 * P, 401 * P, P), valid: false });
    rig.doorbell(1);
    await rig.idle();
    expect(rig.readIndex(1)).toBe(1n);
    rig.putAt(1, late, copy(601 * P, 401 * P, P));
    rig.mmio.doorbell(1, rig.write[1]!);
    await rig.idle();
    expect(rig.readIndex(1)).toBe(2n);
  });

  it('keeps 64-bit indexes that never wrap: laps of the ring across 2^32', async () => {
    const start = 2 ** 32 - 700;
    rig.setU64(rig.sts(1) + 8, start);
    rig.write[1] = start;
    for (let lap = 0; lap < 3; lap++) {
      for (let k = 0; k < 700; k++) rig.put(1, nopDescriptor());
      rig.doorbell(1);
      await rig.idle();
      expect(rig.readIndex(1)).toBe(BigInt(start + 700 * (lap + 1)));
    }
    for (let i = start; i < start + 2100; i += 97) expect(rig.u64(rig.cst(1, i))).toBe(0n);
    expect(rig.state(1)).toBe(t.CXTV_RUN);
    expect(rig.drainLog()).toEqual([]);
  });

  it('honours fences: run last-first, an unfenced reader overtakes its writer; a fenced one waits', async () => {
    // X (pfn 400) -> Y (500) -> Z (600): the second copy reads what the first writes.
    rig.spaces[0]!.map(400, 1, DMA_TO_DEVICE);
    rig.spaces[0]!.map(500, 1, 3);
    rig.spaces[0]!.map(600, 1, DMA_FROM_DEVICE);
    const x = patternBytes(P, 4);
    const y = patternBytes(P, 5);
    rig.mmio.write(r.EMU_ORDER, r.EMU_ORDER_REVERSE);
    for (const fence of [false, true]) {
      rig.bytes(400).set(x);
      rig.bytes(500).set(y);
      rig.put(1, copy(500 * P, 400 * P, P));
      rig.put(1, copy(600 * P, 500 * P, P, { fence }));
      rig.doorbell(1);
      await rig.idle();
      expect(same(rig.bytes(600), fence ? x : y)).toBe(true);
    }
  });

  it('keeps a chain in order under reordering, and a failing member holds back the whole chain', async () => {
    rig.spaces[0]!.map(400, 1, DMA_TO_DEVICE);
    rig.spaces[0]!.map(500, 1, 3);
    rig.spaces[0]!.map(600, 1, DMA_FROM_DEVICE);
    const x = patternBytes(P, 6);
    const y = patternBytes(P, 7);
    rig.mmio.write(r.EMU_ORDER, r.EMU_ORDER_REVERSE);
    rig.bytes(400).set(x);
    rig.bytes(500).set(y);
    rig.put(1, copy(500 * P, 400 * P, P, { chain: true }));
    rig.put(1, copy(600 * P, 500 * P, P));
    rig.doorbell(1);
    await rig.idle();
    expect(same(rig.bytes(600), x)).toBe(true);
    // Chain [copy, copy of length 33 by write-immediate (invalid)]: neither runs.
    rig.bytes(500).set(y);
    const head = rig.put(1, copy(500 * P, 400 * P, P, { chain: true }));
    const bad = rig.put(1, writeImmDescriptor({ dst: 600 * P, data: new Uint8Array(33) }));
    rig.doorbell(1);
    await rig.idle();
    expect(same(rig.bytes(500), y)).toBe(true);
    expect(rig.state(1)).toBe(t.CXTV_ERR_FN);
    expect(rig.readIndex(1)).toBe(BigInt(head));
    expect(rig.drainLog()).toMatchObject([{ step: ErrStep.DESCRIPTOR, cxt: 1, dscIndex: BigInt(bad) }]);
    expect(rig.u64(rig.cst(1, head))).toBe(1n);
    expect(rig.u64(rig.cst(1, bad))).toBe(0n);
  });

  it('starts, stops and syncs client contexts through the admin context; a stopped one runs nothing', async () => {
    await rig.activate({ clientsRunning: false });
    windows(400, 600, 4);
    rig.bytes(600, 4).fill(0);
    rig.bytes(400, 4).set(patternBytes(4 * P, 8));
    rig.put(1, copy(600 * P, 400 * P, P));
    rig.doorbell(1);
    await rig.idle();
    expect(rig.state(1)).toBe(t.CXTV_STOP_SW);
    expect(rig.readIndex(1)).toBe(0n);
    // CXT_START for contexts 1..2: they run, and what context 1 had waiting runs.
    const s = rig.put(0, cxtStartDescriptor({ first: 1, last: 2 }));
    rig.doorbell(0);
    await rig.idle();
    expect(rig.u64(rig.cst(0, s))).toBe(0n);
    expect([rig.state(1), rig.state(2), rig.state(3)]).toEqual([t.CXTV_RUN, t.CXTV_RUN, t.CXTV_STOP_SW]);
    expect(rig.readIndex(1)).toBe(1n);
    expect(same(rig.bytes(600), rig.bytes(400))).toBe(true);
    // CXT_STOP then SYNC: stopped, and new work waits.
    rig.put(0, cxtStopDescriptor({ first: 1, last: 1 }));
    const sync = rig.put(0, syncDescriptor({ first: 1, last: 1 }));
    rig.doorbell(0);
    await rig.idle();
    expect(rig.u64(rig.cst(0, sync))).toBe(0n);
    expect(rig.state(1)).toBe(t.CXTV_STOP_SW);
    rig.put(1, copy(601 * P, 401 * P, P));
    rig.doorbell(1);
    await rig.idle();
    expect(rig.readIndex(1)).toBe(1n);
    // Start with a doorbell value: it runs at once.
    rig.put(0, cxtStartDescriptor({ first: 1, last: 1, doorbell: rig.write[1]! }));
    rig.doorbell(0);
    await rig.idle();
    expect(rig.readIndex(1)).toBe(2n);
    expect(same(rig.bytes(601), rig.bytes(401))).toBe(true);
    expect(rig.drainLog()).toEqual([]);
  });

  it('a context in its error state runs nothing until it is stopped and started again', async () => {
    windows(400, 600, 2);
    rig.bytes(400, 2).set(patternBytes(2 * P, 9));
    rig.bytes(600, 2).fill(0);
    const bad = rig.put(1, copy(600 * P, 400 * P, 0)); // size field 2^32 - 1: not mapped that far
    rig.doorbell(1);
    await rig.idle();
    expect(rig.state(1)).toBe(t.CXTV_ERR_FN);
    expect(rig.drainLog()).toMatchObject([{ cxt: 1, dscIndex: BigInt(bad), reaction: 1 }]);
    rig.put(1, copy(600 * P, 400 * P, P));
    rig.doorbell(1);
    await rig.idle();
    expect(rig.readIndex(1)).toBe(BigInt(bad));
    expect(rig.bytes(600).every((b) => b === 0)).toBe(true);
    // Stop (ERR_FN -> STOP_SW), skip the failed descriptor while stopped, start: the copy runs.
    rig.put(0, cxtStopDescriptor({ first: 1, last: 1 }));
    rig.doorbell(0);
    await rig.idle();
    expect(rig.state(1)).toBe(t.CXTV_STOP_SW);
    rig.setU64(rig.sts(1) + 8, bad + 1);
    rig.put(0, cxtStartDescriptor({ first: 1, last: 1 }));
    rig.doorbell(0);
    await rig.idle();
    expect(rig.state(1)).toBe(t.CXTV_RUN);
    expect(rig.readIndex(1)).toBe(BigInt(bad + 2));
    expect(same(rig.bytes(600), rig.bytes(400))).toBe(true);
    // A restart (CXT_START_RS) also takes a context straight out of its error state.
    rig.put(1, copy(600 * P, 400 * P, 0));
    rig.doorbell(1);
    await rig.idle();
    expect(rig.state(1)).toBe(t.CXTV_ERR_FN);
    rig.setU64(rig.sts(1) + 8, rig.write[1]!);
    rig.put(0, cxtStartDescriptor({ first: 1, last: 1, restart: true }));
    rig.doorbell(0);
    await rig.idle();
    expect(rig.state(1)).toBe(t.CXTV_RUN);
    expect(rig.state(0)).toBe(t.CXTV_RUN);
  });

  it('stops on a soft stop (running contexts STOP_FN) and comes back after reset and activation', async () => {
    rig.write64(r.MMIO_CTL0, r.GSR_SOFT_STOP);
    await rig.waitGsv(r.GSV_STOP);
    expect([rig.state(0), rig.state(1)]).toEqual([t.CXTV_STOP_FN, t.CXTV_STOP_FN]);
    rig.put(1, nopDescriptor());
    rig.doorbell(1);
    await rig.idle();
    expect(rig.readIndex(1)).toBe(0n);
    await rig.activate();
    rig.put(1, nopDescriptor());
    rig.doorbell(1);
    await rig.idle();
    expect(rig.readIndex(1)).toBe(1n);
  });

  it('interrupts on vector 0 when ERR_STS.sts goes 0 -> 1, not again until it is cleared', async () => {
    const v0 = rig.msis(0);
    for (let k = 0; k < 3; k++) rig.mmio.doorbell(9, 0); // no such context: informative records
    await rig.idle();
    expect(rig.msis(0)).toBe(v0 + 1);
    expect(rig.read(r.MMIO_ERR_STS) & r.ERR_STS_STS).toBe(r.ERR_STS_STS);
    // No context 9: an informative record per doorbell the function saw (doorbells may coalesce).
    const log = rig.drainLog();
    expect(log.length).toBeGreaterThan(0);
    for (const e of log)
      expect(e).toEqual({
        step: ErrStep.L1_ENTRY,
        subStep: 3,
        reaction: 0,
        cxt: 9,
        dscIndex: null,
        buf: null,
        errClass: 5,
      });
    rig.mmio.doorbell(9, 0);
    await rig.idle();
    expect(rig.msis(0)).toBe(v0 + 2);
  });

  it('sets ovf when the log is full and err when logging is disabled', async () => {
    for (let k = 0; k < 65; k++) {
      rig.mmio.doorbell(9, 0);
      await rig.idle();
    }
    expect(rig.read(r.MMIO_ERR_STS) & r.ERR_STS_OVF).toBe(r.ERR_STS_OVF);
    expect(rig.drainLog().length).toBe(64);
    rig.write64(r.MMIO_ERR_CFG, 0);
    rig.mmio.doorbell(9, 0);
    await rig.idle();
    expect(rig.read(r.MMIO_ERR_STS) & r.ERR_STS_ERR).toBe(r.ERR_STS_ERR);
  });
});
