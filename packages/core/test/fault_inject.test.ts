import { afterEach, describe, expect, it } from 'vitest';
import { ENOMEM } from '../src/errno.js';
import { createFaultPlan, FaultPlan, InjectedFault } from '../src/fault_inject.js';
import { createMachine, type Machine } from '../src/machine.js';
import type { Migrator } from '../src/migrator.js';
import { PAGE_SIZE } from '../src/mmzone.js';
import type { MmapOptions, Process } from '../src/process.js';
import type { VmstatName } from '../src/vmstat.js';
import { pattern, sameBytes } from './helpers.js';
import { expectPattern, expectSettled, pingPong, startPattern, stopAndCheck, untilRunning } from './live.js';

const CPU_SERIAL = new URL('../../migrator-cpu-serial/src/index.ts', import.meta.url).pathname;
async function cpuSerial(): Promise<Migrator> {
  const mod = (await import(/* @vite-ignore */ CPU_SERIAL)) as { createMigrator(): Migrator };
  return mod.createMigrator();
}

let m: Machine | undefined;
afterEach(async () => {
  if (m) {
    expectSettled(m);
    await m.close();
  }
  m = undefined;
});

async function machine(): Promise<Machine> {
  m = await createMachine({ nodes: [{ memory: '32MiB' }, { memory: '32MiB' }], prefault: false });
  return m;
}

interface Region {
  p: Process;
  a: number;
  bytes: number;
  data: Uint8Array;
  heads: number[];
}

function populate(m: Machine, pages: number, thp: MmapOptions['thp'] = 'never'): Region {
  const p = m.spawn({ privileged: true });
  const bytes = pages * PAGE_SIZE;
  const a = p.mmap(bytes, { thp, node: 0 });
  const data = pattern(pages, 7);
  p.write(a, data);
  const heads = new Set<number>();
  for (let off = 0; off < bytes; off += PAGE_SIZE) heads.add(p.pageInfo(a + off)!.headPfn);
  return { p, a, bytes, data, heads: [...heads] };
}

/** Every page present in its own frame, each folio mapped by exactly its pages, bytes intact. */
function expectMappedOnceIntact(m: Machine, r: Region): void {
  const pfns = new Set<number>();
  const k = m.kernel;
  for (let off = 0; off < r.bytes; off += PAGE_SIZE) {
    const info = r.p.pageInfo(r.a + off);
    expect(info, `page +${off} is mapped`).not.toBeNull();
    expect(info!.zeroPage).toBe(false);
    expect(pfns.has(info!.pfn), `page +${off} shares frame ${info!.pfn}`).toBe(false);
    pfns.add(info!.pfn);
    const nr = 1 << info!.order;
    expect(k.pages.mapcount[info!.headPfn]).toBe(info!.huge ? 1 : nr);
  }
  expect(sameBytes(r.p.read(r.a, r.bytes), r.data), 'bytes intact').toBe(true);
}

function nodes(r: Region): number[] {
  return r.heads.map((_, i) => r.p.pageInfo(r.a + i * (r.bytes / r.heads.length))!.node);
}

const COUNTERS = [
  'pgmigrate_success',
  'pgmigrate_fail',
  'thp_migration_success',
  'thp_migration_fail',
] as const;
function counters(m: Machine): Record<(typeof COUNTERS)[number], number> {
  const v = m.vmstat();
  return Object.fromEntries(COUNTERS.map((c) => [c, v[c as VmstatName]])) as Record<
    (typeof COUNTERS)[number],
    number
  >;
}

describe('FaultPlan', () => {
  it('fires on the nth matching hit, every k-th after, up to `times`, and logs each', () => {
    const plan = createFaultPlan([
      { site: 'copy_row', action: 'skip', nth: 2, every: 3, times: 3 },
      { site: 'alloc_dst', match: { node: 1 }, times: Number.POSITIVE_INFINITY },
    ]);
    const fired = Array.from({ length: 12 }, () => plan.hit('copy_row', { row: 0 }) !== null);
    expect(fired.map((f, i) => (f ? i + 1 : 0)).filter(Boolean)).toEqual([2, 5, 8]);
    expect(plan.hit('alloc_dst', { node: 0 })).toBeNull();
    expect(plan.hit('alloc_dst', { node: 1 })).not.toBeNull();
    expect(plan.hit('alloc_dst', { node: 1 })).not.toBeNull();
    expect(plan.fired('copy_row')).toBe(3);
    expect(plan.fired()).toBe(5);
    expect(plan.hits('copy_row')).toBe(12);
    expect(plan.log[0]).toMatchObject({
      site: 'copy_row',
      action: 'skip',
      rule: 0,
      hit: 2,
      info: { row: 0 },
    });
    expect(plan.exhausted()).toBe(true);
  });

  it('probability is seeded and reproducible; bad rules are refused', () => {
    const run = () => {
      const plan = new FaultPlan([{ site: 'unmap_pin', probability: 0.3, times: 1000 }], { seed: 42 });
      return Array.from({ length: 200 }, () => (plan.hit('unmap_pin') ? 1 : 0)).join('');
    };
    expect(run()).toBe(run());
    const ones = run()
      .split('')
      .filter((c) => c === '1').length;
    expect(ones).toBeGreaterThan(30);
    expect(ones).toBeLessThan(90);
    expect(() => createFaultPlan([{ site: 'nope' as never }])).toThrow(/fault site "nope"/);
    expect(() => createFaultPlan([{ site: 'copy_row', nth: 0 }])).toThrow(/nth/);
    expect(() => createFaultPlan([{ site: 'copy_row', probability: 2 }])).toThrow(/probability/);
    expect(InjectedFault.isInstance(new InjectedFault('copy_batch', 'x'))).toBe(true);
  });
});

describe('engine fault sites', () => {
  it('alloc_dst: the target node runs out of memory mid-batch (-ENOMEM, the rest put back)', async () => {
    const m = await machine();
    const r = populate(m, 8);
    const plan = m.injectFaults([{ site: 'alloc_dst', nth: 3 }])!;
    const before = counters(m);
    const res = await m.migrateFolios(r.heads, { node: 1 });
    expect(res).toMatchObject({ ret: -ENOMEM, errno: ENOMEM, nrSucceeded: 2, nrFailed: 1 });
    expect(plan.fired('alloc_dst')).toBe(1);
    expect(nodes(r)).toEqual([1, 1, 0, 0, 0, 0, 0, 0]);
    const after = counters(m);
    expect(after.pgmigrate_success - before.pgmigrate_success).toBe(2);
    expect(after.pgmigrate_fail - before.pgmigrate_fail).toBe(1);
    expectMappedOnceIntact(m, r);
  });

  it('a really full target node: the same outcome without a plan', async () => {
    const m = await machine();
    const r = populate(m, 4);
    const hog = m.spawn();
    const free = m.freePages(1);
    const h = hog.mmap(free * PAGE_SIZE, { node: 1 });
    // Take every free page of node 1 (faults stop with ENOMEM once it is empty).
    try {
      hog.touch(h, free * PAGE_SIZE, 'write');
    } catch {
      // expected: the node ran out
    }
    const res = await m.migrateFolios(r.heads, { node: 1 });
    expect(res.ret).toBe(-ENOMEM);
    expect(res.nrSucceeded).toBe(0);
    expect(nodes(r)).toEqual([0, 0, 0, 0]);
    expectMappedOnceIntact(m, r);
  });

  it('alloc_dst on a THP: split on ENOMEM, the pieces migrate', async () => {
    const m = await machine();
    const r = populate(m, 512, 'always');
    m.injectFaults([{ site: 'alloc_dst', match: { order: 9 } }]);
    const res = await m.migrateFolios(r.heads, { node: 1, reason: 'syscall_or_cpuset' });
    expect(res).toMatchObject({ nrThpFailed: 1, nrThpSplit: 1, nrSucceeded: 512 });
    expect(r.p.pageInfo(r.a)).toMatchObject({ node: 1, order: 0 });
    expectMappedOnceIntact(m, r);
  });

  it('unmap_pin: a folio pinned while unmapped is restored in place and counted failed', async () => {
    const m = await machine();
    const r = populate(m, 6);
    const plan = m.injectFaults([
      { site: 'unmap_pin', times: Number.POSITIVE_INFINITY, match: { pfn: r.heads[3]! } },
    ])!;
    const before = counters(m);
    const res = await m.migrateFolios(r.heads, { node: 1 });
    expect(res).toMatchObject({ ret: 1, nrSucceeded: 5, nrFailed: 1 });
    // Pinned at every unmap: the move phase retries, then restores the old mappings.
    expect(plan.fired('unmap_pin')).toBeGreaterThanOrEqual(1);
    expect(nodes(r)).toEqual([1, 1, 1, 0, 1, 1]);
    const after = counters(m);
    expect(after.pgmigrate_fail - before.pgmigrate_fail).toBe(1);
    expect(m.kernel.pages.refcount[r.heads[3]!]).toBe(1);
    expectMappedOnceIntact(m, r);
  });

  it('unmap_pin once: the pin is gone by the sync retry, so everything moves', async () => {
    const m = await machine();
    const r = populate(m, 4);
    m.injectFaults([{ site: 'unmap_pin', nth: 1 }]);
    const res = await m.migrateFolios(r.heads, { node: 1, mode: 'MIGRATE_SYNC' });
    expect(res).toMatchObject({ ret: 0, nrSucceeded: 4, nrFailed: 0 });
    expectMappedOnceIntact(m, r);
  });
});

describe('migrator_call faults with cpu-serial', () => {
  for (const action of ['throw', 'reject'] as const) {
    it(`${action}: the batch is copied on the CPU and the failure counted`, async () => {
      const m = await machine();
      const r = populate(m, 16);
      await m.offload.register(await cpuSerial());
      m.injectFaults([{ site: 'migrator_call', action }]);
      const res = await m.migrateFolios(r.heads, { node: 1 });
      expect(res).toMatchObject({ ret: 0, nrSucceeded: 16 });
      expect(res.offload).toMatchObject({ batches: 1, foliosOffered: 16, foliosCopied: 0, failures: 1 });
      expect(m.offload.status()[0]).toMatchObject({ failures: 1, disabled: null });
      expect(m.offload.log.some((l) => l.includes(`injected ${action} of cpu-serial`))).toBe(true);
      expectMappedOnceIntact(m, r);
    });
  }

  it('partial: only some rows stay marked; the engine copies the others', async () => {
    const m = await machine();
    const r = populate(m, 10);
    await m.offload.register(await cpuSerial());
    m.injectFaults([{ site: 'migrator_call', action: 'partial' }]);
    const res = await m.migrateFolios(r.heads, { node: 1 });
    expect(res.offload).toMatchObject({ foliosOffered: 10, foliosCopied: 5, failures: 0 });
    expect(res.nrSucceeded).toBe(10);
    expectMappedOnceIntact(m, r);
  });

  it('hang: the copy times out, is abandoned after the grace period, the migrator is disabled', async () => {
    const m = await machine();
    const r = populate(m, 8);
    await m.offload.register(await cpuSerial());
    m.injectFaults([{ site: 'migrator_call', action: 'hang' }]);
    const res = await m.migrateFolios(r.heads, { node: 1, copyTimeoutMs: 20, abortGraceMs: 30 });
    expect(res).toMatchObject({ ret: 0, nrSucceeded: 8 });
    expect(res.offload).toMatchObject({ failures: 1, foliosCopied: 0 });
    expect(m.offload.status()[0]!.disabled).toMatch(/never settled/);
    // Later batches go straight to the CPU.
    const back = await m.migrateFolios(
      r.heads.map((_, i) => r.p.pageInfo(r.a + i * PAGE_SIZE)!.headPfn),
      { node: 0 },
    );
    expect(back.offload.batches).toBe(0);
    expectMappedOnceIntact(m, r);
    // unregister does not wait for the abandoned call.
    await m.offload.unregister(m.offload.active!);
  });
});

describe('faults with live threads', () => {
  it('random engine and migrator faults while threads write: no write lost', async () => {
    const m = await machine();
    const p = m.spawn({ privileged: true });
    const bytes = 16 * PAGE_SIZE;
    const a = p.mmap(bytes, { node: 0 });
    p.touch(a, bytes, 'write');
    await m.offload.register(await cpuSerial());
    const plan = m.injectFaults(
      [
        { site: 'alloc_dst', probability: 0.1, times: Number.POSITIVE_INFINITY },
        { site: 'unmap_pin', probability: 0.2, times: Number.POSITIVE_INFINITY },
        { site: 'migrator_call', action: 'partial', probability: 0.3, times: Number.POSITIVE_INFINITY },
        { site: 'migrator_call', action: 'throw', probability: 0.1, times: Number.POSITIVE_INFINITY },
      ],
      { seed: 7 },
    )!;
    const w = { addr: a, bytes, lanes: 2 };
    const threads = startPattern(p, w, { readers: 1 });
    await untilRunning(threads);
    let moved = 0;
    for (let i = 0; i < 60; i++) {
      const heads = [];
      for (let off = 0; off < bytes; off += PAGE_SIZE) heads.push(p.pageInfo(a + off)!.headPfn);
      const res = await m.migrateFolios(heads, { node: (i + 1) & 1 });
      moved += res.nrSucceeded;
    }
    const results = await stopAndCheck(threads);
    expect(moved).toBeGreaterThan(0);
    expect(plan.fired('unmap_pin')).toBeGreaterThan(0);
    expect(plan.fired('migrator_call')).toBeGreaterThan(0);
    expectPattern(p, w, results);
  });

  it('ping-pong under unmap pins stays within the selftest allowance', async () => {
    const m = await machine();
    const p = m.spawn({ privileged: true });
    const a = p.mmap(PAGE_SIZE, { node: 0 });
    p.touch(a, PAGE_SIZE, 'write');
    m.injectFaults([{ site: 'unmap_pin', probability: 0.5, times: Number.POSITIVE_INFINITY }], { seed: 3 });
    const w = { addr: a, bytes: PAGE_SIZE, lanes: 2 };
    const threads = startPattern(p, w);
    await untilRunning(threads);
    const pp = await pingPong(p, a, { iterations: 100, ms: 2000 });
    const results = await stopAndCheck(threads);
    expect(pp.notMigrated).toBeGreaterThan(0);
    expect(pp.maxConsecutive).toBeLessThanOrEqual(100);
    expect(p.pageInfo(a)!.node).toBe(pp.node);
    expectPattern(p, w, results);
  });
});
