import { describe, expect, it } from 'vitest';
import type { Machine } from '../src/machine.js';
import { misplacedInFlight, misplacedSettled } from '../src/migrate_misplaced.js';
import { addrToVpn } from '../src/mm.js';
import { HPAGE_PMD_NR, PAGE_SIZE } from '../src/mmzone.js';
import { changeProtNuma } from '../src/mprotect.js';
import {
  MAX_PTE_PFN,
  PMD_HUGE,
  PTE_PRESENT,
  PTE_PROTNONE,
  PTE_WRITE,
  pteIsMigration,
  pteIsPresent,
  pteIsProtnone,
} from '../src/pagetable.js';
import { pageEntry } from '../src/pagewalk.js';
import type { Process } from '../src/process.js';
import { numaFaultStats } from '../src/task_numa.js';
import { machinesCheckedAfterEach, pattern, sameBytes } from './helpers.js';

const machine = machinesCheckedAfterEach();

const NUMA = [
  'numa_pte_updates',
  'numa_huge_pte_updates',
  'numa_hint_faults',
  'numa_hint_faults_local',
  'numa_pages_migrated',
  'pgmigrate_success',
  'pgmigrate_fail',
] as const;

function counters(m: Machine): Record<(typeof NUMA)[number], number> {
  const v = m.vmstat();
  return Object.fromEntries(NUMA.map((n) => [n, v[n]])) as Record<(typeof NUMA)[number], number>;
}

function delta(m: Machine, before: ReturnType<typeof counters>): Partial<ReturnType<typeof counters>> {
  const now = counters(m);
  return Object.fromEntries(NUMA.map((n) => [n, now[n] - before[n]]).filter(([, d]) => d !== 0));
}

/** change_prot_numa over the whole area at `addr` (the scanner's step); the node of a lone thread. */
function protNuma(m: Machine, p: Process, addr: number, targetNode = -1): number {
  const vpn = addrToVpn(addr);
  const vma = p.mm.findVma(vpn)!;
  return changeProtNuma(m.kernel, vma, vma.startVpn, vma.endVpn, targetNode);
}

/** A machine of `nodes` 32 MiB nodes with kernel.numa_balancing 1. */
async function setup(nodes = 2) {
  const m = await machine({ nodes: Array.from({ length: nodes }, () => ({ memory: '32MiB' })) });
  expect(m.sysctl.write('kernel.numa_balancing', '1')).toBe(0);
  return m;
}

/** `pages` 4 KiB pages on node `on`, written, mapped by `p` with the default policy. */
function pagesOn(p: Process, on: number, pages: number) {
  const a = p.mmap(pages * PAGE_SIZE, { thp: 'never' });
  const data = pattern(pages, 3);
  // The default policy allocates on the toucher's node: fault the pages in from `on`.
  for (let i = 0; i < pages; i++) p.serveFault(addrToVpn(a) + i, true, on);
  p.write(a, data);
  for (let i = 0; i < pages; i++) expect(p.pageInfo(a + i * PAGE_SIZE)!.node).toBe(on);
  return { a, data };
}

describe('PROT_NONE entries (pagetable.ts)', () => {
  it('take no pfn bit: the largest pfn still fits, and the encodings do not overlap', () => {
    expect(MAX_PTE_PFN).toBe(2 ** 25 - 1);
    const pte = PTE_PROTNONE | PTE_WRITE | (MAX_PTE_PFN << 7) | 0;
    expect(pteIsProtnone(pte)).toBe(true);
    expect(pteIsPresent(pte)).toBe(true);
    expect(pteIsMigration(pte)).toBe(false);
    expect(pte >>> 7).toBe(MAX_PTE_PFN);
    // A huge PMD needs no bit of its own: PMD_HUGE without present or migration.
    expect(pteIsProtnone(PMD_HUGE | PTE_WRITE)).toBe(true);
    expect(pteIsProtnone(PMD_HUGE | PTE_PRESENT)).toBe(false);
    expect(pteIsPresent(0)).toBe(false);
  });
});

describe('change_prot_numa', () => {
  it('makes present PTEs PROT_NONE and counts numa_pte_updates; the zero page and PROT_NONE entries are skipped', async () => {
    const m = await setup();
    const p = m.spawn({ node: 1 });
    const { a } = pagesOn(p, 0, 8);
    const z = p.mmap(4 * PAGE_SIZE, { thp: 'never' });
    p.read(z, 4 * PAGE_SIZE); // the zero page
    const c0 = counters(m);
    expect(protNuma(m, p, a)).toBe(8);
    expect(protNuma(m, p, z)).toBe(0);
    expect(delta(m, c0)).toEqual({ numa_pte_updates: 8 });
    const info = p.pageInfo(a)!;
    expect(info).toMatchObject({ node: 0, protnone: true, writable: true });
    expect(p.pageInfo(z)).toMatchObject({ zeroPage: true, protnone: false });
    // Already PROT_NONE: nothing to do, nothing counted.
    expect(protNuma(m, p, a)).toBe(0);
    expect(delta(m, c0)).toEqual({ numa_pte_updates: 8 });
    // Still present for the kernel: move_pages(2) reports the node, invariants count the mapping.
    const st = await p.movePages(0, [a, a + PAGE_SIZE], null, 0);
    expect(st).toEqual({ ret: 0, status: [0, 0] });
    m.checkInvariants();
  });

  it('skips folios on the node of a single-threaded process and shared copy-on-write folios', async () => {
    const m = await setup();
    const p = m.spawn({ node: 0 });
    const { a } = pagesOn(p, 0, 4);
    expect(protNuma(m, p, a, 0)).toBe(0);
    expect(protNuma(m, p, a, -1)).toBe(4);
    const q = m.spawn({ node: 0 });
    const b = pagesOn(q, 1, 2).a;
    q.fork();
    expect(protNuma(m, q, b)).toBe(0);
  });

  it('a whole THP becomes one PROT_NONE PMD (numa_huge_pte_updates), a part of one is split first', async () => {
    const m = await setup();
    const p = m.spawn({ node: 1 });
    const a = p.mmap(2 * HPAGE_PMD_NR * PAGE_SIZE, { thp: 'always' });
    p.serveFault(addrToVpn(a), true, 0);
    p.serveFault(addrToVpn(a) + HPAGE_PMD_NR, true, 0);
    const c0 = counters(m);
    const vma = p.mm.findVma(addrToVpn(a))!;
    expect(changeProtNuma(m.kernel, vma, vma.startVpn, vma.startVpn + HPAGE_PMD_NR, -1)).toBe(HPAGE_PMD_NR);
    expect(delta(m, c0)).toEqual({ numa_pte_updates: HPAGE_PMD_NR, numa_huge_pte_updates: 1 });
    expect(p.pageInfo(a)).toMatchObject({ huge: true, protnone: true, node: 0 });
    const split0 = m.vmstat().thp_split_pmd;
    const v2 = vma.startVpn + HPAGE_PMD_NR;
    expect(changeProtNuma(m.kernel, vma, v2, v2 + 16, -1)).toBe(16);
    expect(m.vmstat().thp_split_pmd - split0).toBe(1);
    expect(p.pageInfo(a + HPAGE_PMD_NR * PAGE_SIZE)).toMatchObject({ huge: false, protnone: true });
    expect(p.pageInfo(a + (HPAGE_PMD_NR + 16) * PAGE_SIZE)).toMatchObject({ huge: false, protnone: false });
    m.checkInvariants();
  });
});

describe('NUMA hinting faults', () => {
  it('a remote fault restores the entry, counts it and migrates the folio to the toucher (numa_misplaced)', async () => {
    const m = await setup();
    const p = m.spawn({ node: 1 });
    const { a, data } = pagesOn(p, 0, 4);
    protNuma(m, p, a);
    const c0 = counters(m);
    const r = p.read(a, PAGE_SIZE); // a user access from node 1
    expect(sameBytes(r, data.subarray(0, PAGE_SIZE))).toBe(true);
    expect(misplacedInFlight(m.kernel)).toBe(1);
    await misplacedSettled(m.kernel);
    expect(delta(m, c0)).toEqual({ numa_hint_faults: 1, numa_pages_migrated: 1, pgmigrate_success: 1 });
    expect(p.pageInfo(a)).toMatchObject({ node: 1, protnone: false });
    // The other pages were not touched: still PROT_NONE on node 0.
    expect(p.pageInfo(a + PAGE_SIZE)).toMatchObject({ node: 0, protnone: true });
    expect(m.trace.lines('migrate:mm_migrate_pages').at(-1)).toMatch(
      /nr_succeeded=1 nr_failed=0 .* mode=MIGRATE_ASYNC reason=numa_misplaced$/,
    );
    expect(numaFaultStats(p.mm)).toMatchObject({ faults: 1, pagesMigrated: 1, locality: [1, 0, 0] });
    expect(sameBytes(p.read(a, 4 * PAGE_SIZE), data)).toBe(true);
  });

  it('a local fault only restores the entry (numa_hint_faults_local, no migration)', async () => {
    const m = await setup();
    const p = m.spawn({ node: 0 });
    const { a } = pagesOn(p, 0, 2);
    protNuma(m, p, a);
    const c0 = counters(m);
    p.touch(a, 2 * PAGE_SIZE, 'write');
    await misplacedSettled(m.kernel);
    expect(delta(m, c0)).toEqual({ numa_hint_faults: 2, numa_hint_faults_local: 2 });
    expect(p.pageInfo(a)).toMatchObject({ node: 0, protnone: false, dirty: true });
    expect(numaFaultStats(p.mm).locality).toEqual([0, 2, 0]);
  });

  it('a PROT_NONE THP faults once and moves whole (do_huge_pmd_numa_page)', async () => {
    const m = await setup();
    const p = m.spawn({ node: 1 });
    const a = p.mmap(HPAGE_PMD_NR * PAGE_SIZE, { thp: 'always' });
    p.serveFault(addrToVpn(a), true, 0);
    const data = pattern(HPAGE_PMD_NR, 9);
    p.write(a, data);
    protNuma(m, p, a);
    const c0 = counters(m);
    p.touch(a + 100 * PAGE_SIZE, 1, 'read');
    await misplacedSettled(m.kernel);
    expect(delta(m, c0)).toEqual({
      numa_hint_faults: 1,
      numa_pages_migrated: HPAGE_PMD_NR,
      pgmigrate_success: HPAGE_PMD_NR,
    });
    expect(p.pageInfo(a)).toMatchObject({ huge: true, node: 1, protnone: false });
    expect(sameBytes(p.read(a, data.length), data)).toBe(true);
  });

  it('a PTE-mapped large folio gets all its PROT_NONE PTEs back on one fault and moves whole', async () => {
    const m = await setup();
    const p = m.spawn({ node: 1 });
    const a = p.mmap(16 * PAGE_SIZE, { thp: '64KiB' });
    p.serveFault(addrToVpn(a), true, 0);
    expect(p.pageInfo(a)!.order).toBe(4);
    protNuma(m, p, a);
    const c0 = counters(m);
    p.touch(a + 5 * PAGE_SIZE, 1, 'read');
    for (let i = 0; i < 16; i++) expect(p.pageInfo(a + i * PAGE_SIZE)!.protnone).toBe(false);
    await misplacedSettled(m.kernel);
    expect(delta(m, c0)).toEqual({ numa_hint_faults: 1, numa_pages_migrated: 16, pgmigrate_success: 16 });
    expect(p.pageInfo(a + 15 * PAGE_SIZE)).toMatchObject({ node: 1, order: 4 });
  });

  it('two-fault filter: a slow-tier folio moves on the second fault in a row from one node', async () => {
    // A CPU-less CXL node: a memory tier with CPUs would be a top tier (establish_demotion_targets).
    const m = await machine({ nodes: [{ memory: '32MiB' }, { memory: '32MiB', tier: 'cxl', cpus: 0 }] });
    m.sysctl.write('kernel.numa_balancing', '1');
    const p = m.spawn({ node: 0 });
    const { a } = pagesOn(p, 1, 1);
    protNuma(m, p, a);
    p.touch(a, 1, 'read');
    await misplacedSettled(m.kernel);
    // First fault: the folio had no previous fault (cpupid not valid): it stays.
    expect(p.pageInfo(a)).toMatchObject({ node: 1, protnone: false });
    protNuma(m, p, a);
    const c0 = counters(m);
    p.touch(a, 1, 'read');
    await misplacedSettled(m.kernel);
    expect(delta(m, c0)).toEqual({ numa_hint_faults: 1, numa_pages_migrated: 1, pgmigrate_success: 1 });
    expect(p.pageInfo(a)!.node).toBe(0);
  });

  it('two-fault filter: faults that alternate between nodes never move a folio; two in a row do', async () => {
    const m = await setup(3);
    const p = m.spawn({ node: 0 });
    const { a } = pagesOn(p, 0, 1);
    const vpn = addrToVpn(a);
    const fault = (node: number) => {
      protNuma(m, p, a);
      expect(p.serveFault(vpn, false, node)).toBe(0);
      return misplacedSettled(m.kernel);
    };
    await fault(1); // no fault before: moves to node 1 at once
    expect(p.pageInfo(a)!.node).toBe(1);
    await fault(2); // the last fault came from node 1: it stays
    expect(p.pageInfo(a)!.node).toBe(1);
    await fault(0);
    expect(p.pageInfo(a)!.node).toBe(1);
    await fault(0); // the second fault in a row from node 0
    expect(p.pageInfo(a)!.node).toBe(0);
    expect(m.vmstat().numa_pages_migrated).toBe(2);
  });

  it('a policy without MPOL_F_MOF (a binding) keeps the folio where it is; the fault is still counted', async () => {
    const m = await setup();
    const p = m.spawn({ node: 1 });
    const a = p.mmap(2 * PAGE_SIZE, { thp: 'never', node: 0 });
    p.touch(a, 2 * PAGE_SIZE, 'write');
    protNuma(m, p, a);
    const c0 = counters(m);
    p.touch(a, 2 * PAGE_SIZE, 'read');
    await misplacedSettled(m.kernel);
    expect(delta(m, c0)).toEqual({ numa_hint_faults: 2 });
    expect(p.pageInfo(a)!.node).toBe(0);
  });

  it('leftover PROT_NONE entries fault and migrate with kernel.numa_balancing 0, but teach the task nothing', async () => {
    const m = await setup();
    const p = m.spawn({ node: 1 });
    const { a } = pagesOn(p, 0, 1);
    protNuma(m, p, a);
    expect(m.sysctl.write('kernel.numa_balancing', '0')).toBe(0);
    p.touch(a, 1, 'read');
    await misplacedSettled(m.kernel);
    expect(p.pageInfo(a)!.node).toBe(1);
    expect(numaFaultStats(p.mm).faults).toBe(0);
  });

  it('fork copies PROT_NONE entries as they are; the child faults on them itself', async () => {
    const m = await setup();
    const p = m.spawn({ node: 0 });
    const { a, data } = pagesOn(p, 0, 2);
    protNuma(m, p, a);
    const c = p.fork();
    expect(c.pageInfo(a)).toMatchObject({ protnone: true, writable: false });
    m.checkInvariants();
    expect(sameBytes(c.read(a, 2 * PAGE_SIZE), data)).toBe(true);
    expect(c.pageInfo(a)).toMatchObject({ protnone: false, node: 0 });
    expect(p.pageInfo(a)!.protnone).toBe(true);
    p.munmap(a, 2 * PAGE_SIZE);
    c.exit();
  });

  it('migration of a PROT_NONE page (move_pages) leaves an accessible entry', async () => {
    const m = await setup();
    const p = m.spawn({ node: 0, privileged: true });
    const { a, data } = pagesOn(p, 0, 2);
    protNuma(m, p, a);
    const r = await p.movePages(0, [a, a + PAGE_SIZE], [1, 1], 0);
    expect(r).toEqual({ ret: 0, status: [1, 1] });
    expect(p.pageInfo(a)).toMatchObject({ node: 1, protnone: false, writable: true });
    const c0 = counters(m);
    expect(sameBytes(p.read(a, 2 * PAGE_SIZE), data)).toBe(true);
    expect(delta(m, c0)).toEqual({});
  });

  it('munmap and exit drop PROT_NONE mappings like present ones', async () => {
    const m = await setup();
    const p = m.spawn({ node: 1 });
    const { a } = pagesOn(p, 0, 8);
    protNuma(m, p, a);
    const free0 = m.vmstat().nr_free_pages;
    p.munmap(a, 4 * PAGE_SIZE);
    expect(m.vmstat().nr_free_pages - free0).toBe(4);
    m.checkInvariants();
    p.exit();
    expect(m.vmstat().nr_free_pages - free0).toBe(8);
  });

  it('the invariant checker refuses an entry that is neither present, PROT_NONE nor migration', async () => {
    const m = await setup();
    const p = m.spawn({ node: 0 });
    const { a } = pagesOn(p, 0, 1);
    const vpn = addrToVpn(a);
    const pt = p.mm.pt;
    const e = pageEntry(pt, vpn);
    pt.pte[pt.pteIndex(vpn)] = e & ~PTE_PRESENT;
    expect(() => m.checkInvariants()).toThrow(/neither present, PROT_NONE nor migration/);
    pt.pte[pt.pteIndex(vpn)] = e;
    m.checkInvariants();
  });
});

describe('user thread placement', () => {
  it('a thread runs on its process node unless its spec names a node with CPUs', async () => {
    const m = await machine({
      nodes: [{ memory: '32MiB' }, { memory: '32MiB' }, { memory: '32MiB', cpus: 0 }],
    });
    const p = m.spawn({ node: 0 });
    const a = p.mmap(2 * PAGE_SIZE, { thp: 'never' });
    const body = { kind: 'pattern' as const, addr: a, bytes: PAGE_SIZE, lanes: 1, lane: 0, passes: 1 };
    expect(() => p.spawnThread({ workload: body, node: 3 })).toThrow(
      expect.objectContaining({ errno: 22, message: 'EINVAL: thread node 3 does not exist (nodes 0..2)' }),
    );
    expect(() => p.spawnThread({ workload: body, node: 2 })).toThrow(
      expect.objectContaining({
        errno: 22,
        message: 'EINVAL: thread node 2 has no CPUs: no thread runs there',
      }),
    );
    const own = p.spawnThread({ workload: body });
    expect(own.node).toBe(0);
    await own.join();
    // A thread on node 1 first-touches the second page: its fault allocates there, as its tid.
    const t = p.spawnThread({ workload: { ...body, addr: a + PAGE_SIZE }, node: 1 });
    expect(t.node).toBe(1);
    await t.join();
    expect(p.pageInfo(a)!.node).toBe(0);
    expect(p.pageInfo(a + PAGE_SIZE)!.node).toBe(1);
  });
});

describe('sysctls', () => {
  it('kernel.numa_balancing and the scanner knobs, with their defaults and ranges', async () => {
    const m = await machine();
    expect(m.sysctl.read('kernel.numa_balancing')).toBe('0\n');
    expect(m.sysctl.read('kernel.numa_balancing_scan_delay_ms')).toBe('1000\n');
    expect(m.sysctl.read('kernel.numa_balancing_scan_period_min_ms')).toBe('1000\n');
    expect(m.sysctl.read('kernel.numa_balancing_scan_period_max_ms')).toBe('60000\n');
    expect(m.sysctl.read('kernel.numa_balancing_scan_size_mb')).toBe('256\n');
    expect(m.sysctl.write('kernel.numa_balancing', '2')).toBe(0);
    expect(m.sysctl.write('/proc/sys/kernel/numa_balancing', '4')).toBe(0);
    expect(m.sysctl.write('kernel.numa_balancing', '5')).toBe(22);
    expect(m.sysctl.write('kernel.numa_balancing', '-1')).toBe(22);
    expect(m.sysctl.read('kernel.numa_balancing')).toBe('4\n');
    expect(m.sysctl.write('kernel.numa_balancing_scan_size_mb', '0')).toBe(22);
    expect(m.sysctl.write('kernel.numa_balancing_scan_size_mb', '1')).toBe(0);
    expect(m.sysctl.write('kernel.numa_balancing_scan_delay_ms', '0')).toBe(0);
  });
});
