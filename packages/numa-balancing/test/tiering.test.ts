import {
  createMachine,
  type Machine,
  PAGE_SIZE,
  type PatternResult,
  type Process,
  verifyPattern,
} from '@pagemig/core';
import { misplacedSettled } from '@pagemig/core/internal';
import { afterEach, describe, expect, it } from 'vitest';
import { attachNumaBalancing, type NumaBalancing } from '../src/index.js';
import { nodesOf, pageBytes, until } from './helpers.js';

let m: Machine | undefined;
let nb: NumaBalancing | undefined;
afterEach(async () => {
  await nb?.stop();
  if (m && !m.closed) {
    m.checkInvariants();
    await m.close();
  }
  nb = undefined;
  m = undefined;
});

/** Node 0 DRAM, node 1 a CPU-less CXL node (a slow tier), 16 MiB each, on a manual clock. */
function tieredMachine(): Promise<Machine> {
  return createMachine({
    clock: 'manual',
    nodes: [{ memory: '16MiB' }, { memory: '16MiB', tier: 'cxl', cpus: 0 }],
  });
}

/** `pages` pages of `p` written with known bytes and moved to node `node`. */
async function placed(p: Process, pages: number, node: number, seed: number) {
  const addr = p.mmap(pages * PAGE_SIZE, { thp: 'never' });
  const bytes = pageBytes(pages, seed);
  p.write(addr, bytes);
  const addrs = Array.from({ length: pages }, (_, i) => addr + i * PAGE_SIZE);
  if (node !== 0)
    expect(
      (
        await p.movePages(
          0,
          addrs,
          addrs.map(() => node),
          0,
        )
      ).ret,
    ).toBe(0);
  return { addr, bytes };
}

const PROMO = [
  'pgpromote_candidate',
  'pgpromote_candidate_nrl',
  'pgpromote_success',
  'numa_pages_migrated',
] as const;

function promoCounters(mm: Machine): Record<(typeof PROMO)[number], number> {
  const v = mm.vmstat();
  return Object.fromEntries(PROMO.map((c) => [c, v[c]])) as Record<(typeof PROMO)[number], number>;
}

describe('memory tiering (kernel.numa_balancing=2) on a manual clock', () => {
  it('the scanner does not run by itself; scanNow() runs one pass that marks only slow-tier pages', async () => {
    m = await tieredMachine();
    nb = attachNumaBalancing(m, { scanDelayMs: 0, scanPeriodMs: 1000 });
    expect(m.sysctl.write('kernel.numa_balancing', '2')).toBe(0);
    const p = m.spawn({ node: 0 });
    const dram = await placed(p, 16, 0, 1);
    const cxl = await placed(p, 32, 1, 2);
    // Real time passes, the manual clock does not: no pass.
    await new Promise((r) => setTimeout(r, 50));
    expect(nb.stats().scans).toBe(0);
    await nb.scanNow();
    const st = nb.stats();
    expect(st.scans).toBe(1);
    expect(st.ptesUpdated).toBe(32);
    expect(st.counters.numa_pte_updates).toBe(32);
    expect(st.processes).toMatchObject([{ pid: p.pid, scans: 1, ptesUpdated: 32 }]);
    expect(p.pageInfo(dram.addr)!.protnone).toBe(false);
    expect(p.pageInfo(cxl.addr)!.protnone).toBe(true);
    // A second pass finds nothing new to mark.
    await nb.scanNow();
    expect(nb.stats()).toMatchObject({ scans: 2, ptesUpdated: 32 });
  });

  it('pages faulted soon after the pass are promoted, pages faulted after the hot threshold stay; bytes intact', async () => {
    m = await tieredMachine();
    nb = attachNumaBalancing(m);
    m.sysctl.write('kernel.numa_balancing', '2');
    const p = m.spawn({ node: 0 });
    const hot = await placed(p, 24, 1, 3);
    const cold = await placed(p, 8, 1, 4);
    const c0 = promoCounters(m);
    await nb.scanNow();
    m.clock.advance(100);
    p.touch(hot.addr, 24 * PAGE_SIZE, 'read');
    m.clock.advance(1500);
    p.touch(cold.addr, 8 * PAGE_SIZE, 'read');
    await nb.settled();
    expect(nodesOf(p, hot.addr, 24).every((n) => n === 0)).toBe(true);
    expect(nodesOf(p, cold.addr, 8).every((n) => n === 1)).toBe(true);
    const c1 = promoCounters(m);
    expect({
      pgpromote_candidate: c1.pgpromote_candidate - c0.pgpromote_candidate,
      pgpromote_candidate_nrl: c1.pgpromote_candidate_nrl - c0.pgpromote_candidate_nrl,
      pgpromote_success: c1.pgpromote_success - c0.pgpromote_success,
      numa_pages_migrated: c1.numa_pages_migrated - c0.numa_pages_migrated,
    }).toEqual({
      pgpromote_candidate: 24,
      pgpromote_candidate_nrl: 0,
      pgpromote_success: 24,
      numa_pages_migrated: 24,
    });
    const st = nb.stats();
    expect(st.promotion).toEqual({ candidates: 24, candidatesNrl: 0, promoted: 24, thresholdMs: [0, 0] });
    expect(st).toMatchObject({ migrations: 24, pagesMigrated: 24, pagesFailed: 0 });
    // The kernel thread's CPU while the promotions were in flight.
    expect(st.cpuSeconds).toBeGreaterThan(0);
    expect(st.counters).toMatchObject({ numa_hint_faults: 32, numa_pages_migrated: 24 });
    expect(Buffer.compare(p.read(hot.addr, 24 * PAGE_SIZE), hot.bytes)).toBe(0);
    expect(Buffer.compare(p.read(cold.addr, 8 * PAGE_SIZE), cold.bytes)).toBe(0);
  });

  it('a user thread on the DRAM node pulls the slow-tier pages it writes up; the others stay', async () => {
    m = await tieredMachine();
    nb = attachNumaBalancing(m);
    m.sysctl.write('kernel.numa_balancing', '2');
    const p = m.spawn({ node: 0 });
    const HOT = 32;
    const COLD = 64;
    const addr = p.mmap((HOT + COLD) * PAGE_SIZE, { thp: 'never' });
    p.touch(addr, HOT * PAGE_SIZE, 'write'); // zeroed: the pattern workload checks what it finds
    const coldBytes = pageBytes(COLD, 6);
    p.write(addr + HOT * PAGE_SIZE, coldBytes);
    const all = Array.from({ length: HOT + COLD }, (_, i) => addr + i * PAGE_SIZE);
    expect(
      (
        await p.movePages(
          0,
          all,
          all.map(() => 1),
          0,
        )
      ).ret,
    ).toBe(0);
    const workload = { kind: 'pattern' as const, addr, bytes: HOT * PAGE_SIZE, lanes: 1, lane: 0 };
    const thread = p.spawnThread<PatternResult>({ workload, node: 0 });
    await nb.scanNow();
    // The clock stands still: every fault comes 0 ms after the pass, hot by any threshold.
    await until(() => nodesOf(p, addr, HOT).every((n) => n === 0), 60_000, 'the hot pages to reach node 0');
    await nb.settled();
    thread.stop();
    const r = await thread.join();
    expect(r.errors, JSON.stringify(r.firstErrors)).toBe(0);
    expect(verifyPattern((a, n) => p.read(a, n), workload, [r]).mismatches).toBe(0);
    expect(nodesOf(p, addr + HOT * PAGE_SIZE, COLD).every((n) => n === 1)).toBe(true);
    expect(nb.stats().promotion).toMatchObject({ candidates: HOT, promoted: HOT });
    expect(Buffer.compare(p.read(addr + HOT * PAGE_SIZE, COLD * PAGE_SIZE), coldBytes)).toBe(0);
  });

  it('scanNow() does nothing while kernel.numa_balancing is 0 and rejects after stop()', async () => {
    m = await tieredMachine();
    const own = attachNumaBalancing(m);
    nb = own;
    const p = m.spawn({ node: 0 });
    const cxl = await placed(p, 4, 1, 7);
    await own.scanNow();
    expect(own.stats().scans).toBe(0);
    expect(p.pageInfo(cxl.addr)!.protnone).toBe(false);
    await own.stop();
    await expect(own.scanNow()).rejects.toMatchObject({ code: 'ERR_NUMA_BALANCING_STOPPED' });
    await misplacedSettled(m.kernel);
  });
});
