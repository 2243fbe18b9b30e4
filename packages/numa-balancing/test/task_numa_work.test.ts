import { createMachine, type Machine, PAGE_SIZE } from '@pagemig/core';
import { addrToVpn, type NumaFaultStats, pagetable } from '@pagemig/core/internal';
import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  attachNumaBalancing,
  mmRss,
  type ScanKnobs,
  type TaskScan,
  taskNumaWork,
  taskScanMax,
  taskScanMin,
  updateTaskScanPeriod,
} from '../src/index.js';
import { smallMachine } from './helpers.js';

const DEFAULTS: ScanKnobs = {
  scanDelayMs: 1000,
  scanPeriodMinMs: 1000,
  scanPeriodMaxMs: 60000,
  scanSizeMb: 256,
};

function scan(period: number, periodMax = 60000): TaskScan {
  return {
    nextScan: 0,
    period,
    periodMax,
    offset: 0,
    seq: 0,
    placedSeq: 0,
    placedFaults: 0,
    passes: 0,
    ptesUpdated: 0,
  };
}

function faults(locality: [number, number, number]): NumaFaultStats {
  return { locality, faultTypes: [0, 0], faults: 1, pagesMigrated: 0 };
}

describe('task_scan_min / task_scan_max', () => {
  it('the kernel defaults: one window, 1 s to 60 s, never faster than MAX_SCAN_WINDOW MB/s', () => {
    expect(taskScanMin(DEFAULTS, 0)).toBe(1000);
    expect(taskScanMax(DEFAULTS, 0)).toBe(60000);
    // 768 MB resident: three 256 MB windows share the period.
    expect(taskScanMin(DEFAULTS, 3 * 65536)).toBe(333);
    expect(taskScanMax(DEFAULTS, 3 * 65536)).toBe(20000);
    // 40 windows: 1000 / 40 = 25 ms is below the floor of 2560 MB/s (100 ms per 256 MB window).
    expect(taskScanMin(DEFAULTS, 40 * 65536)).toBe(100);
    // A window of 2560 MB or more: one window per second at most.
    expect(taskScanMin({ ...DEFAULTS, scanSizeMb: 4096, scanPeriodMinMs: 10 }, 0)).toBe(1000);
  });

  it('small windows have no floor; the maximum never goes below the minimum', () => {
    const k = { ...DEFAULTS, scanSizeMb: 1, scanPeriodMinMs: 10, scanPeriodMaxMs: 1000 };
    expect(taskScanMin(k, 512)).toBe(5);
    expect(taskScanMax(k, 512)).toBe(500);
    expect(taskScanMax({ ...k, scanPeriodMaxMs: 4 }, 512)).toBe(5);
  });
});

describe('update_task_scan_period', () => {
  const now = 5000;
  it('no local or shared faults: the period doubles up to its maximum and the next scan waits', () => {
    const st = scan(1000, 1500);
    const s = faults([4, 0, 0]);
    updateTaskScanPeriod(st, s, 0, 4, 100, now);
    expect(st).toMatchObject({ period: 1500, nextScan: 6500 });
    expect(s.locality).toEqual([4, 0, 0]);
  });

  it('a failed migration slows the scan down and, as in the kernel, is not forgotten', () => {
    const st = scan(1000);
    const s = faults([0, 5, 1]);
    updateTaskScanPeriod(st, s, 3, 3, 100, now);
    expect(st.period).toBe(2000);
    updateTaskScanPeriod(st, s, 0, 10, 100, now);
    expect(st.period).toBe(4000);
    expect(s.locality).toEqual([0, 5, 1]);
  });

  it('mostly private faults: slower by (ratio - 7) tenths, at least one', () => {
    const st = scan(1000);
    const s = faults([2, 8, 0]);
    updateTaskScanPeriod(st, s, 0, 10, 100, now);
    expect(st.period).toBe(1300);
    expect(s.locality).toEqual([0, 0, 0]);
    const st7 = scan(1000);
    updateTaskScanPeriod(st7, faults([2, 8, 0]), 3, 7, 100, now);
    expect(st7.period).toBe(1100);
  });

  it('shared but mostly local faults: slower', () => {
    const st = scan(1000);
    updateTaskScanPeriod(st, faults([2, 8, 0]), 10, 0, 100, now);
    expect(st.period).toBe(1100);
  });

  it('shared remote faults: faster, down to the minimum', () => {
    const st = scan(1000);
    updateTaskScanPeriod(st, faults([7, 3, 0]), 7, 3, 100, now);
    expect(st.period).toBe(600);
    const fast = scan(1000);
    updateTaskScanPeriod(fast, faults([10, 0, 0]), 10, 0, 500, now);
    expect(fast.period).toBe(500);
  });
});

describe('task_numa_work', () => {
  let m: Machine | undefined;
  afterEach(async () => {
    m?.checkInvariants();
    await m?.close();
    m = undefined;
  });

  it('scans scan_size MB of populated pages per pass in 2 MiB-aligned windows, resuming where it stopped', async () => {
    m = await smallMachine();
    m.sysctl.write('kernel.numa_balancing', '1');
    const p = m.spawn({ node: 0 });
    const a = p.mmap(1024 * PAGE_SIZE, { thp: 'never' });
    const b = p.mmap(600 * PAGE_SIZE, { thp: 'never' });
    p.touch(a, 1024 * PAGE_SIZE, 'write');
    p.touch(b, 600 * PAGE_SIZE, 'write');
    const a0 = addrToVpn(a);
    const b0 = addrToVpn(b);
    expect(a0 % 512).toBe(0);
    expect(b0 % 512).toBe(0);
    const knobs = { ...DEFAULTS, scanSizeMb: 1 };
    const from = (vpn: number) => p.mm.vmasIn(vpn, pagetable.USER_PAGES);
    const st = scan(10);
    const pass = () => taskNumaWork(m!.kernel, from, st, knobs, -1, 0);
    // 256 pages asked; the window ends on the next 2 MiB boundary.
    expect(pass()).toBe(512);
    expect(st).toMatchObject({ offset: a0 + 512, seq: 0 });
    expect(pass()).toBe(512);
    expect(st).toMatchObject({ offset: a0 + 1024, seq: 0 });
    expect(pass()).toBe(512);
    expect(st).toMatchObject({ offset: b0 + 512, seq: 0 });
    // The last 88 pages, then no area is left: a full pass ends (numa_scan_seq).
    expect(pass()).toBe(88);
    expect(st).toMatchObject({ offset: 0, seq: 1 });
    // Everything is PROT_NONE already: the pass runs through on its virtual-space budget.
    expect(pass()).toBe(0);
    expect(st).toMatchObject({ offset: 0, seq: 2, passes: 5, ptesUpdated: 1624 });
    expect(m.vmstat().numa_pte_updates).toBe(1624);
  });

  it('skips areas NUMA balancing may not move: VM_IO-like, bound without MPOL_F_NUMA_BALANCING', async () => {
    m = await smallMachine();
    m.sysctl.write('kernel.numa_balancing', '1');
    const p = m.spawn({ node: 0 });
    const io = p.mmap(8 * PAGE_SIZE, { thp: 'never', migratable: false });
    const bound = p.mmap(8 * PAGE_SIZE, { thp: 'never', node: 1 });
    const shared = p.mmap(8 * PAGE_SIZE, { thp: 'never', shared: true });
    const plain = p.mmap(8 * PAGE_SIZE, { thp: 'never' });
    for (const a of [io, bound, shared, plain]) p.touch(a, 8 * PAGE_SIZE, 'write');
    const st = scan(10);
    const from = (vpn: number) => p.mm.vmasIn(vpn, pagetable.USER_PAGES);
    // shmem has no policy of its own by default: vma_policy_mof is false for it too.
    expect(taskNumaWork(m.kernel, from, st, { ...DEFAULTS, scanSizeMb: 1 }, -1, 0)).toBe(8);
    expect(p.pageInfo(plain)!.protnone).toBe(true);
    for (const a of [io, bound, shared]) expect(p.pageInfo(a)!.protnone).toBe(false);
  });

  it('mmRss is get_mm_rss: PROT_NONE entries count, the zero page does not', async () => {
    m = await smallMachine();
    m.sysctl.write('kernel.numa_balancing', '1');
    const p = m.spawn({ node: 0 });
    const thp = p.mmap(2 << 20, { thp: 'always' });
    p.touch(thp, 2 << 20, 'write');
    const small = p.mmap(8 * PAGE_SIZE, { thp: 'never' });
    p.touch(small, 6 * PAGE_SIZE, 'write');
    p.touch(small + 6 * PAGE_SIZE, 2 * PAGE_SIZE, 'read');
    expect(mmRss(p.mm)).toBe(518);
    const from = (vpn: number) => p.mm.vmasFrom(vpn);
    expect(taskNumaWork(m.kernel, from, scan(10), DEFAULTS, -1, 0)).toBe(518);
    expect(p.pageInfo(thp)!.protnone).toBe(true);
    expect(mmRss(p.mm)).toBe(518);
    p.munmap(small, 8 * PAGE_SIZE);
    expect(mmRss(p.mm)).toBe(512);
  });

  it('a pass over 3000 areas marks the same pages as ever and visits only the areas it scans', async () => {
    m = await createMachine({
      clock: 'manual',
      prefault: false,
      nodes: [{ memory: '16MiB' }, { memory: '16MiB' }],
    });
    const nb = attachNumaBalancing(m, { scanSizeMb: 1, scanDelayMs: 0, scanPeriodMs: 10 });
    m.sysctl.write('kernel.numa_balancing', '1');
    const p = m.spawn({ node: 0 });
    const areas = 3000;
    const addrs = Array.from({ length: areas }, () => p.mmap(4 * PAGE_SIZE, { thp: 'never' }));
    // Areas of 4 pages and a guard page: area i is [5i, 5i + 4).
    expect(addrs.map(addrToVpn)).toEqual(addrs.map((_, i) => 5 * i));
    // The first page of every 4th area is written, and moved off the process's node so that the
    // scan changes it; the other areas stay empty.
    const touched = addrs.filter((_, i) => i % 4 === 0);
    for (const a of touched) p.touch(a, PAGE_SIZE, 'write');
    await p.movePages(
      0,
      touched,
      touched.map(() => 1),
      0,
    );
    const range = vi.spyOn(p.mm.vmas, 'range');
    const vmasFrom = p.mm.vmasFrom.bind(p.mm);
    let visited = 0;
    vi.spyOn(p.mm, 'vmasFrom').mockImplementation(function* (vpn) {
      for (const vma of vmasFrom(vpn)) {
        visited++;
        yield vma;
      }
    });
    const protnone = () => touched.flatMap((a, j) => (p.pageInfo(a)!.protnone ? [j * 4] : []));
    const seen: { ptes: number; visited: number; seq: number }[] = [];
    for (let pass = 1; pass <= 13; pass++) {
      const ptes0 = nb.stats().ptesUpdated;
      visited = 0;
      await nb.scanNow();
      const st = nb.stats();
      seen.push({ ptes: st.ptesUpdated - ptes0, visited, seq: st.processes[0]!.scanSeq });
      // 256 pages per pass: each changed area spends its 4 pages, so a pass marks 64 of them,
      // the areas below 256 * pass.
      const want = touched.flatMap((_, j) => (j * 4 < Math.min(256 * pass, areas) ? [j * 4] : []));
      expect(protnone()).toEqual(want);
    }
    expect(seen).toEqual([
      // The first pass stops after area 252, the next ones resume at the area after the offset.
      { ptes: 64, visited: 253, seq: 0 },
      ...Array.from({ length: 10 }, () => ({ ptes: 64, visited: 256, seq: 0 })),
      // The last 46: the pass reaches the end of the address space, and the scan restarts.
      { ptes: 46, visited: 187, seq: 1 },
      // Nothing left to change: 8 x 256 pages of address space, 512 areas of 4 pages.
      { ptes: 0, visited: 512, seq: 1 },
    ]);
    expect(m.vmstat().numa_pte_updates).toBe(750);
    // No pass listed the areas up front.
    expect(range).not.toHaveBeenCalled();
  });
});
