import { afterEach, describe, expect, it } from 'vitest';
import { EINVAL } from '../src/errno.js';
import { createMachine, type Machine } from '../src/machine.js';
import { MPOL_MF_MOVE } from '../src/mempolicy.js';
import { CTL_NR_SLOTS, Mmu } from '../src/mmu.js';
import { PAGE_SIZE } from '../src/mmzone.js';
import type { Process } from '../src/process.js';
import { MmTlb } from '../src/tlbflush.js';
import {
  type AccessResult,
  type AccessWorkload,
  accessWord,
  prepareAccessWorkload,
  runAccessWorkload,
  verifyAccess,
} from '../src/workload_access.js';
import { expectErrno } from './helpers.js';
import { untilRunning } from './live.js';

let m: Machine | undefined;
afterEach(async () => {
  await m?.close();
  m = undefined;
});

/** A machine and a process with an MMU on the main thread (faults served synchronously). */
async function setup(): Promise<{ m: Machine; p: Process; mmu: Mmu }> {
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
  });
  mmu.faultHandler = (vpn, write) => p.serveFault(vpn, write);
  mmu.enter();
  return { m, p, mmu };
}

const harmonic = (n: number, s: number) => {
  let h = 0;
  for (let r = 1; r <= n; r++) h += r ** -s;
  return h;
};

describe('access workloads (main-thread MMU)', () => {
  it("zipf: the top 10% of ranks get Zipf's share, and the hottest pages are scattered by the seed", async () => {
    const { p, mmu } = await setup();
    const pages = 1000;
    const a = p.mmap(pages * PAGE_SIZE);
    const w = prepareAccessWorkload<AccessWorkload>({
      kind: 'access',
      pattern: 'zipf',
      addr: a,
      bytes: pages * PAGE_SIZE,
      zipfS: 0.99,
      seed: 42,
      ops: 300_000,
      histogram: true,
    });
    const r = await runAccessWorkload(mmu, w);
    expect(r).toMatchObject({ ops: 300_000, reads: 300_000, writes: 0, errors: 0 });
    const hist = r.pageAccesses!;
    const perm = new Int32Array(w.zipf!.perm);
    let top = 0;
    for (let rank = 0; rank < pages / 10; rank++) top += hist[perm[rank]!]!;
    const want = harmonic(100, 0.99) / harmonic(1000, 0.99);
    expect(Math.abs(top / r.ops - want)).toBeLessThan(0.01);
    // Rank 0 is the most accessed page, and it is not simply page 0.
    expect(Math.max(...hist)).toBe(hist[perm[0]!]);
    expect([...perm.subarray(0, 10)]).not.toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    // The same seed gives the same table.
    const again = prepareAccessWorkload<AccessWorkload>({ ...w, zipf: undefined });
    expect(new Int32Array(again.zipf!.perm)).toEqual(perm);
  });

  it('uniform: every page gets its share', async () => {
    const { p, mmu } = await setup();
    const pages = 256;
    const a = p.mmap(pages * PAGE_SIZE);
    const r = await runAccessWorkload(mmu, {
      kind: 'access',
      pattern: 'uniform',
      addr: a,
      bytes: pages * PAGE_SIZE,
      ops: 256_000,
      histogram: true,
    });
    // 1000 expected per page, sd ~32: every page within 20%.
    for (const n of r.pageAccesses!) expect(Math.abs(n - 1000)).toBeLessThan(200);
  });

  it('scan: pages in order, wrapping, counting passes', async () => {
    const { p, mmu } = await setup();
    const pages = 64;
    const a = p.mmap(pages * PAGE_SIZE);
    const w = {
      kind: 'access',
      pattern: 'scan',
      addr: a,
      bytes: pages * PAGE_SIZE,
      histogram: true,
    } as const;
    const few = await runAccessWorkload(mmu, { ...w, ops: 10 });
    expect([...few.pageAccesses!]).toEqual([...Array(pages)].map((_, i) => (i < 10 ? 1 : 0)));
    const r = await runAccessWorkload(mmu, { ...w, ops: pages * 2 + 32 });
    expect(r.passes).toBe(2);
    expect([...r.pageAccesses!]).toEqual([...Array(pages)].map((_, i) => (i < 32 ? 3 : 2)));
  });

  it('hotset: hotShare of the accesses hit the hot range, which moves every moveEveryMs', async () => {
    const { p, mmu } = await setup();
    const pages = 1024;
    const a = p.mmap(pages * PAGE_SIZE);
    const w: AccessWorkload = {
      kind: 'access',
      pattern: 'hotset',
      addr: a,
      bytes: pages * PAGE_SIZE,
      hotBytes: 64 * PAGE_SIZE,
      seed: 7,
      ops: 200_000,
      histogram: true,
    };
    const still = await runAccessWorkload(mmu, w);
    expect(still.hotRanges).toHaveLength(1);
    const h = still.hotRanges[0]!;
    expect(h).toMatchObject({ atMs: 0, bytes: 64 * PAGE_SIZE });
    const first = (h.addr - a) / PAGE_SIZE;
    expect(first + 64).toBeLessThanOrEqual(pages);
    let inHot = 0;
    for (let i = first; i < first + 64; i++) inHot += still.pageAccesses![i]!;
    expect(Math.abs(inHot / still.ops - (0.9 + (0.1 * 64) / 1024))).toBeLessThan(0.01);

    const moving = await runAccessWorkload(mmu, { ...w, ops: undefined, durationMs: 150, moveEveryMs: 30 });
    const hr = moving.hotRanges;
    expect(hr.length).toBeGreaterThanOrEqual(3);
    for (let i = 1; i < hr.length; i++) {
      // Each move happens at (or just after) the next multiple of moveEveryMs.
      expect(hr[i]!.atMs).toBeGreaterThanOrEqual(i * 30);
      expect(hr[i]!.epochMs - hr[i - 1]!.epochMs).toBeCloseTo(hr[i]!.atMs - hr[i - 1]!.atMs, 3);
      expect(hr[i]!.addr).toBeGreaterThanOrEqual(a);
      expect(hr[i]!.addr + hr[i]!.bytes).toBeLessThanOrEqual(a + pages * PAGE_SIZE);
    }
    expect(new Set(hr.map((x) => x.addr)).size).toBeGreaterThan(1);
  });

  it('zipf with moveEveryMs: the hottest ranks form the reported hot range', async () => {
    const { p, mmu } = await setup();
    const pages = 512;
    const a = p.mmap(pages * PAGE_SIZE);
    const r = await runAccessWorkload(mmu, {
      kind: 'access',
      pattern: 'zipf',
      addr: a,
      bytes: pages * PAGE_SIZE,
      ops: 50_000,
      moveEveryMs: 60_000,
      histogram: true,
    });
    const h = r.hotRanges[0]!;
    expect(h.bytes).toBe(51 * PAGE_SIZE); // a tenth of the region
    const hist = r.pageAccesses!;
    const start = (h.addr - a) / PAGE_SIZE;
    // Rank 0 is the range's first page: the most accessed one.
    expect(Math.max(...hist)).toBe(hist[start]);
  });

  it('writes are checked at every access and by verifyAccess afterwards; a lost write shows', async () => {
    const { p, mmu } = await setup();
    const pages = 32;
    const a = p.mmap(pages * PAGE_SIZE);
    const w = {
      kind: 'access',
      pattern: 'uniform',
      addr: a,
      bytes: pages * PAGE_SIZE,
      writeShare: 0.5,
      word: 7,
    } as const;
    const r = await runAccessWorkload(mmu, { ...w, ops: 5000 });
    expect(r.errors).toBe(0);
    expect(r.writes + r.reads).toBe(5000);
    expect(Math.abs(r.writes / 5000 - 0.5)).toBeLessThan(0.05);
    const read = (x: number, n: number) => p.read(x, n);
    expect(verifyAccess(read, w, [r], [7])).toMatchObject({ checked: pages, mismatches: 0 });
    // Undo the last write of page 3: both checks see it.
    const g = r.generations[3]!;
    p.write(a + 3 * PAGE_SIZE + 28, new Uint8Array(new Int32Array([accessWord(3, g - 1)]).buffer));
    expect(verifyAccess(read, w, [r], [7])).toMatchObject({ mismatches: 1, first: [{ page: 3 }] });
    expect(verifyAccess(read, w, [r], [0]).mismatches).toBe(pages);
  });

  it('bad workloads are refused at spawn with EINVAL naming the field', async () => {
    const { p } = await setup();
    const a = p.mmap(16 * PAGE_SIZE);
    const w = { kind: 'access', pattern: 'uniform', addr: a, bytes: 16 * PAGE_SIZE } as const;
    const bad = (x: object) =>
      expectErrno(() => p.spawnThread({ workload: { ...w, ...x } as AccessWorkload }), EINVAL).message;
    expect(bad({ pattern: 'pareto' })).toMatch(/pattern "pareto" is not/);
    expect(bad({ writeShare: 2 })).toMatch(/writeShare 2 is not in 0..1/);
    expect(bad({ addr: a + 1 })).toMatch(/addr \d+ is not page aligned/);
    expect(bad({ hotBytes: 32 * PAGE_SIZE })).toMatch(/hotBytes/);
    expect(bad({ word: 1024 })).toMatch(/word 1024/);
    expect(p.threads).toHaveLength(0);
  });
});

describe('access workloads in user threads', () => {
  it('every byte survives migrations of the region while a writing zipf workload runs', async () => {
    m = await createMachine({ nodes: [{ memory: '16MiB' }, { memory: '16MiB' }], prefault: false });
    const p = m.spawn({ privileged: true });
    const pages = 512;
    const a = p.mmap(pages * PAGE_SIZE, { node: 0 });
    const w: AccessWorkload = {
      kind: 'access',
      pattern: 'zipf',
      addr: a,
      bytes: pages * PAGE_SIZE,
      writeShare: 0.5,
      seed: 3,
    };
    p.touch(a, pages * PAGE_SIZE, 'write');
    const t = p.spawnThread<AccessResult>({ workload: w });
    await untilRunning([t]);
    // Let it fault the region's TLB entries in and write for a while first.
    await new Promise((r) => setTimeout(r, 50));
    const addrs = [...Array(pages)].map((_, i) => a + i * PAGE_SIZE);
    for (const node of [1, 0, 1]) {
      const r = await p.movePages(
        0,
        addrs,
        addrs.map(() => node),
        MPOL_MF_MOVE,
      );
      expect(r.ret).toBe(0);
    }
    t.stop();
    const res = await t.done;
    expect(res.ops).toBeGreaterThan(0);
    expect(res.writes).toBeGreaterThan(0);
    expect(res.errors).toBe(0);
    // The MMU's own counters come with the result: a read is one access, a write a load and a store.
    expect(res.accessesByNode.reduce((x, y) => x + y, 0)).toBe(res.ops + res.writes);
    const check = verifyAccess((x, n) => p.read(x, n), w, [res]);
    expect(check.checked).toBeGreaterThan(0);
    expect(check.mismatches).toBe(0);
    const where = await p.movePages(0, addrs, null, 0);
    expect(new Set(where.status)).toEqual(new Set([1]));
    m.checkInvariants();
  });
});
