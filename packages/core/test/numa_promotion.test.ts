import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Machine } from '../src/machine.js';
import { misplacedSettled } from '../src/migrate_misplaced.js';
import { addrToVpn } from '../src/mm.js';
import { HPAGE_PMD_NR, PAGE_SIZE, WMARK_HIGH } from '../src/mmzone.js';
import { changeProtNuma } from '../src/mprotect.js';
import {
  folioStampScanTime,
  numaHintFaultLatency,
  PAGE_ACCESS_TIME_MASK,
  promotionState,
} from '../src/numa_promotion.js';
import type { Process } from '../src/process.js';
import { numaFaultStats } from '../src/task_numa.js';
import { machinesCheckedAfterEach, pattern, sameBytes } from './helpers.js';

const machine = machinesCheckedAfterEach();

const COUNTERS = [
  'numa_pte_updates',
  'numa_hint_faults',
  'numa_hint_faults_local',
  'numa_pages_migrated',
  'pgmigrate_success',
  'pgpromote_candidate',
  'pgpromote_candidate_nrl',
  'pgpromote_success',
] as const;
type Counters = Record<(typeof COUNTERS)[number], number>;

function counters(m: Machine): Counters {
  const v = m.vmstat();
  return Object.fromEntries(COUNTERS.map((n) => [n, v[n]])) as Counters;
}

/** The counters that moved since `before` (zero deltas left out). */
function delta(m: Machine, before: Counters): Partial<Counters> {
  const now = counters(m);
  return Object.fromEntries(COUNTERS.map((n) => [n, now[n] - before[n]]).filter(([, d]) => d !== 0));
}

/**
 * A manual-clock machine: node 0 DRAM, node 1 CPU-less CXL (a slow tier: memory tiers with CPUs are
 * top tiers), both 32 MiB; kernel.numa_balancing `mode`.
 */
async function tiered(mode: number) {
  const m = await machine({
    clock: 'manual',
    nodes: [{ memory: '32MiB' }, { memory: '32MiB', tier: 'cxl', cpus: 0 }],
  });
  expect(m.sysctl.write('kernel.numa_balancing', String(mode))).toBe(0);
  return m;
}

/** `pages` written 4 KiB pages of a default-policy area of `p` (on node 0), moved to node `on`. */
async function pagesOn(p: Process, on: number, pages: number, seed = 3) {
  const a = p.mmap(pages * PAGE_SIZE, { thp: 'never' });
  const data = pattern(pages, seed);
  p.write(a, data);
  const addrs = Array.from({ length: pages }, (_, i) => a + i * PAGE_SIZE);
  if (on !== 0)
    expect(
      (
        await p.movePages(
          0,
          addrs,
          addrs.map(() => on),
          0,
        )
      ).ret,
    ).toBe(0);
  for (const addr of addrs) expect(p.pageInfo(addr)!.node).toBe(on);
  return { a, data };
}

/** change_prot_numa over pages [from, to) of the area at `a` (the scanner's step). */
function scan(m: Machine, p: Process, a: number, from = 0, to?: number): number {
  const vma = p.mm.findVma(addrToVpn(a))!;
  const start = vma.startVpn + from;
  return changeProtNuma(m.kernel, vma, start, to === undefined ? vma.endVpn : vma.startVpn + to, -1);
}

/** A user access from the process's node (node 0) to page `i` of the area at `a`, and its migration. */
async function touch(m: Machine, p: Process, a: number, i: number): Promise<void> {
  p.touch(a + i * PAGE_SIZE, 1, 'read');
  await misplacedSettled(m.kernel);
}

describe('memory tiering (kernel.numa_balancing=2): scanning', () => {
  it('mode 2 makes only slow-tier folios PROT_NONE and stamps the scan time; mode 3 marks both tiers', async () => {
    const m = await tiered(2);
    const p = m.spawn({ node: 0 });
    const dram = (await pagesOn(p, 0, 4)).a;
    const cxl = (await pagesOn(p, 1, 8)).a;
    m.clock.advance(330);
    const c0 = counters(m);
    expect(scan(m, p, dram)).toBe(0);
    expect(scan(m, p, cxl)).toBe(8);
    expect(delta(m, c0)).toEqual({ numa_pte_updates: 8 });
    expect(p.pageInfo(dram)).toMatchObject({ node: 0, protnone: false });
    expect(p.pageInfo(cxl)).toMatchObject({ node: 1, protnone: true });
    // folio_xchg_access_time in the one-byte last_cpupid: 330 ms in 16 ms buckets.
    expect(m.kernel.pages.lastNid[p.pageInfo(cxl)!.pfn]).toBe(330 >> 4);
    expect(m.sysctl.write('kernel.numa_balancing', '3')).toBe(0);
    expect(scan(m, p, dram)).toBe(4);
    expect(delta(m, c0)).toEqual({ numa_pte_updates: 12 });
  });
});

describe('memory tiering: the access time in the one-byte last_cpupid', () => {
  it('the measured latency is the real one to within a 16 ms bucket, for any scan time and latency up to 4080 ms', async () => {
    const m = await tiered(2);
    const p = m.spawn({ node: 0 });
    const pfn = p.pageInfo((await pagesOn(p, 1, 1)).a)!.pfn;
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 10_000_000 }), fc.integer({ min: 0, max: 4080 }), (gap, d) => {
        m.clock.advance(gap);
        folioStampScanTime(m.kernel, pfn);
        m.clock.advance(d);
        const latency = numaHintFaultLatency(m.kernel, pfn);
        expect(latency % 16).toBe(0);
        expect(latency).toBeLessThanOrEqual(PAGE_ACCESS_TIME_MASK);
        expect(Math.abs(latency - d)).toBeLessThan(16);
      }),
    );
  });
});

describe('memory tiering: hint-fault latency and promotion', () => {
  it('a slow-tier page faulted within the hot threshold after the scan is promoted, a later one is not', async () => {
    const m = await tiered(2);
    const p = m.spawn({ node: 0 });
    const { a, data } = await pagesOn(p, 1, 2);
    expect(scan(m, p, a)).toBe(2); // scanned at t=0
    const c0 = counters(m);
    m.clock.advance(999);
    await touch(m, p, a, 0); // latency 999 ms: 992 in 16 ms buckets, under 1000
    expect(p.pageInfo(a)).toMatchObject({ node: 0, protnone: false });
    expect(delta(m, c0)).toEqual({
      numa_hint_faults: 1,
      numa_pages_migrated: 1,
      pgmigrate_success: 1,
      pgpromote_candidate: 1,
      pgpromote_success: 1,
    });
    m.clock.advance(9);
    await touch(m, p, a, 1); // latency 1008 ms: not hot
    expect(p.pageInfo(a + PAGE_SIZE)).toMatchObject({ node: 1, protnone: false });
    expect(delta(m, c0)).toEqual({
      numa_hint_faults: 2,
      numa_pages_migrated: 1,
      pgmigrate_success: 1,
      pgpromote_candidate: 1,
      pgpromote_success: 1,
    });
    // Only the promotion (a fault on top-tier memory now) teaches the task; slow-tier faults do not.
    expect(numaFaultStats(p.mm)).toMatchObject({ faults: 1, pagesMigrated: 1 });
    // The move across tiers reset the access time (folio_migrate_flags).
    expect(m.kernel.pages.lastNid[p.pageInfo(a)!.pfn]).toBe(0);
    expect(sameBytes(p.read(a, 2 * PAGE_SIZE), data)).toBe(true);
    expect(m.trace.lines('migrate:mm_migrate_pages').at(-1)).toMatch(
      /mode=MIGRATE_ASYNC reason=numa_misplaced$/,
    );
  });

  it('kernel.numa_balancing_hot_threshold_ms sets the threshold; the latency wraps every 4096 ms', async () => {
    const m = await tiered(2);
    expect(m.sysctl.read('kernel.numa_balancing_hot_threshold_ms')).toBe('1000\n');
    expect(m.sysctl.write('kernel.numa_balancing_hot_threshold_ms', '100')).toBe(0);
    const p = m.spawn({ node: 0 });
    const { a } = await pagesOn(p, 1, 3);
    scan(m, p, a);
    m.clock.advance(200);
    await touch(m, p, a, 0); // 200 ms: cold under a 100 ms threshold
    expect(p.pageInfo(a)!.node).toBe(1);
    m.clock.advance(4096 - 200 + 50);
    await touch(m, p, a, 1); // 4146 ms after the scan reads as 48 ms: hot, as in the kernel
    expect(p.pageInfo(a + PAGE_SIZE)!.node).toBe(0);
    expect(PAGE_ACCESS_TIME_MASK).toBe(4080);
    expect(m.vmstat().pgpromote_success).toBe(1);
  });

  it('a slow-tier THP is stamped through its PMD and promoted whole', async () => {
    const m = await tiered(2);
    const p = m.spawn({ node: 0 });
    const a = p.mmap(HPAGE_PMD_NR * PAGE_SIZE, { thp: 'always' });
    const data = pattern(HPAGE_PMD_NR, 5);
    p.write(a, data);
    expect((await p.movePages(0, [a], [1], 0)).ret).toBe(0);
    expect(p.pageInfo(a)).toMatchObject({ huge: true, node: 1 });
    m.clock.advance(50);
    scan(m, p, a);
    const c0 = counters(m);
    m.clock.advance(100);
    await touch(m, p, a, 77);
    expect(p.pageInfo(a)).toMatchObject({ huge: true, node: 0, protnone: false });
    expect(delta(m, c0)).toEqual({
      numa_hint_faults: 1,
      numa_pages_migrated: HPAGE_PMD_NR,
      pgmigrate_success: HPAGE_PMD_NR,
      pgpromote_candidate: HPAGE_PMD_NR,
      pgpromote_success: HPAGE_PMD_NR,
    });
    expect(sameBytes(p.read(a, data.length), data)).toBe(true);
  });

  it('mode 1 moves a slow-tier page by the two-fault filter without counting a promotion', async () => {
    const m = await tiered(1);
    const p = m.spawn({ node: 0 });
    const { a, data } = await pagesOn(p, 1, 1);
    const c0 = counters(m);
    for (let i = 0; i < 2; i++) {
      scan(m, p, a);
      await touch(m, p, a, 0);
    }
    expect(p.pageInfo(a)!.node).toBe(0);
    expect(delta(m, c0)).toEqual({
      numa_pte_updates: 2,
      numa_hint_faults: 2,
      numa_pages_migrated: 1,
      pgmigrate_success: 1,
    });
    expect(sameBytes(p.read(a, PAGE_SIZE), data)).toBe(true);
  });

  it('a top tier with plenty of free memory takes every faulted slow-tier page (pgpromote_candidate_nrl)', async () => {
    // pgdat_free_space_enough: more than the promo watermark + max(1 GiB, node/16) free.
    const m = await machine({
      clock: 'manual',
      backing: 'none',
      nodes: [{ memory: '1200MiB' }, { memory: '32MiB', tier: 'cxl', cpus: 0 }],
    });
    m.sysctl.write('kernel.numa_balancing', '2');
    const p = m.spawn({ node: 0 });
    const a = p.mmap(2 * PAGE_SIZE, { thp: 'never' });
    p.touch(a, 2 * PAGE_SIZE, 'write');
    expect((await p.movePages(0, [a, a + PAGE_SIZE], [1, 1], 0)).ret).toBe(0);
    promotionState(m.kernel, 0).threshold = 875;
    scan(m, p, a);
    m.clock.advance(3000); // cold by the threshold, but the threshold is not asked
    const c0 = counters(m);
    await touch(m, p, a, 0);
    expect(p.pageInfo(a)!.node).toBe(0);
    expect(delta(m, c0)).toEqual({
      numa_hint_faults: 1,
      numa_pages_migrated: 1,
      pgmigrate_success: 1,
      pgpromote_candidate_nrl: 1,
      pgpromote_success: 1,
    });
    // "workload changed, reset hot threshold"
    expect(promotionState(m.kernel, 0).threshold).toBe(0);
  });
});

describe('memory tiering: rate limit and threshold', () => {
  it('kernel.numa_balancing_promote_rate_limit_MBps caps promotions per second within 10% over 4 s', async () => {
    const m = await tiered(2);
    expect(m.sysctl.read('kernel.numa_balancing_promote_rate_limit_MBps')).toBe('65536\n');
    expect(m.sysctl.write('kernel.numa_balancing_promote_rate_limit_MBps', '1')).toBe(0); // 256 pages/s
    const p = m.spawn({ node: 0 });
    const pool = 2048;
    const { a, data } = await pagesOn(p, 1, pool);
    const c0 = counters(m);
    const stepMs = 20;
    const perStep = 32;
    let offered = 0;
    for (let step = 0; step < 4000 / stepMs; step++) {
      const from = (step * perStep) % pool;
      scan(m, p, a, from, from + perStep);
      m.clock.advance(stepMs);
      for (let i = from; i < from + perStep; i++) if (p.pageInfo(a + i * PAGE_SIZE)!.node === 1) offered++;
      p.touch(a + from * PAGE_SIZE, perStep * PAGE_SIZE, 'read');
      await misplacedSettled(m.kernel);
    }
    const d = delta(m, c0);
    // Every slow-tier fault was hot (20 ms after its scan): each is a candidate.
    expect(d.numa_hint_faults).toBe(offered);
    expect(d.pgpromote_candidate).toBe(offered);
    expect(offered).toBeGreaterThan(2 * 4 * 256); // at least twice what the limit lets through
    const promoted = d.pgpromote_success!;
    expect(d.numa_pages_migrated).toBe(promoted);
    expect(Math.abs(promoted - 4 * 256)).toBeLessThanOrEqual(0.1 * 4 * 256);
    // Exactly the kernel's windows: the first from t=0 lets 255 through (its count starts at 0 and
    // includes the fault being decided), the ones restarted at t=1020, 2040 and 3060 256 each.
    expect(promoted).toBe(255 + 3 * 256);
    let onDram = 0;
    for (let i = 0; i < pool; i++) if (p.pageInfo(a + i * PAGE_SIZE)!.node === 0) onDram++;
    expect(onDram).toBe(promoted);
    expect(sameBytes(p.read(a, pool * PAGE_SIZE), data)).toBe(true);
  });

  it('the hot threshold steps down after a period with too many candidates and up after one with too few', async () => {
    const m = await tiered(2);
    // The adjustment period is kernel.numa_balancing_scan_period_max_ms; 1 MB/s is 256 candidates in it.
    m.sysctl.write('kernel.numa_balancing_scan_period_max_ms', '1000');
    m.sysctl.write('kernel.numa_balancing_promote_rate_limit_MBps', '1');
    const p = m.spawn({ node: 0 });
    const { a } = await pagesOn(p, 1, 400);
    const s = promotionState(m.kernel, 0);
    m.clock.advance(100);
    scan(m, p, a); // stamped at t=100
    m.clock.advance(10);
    p.touch(a, 300 * PAGE_SIZE, 'read'); // 300 candidates in the first period
    await misplacedSettled(m.kernel);
    expect(m.vmstat().pgpromote_candidate).toBe(300);
    expect(s.threshold).toBe(0);
    // t=1011: the period is over; 300 > 110% of 256, so the threshold steps down 2 * 1000 / 16.
    m.clock.advance(901);
    await touch(m, p, a, 300); // latency 912 ms: hot by the default, cold by the new 875 ms
    expect(s.threshold).toBe(875);
    expect(p.pageInfo(a + 300 * PAGE_SIZE)!.node).toBe(1);
    expect(m.vmstat().pgpromote_candidate).toBe(300);
    // Two quiet periods (under 90% of 256 candidates): up one step each.
    m.clock.advance(1001);
    await touch(m, p, a, 301);
    expect(s.threshold).toBe(1000);
    m.clock.advance(1001);
    await touch(m, p, a, 302);
    expect(s.threshold).toBe(1125);
    // reset_memory_tiering: turning tiering on again restores the default and restarts the period.
    expect(m.sysctl.write('kernel.numa_balancing', '1')).toBe(0);
    expect(s.threshold).toBe(1125);
    expect(m.sysctl.write('kernel.numa_balancing', '2')).toBe(0);
    expect(s).toMatchObject({ threshold: 0, thStart: 3013, thNrCand: 300 });
  });
});

describe('memory tiering: a full top tier', () => {
  it('refuses the promotion and wakes kswapd on the target node; mode 1 does not wake it', async () => {
    const m = await tiered(2);
    const wakes: number[][] = [];
    m.kernel.setAllocHook('wakeKswapd', (nid, order, highestZoneidx) => {
      wakes.push([nid, order, highestZoneidx]);
    });
    const p = m.spawn({ node: 0 });
    const { a, data } = await pagesOn(p, 1, 2);
    // Fill node 0 down to its high watermark: migrate_balanced_pgdat fails for one more page.
    const zone = m.kernel.nodes[0]!.zones.find((z) => z.present > 0)!;
    const fill = p.mmap((zone.freePages - zone.watermark[WMARK_HIGH]!) * PAGE_SIZE, { thp: 'never' });
    p.touch(fill, (zone.freePages - zone.watermark[WMARK_HIGH]!) * PAGE_SIZE, 'write');
    expect(zone.freePages).toBeLessThanOrEqual(zone.watermark[WMARK_HIGH]! + 1);
    scan(m, p, a);
    m.clock.advance(10);
    const c0 = counters(m);
    await touch(m, p, a, 0);
    expect(wakes).toEqual([[0, 0, 3]]); // node 0, the folio's order, ZONE_MOVABLE
    expect(p.pageInfo(a)).toMatchObject({ node: 1, protnone: false });
    expect(delta(m, c0)).toEqual({ numa_hint_faults: 1, pgpromote_candidate: 1 });
    expect(numaFaultStats(p.mm).faults).toBe(0);
    // Mode 1: the same refusal (second fault in a row from node 0) wakes nobody.
    m.sysctl.write('kernel.numa_balancing', '1');
    for (let i = 0; i < 2; i++) {
      scan(m, p, a, 1, 2);
      await touch(m, p, a, 1);
    }
    expect(wakes).toHaveLength(1);
    expect(p.pageInfo(a + PAGE_SIZE)!.node).toBe(1);
    expect(sameBytes(p.read(a, 2 * PAGE_SIZE), data)).toBe(true);
  });

  it('a burst of faults promotes what the same faults promote one by one: migrations in flight count as taken, none fails', async () => {
    // The kernel's fault migrates before it returns; here the migration runs after the fault, so
    // a burst of faults must see the pages already promised to the top tier as taken.
    const promoted = async (burst: boolean) => {
      const m = await tiered(2);
      const p = m.spawn({ node: 0 });
      const pages = 64;
      const { a, data } = await pagesOn(p, 1, pages);
      const zone = m.kernel.nodes[0]!.zones.find((z) => z.present > 0)!;
      // Room for 20 pages above node 0's high watermark.
      const fillPages = zone.freePages - zone.watermark[WMARK_HIGH]! - 20;
      const fill = p.mmap(fillPages * PAGE_SIZE, { thp: 'never' });
      p.touch(fill, fillPages * PAGE_SIZE, 'write');
      scan(m, p, a);
      m.clock.advance(10);
      const c0 = counters(m);
      const fail0 = m.vmstat().pgmigrate_fail;
      if (burst) {
        p.touch(a, pages * PAGE_SIZE, 'read'); // 64 hinting faults before any migration runs
        await misplacedSettled(m.kernel);
      } else for (let i = 0; i < pages; i++) await touch(m, p, a, i);
      const d = delta(m, c0);
      expect(m.vmstat().pgmigrate_fail - fail0).toBe(0);
      expect(d.pgpromote_candidate).toBe(pages);
      expect(zone.freePages).toBeGreaterThanOrEqual(zone.watermark[WMARK_HIGH]!);
      const onDram = Array.from({ length: pages }, (_, i) => p.pageInfo(a + i * PAGE_SIZE)!.node).filter(
        (n) => n === 0,
      ).length;
      expect(onDram).toBe(d.pgpromote_success);
      expect(sameBytes(p.read(a, pages * PAGE_SIZE), data)).toBe(true);
      return d.pgpromote_success;
    };
    const oneByOne = await promoted(false);
    expect(oneByOne).toBeGreaterThan(10);
    expect(oneByOne).toBeLessThanOrEqual(20);
    expect(await promoted(true)).toBe(oneByOne);
  });
});
