import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { EFAULT, EINVAL, ENOMEM } from '../src/errno.js';
import { createMachine, type Machine } from '../src/machine.js';
import { PAGE_SIZE } from '../src/mmzone.js';
import { USER_BASE, ZERO_PFN } from '../src/pagetable.js';
import { allZero, expectErrno, filled, pattern, sameBytes } from './helpers.js';

const PG = PAGE_SIZE;
const THP = 2 << 20;

let m: Machine;
const free = () => m.freePages(0) + m.freePages(1);

beforeEach(async () => {
  m = await createMachine({ nodes: [{ memory: '16MiB' }, { memory: '16MiB' }], prefault: false });
});
afterEach(async () => {
  m.checkInvariants();
  await m.close();
});

describe('anonymous faults', () => {
  it('a read of untouched private memory maps the zero page and allocates nothing', () => {
    const p = m.spawn();
    const a = p.mmap(16 * PG);
    const before = free();
    expect(p.pageInfo(a)).toBeNull();
    expect(allZero(p.read(a, 16 * PG))).toBe(true);
    for (let i = 0; i < 16; i++) {
      const info = p.pageInfo(a + i * PG)!;
      expect(info.zeroPage).toBe(true);
      expect(info.pfn).toBe(ZERO_PFN);
      expect(info.writable).toBe(false);
    }
    expect(free()).toBe(before);
    expect(m.vmstat().nr_anon_pages).toBe(0);
  });

  it('a write allocates a real order-0 folio on the local node (also after a zero-page read)', () => {
    const p = m.spawn();
    const a = p.mmap(4 * PG);
    const before = free();
    p.read(a, PG);
    p.write(a + 100, filled(10, 0xab));
    const info = p.pageInfo(a)!;
    expect(info).toMatchObject({
      zeroPage: false,
      order: 0,
      huge: false,
      writable: true,
      dirty: true,
      node: 0,
    });
    expect(info.headPfn).toBe(info.pfn);
    expect(free()).toBe(before - 1);
    const back = p.read(a, PG);
    expect(allZero(back.subarray(0, 100))).toBe(true);
    expect(sameBytes(back.subarray(100, 110), filled(10, 0xab))).toBe(true);
    expect(allZero(back.subarray(110))).toBe(true);
    // The neighbour page is still untouched.
    expect(p.pageInfo(a + PG)).toBeNull();
    expect(m.vmstat().nr_anon_pages).toBe(1);
  });

  it("thp 'never' faults order-0 pages", () => {
    const p = m.spawn();
    const a = p.mmap(THP, { thp: 'never' });
    p.touch(a, THP);
    for (let i = 0; i < 512; i += 37) expect(p.pageInfo(a + i * PG)).toMatchObject({ order: 0, huge: false });
    expect(m.vmstat().nr_anon_transparent_hugepages).toBe(0);
  });

  it("thp '64KiB' faults an order-4 folio mapped by 16 PTEs", () => {
    const p = m.spawn();
    const a = p.mmap(32 * PG, { thp: '64KiB' });
    const before = free();
    p.write(a + 5 * PG, filled(1, 7));
    expect(free()).toBe(before - 16);
    const head = p.pageInfo(a)!.pfn;
    expect(head % 16).toBe(0);
    for (let i = 0; i < 16; i++) {
      expect(p.pageInfo(a + i * PG)).toMatchObject({ pfn: head + i, headPfn: head, order: 4, huge: false });
    }
    expect(p.pageInfo(a + 16 * PG)).toBeNull();
    expect(m.kernel.pages.mapcount[head]).toBe(16);
    expect(m.kernel.pages.refcount[head]).toBe(16);
  });

  it("thp 'always' faults a PMD-mapped order-9 folio; a read maps the huge zero page first", () => {
    const p = m.spawn();
    const a = p.mmap(THP, { thp: 'always' });
    const before = free();
    expect(allZero(p.read(a + 3 * PG, 64))).toBe(true);
    expect(p.pageInfo(a + 3 * PG)).toMatchObject({ zeroPage: true, huge: true, order: 9 });
    expect(free()).toBe(before);

    p.write(a + 3 * PG, filled(64, 1));
    expect(free()).toBe(before - 512);
    const info = p.pageInfo(a)!;
    expect(info).toMatchObject({ zeroPage: false, huge: true, order: 9, writable: true });
    expect(info.pfn % 512).toBe(0);
    expect(p.pageInfo(a + 511 * PG)!.pfn).toBe(info.pfn + 511);
    const v = m.vmstat();
    expect(v.thp_fault_alloc).toBe(1);
    expect(v.nr_anon_transparent_hugepages).toBe(1);
    expect(sameBytes(p.read(a + 3 * PG, 64), filled(64, 1))).toBe(true);
  });

  it('a write to the huge zero page splits it into zero PTEs when no THP can be allocated', () => {
    const p = m.spawn();
    const a = p.mmap(THP, { thp: 'always', node: 1 });
    p.read(a, 1);
    const k = m.kernel;
    const held: number[] = [];
    for (let h = k.allocFolio({ order: 9, nid: 1, thisNode: true }); h >= 0; ) {
      held.push(h);
      h = k.allocFolio({ order: 9, nid: 1, thisNode: true });
    }
    const v0 = m.vmstat();
    const before = m.freePages(1);
    p.write(a + 3 * PG, filled(4, 9));
    expect(m.freePages(1)).toBe(before - 1);
    const v1 = m.vmstat();
    expect(v1.thp_fault_fallback).toBe(v0.thp_fault_fallback + 1);
    expect(v1.thp_split_pmd).toBe(v0.thp_split_pmd + 1);
    expect(p.pageInfo(a + 3 * PG)).toMatchObject({ order: 0, huge: false, zeroPage: false, node: 1 });
    expect(p.pageInfo(a)).toMatchObject({ zeroPage: true, huge: false, writable: false });
    expect(sameBytes(p.read(a + 3 * PG, 4), filled(4, 9))).toBe(true);
    expect(allZero(p.read(a, 3 * PG))).toBe(true);
    for (const h of held) k.folioPut(h);
  });

  it('a THP area smaller than a PMD falls back to order-0 pages', () => {
    const p = m.spawn();
    const a = p.mmap(THP / 2, { thp: 'always' });
    p.touch(a, PG);
    expect(p.pageInfo(a)).toMatchObject({ order: 0, huge: false });
  });
});

describe('memory policy', () => {
  it('node: 1 allocates on node 1', () => {
    const p = m.spawn({ node: 0 });
    const a = p.mmap(8 * PG, { node: 1 });
    p.touch(a, 8 * PG);
    for (let i = 0; i < 8; i++) expect(p.pageInfo(a + i * PG)!.node).toBe(1);
    const t = p.mmap(THP, { node: 1, thp: 'always' });
    p.touch(t, PG);
    expect(p.pageInfo(t)).toMatchObject({ node: 1, huge: true });
  });

  it('interleave alternates between the nodes page by page', () => {
    const p = m.spawn();
    const a = p.mmap(16 * PG, { policy: { mode: 'interleave', nodes: [0, 1] } });
    p.touch(a, 16 * PG);
    const nodes = Array.from({ length: 16 }, (_, i) => p.pageInfo(a + i * PG)!.node);
    for (let i = 1; i < 16; i++) expect(nodes[i]).not.toBe(nodes[i - 1]);
    expect(nodes.filter((n) => n === 1).length).toBe(8);
  });

  it('bind to a full node fails with ENOMEM instead of using the other node', () => {
    const p = m.spawn({ node: 0 });
    const len = 16 << 20;
    const a = p.mmap(len, { node: 1 });
    const node0 = m.freePages(0);
    const e = expectErrno(() => p.touch(a, len), ENOMEM, 'ENOMEM');
    expect(e.name).toBe('PagemigError');
    // The node was drained down to its min watermark (the allocator's last pass), node 0 untouched.
    expect(m.freePages(1)).toBe(m.kernel.nodes[1]!.zones[0]!.watermark[0]);
    expect(m.freePages(0)).toBe(node0);
    // With mlock the populate fails as a whole: the area is gone and its pages freed.
    const before1 = m.freePages(1);
    p.munmap(a, len);
    const after = m.freePages(1);
    expect(after).toBeGreaterThan(before1);
    expectErrno(() => p.mmap(len, { node: 1, mlock: true }), ENOMEM);
    expect(m.freePages(1)).toBe(after);
    expect(p.maps()).toEqual([]);
  });

  it('the default policy falls back to the other node once the local node reaches its low watermark', () => {
    const p = m.spawn({ node: 0 });
    const n = 6144; // 24 MiB: more than node 0 holds
    const a = p.mmap(n * PG);
    p.touch(a, n * PG);
    const nodes = Array.from({ length: n }, (_, i) => p.pageInfo(a + i * PG)!.node);
    const first1 = nodes.indexOf(1);
    expect(first1).toBeGreaterThan(0);
    expect(nodes.slice(0, first1).every((x) => x === 0)).toBe(true);
    expect(nodes.slice(first1).every((x) => x === 1)).toBe(true);
    const low = m.kernel.nodes[0]!.zones[0]!.watermark[1]!;
    expect(m.freePages(0)).toBe(low);
    expect(first1).toBe(4096 - low);
  });
});

describe('fork', () => {
  it('shares private pages copy-on-write until either side writes', () => {
    const parent = m.spawn();
    const a = parent.mmap(2 * PG);
    const A = pattern(2, 1);
    parent.write(a, A);
    const child = parent.fork();
    for (const i of [0, 1]) {
      const pi = parent.pageInfo(a + i * PG)!;
      const ci = child.pageInfo(a + i * PG)!;
      expect(ci.pfn).toBe(pi.pfn);
      expect(pi.writable).toBe(false);
      expect(ci.writable).toBe(false);
    }
    expect(sameBytes(child.read(a, 2 * PG), A)).toBe(true);
    const before = free();
    const shared0 = parent.pageInfo(a)!.pfn;

    child.write(a, filled(8, 0xcc));
    expect(free()).toBe(before - 1);
    expect(child.pageInfo(a)!.pfn).not.toBe(shared0);
    expect(parent.pageInfo(a)!.pfn).toBe(shared0);
    expect(sameBytes(parent.read(a, 2 * PG), A)).toBe(true);
    const c = child.read(a, PG);
    expect(sameBytes(c.subarray(0, 8), filled(8, 0xcc))).toBe(true);
    expect(sameBytes(c.subarray(8), A.subarray(8, PG))).toBe(true);

    // The parent is now the only user of page 0: it reuses it in place.
    const reuse = m.vmstat().pgreuse;
    parent.write(a, filled(4, 0xdd));
    expect(parent.pageInfo(a)!.pfn).toBe(shared0);
    expect(m.vmstat().pgreuse).toBe(reuse + 1);
    expect(free()).toBe(before - 1);
    // Page 1 is still shared: the parent's write copies it and the child keeps the old data.
    parent.write(a + PG, filled(4, 0xee));
    expect(free()).toBe(before - 2);
    expect(sameBytes(child.read(a + PG, PG), A.subarray(PG))).toBe(true);
    expect(sameBytes(parent.read(a + PG, 4), filled(4, 0xee))).toBe(true);
    expect(sameBytes(child.read(a, 8), filled(8, 0xcc))).toBe(true);
    m.checkInvariants();
    child.exit();
    m.checkInvariants();
    expect(sameBytes(parent.read(a, 4), filled(4, 0xdd))).toBe(true);
  });

  it('a child write to a shared THP splits its PMD and copies only 4 KiB', () => {
    const parent = m.spawn();
    const a = parent.mmap(THP, { thp: 'always' });
    const A = pattern(512, 2);
    parent.write(a, A);
    const head = parent.pageInfo(a)!.pfn;
    const child = parent.fork();
    expect(child.pageInfo(a)).toMatchObject({ pfn: head, huge: true, writable: false });
    const before = free();
    const splits = m.vmstat().thp_split_pmd;

    child.write(a + 5 * PG + 10, filled(3, 0));
    expect(free()).toBe(before - 1);
    expect(m.vmstat().thp_split_pmd).toBe(splits + 1);
    const c5 = child.pageInfo(a + 5 * PG)!;
    expect(c5).toMatchObject({ order: 0, huge: false, writable: true });
    expect(c5.pfn).not.toBe(head + 5);
    // The rest of the child's range still maps the parent's folio, now through PTEs.
    expect(child.pageInfo(a)).toMatchObject({ pfn: head, huge: false, order: 9 });
    expect(child.pageInfo(a + 6 * PG)).toMatchObject({ pfn: head + 6, huge: false });
    expect(parent.pageInfo(a)).toMatchObject({ pfn: head, huge: true });

    const expected = A.slice();
    expected.fill(0, 5 * PG + 10, 5 * PG + 13);
    expect(sameBytes(child.read(a, THP), expected)).toBe(true);
    expect(sameBytes(parent.read(a, THP), A)).toBe(true);
    m.checkInvariants();
    child.exit();
    expect(free()).toBe(before);
  });

  it('keeps shared anonymous memory shared: a write by either side is seen by the other', () => {
    const parent = m.spawn();
    const a = parent.mmap(4 * PG, { shared: true });
    parent.write(a, filled(16, 1));
    const child = parent.fork();
    expect(sameBytes(child.read(a, 16), filled(16, 1))).toBe(true);
    expect(child.pageInfo(a)!.pfn).toBe(parent.pageInfo(a)!.pfn);
    child.write(a, filled(8, 2));
    expect(sameBytes(parent.read(a, 8), filled(8, 2))).toBe(true);
    // A page first touched after fork is shared too.
    parent.write(a + 3 * PG, filled(8, 3));
    expect(sameBytes(child.read(a + 3 * PG, 8), filled(8, 3))).toBe(true);
    expect(child.pageInfo(a + 3 * PG)!.pfn).toBe(parent.pageInfo(a + 3 * PG)!.pfn);
    expect(m.vmstat().nr_shmem).toBe(2);
  });

  it('copies the page tables of two small areas that share a PMD', () => {
    const parent = m.spawn();
    const a = parent.mmap(2 * PG);
    const b = parent.mmap(2 * PG);
    expect(Math.floor((b - USER_BASE) / THP)).toBe(Math.floor((a - USER_BASE) / THP));
    parent.write(a, filled(4, 1));
    parent.write(b, filled(4, 2));
    const child = parent.fork();
    m.checkInvariants();
    expect(child.pageInfo(a)!.pfn).toBe(parent.pageInfo(a)!.pfn);
    expect(child.pageInfo(b)!.pfn).toBe(parent.pageInfo(b)!.pfn);
    expect(sameBytes(child.read(a, 4), filled(4, 1))).toBe(true);
    expect(sameBytes(child.read(b, 4), filled(4, 2))).toBe(true);
    child.exit();
    m.checkInvariants();
  });
});

describe('mlock', () => {
  it('populates every page of the area and counts it in nr_mlock', () => {
    const p = m.spawn();
    const before = free();
    const a = p.mmap(40 * PG, { mlock: true });
    expect(free()).toBe(before - 40);
    for (let i = 0; i < 40; i++)
      expect(p.pageInfo(a + i * PG)).toMatchObject({ zeroPage: false, writable: true });
    expect(m.vmstat().nr_mlock).toBe(40);
    expect(m.vmstat().nr_unevictable).toBe(40);
    const t = p.mmap(THP, { mlock: true, thp: 'always' });
    expect(p.pageInfo(t)).toMatchObject({ huge: true });
    expect(m.vmstat().nr_mlock).toBe(40 + 512);
    p.munmap(a, 40 * PG);
    p.munmap(t, THP);
    expect(m.vmstat().nr_mlock).toBe(0);
    expect(free()).toBe(before);
  });
});

describe('munmap', () => {
  const setup = () => {
    const p = m.spawn();
    const a = p.mmap(10 * PG);
    const A = pattern(10, 3);
    p.write(a, A);
    return { p, a, A };
  };

  it.each([
    ['front', 0, 2],
    ['back', 8, 2],
    ['middle', 4, 2],
  ])('unmapping the %s of an area frees those pages and keeps the rest', (_, first, n) => {
    const { p, a, A } = setup();
    const before = free();
    p.munmap(a + first * PG, n * PG);
    expect(free()).toBe(before + n);
    for (let i = 0; i < 10; i++) {
      if (i >= first && i < first + n) {
        expect(p.pageInfo(a + i * PG)).toBeNull();
        expectErrno(() => p.read(a + i * PG, 1), EFAULT, 'EFAULT');
      } else {
        expect(sameBytes(p.read(a + i * PG, PG), A.subarray(i * PG, (i + 1) * PG))).toBe(true);
      }
    }
    expect(p.maps().length).toBe(first === 4 ? 2 : 1);
    m.checkInvariants();
    // The rest still faults normally.
    p.write(a + (first === 0 ? 9 : 0) * PG, filled(1, 9));
  });

  it('a partial unmap of a PMD-mapped THP splits the PMD; the unmapped part is freed when the folio is split', () => {
    const p = m.spawn();
    const a = p.mmap(THP, { thp: 'always' });
    const A = pattern(512, 4);
    p.write(a, A);
    const head = p.pageInfo(a)!.pfn;
    const before = free();
    const splits = m.vmstat().thp_split_pmd;
    p.munmap(a, THP / 2);
    expect(m.vmstat().thp_split_pmd).toBe(splits + 1);
    expect(p.pageInfo(a)).toBeNull();
    expect(p.pageInfo(a + 256 * PG)).toMatchObject({ pfn: head + 256, headPfn: head, order: 9, huge: false });
    expect(sameBytes(p.read(a + THP / 2, THP / 2), A.subarray(THP / 2))).toBe(true);
    // Like the kernel, the partially mapped folio stays whole (deferred split) until it is split.
    expect(free()).toBe(before);
    expect(m.kernel.pages.mapcount[head]).toBe(256);
    m.checkInvariants();
    m.splitFolio(head, 0);
    expect(free()).toBe(before + 256);
    expect(sameBytes(p.read(a + THP / 2, THP / 2), A.subarray(THP / 2))).toBe(true);
    m.checkInvariants();
    p.munmap(a + THP / 2, THP / 2);
    expect(free()).toBe(before + 512);
    expect(p.maps()).toEqual([]);
  });

  it('a partial unmap of a huge zero page maps the rest with zero PTEs', () => {
    const p = m.spawn();
    const a = p.mmap(THP, { thp: 'always' });
    p.read(a, 1);
    const before = free();
    const splits = m.vmstat().thp_split_pmd;
    p.munmap(a + THP - PG, PG);
    // __split_huge_pmd_locked counts the huge zero page's split too.
    expect(m.vmstat().thp_split_pmd).toBe(splits + 1);
    expect(p.pageInfo(a)).toMatchObject({ zeroPage: true, huge: false });
    expect(p.pageInfo(a + THP - PG)).toBeNull();
    expect(free()).toBe(before);
    expect(allZero(p.read(a, THP - PG))).toBe(true);
  });
});

describe('bad addresses and arguments', () => {
  it('accesses outside every VMA fault with EFAULT', () => {
    const p = m.spawn();
    const a = p.mmap(2 * PG);
    const b = p.mmap(2 * PG);
    expectErrno(() => p.read(USER_BASE - PG, 1), EFAULT, 'EFAULT');
    expectErrno(() => p.write(a + 2 * PG, filled(1, 1)), EFAULT);
    // The gap between two areas.
    expect(b).toBeGreaterThan(a + 2 * PG);
    expectErrno(() => p.read(b - PG, 1), EFAULT);
    // A read running off the end of an area.
    expectErrno(() => p.read(b + PG, 2 * PG), EFAULT);
    expectErrno(() => p.touch(b + 2 * PG, 1), EFAULT);
    p.munmap(a, 2 * PG);
    expectErrno(() => p.read(a, 1), EFAULT);
  });

  it('rejects bad mmap and munmap arguments with EINVAL', () => {
    const p = m.spawn();
    for (const len of [0, -PG, 1.5, Number.NaN]) expectErrno(() => p.mmap(len), EINVAL, 'EINVAL');
    for (const thp of ['8KiB', '3KiB', '4MiB', '1.5KiB']) expectErrno(() => p.mmap(PG, { thp }), EINVAL);
    expectErrno(() => p.mmap(PG, { node: 2 }), EINVAL);
    expectErrno(() => p.mmap(PG, { node: 0, policy: { mode: 'bind', nodes: [1] } }), EINVAL);
    expectErrno(() => p.mmap(PG, { policy: { mode: 'interleave', nodes: [] } }), EINVAL);
    const a = p.mmap(4 * PG);
    expectErrno(() => p.munmap(a + 1, PG), EINVAL);
    expectErrno(() => p.munmap(a, 0), EINVAL);
    expectErrno(() => p.munmap(0, PG), EINVAL);
    expect(p.maps().length).toBe(1);
  });
});
