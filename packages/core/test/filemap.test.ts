import { describe, expect, it } from 'vitest';
import { ENOMEM } from '../src/errno.js';
import { PageCache } from '../src/filemap.js';
import type { Machine } from '../src/machine.js';
import { MPOL_MF_MOVE } from '../src/mempolicy.js';
import { PAGE_SIZE } from '../src/mmzone.js';
import { catchPagemig, machinesCheckedAfterEach, pattern } from './helpers.js';

// The shmem page cache (mm/filemap.c over a sparse xarray): host memory and teardown cost follow
// the pages cached, not the size of the area.

const machine = machinesCheckedAfterEach();
const GiB = 2 ** 30;
const HP = 2 << 20;

describe('PageCache', () => {
  it('stores across a block boundary, finds pages in a range and visits them in offset order', () => {
    const pc = new PageCache();
    pc.store(5000, 70, 2);
    pc.store(510, 900, 4);
    expect([509, 510, 511, 512, 513, 514, 5000, 5001, 5002].map((i) => pc.get(i))).toEqual([
      -1, 900, 901, 902, 903, -1, 70, 71, -1,
    ]);
    expect(pc.rangeHasPage(0, 510)).toBe(false);
    expect(pc.rangeHasPage(514, 4486)).toBe(false);
    expect(pc.rangeHasPage(400, 111)).toBe(true);
    expect(pc.rangeHasPage(4999, 2)).toBe(true);
    const seen: [number, number][] = [];
    pc.forEach((pfn, index) => {
      seen.push([index, pfn]);
    });
    expect(seen).toEqual([
      [510, 900],
      [511, 901],
      [512, 902],
      [513, 903],
      [5000, 70],
      [5001, 71],
    ]);
    pc.clear();
    expect(pc.get(510)).toBe(-1);
  });
});

describe('shmem page cache', () => {
  it('a 128 GiB MAP_SHARED area costs no host memory until touched; its far-apart pages migrate, are shared and all go on unmap', async () => {
    const m = await machine();
    const p = m.spawn();
    const free0 = m.vmstat().nr_free_pages;
    const host0 = process.memoryUsage().arrayBuffers;
    const len = 128 * GiB;
    const a = p.mmap(len, { shared: true, thp: 'never' });
    // A dense page cache took 4 bytes per page: 128 MiB here.
    expect(process.memoryUsage().arrayBuffers - host0).toBeLessThan(2 ** 20);
    const pages = [0, 511, 512, 2 ** 24 + 5, len / PAGE_SIZE - 1];
    const addrs = pages.map((i) => a + i * PAGE_SIZE);
    for (const [i, addr] of addrs.entries()) p.write(addr, pattern(1, i + 1));
    const moved = await p.movePages(0, addrs, [1, 1, 1, 1, 1], MPOL_MF_MOVE);
    expect(moved.status).toEqual([1, 1, 1, 1, 1]);
    // The child maps the object afresh: its faults find the migrated pages in the page cache.
    const child = p.fork();
    addrs.forEach((addr, i) => {
      expect(child.read(addr, PAGE_SIZE)).toEqual(pattern(1, i + 1));
      expect(child.pageInfo(addr)).toMatchObject({ node: 1, pfn: p.pageInfo(addr)!.pfn });
    });
    child.write(addrs[3]!, pattern(1, 9));
    expect(p.read(addrs[3]!, PAGE_SIZE)).toEqual(pattern(1, 9));
    expect(m.vmstat().nr_shmem).toBe(5);
    m.checkInvariants();
    p.munmap(a, len);
    expect(m.vmstat().nr_shmem).toBe(5);
    child.exit();
    p.exit();
    expect(m.vmstat().nr_shmem).toBe(0);
    expect(m.vmstat().nr_free_pages).toBe(free0);
  });

  /** Runs `fn` while the host cannot allocate a new typed array (ArrayBuffer allocation fails). */
  function withoutHostMemory<T>(fn: () => T): T {
    const real = globalThis.Int32Array;
    globalThis.Int32Array = class extends real {
      constructor(...args: unknown[]) {
        if (typeof args[0] === 'number') throw new RangeError('Array buffer allocation failed');
        super(...(args as [ArrayBuffer]));
      }
    } as Int32ArrayConstructor;
    try {
      return fn();
    } finally {
      globalThis.Int32Array = real;
    }
  }

  /** What a failed fault must leave as it was. */
  function counters(m: Machine) {
    const v = m.vmstat();
    const hp = /^HugePages_Free:\s+(\d+)\nHugePages_Rsvd:\s+(\d+)$/m.exec(m.procfs.meminfo())!;
    return {
      free: v.nr_free_pages,
      shmem: v.nr_shmem,
      thp: v.thp_fault_alloc,
      hugetlbFree: Number(hp[1]),
      hugetlbRsvd: Number(hp[2]),
    };
  }

  it.each([
    ['a 4 KiB page', { shared: true, thp: 'never' } as const],
    ['a PMD-size THP', { shared: true, thp: 'always' } as const],
    ['a hugetlb page', { shared: true, hugetlb: true } as const],
  ])(
    'a page cache block the host cannot give fails the fault of %s with ENOMEM, changing nothing',
    async (_, opts) => {
      const m = await machine();
      expect(m.sysctl.write('vm.nr_hugepages', 2)).toBe(0);
      const p = m.spawn();
      const a = p.mmap(HP, opts);
      const before = counters(m);
      const e = withoutHostMemory(() => catchPagemig(() => p.touch(a, 1, 'write')));
      expect([e.code, e.errno]).toEqual(['ENOMEM', ENOMEM]);
      expect(e.message).toMatch(
        /^ENOMEM: page cache: the block of page offsets 0\.\.511: the host cannot allocate it/,
      );
      expect(counters(m)).toEqual(before);
      expect(p.pageInfo(a)).toBeNull();
      m.checkInvariants();
      // Once the host has memory again, the same fault succeeds.
      p.write(a, pattern(1, 3));
      expect(p.read(a, PAGE_SIZE)).toEqual(pattern(1, 3));
      expect(p.pageInfo(a)).not.toBeNull();
    },
  );
});
