import { describe, expect, it } from 'vitest';
import { modeledAccessTime } from '../src/access_cost.js';
import { EINVAL } from '../src/errno.js';
import { MPOL_MF_MOVE } from '../src/mempolicy.js';
import { defineMigrator, type MigrationBatch, type MigratorContext } from '../src/migrator.js';
import { PAGE_SIZE } from '../src/mmzone.js';
import { expectErrno, machinesCheckedAfterEach, pattern, sameBytes } from './helpers.js';

const machine = machinesCheckedAfterEach();
const fns = new URL('./fixtures/access-fns.mjs', import.meta.url);
const tiered = { nodes: [{ memory: '8MiB' }, { memory: '8MiB', tier: 'cxl', cpus: 0 }] };

type Stats = { accessesByNode: number[]; migrationWaitMs: number };

describe('per-node access counts of user threads', () => {
  it('a thread touching only node-1 pages counts its accesses there', async () => {
    const m = await machine(tiered);
    const p = m.spawn({ privileged: true });
    const a = p.mmap(8 * PAGE_SIZE, { node: 1 });
    p.write(a, pattern(8));
    const t = p.spawnThread<Stats>({ module: fns, export: 'loads', data: { addr: a, pages: 8 } });
    const inThread = await t.join();
    expect(inThread.accessesByNode).toEqual([0, 8]);
    expect(t.stats()).toMatchObject({ accessesByNode: [0, 8], migrationWaitMs: 0 });
  });

  it('a pattern writer counts a load and a store per word; the zero page counts on no node', async () => {
    const m = await machine(tiered);
    const p = m.spawn({ privileged: true });
    const a = p.mmap(4 * PAGE_SIZE, { node: 0 });
    const t = p.spawnThread({
      workload: { kind: 'pattern', addr: a, bytes: 4 * PAGE_SIZE, lanes: 1, lane: 0, passes: 1 },
    });
    await t.join();
    // The first load of each untouched page reads the zero page (a read fault maps it).
    expect(t.stats().accessesByNode).toEqual([2 * 4 * 1024 - 4, 0]);
    const again = p.spawnThread({
      workload: { kind: 'pattern', addr: a, bytes: 4 * PAGE_SIZE, lanes: 1, lane: 0, passes: 1 },
    });
    await again.join();
    expect(again.stats().accessesByNode).toEqual([2 * 4 * 1024, 0]);
    const z = p.mmap(4 * PAGE_SIZE, { node: 1 });
    const r = p.spawnThread<Stats>({ module: fns, export: 'loads', data: { addr: z, pages: 4 } });
    expect((await r.join()).accessesByNode).toEqual([0, 0]);
    expect(p.pageInfo(z)!.zeroPage).toBe(true);
  });

  it('read() and write() count one access per 64-byte line they touch', async () => {
    const m = await machine(tiered);
    const p = m.spawn({ privileged: true });
    const a = p.mmap(2 * PAGE_SIZE, { node: 1 });
    p.touch(a, 2 * PAGE_SIZE, 'write');
    // Bytes 32..4131: lines 0..63 of page 0 and lines 0..0 of page 1 (65 lines), written then read.
    const text = 'x'.repeat(4100);
    const t = p.spawnThread<{ text: string }>({
      module: fns.href.replace('access-fns', 'thread-fns'),
      data: { addr: a + 32, text },
    });
    expect((await t.join()).text).toBe(text);
    expect(t.stats().accessesByNode).toEqual([0, 2 * 65]);
  });

  it('after a migration to node 0 the same thread counts its accesses there; bytes survive', async () => {
    const m = await machine(tiered);
    const p = m.spawn({ privileged: true });
    const pages = 16;
    const a = p.mmap(pages * PAGE_SIZE, { node: 1 });
    const data = pattern(pages, 7);
    p.write(a, data);
    const go = new Int32Array(new SharedArrayBuffer(4));
    const done = new Int32Array(new SharedArrayBuffer(4));
    const t = p.spawnThread<Stats>({
      module: fns,
      export: 'rounds',
      data: { addr: a, pages, rounds: 2, go: go.buffer, done: done.buffer },
    });
    const round = async (r: number) => {
      Atomics.store(go, 0, r);
      Atomics.notify(go, 0);
      while (Atomics.load(done, 0) < r) {
        if (t.state === 'exited') await t.join();
        const w = Atomics.waitAsync(done, 0, Atomics.load(done, 0), 1000);
        if (w.async) await w.value;
      }
    };
    await round(1);
    expect(t.stats().accessesByNode).toEqual([0, pages]);
    const addrs = Array.from({ length: pages }, (_, i) => a + i * PAGE_SIZE);
    const moved = await p.movePages(0, addrs, new Array(pages).fill(0), MPOL_MF_MOVE);
    expect(moved).toMatchObject({ ret: 0, status: new Array(pages).fill(0) });
    await round(2);
    const final = await t.join();
    expect(final.accessesByNode).toEqual([pages, pages]);
    expect(t.stats().accessesByNode).toEqual([pages, pages]);
    expect(sameBytes(p.read(a, pages * PAGE_SIZE), data)).toBe(true);
  });

  it('counts the milliseconds a thread slept on a migration entry', async () => {
    const m = await machine(tiered);
    const p = m.spawn({ privileged: true });
    const a = p.mmap(PAGE_SIZE, { node: 1 });
    p.touch(a, PAGE_SIZE, 'write');
    const t = p.spawnThread<number>({
      module: fns.href.replace('access-fns', 'thread-fns'),
      export: 'counter',
      data: { addr: a },
    });
    // A migrator that copies only once the thread sleeps on the folio's migration entry.
    let ram: Uint8Array[] = [];
    let shift = 0;
    const bytes = (pfn: number) => {
      const off = (pfn & ((1 << shift) - 1)) * PAGE_SIZE;
      return ram[pfn >>> shift]!.subarray(off, off + PAGE_SIZE);
    };
    const waiter = defineMigrator({
      apiVersion: 'pagemig.migrator/v1' as const,
      name: 'waiter',
      version: '1.0.0',
      engines: { core: '^0.1.0' },
      capabilities: { offloadsCpu: true, channels: 1, maxInFlightBatches: 1, needsSharedMemory: true },
      init(ctx: MigratorContext) {
        ram = ctx.sections.map((sec) => new Uint8Array(sec));
        shift = ctx.sectionPfnShift;
      },
      async copyBatch(batch: MigrationBatch) {
        const until = performance.now() + 10_000;
        while (t.stats().migrationWaits === 0 && performance.now() < until)
          await new Promise((resolve) => setTimeout(resolve, 1));
        bytes(batch.dst(0)).set(bytes(batch.src(0)));
        batch.markCopied(0);
      },
      dispose() {},
    });
    await m.offload.register(waiter, 'all');
    while (t.stats().accessesByNode[1] === 0) await new Promise((resolve) => setTimeout(resolve, 1));
    const r = await m.migrateFolios([p.pageInfo(a)!.pfn], { node: 0 });
    expect(r).toMatchObject({ ret: 0, nrSucceeded: 1 });
    while (t.stats().accessesByNode[0] === 0) await new Promise((resolve) => setTimeout(resolve, 1));
    t.stop();
    const last = await t.join();
    const s = t.stats();
    expect(s.migrationWaits).toBeGreaterThanOrEqual(1);
    expect(s.migrationWaitMs).toBeGreaterThan(0);
    expect(new Int32Array(p.read(a, 4).buffer)[0]).toBe(last);
    expect(s.accessesByNode[0]! + s.accessesByNode[1]!).toBe(last);
  });
});

describe('modeledAccessTime', () => {
  it('is accesses x the tier load latency of the profile, plus the migration stalls', async () => {
    const m = await machine(tiered);
    const t = modeledAccessTime(m, { accessesByNode: [3, 5], migrationWaitMs: 2 }, 'dram-cxl');
    // dram-cxl: DRAM 110 ns, CXL 270 ns.
    expect(t).toMatchObject({
      accessNs: 3 * 110 + 5 * 270,
      stallNs: 2_000_000,
      totalNs: 3 * 110 + 5 * 270 + 2_000_000,
      byTier: { dram: { accesses: 3, ns: 330 }, cxl: { accesses: 5, ns: 1350 } },
    });
    expect(t.assumptions).toContain(
      'tier cxl: load latency 270 ns from profile dram-cxl, an assumption, not measured',
    );
    // Without a profile (none on the machine either): dram-cxl.
    expect(modeledAccessTime(m, { accessesByNode: [3, 5], migrationWaitMs: 2 })).toEqual(t);
  });

  it("uses the machine's profile, and the built-in numbers for a tier the profile lacks", async () => {
    const m = await machine({
      nodes: [{ memory: '4MiB' }, { memory: '4MiB', tier: 'pmem', cpus: 0 }],
      clock: 'modeled',
      profile: 'dram-cxl',
    });
    const t = modeledAccessTime(m, { accessesByNode: [1, 2], migrationWaitMs: 0 });
    expect(t.byTier).toEqual({ dram: { accesses: 1, ns: 110 }, pmem: { accesses: 2, ns: 610 } });
    expect(t.totalNs).toBe(720);
    expect(
      t.assumptions.some((s) =>
        s.startsWith('tier pmem: load latency 305 ns from the built-in tier defaults, source: Izraelevitz'),
      ),
    ).toBe(true);
  });

  it('of a thread run: its counts times the latencies', async () => {
    const m = await machine(tiered);
    const p = m.spawn({ privileged: true });
    const a = p.mmap(4 * PAGE_SIZE, { node: 1 });
    const b = p.mmap(2 * PAGE_SIZE, { node: 0 });
    p.touch(a, 4 * PAGE_SIZE, 'write');
    p.touch(b, 2 * PAGE_SIZE, 'write');
    await p.spawnThread({ module: fns, export: 'loads', data: { addr: a, pages: 4 } }).join();
    const t = p.spawnThread({ module: fns, export: 'loads', data: { addr: b, pages: 2 } });
    await t.join();
    expect(modeledAccessTime(m, t.stats(), 'dram-cxl').accessNs).toBe(2 * 110);
  });

  it('refuses bad counts and unknown tiers with EINVAL naming the field', async () => {
    const m = await machine(tiered);
    const cases: [unknown, RegExp][] = [
      [
        { accessesByNode: 'x', migrationWaitMs: 0 },
        /accessesByNode "x" must be an array of at most 2 counts/,
      ],
      [{ accessesByNode: [1, 2, 3], migrationWaitMs: 0 }, /accessesByNode \[.*\] must be an array/],
      [{ accessesByNode: [1, -1], migrationWaitMs: 0 }, /accessesByNode\[1\] -1 is not a count >= 0/],
      [
        { accessesByNode: [1, 2], migrationWaitMs: Number.NaN },
        /migrationWaitMs NaN is not a number of ms >= 0/,
      ],
      [null, /accessesByNode undefined must be an array/],
    ];
    for (const [counts, message] of cases) {
      const e = expectErrno(() => modeledAccessTime(m, counts as never), EINVAL);
      expect(e.message).toMatch(message);
    }
    const h = await machine({ nodes: [{ memory: '4MiB', tier: 'hbm' }] });
    const e = expectErrno(() => modeledAccessTime(h, { accessesByNode: [1], migrationWaitMs: 0 }), EINVAL);
    expect(e.message).toContain('profile dram-cxl has no memory performance for tier "hbm"');
  });
});
