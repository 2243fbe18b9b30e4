import { afterEach, describe, expect, it } from 'vitest';
import { createMachine, type Machine } from '../src/machine.js';
import { PAGE_SIZE } from '../src/mmzone.js';
import { verifyPattern } from '../src/workload.js';
import {
  expectPattern,
  expectSettled,
  pingPong,
  SOAK,
  startPattern,
  stopAndCheck,
  untilRunning,
} from './live.js';

// The kernel's migration selftest (tools/testing/selftests/mm/migration.c), with live user threads:
// several threads write and verify a per-word generation pattern on the first page (or folio) of
// a region while it bounces between node 0 and node 1. Pass: every write is visible afterwards,
// no torn, stale or lost read, no deadlock, invariants hold, and no more than MAX_RETRIES
// consecutive failed migrations. CI runs each variant for a bounded time; PAGEMIG_SOAK=1 runs
// the selftest's RUNTIME of 20 s per variant.
const RUNTIME_MS = SOAK ? 20_000 : 1_200;
const ITERATIONS = SOAK ? Number.POSITIVE_INFINITY : 400;
const TIMEOUT = SOAK ? 120_000 : 30_000;

let m: Machine | undefined;
afterEach(async () => {
  await m?.close();
  m = undefined;
});

async function machine(): Promise<Machine> {
  m = await createMachine({ nodes: [{ memory: '64MiB' }, { memory: '64MiB' }], prefault: false });
  return m;
}

describe('migration selftest with live threads', () => {
  it(
    'private_anon: three writers and a reader on the first page while it bounces',
    async () => {
      const m = await machine();
      const p = m.spawn({ privileged: true });
      const len = 2 << 20;
      const a = p.mmap(len, { thp: 'never', node: 0 });
      p.write(a, new Uint8Array(len).fill(0xde)); // memset(ptr, 0xde, TWOMEG)
      p.write(a, new Uint8Array(PAGE_SIZE)); // the pattern starts from zeros
      const w = { addr: a, bytes: PAGE_SIZE, lanes: 3 };
      const threads = startPattern(p, w, { readers: 1 });
      await untilRunning(threads);
      const pp = await pingPong(p, a, { iterations: ITERATIONS, ms: RUNTIME_MS });
      const results = await stopAndCheck(threads);
      expect(pp.moved).toBeGreaterThan(0);
      expect(pp.maxConsecutive).toBeLessThanOrEqual(100);
      expect(p.pageInfo(a)!.node).toBe(pp.node);
      // Every migration shot the threads' TLBs down.
      expect(m.tlb.shootdowns).toBeGreaterThanOrEqual(pp.moved);
      expectPattern(p, w, results);
      expect(p.read(a + PAGE_SIZE, 16).every((b) => b === 0xde)).toBe(true);
      expectSettled(m);
    },
    TIMEOUT,
  );

  it(
    'shared_anon: writers in two processes (parent and forked child) on a shared page',
    async () => {
      const m = await machine();
      const parent = m.spawn({ privileged: true });
      const len = 2 << 20;
      const a = parent.mmap(len, { shared: true, thp: 'never', node: 0 });
      parent.touch(a, len, 'write');
      const child = parent.fork();
      const w = { addr: a, bytes: PAGE_SIZE, lanes: 3 };
      const threads = [
        ...startPattern(parent, w, { writers: [0, 1] }),
        ...startPattern(child, w, { writers: [2], readers: 1 }),
      ];
      await untilRunning(threads);
      const pp = await pingPong(parent, a, { iterations: ITERATIONS, ms: RUNTIME_MS });
      const results = await stopAndCheck(threads);
      expect(pp.moved).toBeGreaterThan(0);
      // Both address spaces map the same folio on the same node, with every write in it.
      expect(parent.pageInfo(a)!.pfn).toBe(child.pageInfo(a)!.pfn);
      expect(parent.pageInfo(a)!.node).toBe(pp.node);
      expectPattern(parent, w, results);
      expectPattern(child, w, results);
      expectSettled(m);
    },
    TIMEOUT,
  );

  it(
    'private_anon_thp: writers over a PMD-mapped 2 MiB folio while it bounces (PMD migration entries)',
    async () => {
      const m = await machine();
      const p = m.spawn({ privileged: true });
      const len = 4 << 20;
      const a = p.mmap(len, { thp: 'always', node: 0 });
      p.touch(a, len, 'write');
      expect(p.pageInfo(a)).toMatchObject({ huge: true, order: 9 });
      // One word per 64-byte line of the folio per lane: every page of the folio is written.
      const w = { addr: a, bytes: 2 << 20, lanes: 2, strideWords: 16 };
      const threads = startPattern(p, w, { readers: 1 });
      await untilRunning(threads);
      const pp = await pingPong(p, a, { iterations: ITERATIONS, ms: RUNTIME_MS });
      const results = await stopAndCheck(threads);
      expect(pp.moved).toBeGreaterThan(0);
      expect(p.pageInfo(a)).toMatchObject({ huge: true, order: 9, node: pp.node });
      expect(m.vmstat().thp_migration_success).toBe(pp.moved);
      expectPattern(p, w, results);
      expectSettled(m);
    },
    TIMEOUT,
  );

  it('negative control: with the shootdown turned into a counter, the pattern catches lost writes', async () => {
    const m = await machine();
    // The pre-threads flush: threads keep translations to source frames after the copy started.
    m.kernel.tlbFlush = function (this: typeof m.kernel) {
      this.tlbFlushes++;
      return undefined;
    };
    const p = m.spawn({ privileged: true });
    const a = p.mmap(PAGE_SIZE, { node: 0 });
    p.touch(a, PAGE_SIZE, 'write');
    const w = { addr: a, bytes: PAGE_SIZE, lanes: 3 };
    const threads = startPattern(p, w);
    await untilRunning(threads);
    let caught = 0;
    for (let round = 0; round < 5 && caught === 0; round++) {
      // An odd number of moves per round, so the page ends up in a fresh frame.
      await pingPong(p, a, { iterations: 301, ms: 2000 });
      for (const t of threads) t.stop();
      const results = await Promise.all(threads.map((t) => t.join()));
      // Lost writes: seen by a writer at its next visit, or missing from the page afterwards.
      caught = results.reduce((s, r) => s + r.errors, 0);
      caught += verifyPattern((x, n) => p.read(x, n), w, results).mismatches;
      if (!caught) threads.splice(0, threads.length, ...startPattern(p, w));
    }
    expect(caught).toBeGreaterThan(0);
  });
});
