import { afterEach, describe, expect, it } from 'vitest';
import { createMachine, type Machine } from '../src/machine.js';
import {
  CTL_GEN,
  CTL_HEADER,
  CTL_NR_SLOTS,
  Mmu,
  MmuFault,
  S_ACK,
  S_STATE,
  S_STOP,
  STOP_KILLED,
  T_BLOCKED,
  T_EXITED,
  T_RUNNING,
} from '../src/mmu.js';
import { PAGE_SIZE } from '../src/mmzone.js';
import { PTE_ACCESSED, PTE_DIRTY } from '../src/pagetable.js';
import type { Process } from '../src/process.js';
import { MmTlb, shootdownSync } from '../src/tlbflush.js';
import { patternWord, runWorkload, verifyPattern } from '../src/workload.js';

// The MMU on the main thread (faults resolved synchronously through Process.serveFault): the
// page-table walk, the TLB, accessed/dirty bits and the shootdown handshake, without workers.
let m: Machine | undefined;
afterEach(async () => {
  await m?.close();
  m = undefined;
});

async function setup(): Promise<{ m: Machine; p: Process; mmu: Mmu; tlb: MmTlb }> {
  m = await createMachine({ nodes: [{ memory: '16MiB' }, { memory: '16MiB' }], prefault: false });
  const p = m.spawn({ privileged: true });
  const tlb = new MmTlb();
  p.mm.pt.tlb = tlb;
  Atomics.store(tlb.ctl, CTL_NR_SLOTS, 1);
  const mmu = new Mmu({
    sections: m.kernel.mem.sections,
    sectionPfnShift: m.kernel.mem.pagesPerSectionShift,
    pmd: p.mm.pt.pmd.buffer as SharedArrayBuffer,
    pte: p.mm.pt.pteBuffer,
    ctl: tlb.ctl.buffer as SharedArrayBuffer,
    slot: 0,
    migrationWait: m.kernel.migrationWait.buffer as SharedArrayBuffer,
    tlbEntries: 16,
  });
  mmu.faultHandler = (vpn, write) => p.serveFault(vpn, write);
  mmu.enter();
  return { m, p, mmu, tlb };
}

const slot = (tlb: MmTlb, i: number) => Atomics.load(tlb.ctl, CTL_HEADER + i);

describe('Mmu', () => {
  it('reads and writes through the page tables; faults map pages; the main thread sees the bytes', async () => {
    const { p, mmu } = await setup();
    const a = p.mmap(4 * PAGE_SIZE, { node: 1 });
    expect(mmu.load32(a)).toBe(0); // zero page
    expect(p.pageInfo(a)!.zeroPage).toBe(true);
    mmu.store32(a + 8, 0x12345678);
    mmu.write(a + PAGE_SIZE - 2, new Uint8Array([1, 2, 3, 4]));
    expect(new Int32Array(p.read(a + 8, 4).buffer)[0]).toBe(0x12345678);
    expect([...mmu.read(a + PAGE_SIZE - 2, 4)]).toEqual([1, 2, 3, 4]);
    expect(p.pageInfo(a)).toMatchObject({ zeroPage: false, node: 1, dirty: true, accessed: true });
    expect(mmu.stats().faults).toBeGreaterThanOrEqual(2);
  });

  it('caches translations: a hit costs no walk; a write needs a dirty writable entry', async () => {
    const { p, mmu } = await setup();
    const a = p.mmap(PAGE_SIZE, { node: 0 });
    p.touch(a, PAGE_SIZE, 'read');
    p.touch(a, PAGE_SIZE, 'write');
    // Clear the accessed and dirty bits, as reclaim's aging would.
    const pt = p.mm.pt;
    const idx = pt.pteIndex((a - 0x7f00_0000_0000) / PAGE_SIZE);
    Atomics.and(pt.pte, idx, ~(PTE_ACCESSED | PTE_DIRTY));
    mmu.load32(a);
    const misses = mmu.tlbMisses;
    for (let i = 0; i < 100; i++) mmu.load32(a + i * 4);
    expect(mmu.tlbMisses).toBe(misses);
    expect(p.pageInfo(a)).toMatchObject({ accessed: true, dirty: false });
    mmu.store32(a, 7); // the read-filled entry has no dirty bit: walk again and set it
    expect(mmu.tlbMisses).toBe(misses + 1);
    expect(p.pageInfo(a)!.dirty).toBe(true);
    mmu.store32(a, 8);
    expect(mmu.tlbMisses).toBe(misses + 1);
  });

  it('acknowledges a shootdown at its next access and drops the stale translation', async () => {
    const { m, p, mmu, tlb } = await setup();
    const a = p.mmap(PAGE_SIZE, { node: 0 });
    mmu.store32(a, 1234);
    expect(slot(tlb, S_STATE)).toBe(T_RUNNING);
    const before = p.pageInfo(a)!.pfn;
    // The engine migrates the page: its flush bumps the generation (this thread is "running",
    // so the async shootdown waits for it; here we only bump and check the handshake).
    const gen = Atomics.add(tlb.ctl, CTL_GEN, 1) + 1;
    expect(slot(tlb, S_ACK)).toBe(gen - 1);
    m.kernel.tlbFlush = () => undefined;
    const r = await m.migrateFolios([before], { node: 1 });
    expect(r.ret).toBe(0);
    expect(mmu.load32(a)).toBe(1234); // walks again: the new frame
    expect(slot(tlb, S_ACK)).toBe(gen);
    expect(mmu.stats().tlbFlushes).toBe(1);
    expect(p.pageInfo(a)!.pfn).not.toBe(before);
  });

  it('a blocked or exited thread counts as acknowledged; a running one holds the flush', async () => {
    const { mmu, tlb } = await setup();
    tlb.live = 1;
    expect(shootdownSync(tlb, 20)).toBe(false); // running, never touches memory: times out
    Atomics.store(tlb.ctl, CTL_HEADER + S_STATE, T_BLOCKED);
    expect(shootdownSync(tlb, 1000)).toBe(true);
    mmu.exit();
    expect(slot(tlb, S_STATE)).toBe(T_EXITED);
    expect(shootdownSync(tlb, 1000)).toBe(true);
  });

  it('a killed thread leaves at its next access', async () => {
    const { p, mmu, tlb } = await setup();
    const a = p.mmap(PAGE_SIZE);
    mmu.store32(a, 1);
    Atomics.store(tlb.ctl, CTL_HEADER + S_STOP, STOP_KILLED);
    Atomics.add(tlb.ctl, CTL_GEN, 1);
    expect(() => mmu.load32(a)).toThrow(MmuFault);
    expect(slot(tlb, S_STATE)).toBe(T_EXITED);
  });

  it('segmentation faults name the address', async () => {
    const { p, mmu } = await setup();
    const a = p.mmap(PAGE_SIZE);
    p.munmap(a, PAGE_SIZE);
    expect(() => mmu.load32(a)).toThrow(/segmentation fault at 0x7f/);
    expect(() => mmu.load32(1234)).toThrow(/outside the user address space/);
  });

  it('runs the pattern workload in place: sequential and random writers, then a reader', async () => {
    const { p, mmu } = await setup();
    const bytes = 16 * PAGE_SIZE;
    const a = p.mmap(bytes);
    const w = { kind: 'pattern' as const, addr: a, bytes, lanes: 2, strideWords: 3 };
    const r0 = runWorkload(mmu, { ...w, lane: 0, passes: 3 });
    const r1 = runWorkload(mmu, { ...w, lane: 1, passes: 2, order: 'random', seed: 5 });
    const rd = runWorkload(mmu, { ...w, lane: -1, passes: 1 });
    expect([r0.errors, r1.errors, rd.errors]).toEqual([0, 0, 0]);
    expect(r0.generations!.every((g) => g === 3)).toBe(true);
    expect(verifyPattern((x, n) => p.read(x, n), w, [r0, r1])).toMatchObject({ mismatches: 0 });
    // A lost write: the next visit of the writer and verifyPattern both see it.
    const words = new Int32Array(p.read(a, 4).buffer);
    expect(words[0]).toBe(patternWord(0, 3));
    p.write(a, new Uint8Array(new Int32Array([patternWord(0, 1)]).buffer));
    expect(verifyPattern((x, n) => p.read(x, n), w, [r0]).mismatches).toBe(1);
    const again = runWorkload(mmu, { ...w, lane: 0, passes: 1 });
    expect(again.errors).toBeGreaterThan(0);
    expect(again.firstErrors[0]).toMatchObject({ kind: 'lost', word: 0 });
  });
});
