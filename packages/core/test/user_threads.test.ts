import { afterEach, describe, expect, it } from 'vitest';
import { EFAULT } from '../src/errno.js';
import { createMachine, type Machine } from '../src/machine.js';
import { PAGE_SIZE } from '../src/mmzone.js';
import type { PatternResult } from '../src/workload.js';
import { expectPattern, expectSettled, startPattern, stopAndCheck, untilRunning } from './live.js';

const FNS = new URL('./fixtures/thread-fns.mjs', import.meta.url);

let m: Machine | undefined;
afterEach(async () => {
  await m?.close();
  m = undefined;
});

async function machine(): Promise<Machine> {
  m = await createMachine({ nodes: [{ memory: '32MiB' }, { memory: '32MiB' }], prefault: false });
  return m;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('user threads', () => {
  it('run a module function against the process memory; first touches fault through the kernel', async () => {
    const m = await machine();
    const p = m.spawn();
    const a = p.mmap(1 << 20, { node: 1 });
    const t = p.spawnThread<{ text: string; stats: { faults: number } }>({
      module: FNS,
      data: { addr: a + 100, text: 'hello from a thread' },
    });
    expect(t.tid).toBeGreaterThan(p.pid);
    const r = await t.done;
    expect(r.text).toBe('hello from a thread');
    // The write faulted in a page on the policy's node, and the main thread sees the bytes.
    expect(r.stats.faults).toBeGreaterThan(0);
    expect(new TextDecoder().decode(p.read(a + 100, 19))).toBe('hello from a thread');
    expect(p.pageInfo(a)).toMatchObject({ node: 1, dirty: true, accessed: true });
    expect(t.state).toBe('exited');
    expect(p.threads).toHaveLength(0);
    expect(m.kernel.threaded.size).toBe(0);
    m.checkInvariants();
  });

  it('a thread that touches an unmapped address gets a segmentation fault (EFAULT)', async () => {
    const m = await machine();
    const p = m.spawn();
    const a = p.mmap(PAGE_SIZE);
    p.munmap(a, PAGE_SIZE);
    const t = p.spawnThread({ module: FNS, export: 'segv', data: { addr: a } });
    await expect(t.done).rejects.toMatchObject({ code: 'ERR_USER_THREAD', errno: EFAULT });
    await expect(t.done).rejects.toThrow(/segmentation fault at 0x/);
  });

  it('pattern writers on untouched memory: zero-page reads, COW to real pages, every write visible', async () => {
    const m = await machine();
    const p = m.spawn();
    const bytes = 256 << 10;
    const a = p.mmap(bytes, { node: 0 });
    const w = { addr: a, bytes, lanes: 2, passes: 20 };
    // Readers start first and map the zero page; the writers' first writes replace it (with a
    // shootdown of the readers' zero-page translations).
    const threads = [
      ...startPattern(p, { ...w, passes: 60 }, { writers: [], readers: 2 }),
      ...startPattern(p, w, { writers: [0, 1] }),
    ];
    const results = await Promise.all(threads.map((t) => t.join()));
    for (const r of results) expect(r.errors, JSON.stringify(r.firstErrors)).toBe(0);
    const writers = results.filter((r) => !r.reader);
    expect(writers.map((r) => r.passes)).toEqual([20, 20]);
    expectPattern(p, w, results);
    expect(p.pageInfo(a)).toMatchObject({ zeroPage: false, node: 0 });
    expect(results.reduce((s, r) => s + r.faults, 0)).toBeGreaterThan(0);
    m.checkInvariants();
  });

  it('random-order writers across a region of 64 KiB folios while the whole region migrates', async () => {
    const m = await machine();
    const p = m.spawn();
    const bytes = 1 << 20;
    const a = p.mmap(bytes, { thp: '64KiB', node: 0 });
    p.touch(a, bytes, 'write');
    const w = { addr: a, bytes, lanes: 2, order: 'random' as const };
    const threads = startPattern(p, w, { readers: 1 });
    await untilRunning(threads);
    for (let i = 0; i < 12; i++) {
      const heads = new Set<number>();
      for (let off = 0; off < bytes; off += PAGE_SIZE) heads.add(p.pageInfo(a + off)!.headPfn);
      const r = await m.migrateFolios([...heads], { node: (i + 1) & 1 });
      expect(r.ret).toBe(0);
      expect(r.nrSucceeded).toBe(bytes / PAGE_SIZE);
    }
    const results = await stopAndCheck(threads);
    expectPattern(p, w, results);
    expect(p.pageInfo(a)).toMatchObject({ node: 0, order: 4 });
    expectSettled(m);
  });

  it('fork: the parent threads lose writable translations, so the child keeps a frozen copy', async () => {
    const m = await machine();
    const parent = m.spawn();
    const a = parent.mmap(PAGE_SIZE * 4);
    parent.touch(a, PAGE_SIZE * 4, 'write');
    const t = parent.spawnThread<number>({ module: FNS, export: 'counter', data: { addr: a } });
    await untilRunning([t]);
    await sleep(20);
    const child = parent.fork();
    const snap = child.read(a, 4);
    // The parent's thread breaks copy-on-write at its next write and goes on in its own page.
    for (let i = 0; i < 1000 && parent.pageInfo(a)!.pfn === child.pageInfo(a)!.pfn; i++) await sleep(5);
    expect(parent.pageInfo(a)!.pfn).not.toBe(child.pageInfo(a)!.pfn);
    await sleep(30);
    expect(Buffer.compare(child.read(a, 4), snap)).toBe(0);
    t.stop();
    const last = await t.done;
    expect(new Int32Array(parent.read(a, 4).buffer)[0]).toBe(last);
    m.checkInvariants();
  });

  it('a parked thread does not hold up a shootdown', async () => {
    const m = await machine();
    const p = m.spawn({ privileged: true });
    const a = p.mmap(PAGE_SIZE, { node: 0 });
    p.touch(a, PAGE_SIZE, 'write');
    const t = p.spawnThread<number>({ module: FNS, export: 'park', data: { addr: a, ms: 2000 } });
    // Parked once it stored its word (it holds a translation of the page in its TLB).
    while (t.state !== 'blocked' || new Int32Array(p.read(a, 4).buffer)[0] !== 42) await sleep(2);
    const t0 = performance.now();
    const r = await m.migrateFolios([p.pageInfo(a)!.headPfn], { node: 1 });
    expect(r.ret).toBe(0);
    expect(performance.now() - t0).toBeLessThan(1000);
    expect(m.tlb.shootdowns).toBe(1);
    await t.terminate();
  });

  it('exit() kills running threads at their next access; the machine stays consistent', async () => {
    const m = await machine();
    const p = m.spawn();
    const bytes = 64 << 10;
    const a = p.mmap(bytes);
    const threads = startPattern(p, { addr: a, bytes, lanes: 2 });
    await untilRunning(threads);
    p.exit();
    for (const t of threads) await expect(t.done).rejects.toThrow(/killed|exited/);
    expect(m.kernel.threaded.size).toBe(0);
    m.checkInvariants();
    expect(m.freePages(0) + m.freePages(1)).toBe(m.nrPages);
  });

  it('machine.close() ends running threads', async () => {
    const m = await machine();
    const p = m.spawn();
    const a = p.mmap(64 << 10);
    const threads = startPattern(p, { addr: a, bytes: 64 << 10, lanes: 1 });
    await untilRunning(threads);
    await m.close();
    await expect(threads[0]!.done).rejects.toThrow();
  });

  it('without threads a TLB flush is a counter', async () => {
    const m = await machine();
    const p = m.spawn();
    const a = p.mmap(PAGE_SIZE * 8, { node: 0 });
    p.touch(a, PAGE_SIZE * 8, 'write');
    expect(m.kernel.tlbFlush()).toBeUndefined();
    const heads = [0, 1, 2, 3].map((i) => p.pageInfo(a + i * PAGE_SIZE)!.headPfn);
    await m.migrateFolios(heads, { node: 1 });
    expect(m.tlb.shootdowns).toBe(0);
    expect(m.tlb.flushes).toBeGreaterThan(1);
    expect(p.pageInfo(a)!.node).toBe(1);
  });

  it('rejects bad specs and machines without bytes', async () => {
    const m = await machine();
    const p = m.spawn();
    expect(() => p.spawnThread({})).toThrow(/exactly one of workload or module/);
    const none = await createMachine({ nodes: [{ memory: '16MiB' }], backing: 'none' });
    expect(() => none.spawn().spawnThread({ module: FNS })).toThrow(/backing: 'none'/);
    await none.close();
    const t = p.spawnThread<PatternResult>({
      workload: { kind: 'pattern', addr: p.mmap(PAGE_SIZE) + 4, bytes: 64, lanes: 1, lane: 0 },
    });
    await expect(t.done).rejects.toThrow(/not page aligned/);
  });
});
