import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { EAGAIN, EINVAL } from '../src/errno.js';
import { splitLayout } from '../src/huge_memory.js';
import { createMachine, type Machine } from '../src/machine.js';
import { PAGE_SIZE } from '../src/mmzone.js';
import type { Process } from '../src/process.js';
import { expectErrno, pattern, sameBytes } from './helpers.js';

const PG = PAGE_SIZE;
const THP = 2 << 20;

let m: Machine;
beforeEach(async () => {
  m = await createMachine({ nodes: [{ memory: '32MiB' }], prefault: false });
});
afterEach(async () => {
  m.checkInvariants();
  await m.close();
});

/** A PMD-mapped THP filled with a byte pattern (no zero-filled page). */
function thpWithPattern(p: Process, seed: number, shared = false) {
  const a = p.mmap(THP, { thp: 'always', shared });
  const data = pattern(512, seed);
  p.write(a, data);
  const info = p.pageInfo(a)!;
  expect(info).toMatchObject({ huge: true, order: 9 });
  return { a, data, head: info.pfn };
}

/** Folios backing [a, a + 2 MiB) as order → count, read through the page tables (pagemap + kpageflags). */
function folioCensus(p: Process, a: number, head: number) {
  const counts = new Map<number, number>();
  const seen = new Set<number>();
  for (let i = 0; i < 512; i++) {
    const info = p.pageInfo(a + i * PG)!;
    expect(info.pfn).toBe(head + i);
    expect(info.huge).toBe(false);
    expect(info.headPfn % (1 << info.order)).toBe(0);
    if (!seen.has(info.headPfn)) {
      seen.add(info.headPfn);
      counts.set(info.order, (counts.get(info.order) ?? 0) + 1);
    }
  }
  return Object.fromEntries([...counts].sort((x, y) => x[0] - y[0]));
}

const anonOrders = [0, 2, 3, 4, 5, 6, 7, 8];

describe('uniform split of an anonymous THP', () => {
  it.each(anonOrders)('to order %i gives 512 >> i folios of order i and keeps the content', (order) => {
    const p = m.spawn();
    const { a, data, head } = thpWithPattern(p, order + 1);
    const before = m.vmstat();
    const free = m.freePages(0);
    const heads = m.splitFolio(head, order);
    expect(heads.length).toBe(512 >> order);
    expect(heads).toEqual(Array.from({ length: 512 >> order }, (_, i) => head + (i << order)));
    expect(folioCensus(p, a, head)).toEqual({ [order]: 512 >> order });
    for (const h of heads) {
      expect(m.kernel.pages.mapcount[h]).toBe(1 << order);
      expect(m.kernel.pages.refcount[h]).toBe(1 << order);
    }
    expect(sameBytes(p.read(a, THP), data)).toBe(true);
    expect(m.freePages(0)).toBe(free);
    const after = m.vmstat();
    expect(after.thp_split_page).toBe(before.thp_split_page + 1);
    expect(after.thp_split_pmd).toBe(before.thp_split_pmd + 1);
    expect(after.nr_anon_transparent_hugepages).toBe(0);
    m.checkInvariants();
    // The pieces are ordinary memory: a write lands in place and unmapping frees everything.
    p.write(a + 7 * PG, new Uint8Array([42]));
    expect(p.pageInfo(a + 7 * PG)!.pfn).toBe(head + 7);
    p.munmap(a, THP);
    expect(m.freePages(0)).toBe(free + 512);
  });

  it('refuses order 1 for anonymous memory with EINVAL and leaves the THP alone', () => {
    const p = m.spawn();
    const { a, data, head } = thpWithPattern(p, 9);
    expectErrno(() => m.splitFolio(head, 1), EINVAL, 'EINVAL');
    expect(p.pageInfo(a)).toMatchObject({ huge: true, pfn: head });
    expect(sameBytes(p.read(a, THP), data)).toBe(true);
  });

  it('rejects orders that are not smaller than the folio and pfns outside large folios', () => {
    const p = m.spawn();
    const { head } = thpWithPattern(p, 10);
    expectErrno(() => m.splitFolio(head, 9), EINVAL);
    expectErrno(() => m.splitFolio(head, -1), EINVAL);
    expectErrno(() => m.splitFolio(head, 0, { at: head + 512 }), EINVAL);
    const small = p.mmap(PG);
    p.touch(small, PG);
    expectErrno(() => m.splitFolio(p.pageInfo(small)!.pfn, 0), EINVAL);
    expectErrno(() => m.splitFolio(m.nrPages, 0), EINVAL);
  });

  it('refuses a folio with an extra reference (EAGAIN)', () => {
    const p = m.spawn();
    const { a, head } = thpWithPattern(p, 11);
    m.kernel.pages.refcount[head]!++;
    expectErrno(() => m.splitFolio(head, 0), EAGAIN, 'EAGAIN');
    expect(p.pageInfo(a)).toMatchObject({ huge: true });
    m.kernel.pages.refcount[head]!--;
  });

  it('splits a THP mapped by two processes after fork and keeps both views', () => {
    const parent = m.spawn();
    const { a, data, head } = thpWithPattern(parent, 12);
    const child = parent.fork();
    const heads = m.splitFolio(head, 0);
    expect(heads.length).toBe(512);
    for (const p of [parent, child]) {
      expect(folioCensus(p, a, head)).toEqual({ 0: 512 });
      expect(sameBytes(p.read(a, THP), data)).toBe(true);
    }
    expect(m.kernel.pages.mapcount[head + 100]).toBe(2);
    m.checkInvariants();
    child.write(a, new Uint8Array([0]));
    expect(child.pageInfo(a)!.pfn).not.toBe(head);
    expect(sameBytes(parent.read(a, THP), data)).toBe(true);
  });
});

describe('non-uniform (buddy-style) split', () => {
  // Reference §2.3: one folio of each order N+1..8 and two of order N. Order-1 anonymous folios
  // do not exist, so for anon memory and N = 0 the order-2 piece holding the offset is split
  // straight into four order-0 folios.
  const expected = (n: number, anon: boolean): Record<number, number> => {
    const out: Record<number, number> = {};
    if (anon && n === 0) {
      for (let o = 2; o <= 8; o++) out[o] = 1;
      out[0] = 4;
    } else {
      for (let o = n + 1; o <= 8; o++) out[o] = 1;
      out[n] = 2;
    }
    return out;
  };

  it.each(anonOrders)('of an anonymous THP to order %i at an offset', (order) => {
    const p = m.spawn();
    const { a, data, head } = thpWithPattern(p, 20 + order);
    const at = head + 300;
    const free = m.freePages(0);
    const heads = m.splitFolio(head, order, { at });
    const census = folioCensus(p, a, head);
    expect(census).toEqual(expected(order, true));
    expect(heads.length).toBe(Object.values(census).reduce((s, c) => s + c, 0));
    const total = Object.entries(census).reduce((s, [o, c]) => s + (c << Number(o)), 0);
    expect(total).toBe(512);
    // The page at the offset ends up in a folio of the target order.
    expect(p.pageInfo(a + 300 * PG)).toMatchObject({ order, headPfn: at & ~((1 << order) - 1) });
    expect(sameBytes(p.read(a, THP), data)).toBe(true);
    expect(m.freePages(0)).toBe(free);
    m.checkInvariants();
  });

  it('refuses order 1 for anonymous memory', () => {
    const p = m.spawn();
    const { head } = thpWithPattern(p, 30);
    expectErrno(() => m.splitFolio(head, 1, { at: head + 3 }), EINVAL);
  });

  it.each([0, 1, 4])('of a shmem (page cache) THP to order %i at an offset', (order) => {
    const p = m.spawn();
    const { a, data, head } = thpWithPattern(p, 40 + order, true);
    const child = p.fork();
    m.splitFolio(head, order, { at: head + 5 });
    expect(folioCensus(p, a, head)).toEqual(expected(order, false));
    expect(p.pageInfo(a + 5 * PG)!.order).toBe(order);
    expect(sameBytes(p.read(a, THP), data)).toBe(true);
    expect(sameBytes(child.read(a, THP), data)).toBe(true);
    m.checkInvariants();
    child.write(a + 5 * PG, new Uint8Array([0]));
    expect(p.read(a + 5 * PG, 1)[0]).toBe(0);
  });

  it('lays out the pieces in address order and covers the folio exactly (splitLayout)', () => {
    for (const anon of [true, false]) {
      for (let n = 0; n < 9; n++) {
        if (anon && n === 1) continue;
        for (const off of [0, 1, 255, 256, 300, 511]) {
          const layout = splitLayout(1024, 9, n, 1024 + off, anon);
          let next = 1024;
          for (const [pfn, o] of layout) {
            expect(pfn).toBe(next);
            expect(pfn % (1 << o)).toBe(0);
            next += 1 << o;
          }
          expect(next).toBe(1024 + 512);
          const census: Record<number, number> = {};
          for (const [, o] of layout) census[o] = (census[o] ?? 0) + 1;
          expect(census).toEqual(expected(n, anon));
          const holder = layout.find(([pfn, o]) => 1024 + off >= pfn && 1024 + off < pfn + (1 << o))!;
          expect(holder[1]).toBe(n);
        }
      }
    }
  });
});
