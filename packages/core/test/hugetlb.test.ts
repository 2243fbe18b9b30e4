import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { EACCES, EINVAL, ENOENT, ENOMEM, ERANGE, PagemigError } from '../src/errno.js';
import { SIGBUS } from '../src/hugetlb_fault.js';
import { createMachine, type Machine } from '../src/machine.js';
import { MPOL_BIND, MPOL_MF_MOVE_ALL } from '../src/mempolicy.js';
import { addrToVpn } from '../src/mm.js';
import { FAULT_SIGBUS } from '../src/mmu.js';
import { PAGE_SIZE } from '../src/mmzone.js';
import * as pageFlags from '../src/page.js';
import type { Process } from '../src/process.js';
import { catchPagemig, expectErrno, machinesCheckedAfterEach, pattern, sameBytes } from './helpers.js';

// The hugetlb pool (mm/hugetlb.c) and MAP_HUGETLB areas. The expected counts of the scenarios
// marked "Linux 6.18" were measured on the project's machine (a small C program run as root:
// /proc/meminfo after each step), the rest follow the kernel functions named in each test.

const HP = 2 << 20;
const SYS = '/sys/kernel/mm/hugepages/hugepages-2048kB';
const NODE = (nid: number) => `/sys/devices/system/node/node${nid}/hugepages/hugepages-2048kB`;

const machine = machinesCheckedAfterEach();

/** HugePages_Total/Free/Rsvd/Surp as /proc/meminfo prints them. */
function pool(m: Machine): { total: number; free: number; rsvd: number; surp: number } {
  const text = m.procfs.meminfo();
  const get = (name: string) => Number(new RegExp(`^HugePages_${name}:\\s+(\\d+)$`, 'm').exec(text)![1]);
  return { total: get('Total'), free: get('Free'), rsvd: get('Rsvd'), surp: get('Surp') };
}

/** A node's nr_hugepages, free_hugepages and surplus_hugepages. */
function nodePool(m: Machine, nid: number): [number, number, number] {
  const read = (f: string) => Number(m.sysfs.read(`${NODE(nid)}/${f}`));
  return [read('nr_hugepages'), read('free_hugepages'), read('surplus_hugepages')];
}

function setPool(m: Machine, n: number): void {
  expect(m.sysctl.write('vm.nr_hugepages', n)).toBe(0);
}

/** Expects `fn` to be refused with a bus error (the PagemigError a hugetlb fault throws). */
function expectSigbus(fn: () => unknown): void {
  expect(catchPagemig(fn).code).toBe(SIGBUS);
}

describe('the hugetlb pool: vm.nr_hugepages and /sys/.../hugepages-2048kB', () => {
  it('grows round robin over the nodes, each page an order-9 block of its buddy allocator', async () => {
    const m = await machine();
    const free0 = m.vmstat().nr_free_pages;
    setPool(m, 5);
    // alloc_pool_huge_folio: next_nid_to_alloc goes 0, 1, 0, 1, 0.
    expect(nodePool(m, 0)).toEqual([3, 3, 0]);
    expect(nodePool(m, 1)).toEqual([2, 2, 0]);
    expect(m.sysctl.read('vm.nr_hugepages')).toBe('5\n');
    expect(m.sysfs.read(`${SYS}/nr_hugepages`)).toBe('5\n');
    expect(m.sysfs.read(`${SYS}/free_hugepages`)).toBe('5\n');
    expect(m.sysfs.read(`${SYS}/resv_hugepages`)).toBe('0\n');
    expect(m.sysfs.read(`${SYS}/surplus_hugepages`)).toBe('0\n');
    const v = m.vmstat();
    expect(v.nr_free_pages).toBe(free0 - 5 * 512);
    expect(v.htlb_buddy_alloc_success).toBe(5);
    expect(v.htlb_buddy_alloc_fail).toBe(0);
    // Free pool pages are not in use: nr_hugetlb counts none.
    expect(v.nr_hugetlb).toBe(0);
  });

  it("shrinks round robin from next_nid_to_free; a node's nr_hugepages resizes that node alone", async () => {
    const m = await machine();
    const free0 = m.vmstat().nr_free_pages;
    setPool(m, 5);
    setPool(m, 2);
    // remove_pool_hugetlb_folio: next_nid_to_free goes 0, 1, 0.
    expect([nodePool(m, 0)[0], nodePool(m, 1)[0]]).toEqual([1, 1]);
    // set_max_huge_pages(count + the other nodes' persistent pages, node 1 only).
    expect(m.sysfs.write(`${NODE(1)}/nr_hugepages`, '3')).toBe(0);
    expect([nodePool(m, 0)[0], nodePool(m, 1)[0]]).toEqual([1, 3]);
    expect(m.sysctl.read('vm.nr_hugepages')).toBe('4\n');
    expect(m.sysfs.write(`${NODE(0)}/nr_hugepages`, '0')).toBe(0);
    expect([nodePool(m, 0)[0], nodePool(m, 1)[0]]).toEqual([0, 3]);
    setPool(m, 0);
    // The pool gave its pages back to the buddy allocator.
    expect(m.vmstat().nr_free_pages).toBe(free0);
    // Freed: 3 by the shrink to 2, 1 from node 0, then the last 3.
    expect(m.vmstat().pgfree).toBe(7 * 512);
  });

  it('a pool larger than the buddy allocators can give stops short: what it got is the pool', async () => {
    const m = await machine();
    const free0 = m.vmstat().nr_free_pages;
    setPool(m, 1000);
    const got = Number(m.sysctl.read('vm.nr_hugepages'));
    expect(got).toBeGreaterThan(20);
    expect(got).toBeLessThan(32);
    expect(nodePool(m, 0)[0] + nodePool(m, 1)[0]).toBe(got);
    expect(m.vmstat().htlb_buddy_alloc_success).toBe(got);
    // Asking for one more tries every node once (__GFP_THISNODE) and fails on both.
    const fails = m.vmstat().htlb_buddy_alloc_fail;
    setPool(m, got + 1);
    expect(m.sysctl.read('vm.nr_hugepages')).toBe(`${got}\n`);
    expect(m.vmstat().htlb_buddy_alloc_fail).toBe(fails + 2);
    setPool(m, 0);
    expect(m.vmstat().nr_free_pages).toBe(free0);
  });

  it('parses as the kernel does: proc_doulongvec for the sysctl, kstrtoul for sysfs', async () => {
    const m = await machine();
    expect(m.sysctl.write('vm.nr_hugepages', '-1')).toBe(EINVAL);
    expect(m.sysctl.write('vm.nr_hugepages', 'two')).toBe(EINVAL);
    expect(m.sysctl.write('vm.nr_hugepages', '0x2')).toBe(0);
    expect(m.sysctl.read('vm.nr_hugepages')).toBe('2\n');
    // __do_proc_doulongvec_minmax: any sign is EINVAL, even "-0"; above ULONG_MAX strtoul overflows.
    expect(m.sysctl.write('vm.nr_hugepages', '-0')).toBe(EINVAL);
    expect(m.sysctl.write('vm.nr_overcommit_hugepages', ' -0')).toBe(EINVAL);
    expect(m.sysctl.write('vm.nr_hugepages', '18446744073709551616')).toBe(EINVAL);
    expect(m.sysctl.write('vm.nr_hugepages', '0x10000000000000000')).toBe(EINVAL);
    expect(m.sysctl.read('vm.nr_hugepages')).toBe('2\n');
    // An int knob takes "-0" as 0, as proc_dointvec_minmax does.
    expect(m.sysctl.write('vm.compact_unevictable_allowed', '-0')).toBe(0);
    expect(m.sysfs.write(`${SYS}/nr_hugepages`, ' 1')).toBe(EINVAL);
    expect(m.sysfs.write(`${SYS}/nr_hugepages`, '0x1')).toBe(EINVAL);
    expect(m.sysfs.write(`${SYS}/nr_hugepages`, '-1')).toBe(EINVAL);
    expect(m.sysfs.write(`${SYS}/nr_hugepages`, '18446744073709551616')).toBe(ERANGE);
    expect(pool(m).total).toBe(2);
    expect(m.sysfs.write(`${SYS}/nr_hugepages`, '+3\n')).toBe(0);
    expect(pool(m).total).toBe(3);
    expect(m.sysfs.write(`${SYS}/nr_hugepages`, 1)).toBe(0);
    expect(pool(m).total).toBe(1);
    expect(m.sysctl.write('vm.nr_overcommit_hugepages', '4')).toBe(0);
    expect(m.sysfs.read(`${SYS}/nr_overcommit_hugepages`)).toBe('4\n');
    expect(m.sysfs.write(`${SYS}/nr_overcommit_hugepages`, '0')).toBe(0);
    expect(m.sysctl.read('vm.nr_overcommit_hugepages')).toBe('0\n');
    // The read-only files (0444) refuse writes; a node that does not exist has no directory.
    for (const f of ['free_hugepages', 'resv_hugepages', 'surplus_hugepages'])
      expect(m.sysfs.write(`${SYS}/${f}`, '1')).toBe(EACCES);
    for (const f of ['free_hugepages', 'surplus_hugepages'])
      expect(m.sysfs.write(`${NODE(0)}/${f}`, '1')).toBe(EACCES);
    expect(m.sysfs.write(`${NODE(2)}/nr_hugepages`, '1')).toBe(ENOENT);
    expectErrno(() => m.sysfs.read(`${NODE(0)}/resv_hugepages`), ENOENT);
    expect(m.sysfs.list()).toEqual(
      expect.arrayContaining([
        `${SYS}/nr_hugepages`,
        `${SYS}/nr_overcommit_hugepages`,
        `${SYS}/free_hugepages`,
        `${SYS}/resv_hugepages`,
        `${SYS}/surplus_hugepages`,
        `${NODE(1)}/nr_hugepages`,
        `${NODE(1)}/free_hugepages`,
        `${NODE(1)}/surplus_hugepages`,
      ]),
    );
  });

  it('shrinking below what areas hold turns pages into surplus, freed as they go (Linux 6.18)', async () => {
    const m = await machine();
    const p = m.spawn();
    setPool(m, 2);
    const a = p.mmap(2 * HP, { hugetlb: true });
    setPool(m, 0);
    // set_max_huge_pages: min_count covers the reservations; the rest becomes surplus.
    expect(pool(m)).toEqual({ total: 2, free: 2, rsvd: 2, surp: 2 });
    expect(m.sysctl.read('vm.nr_hugepages')).toBe('0\n');
    expect(m.sysfs.read(`${SYS}/nr_hugepages`)).toBe('2\n');
    expect(m.sysfs.read(`${SYS}/surplus_hugepages`)).toBe('2\n');
    p.touch(a, 1, 'write');
    expect(pool(m)).toEqual({ total: 2, free: 1, rsvd: 1, surp: 2 });
    p.munmap(a, 2 * HP);
    expect(pool(m)).toEqual({ total: 0, free: 0, rsvd: 0, surp: 0 });
  });

  it('vm.nr_overcommit_hugepages lets reservations grow the pool with surplus pages (Linux 6.18)', async () => {
    const m = await machine();
    const p = m.spawn();
    expect(m.sysctl.write('vm.nr_overcommit_hugepages', 2)).toBe(0);
    const b = p.mmap(2 * HP, { hugetlb: true });
    expect(pool(m)).toEqual({ total: 2, free: 2, rsvd: 2, surp: 2 });
    expectErrno(() => p.mmap(2 * HP, { hugetlb: true }), ENOMEM);
    p.touch(b, 1, 'write');
    expect(pool(m)).toEqual({ total: 2, free: 1, rsvd: 1, surp: 2 });
    // Growing the persistent pool takes a surplus page into it first (adjust_pool_surplus).
    setPool(m, 1);
    expect(pool(m)).toEqual({ total: 2, free: 1, rsvd: 1, surp: 1 });
    expect(m.sysctl.read('vm.nr_hugepages')).toBe('1\n');
    p.munmap(b, 2 * HP);
    expect(pool(m)).toEqual({ total: 1, free: 1, rsvd: 0, surp: 0 });
    expect(m.vmstat().htlb_buddy_alloc_success).toBe(2);
  });

  it("shrinking the pool takes persistent pages, never a node's last page that is all surplus", async () => {
    const m = await machine();
    const p = m.spawn({ privileged: true });
    expect(m.sysctl.write('vm.nr_overcommit_hugepages', 1)).toBe(0);
    // A reservation makes a surplus page on node 0; node 1 then gets two persistent pages.
    p.mmap(HP, { hugetlb: true, node: 0 });
    expect(m.sysfs.write(`${NODE(1)}/nr_hugepages`, 2)).toBe(0);
    expect([nodePool(m, 0), nodePool(m, 1)]).toEqual([
      [1, 1, 1],
      [2, 2, 0],
    ]);
    // Down to the one page the reservation needs: it comes from node 1, whose other page turns
    // surplus. Taking node 0's page left node 0 counting a surplus page it did not have.
    setPool(m, 0);
    expect(pool(m)).toEqual({ total: 2, free: 2, rsvd: 1, surp: 2 });
    expect([nodePool(m, 0), nodePool(m, 1)]).toEqual([
      [1, 1, 1],
      [1, 1, 1],
    ]);
  });
});

describe('/proc/meminfo', () => {
  it("prints the kernel's lines in its order and format, the pool last (hugetlb_report_meminfo)", async () => {
    const m = await machine();
    // Two 32 MiB nodes: 16384 pages. min_free_kbytes 1024 gives each zone min 128, high 192 pages:
    // MemAvailable = free - totalreserve_pages (2 x 192); CommitLimit = 50% of RAM.
    const text = (total: number, free: number, avail: number, lines: Record<string, number>, huge: string) =>
      [
        ['MemTotal:       ', total],
        ['MemFree:        ', free],
        ['MemAvailable:   ', avail],
        ['Buffers:        ', 0],
        ['Cached:         ', lines.Shmem ?? 0],
        ['SwapCached:     ', 0],
        ['Active:         ', 0],
        ['Inactive:       ', lines.Inactive ?? 0],
        ['Active(anon):   ', 0],
        ['Inactive(anon): ', lines.Inactive ?? 0],
        ['Active(file):   ', 0],
        ['Inactive(file): ', 0],
        ['Unevictable:    ', 0],
        ['Mlocked:        ', 0],
        ['SwapTotal:      ', 0],
        ['SwapFree:       ', 0],
        ['Dirty:          ', 0],
        ['Writeback:      ', 0],
        ['AnonPages:      ', lines.AnonPages ?? 0],
        ['Mapped:         ', 0],
        ['Shmem:          ', lines.Shmem ?? 0],
        ['PageTables:     ', lines.PageTables ?? 0],
        ['SecPageTables:  ', 0],
        ['NFS_Unstable:   ', 0],
        ['Bounce:         ', 0],
        ['WritebackTmp:   ', 0],
        ['CommitLimit:    ', lines.CommitLimit ?? 32768],
        ['AnonHugePages:  ', 0],
        ['ShmemHugePages: ', 0],
        ['FileHugePages:  ', 0],
        ['FilePmdMapped:  ', 0],
      ]
        .map(([label, kb]) => `${label}${String(kb).padStart(8)} kB\n`)
        .join('') + huge;
    expect(m.procfs.meminfo()).toBe(
      text(
        65536,
        65536,
        64000,
        {},
        'HugePages_Total:       0\n' +
          'HugePages_Free:        0\n' +
          'HugePages_Rsvd:        0\n' +
          'HugePages_Surp:        0\n' +
          'Hugepagesize:       2048 kB\n' +
          'Hugetlb:               0 kB\n',
      ),
    );
    setPool(m, 3);
    const p = m.spawn();
    p.touch(p.mmap(HP, { hugetlb: true }), 1, 'write');
    p.touch(p.mmap(PAGE_SIZE), 1, 'write');
    // The pool and the page are out of MemFree (page tables are host memory here); hugetlb memory
    // is in no LRU or AnonPages; the pool comes out of CommitLimit (vm_commit_limit).
    expect(m.procfs.meminfo()).toBe(
      text(
        65536,
        65536 - 3 * 2048 - 4,
        64000 - 3 * 2048 - 4,
        { Inactive: 4, AnonPages: 4, PageTables: 4, CommitLimit: (16384 - 3 * 512) * 2 },
        'HugePages_Total:       3\n' +
          'HugePages_Free:        2\n' +
          'HugePages_Rsvd:        0\n' +
          'HugePages_Surp:        0\n' +
          'Hugepagesize:       2048 kB\n' +
          'Hugetlb:            6144 kB\n',
      ),
    );
  });

  it("HugePages_Rsvd wraps like the kernel's unsigned counter while a child keeps an unmapped page (Linux 6.18)", async () => {
    const m = await machine();
    setPool(m, 3);
    const parent = m.spawn();
    const b = parent.mmap(2 * HP, { hugetlb: true });
    parent.write(b, new Uint8Array([1]));
    expect(pool(m)).toEqual({ total: 3, free: 2, rsvd: 1, surp: 0 });
    const child = parent.fork();
    // The zap marks the page restore_reserve and drops its consumed mark; the close then releases
    // both reservations; the page comes back only when the child lets it go.
    parent.munmap(b, 2 * HP);
    expect(m.procfs.meminfo()).toContain('HugePages_Rsvd:    18446744073709551615\n');
    expect(m.sysfs.read(`${SYS}/resv_hugepages`)).toBe('18446744073709551615\n');
    expect([...child.read(b, 1)]).toEqual([1]);
    child.exit();
    expect(pool(m)).toEqual({ total: 3, free: 3, rsvd: 0, surp: 0 });
  });

  it('/proc/vmstat: nr_hugetlb after the node events, htlb_buddy_alloc_* after the compaction events', async () => {
    const m = await machine();
    setPool(m, 2);
    const p = m.spawn();
    p.touch(p.mmap(2 * HP, { hugetlb: true }), 2 * HP, 'write');
    const text = m.procfs.vmstat();
    expect(text).toMatch(/\npgdemote_proactive 0\nnr_hugetlb 1024\n/);
    expect(text).toMatch(
      /\ncompact_daemon_free_scanned 0\nhtlb_buddy_alloc_success 2\nhtlb_buddy_alloc_fail 0\nthp_fault_alloc 0\n/,
    );
    // Hugetlb faults are no THP faults.
    expect(m.vmstat().thp_fault_alloc).toBe(0);
  });
});

describe('MAP_HUGETLB areas', () => {
  it('rounds the length up to 2 MiB, aligns the area and reserves its huge pages', async () => {
    const m = await machine();
    setPool(m, 4);
    const p = m.spawn();
    const a = p.mmap(PAGE_SIZE, { hugetlb: true });
    const [area] = p.maps();
    expect(area!.end - area!.start).toBe(HP);
    expect(a % HP).toBe(0);
    expect(area).toMatchObject({ order: 9, hugetlb: true, locked: false });
    expect(pool(m)).toEqual({ total: 4, free: 4, rsvd: 1, surp: 0 });
    const b = p.mmap(3 * HP - 1, { hugetlb: true });
    expect(b % HP).toBe(0);
    expect(pool(m).rsvd).toBe(4);
    // No page is taken before a fault.
    expect(pool(m).free).toBe(4);
  });

  it('refuses what the pool cannot cover (ENOMEM) and bad options (EINVAL), changing nothing', async () => {
    const m = await machine();
    setPool(m, 1);
    const p = m.spawn();
    expectErrno(() => p.mmap(2 * HP, { hugetlb: true }), ENOMEM);
    expect(p.maps()).toEqual([]);
    expect(pool(m)).toEqual({ total: 1, free: 1, rsvd: 0, surp: 0 });
    expectErrno(() => p.mmap(HP, { hugetlb: 1 as unknown as boolean }), EINVAL);
    expectErrno(() => p.mmap(HP, { hugetlb: true, thp: 'always' }), EINVAL);
    // allowed_mems_nr: a task bound to node 1 cannot reserve the pages of node 0.
    expect(m.sysfs.write(`${NODE(1)}/nr_hugepages`, '0')).toBe(0);
    expect(nodePool(m, 0)[0]).toBe(1);
    const bound = m.spawn();
    expect(bound.setMempolicy(MPOL_BIND, [1])).toEqual({ ret: 0 });
    expectErrno(() => bound.mmap(HP, { hugetlb: true }), ENOMEM);
    const cpuset = m.spawn({ memsAllowed: [1] });
    expectErrno(() => cpuset.mmap(HP, { hugetlb: true }), ENOMEM);
    expect(pool(m).rsvd).toBe(0);
    expect(p.mmap(HP, { hugetlb: true }) % HP).toBe(0);
  });

  it("a fault takes a zeroed page from the pool of the area's node, not from the buddy allocator", async () => {
    const m = await machine();
    setPool(m, 4);
    const p = m.spawn();
    const a = p.mmap(2 * HP, { hugetlb: true, node: 1 });
    const free0 = m.vmstat().nr_free_pages;
    expect([...p.read(a + 123, 4)]).toEqual([0, 0, 0, 0]);
    // A read instantiates the page (no zero page for hugetlb), mapped read-only until written.
    const info = p.pageInfo(a)!;
    expect(info).toMatchObject({ node: 1, order: 9, huge: true, zeroPage: false, writable: false });
    const data = pattern(512, 7);
    p.write(a, data);
    // hugetlb_wp reuses the page only this area maps.
    expect(p.pageInfo(a)).toMatchObject({ pfn: info.pfn, writable: true, dirty: true });
    p.write(a + HP, data);
    expect(sameBytes(p.read(a, HP), data)).toBe(true);
    expect(sameBytes(p.read(a + HP, HP), data)).toBe(true);
    expect(nodePool(m, 1)).toEqual([2, 0, 0]);
    expect(pool(m)).toEqual({ total: 4, free: 2, rsvd: 0, surp: 0 });
    expect(m.vmstat().nr_free_pages).toBe(free0);
    expect(m.vmstat().nr_hugetlb).toBe(1024);
    expect(m.vmstat().nr_anon_pages).toBe(0);
    // hugetlb folios are never split.
    expectErrno(() => m.splitFolio(info.pfn, 0), EINVAL);
  });

  it('falls back to the nearest node with a free page; a bind policy whose nodes have none gets SIGBUS', async () => {
    const m = await machine();
    setPool(m, 1);
    expect(nodePool(m, 0)[0]).toBe(1);
    const p = m.spawn();
    // The reservation is global (hugetlb_acct_memory), the page is not.
    const bound = p.mmap(HP, { hugetlb: true, policy: { mode: 'bind', nodes: [1] } });
    expectSigbus(() => p.touch(bound, 1, 'write'));
    expect(p.serveFault(addrToVpn(bound), true)).toBe(FAULT_SIGBUS);
    expect(pool(m)).toEqual({ total: 1, free: 1, rsvd: 1, surp: 0 });
    p.munmap(bound, HP);
    const preferred = p.mmap(HP, { hugetlb: true, policy: { mode: 'preferred', nodes: [1] } });
    p.touch(preferred, 1, 'write');
    expect(p.pageInfo(preferred)!.node).toBe(0);
  });

  it('munmap splits an area only at 2 MiB boundaries and gives pages and reservations back (Linux 6.18)', async () => {
    const m = await machine();
    setPool(m, 3);
    const p = m.spawn();
    const a = p.mmap(2 * HP, { hugetlb: true });
    for (const [at, len] of [
      [0, PAGE_SIZE],
      [PAGE_SIZE, PAGE_SIZE],
      [HP, PAGE_SIZE],
    ] as const)
      expectErrno(() => p.munmap(a + at, len), EINVAL);
    expect(pool(m).rsvd).toBe(2);
    // Past the end of the area nothing needs a split.
    p.munmap(a + HP, HP + PAGE_SIZE);
    expect(pool(m).rsvd).toBe(1);
    // The length is page-aligned only: it reaches the area's end.
    p.munmap(a, HP - PAGE_SIZE + 1);
    expect(pool(m).rsvd).toBe(0);
    expect(p.maps()).toEqual([]);
    const b = p.mmap(2 * HP, { hugetlb: true });
    p.write(b, new Uint8Array([1]));
    expect(pool(m)).toEqual({ total: 3, free: 2, rsvd: 1, surp: 0 });
    p.munmap(b, HP);
    expect(pool(m)).toEqual({ total: 3, free: 3, rsvd: 1, surp: 0 });
    p.munmap(b + HP, HP);
    expect(pool(m)).toEqual({ total: 3, free: 3, rsvd: 0, surp: 0 });
  });

  it('exit gives every page and reservation back; mlock populates an area but does not lock it', async () => {
    const m = await machine();
    setPool(m, 4);
    const p = m.spawn();
    const a = p.mmap(3 * HP, { hugetlb: true, mlock: true });
    expect(pool(m)).toEqual({ total: 4, free: 1, rsvd: 0, surp: 0 });
    expect(p.maps()[0]!.locked).toBe(false);
    expect(m.vmstat().nr_mlock).toBe(0);
    expect(p.pageInfo(a + 2 * HP)).toMatchObject({ order: 9, writable: true });
    p.mmap(HP, { hugetlb: true });
    expect(pool(m).rsvd).toBe(1);
    p.exit();
    expect(pool(m)).toEqual({ total: 4, free: 4, rsvd: 0, surp: 0 });
    expect(m.vmstat().nr_hugetlb).toBe(0);
  });

  it('MAP_SHARED: one page cache for every process, its reservations held until the last unmap (Linux 6.18)', async () => {
    const m = await machine();
    setPool(m, 3);
    const parent = m.spawn();
    const s = parent.mmap(2 * HP, { hugetlb: true, shared: true });
    expect(pool(m)).toEqual({ total: 3, free: 3, rsvd: 2, surp: 0 });
    parent.write(s, new Uint8Array([1]));
    expect(pool(m)).toEqual({ total: 3, free: 2, rsvd: 1, surp: 0 });
    const child = parent.fork();
    child.write(s + 1, new Uint8Array([2]));
    child.write(s + HP, new Uint8Array([3]));
    expect(pool(m)).toEqual({ total: 3, free: 1, rsvd: 0, surp: 0 });
    expect([...parent.read(s, 2)]).toEqual([1, 2]);
    expect([...parent.read(s + HP, 1)]).toEqual([3]);
    expect(parent.pageInfo(s)!.pfn).toBe(child.pageInfo(s)!.pfn);
    child.exit();
    parent.munmap(s, HP);
    // The file keeps its pages while an area maps it.
    expect(pool(m)).toEqual({ total: 3, free: 1, rsvd: 0, surp: 0 });
    parent.munmap(s + HP, HP);
    expect(pool(m)).toEqual({ total: 3, free: 3, rsvd: 0, surp: 0 });
  });

  it('MAP_SHARED: the file gives back the reservations its pages did not consume', async () => {
    const m = await machine();
    setPool(m, 3);
    const p = m.spawn();
    const s = p.mmap(3 * HP, { hugetlb: true, shared: true });
    p.touch(s + HP, 1, 'read');
    expect(pool(m)).toEqual({ total: 3, free: 2, rsvd: 2, surp: 0 });
    // A shared area maps even a read-faulted page writable (make_huge_pte).
    expect(p.pageInfo(s + HP)).toMatchObject({ writable: true });
    p.munmap(s, 3 * HP);
    expect(pool(m)).toEqual({ total: 3, free: 3, rsvd: 0, surp: 0 });
  });
});

describe('MAP_PRIVATE hugetlb areas after fork', () => {
  /** A parent with a 2-huge-page private area whose first page holds `fill`. */
  function forked(m: Machine, fill: number): { parent: Process; b: number } {
    const parent = m.spawn();
    const b = parent.mmap(2 * HP, { hugetlb: true });
    parent.write(b, new Uint8Array(HP).fill(fill));
    return { parent, b };
  }

  it('a write copies on write into a page no reservation holds (Linux 6.18)', async () => {
    const m = await machine();
    setPool(m, 4);
    const { parent, b } = forked(m, 7);
    expect(pool(m)).toEqual({ total: 4, free: 3, rsvd: 1, surp: 0 });
    const child = parent.fork();
    expect(child.pageInfo(b)).toMatchObject({ pfn: parent.pageInfo(b)!.pfn, writable: false });
    child.write(b + 1, new Uint8Array([9]));
    expect(child.pageInfo(b)!.pfn).not.toBe(parent.pageInfo(b)!.pfn);
    expect([...child.read(b, 2)]).toEqual([7, 9]);
    expect([...parent.read(b, 2)]).toEqual([7, 7]);
    expect(pool(m)).toEqual({ total: 4, free: 2, rsvd: 1, surp: 0 });
    // The child owns no reservation: its own first touch takes an unreserved page too.
    child.touch(b + HP, 1, 'write');
    expect(pool(m)).toEqual({ total: 4, free: 1, rsvd: 1, surp: 0 });
    child.exit();
    expect(pool(m)).toEqual({ total: 4, free: 3, rsvd: 1, surp: 0 });
    // The parent's own write after the child left reuses its page.
    const pfn = parent.pageInfo(b)!.pfn;
    parent.write(b, new Uint8Array([8]));
    expect(parent.pageInfo(b)!.pfn).toBe(pfn);
  });

  it('a child gets SIGBUS when no page is free beyond the reservations (Linux 6.18)', async () => {
    const m = await machine();
    setPool(m, 2);
    const { parent, b } = forked(m, 5);
    expect(pool(m)).toEqual({ total: 2, free: 1, rsvd: 1, surp: 0 });
    const child = parent.fork();
    expectSigbus(() => child.touch(b + HP, 1, 'write'));
    expectSigbus(() => child.write(b + 1, new Uint8Array([3])));
    expect([...child.read(b, 2)]).toEqual([5, 5]);
    expect(pool(m)).toEqual({ total: 2, free: 1, rsvd: 1, surp: 0 });
  });

  it("the owner's copy on write with an empty pool takes the page back from the child, which then dies (Linux 6.18)", async () => {
    const m = await machine();
    setPool(m, 2);
    const { parent, b } = forked(m, 5);
    const child = parent.fork();
    parent.write(b + HP, new Uint8Array([1]));
    expect(pool(m)).toEqual({ total: 2, free: 0, rsvd: 0, surp: 0 });
    // hugetlb_wp: cow_from_owner, no page: unmap_ref_private, then the page is the owner's alone.
    parent.write(b + 2, new Uint8Array([42]));
    expect([...parent.read(b, 3)]).toEqual([5, 5, 42]);
    expect(child.pageInfo(b)).toBeNull();
    expectSigbus(() => child.read(b, 1));
    // Its other pages are unaffected until it needs a new one.
    expect(child.pageInfo(b + HP)).toBeNull();
    expectSigbus(() => child.read(b + HP, 1));
    child.exit();
    parent.exit();
    expect(pool(m)).toEqual({ total: 2, free: 2, rsvd: 0, surp: 0 });
  });

  it('the page the owner takes back leaves the rss of the child that mapped it', async () => {
    const m = await machine();
    setPool(m, 2);
    const { parent, b } = forked(m, 5);
    const child = parent.fork();
    parent.write(b + HP, new Uint8Array([1]));
    expect([parent.mm.rss, child.mm.rss]).toEqual([1024, 512]);
    // unmap_ref_private: the child's PMD goes, and with it 512 pages of its rss.
    parent.write(b + 2, new Uint8Array([42]));
    expect(child.pageInfo(b)).toBeNull();
    expect([parent.mm.rss, child.mm.rss]).toEqual([1024, 0]);
    m.checkInvariants();
  });
});

describe('the invariant checker and the pool', () => {
  it('catches counts that disagree with the free lists, a referenced free page, reservations beyond the free pages, a pool page on a buddy list', async () => {
    const m = await machine();
    setPool(m, 2);
    const h = m.kernel.hstate;
    const broken = (re: RegExp) => expect(catchPagemig(() => m.checkInvariants()).message).toMatch(re);
    h.freeHugePagesNode[0]!++;
    broken(/hugetlb node 0: free_huge_pages_node 2, free list holds 1/);
    h.freeHugePagesNode[0]!--;
    const head = h.freelists[1]![0]!;
    m.kernel.pages.refcount[head] = 1;
    broken(/free hugetlb folio with references/);
    m.kernel.pages.refcount[head] = 0;
    h.resvHugePages = 3;
    broken(/3 pages reserved but 2 free/);
    h.resvHugePages = 0;
    // A free buddy block that says hugetlb: a pool page freed behind the pool's back.
    const block = [...m.kernel.zones[0]!.freeHead].find((pfn) => pfn >= 0)!;
    m.kernel.pages.flags[block]! |= pageFlags.PG_hugetlb;
    broken(/hugetlb folio on a buddy free list/);
    m.kernel.pages.flags[block]! &= ~pageFlags.PG_hugetlb;
    m.checkInvariants();
  });
});

describe('the pool under any sequence of operations (property)', () => {
  type Op =
    | { kind: 'pool'; nid: number; count: number }
    | { kind: 'overcommit'; n: number }
    | { kind: 'mmap'; proc: number; pages: number; shared: boolean; node: number }
    | { kind: 'touch' | 'munmap' | 'move'; area: number; page: number; node: number; write: boolean }
    | { kind: 'fork' | 'exit'; proc: number };
  const op: fc.Arbitrary<Op> = fc.oneof(
    fc.record({ kind: fc.constant('pool' as const), nid: fc.integer({ min: -1, max: 1 }), count: fc.nat(6) }),
    fc.record({ kind: fc.constant('overcommit' as const), n: fc.nat(3) }),
    fc.record({
      kind: fc.constant('mmap' as const),
      proc: fc.nat(3),
      pages: fc.integer({ min: 1, max: 3 }),
      shared: fc.boolean(),
      node: fc.integer({ min: -1, max: 1 }),
    }),
    fc.record({
      kind: fc.constantFrom('touch' as const, 'munmap' as const, 'move' as const),
      area: fc.nat(7),
      page: fc.nat(2),
      node: fc.nat(1),
      write: fc.boolean(),
    }),
    fc.record({ kind: fc.constantFrom('fork' as const, 'exit' as const), proc: fc.nat(3) }),
  );
  /** Runs `fn`; an error is allowed only if it is one of `codes` (ENOMEM, SIGBUS). */
  const allowing = (codes: string[], fn: () => void) => {
    try {
      fn();
    } catch (e) {
      if (!PagemigError.isInstance(e) || !codes.includes(e.code)) throw e;
    }
  };

  it('keeps the counters, free lists and reservations consistent; everything comes back at the end', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(op, { maxLength: 24 }), async (ops) => {
        const m = await createMachine({ nodes: [{ memory: '32MiB' }, { memory: '32MiB' }], prefault: false });
        try {
          await run(m, ops);
        } finally {
          await m.close();
        }
      }),
      { numRuns: 40 },
    );
  });

  async function run(m: Machine, ops: Op[]): Promise<void> {
    const procs: Process[] = [m.spawn({ privileged: true })];
    const areas: { p: Process; addr: number; pages: number }[] = [];
    for (const o of ops) {
      const p = 'proc' in o ? procs[o.proc % procs.length] : undefined;
      const a = 'area' in o ? areas[o.area % Math.max(areas.length, 1)] : undefined;
      switch (o.kind) {
        case 'pool':
          if (o.nid < 0) setPool(m, o.count);
          else expect(m.sysfs.write(`${NODE(o.nid)}/nr_hugepages`, o.count)).toBe(0);
          break;
        case 'overcommit':
          expect(m.sysctl.write('vm.nr_overcommit_hugepages', o.n)).toBe(0);
          break;
        case 'mmap':
          if (!p || p.exited) break;
          allowing(['ENOMEM'], () => {
            const opts = { hugetlb: true, shared: o.shared, ...(o.node >= 0 ? { node: o.node } : {}) };
            areas.push({ p, addr: p.mmap(o.pages * HP, opts), pages: o.pages });
          });
          break;
        case 'touch':
          if (a && !a.p.exited && o.page < a.pages)
            allowing(['SIGBUS'], () =>
              a.p.touch(a.addr + o.page * HP, PAGE_SIZE, o.write ? 'write' : 'read'),
            );
          break;
        case 'munmap':
          if (a && !a.p.exited && o.page < a.pages) a.p.munmap(a.addr + o.page * HP, HP);
          break;
        case 'move':
          if (a && !a.p.exited && o.page < a.pages) {
            const r = await a.p.movePages(0, [a.addr + o.page * HP], [o.node], MPOL_MF_MOVE_ALL);
            if (r.ret < 0) expect(r.errno).toBe(ENOMEM);
            else expect(r.ret).toBe(0);
          }
          break;
        case 'fork':
          if (p && !p.exited) procs.push(p.fork());
          break;
        case 'exit':
          if (p && procs.length > 1) p.exit();
          break;
      }
      m.checkInvariants();
    }
    for (const p of procs) p.exit();
    m.checkInvariants();
    const end = pool(m);
    expect(end.rsvd).toBe(0);
    expect(end.free).toBe(end.total);
    expect(m.vmstat().nr_hugetlb).toBe(0);
  }
});
