import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { folioTestPartiallyMapped } from '../src/huge_memory.js';
import type { Machine } from '../src/machine.js';
import { MPOL_MF_MOVE } from '../src/mempolicy.js';
import { PAGE_SIZE } from '../src/mmzone.js';
import { PG_partially_mapped } from '../src/page.js';
import type { Process } from '../src/process.js';
import { machinesCheckedAfterEach, pattern, sameBytes } from './helpers.js';

/**
 * Issue 17, item 2: partially mapped large folios. __folio_remove_rmap queues an anon large folio
 * with deferred_split_folio(folio, partially_mapped = true) when some of its pages lose their last
 * mapping while others stay mapped; migrate_pages_batch() splits such a folio
 * (folio_test_partially_mapped) before unmapping it, counting it as a failed and split large
 * folio (nr_thp_failed, nr_thp_split, nr_split). The split pieces go on the split list: the mapped
 * ones migrate, the unmapped ones hold only the list's reference and are freed by
 * migrate_folio_unmap's "freed from under us" path, which counts them as succeeded.
 */

const PG = PAGE_SIZE;
const THP = 2 << 20;
const machine = machinesCheckedAfterEach();

const COUNTERS = [
  'thp_split_pmd',
  'thp_deferred_split_page',
  'thp_split_page',
  'thp_migration_success',
  'thp_migration_fail',
  'thp_migration_split',
  'pgmigrate_success',
  'pgmigrate_fail',
] as const;

function counters(m: Machine): Record<(typeof COUNTERS)[number], number> {
  const v = m.vmstat();
  return Object.fromEntries(COUNTERS.map((n) => [n, v[n]])) as Record<(typeof COUNTERS)[number], number>;
}

function deltaOf(m: Machine, before: ReturnType<typeof counters>) {
  const now = counters(m);
  return Object.fromEntries(COUNTERS.map((n) => [n, now[n] - before[n]]));
}

/** A private area of `pages` pages on node 0 backed by one folio of that size, filled with a pattern. */
function largeFolio(p: Process, pages: number, seed: number) {
  const a = p.mmap(pages * PG, { thp: pages === 512 ? 'always' : `${pages * 4}KiB`, node: 0 });
  const data = pattern(pages, seed);
  p.write(a, data);
  const info = p.pageInfo(a)!;
  expect(info.order).toBe(Math.log2(pages));
  expect(info.node).toBe(0);
  return { a, data, head: info.pfn };
}

/** The node of every page of [a, a + pages) by move_pages(2)'s query mode. */
async function nodesOf(p: Process, a: number, pages: number): Promise<number[]> {
  const addrs = Array.from({ length: pages }, (_, i) => a + i * PG);
  const r = await p.movePages(0, addrs, null, 0);
  expect(r.ret).toBe(0);
  return r.status;
}

const migrateLine = (m: Machine) => m.trace.events('mm_migrate_pages').map((e) => e.text);

describe('deferred split state (__folio_remove_rmap, deferred_split_folio)', () => {
  it('munmap of half a THP marks it partially mapped and counts thp_deferred_split_page once', async () => {
    const m = await machine();
    const p = m.spawn({ node: 0 });
    const { a, head } = largeFolio(p, 512, 1);
    const before = counters(m);
    expect(folioTestPartiallyMapped(m.kernel, head)).toBe(false);
    p.munmap(a + 256 * PG, 64 * PG);
    expect(folioTestPartiallyMapped(m.kernel, head)).toBe(true);
    // A second partial unmap of the same folio: already on the list, not counted again.
    p.munmap(a + 400 * PG, PG);
    expect(deltaOf(m, before)).toMatchObject({ thp_split_pmd: 1, thp_deferred_split_page: 1 });
    expect(m.kernel.pages.describe(head + 1)).toMatch(/partially_mapped/);
  });

  it('a whole munmap frees the folio without marking it; an mTHP is marked without the THP counter', async () => {
    const m = await machine();
    const p = m.spawn({ node: 0 });
    const thp = largeFolio(p, 512, 2);
    const before = counters(m);
    p.munmap(thp.a, THP);
    expect(deltaOf(m, before)).toMatchObject({ thp_deferred_split_page: 0 });
    expect(m.kernel.pages.refcount[thp.head]).toBe(0);
    const mthp = largeFolio(p, 16, 3);
    p.munmap(mthp.a + 12 * PG, 4 * PG);
    expect(folioTestPartiallyMapped(m.kernel, mthp.head)).toBe(true);
    // count_vm_event(THP_DEFERRED_SPLIT_PAGE) is for PMD-mappable folios only.
    expect(deltaOf(m, before)).toMatchObject({ thp_deferred_split_page: 0 });
  });

  it('a page another process still maps is not unmapped: fork, then the child’s exit decides', async () => {
    const m = await machine();
    const parent = m.spawn({ node: 0 });
    const { a, head } = largeFolio(parent, 512, 4);
    const child = parent.fork();
    const before = counters(m);
    // The parent drops half its mapping; the child's PMD still maps every page.
    parent.munmap(a + 256 * PG, 256 * PG);
    expect(folioTestPartiallyMapped(m.kernel, head)).toBe(false);
    // exit_mmap zaps the child's PMD: pages 256..511 lose their last mapping.
    child.exit();
    expect(folioTestPartiallyMapped(m.kernel, head)).toBe(true);
    expect(deltaOf(m, before)).toMatchObject({ thp_split_pmd: 1, thp_deferred_split_page: 1 });
  });

  it('splitting or freeing the folio clears the mark; a new THP migrates whole', async () => {
    const m = await machine();
    const p = m.spawn({ node: 0 });
    const first = largeFolio(p, 512, 5);
    p.munmap(first.a + 500 * PG, 12 * PG);
    expect(m.kernel.pages.flags[first.head + 1]! & PG_partially_mapped).toBe(PG_partially_mapped);
    p.munmap(first.a, 500 * PG);
    expect(m.kernel.pages.flags[first.head + 1]! & PG_partially_mapped).toBe(0);
    const split = largeFolio(p, 512, 11);
    p.munmap(split.a, PG);
    expect(folioTestPartiallyMapped(m.kernel, split.head)).toBe(true);
    m.splitFolio(split.head + 1, 0);
    expect(m.kernel.pages.flags[split.head + 1]! & PG_partially_mapped).toBe(0);
    const again = largeFolio(p, 512, 6);
    expect(folioTestPartiallyMapped(m.kernel, again.head)).toBe(false);
    const before = counters(m);
    const r = await p.movePages(0, [again.a], [1], MPOL_MF_MOVE);
    expect(r).toMatchObject({ ret: 0, status: [1] });
    expect(deltaOf(m, before)).toMatchObject({ thp_migration_success: 1, thp_migration_split: 0 });
    expect(sameBytes(p.read(again.a, THP), again.data)).toBe(true);
  });
});

describe('migrate_pages_batch splits a partially mapped folio before migrating it', () => {
  it('THP with half its pages unmapped: only the mapped half reaches node 1 (move_pages)', async () => {
    const m = await machine();
    const p = m.spawn({ node: 0 });
    const { a, data, head } = largeFolio(p, 512, 7);
    p.munmap(a + 256 * PG, 256 * PG);
    const free0 = m.freePages(0);
    const free1 = m.freePages(1);
    const before = counters(m);
    m.trace.clear();
    const r = await p.movePages(0, [a + 10 * PG], [1], MPOL_MF_MOVE);
    expect(r).toMatchObject({ ret: 0, status: [1] });
    expect(deltaOf(m, before)).toEqual({
      thp_split_pmd: 0,
      thp_deferred_split_page: 0,
      thp_split_page: 1,
      thp_migration_success: 0,
      thp_migration_fail: 1,
      thp_migration_split: 1,
      // 256 pages migrated plus 256 unmapped pieces freed on the split list (counted as succeeded).
      pgmigrate_success: 512,
      pgmigrate_fail: 0,
    });
    expect(migrateLine(m)).toEqual([
      'nr_succeeded=512 nr_failed=0 nr_thp_succeeded=0 nr_thp_failed=1 nr_thp_split=1 nr_split=1 mode=MIGRATE_SYNC reason=syscall_or_cpuset',
    ]);
    // Node 1 holds exactly the mapped pages; node 0 got the whole 2 MiB back.
    expect(free1 - m.freePages(1)).toBe(256);
    expect(m.freePages(0) - free0).toBe(512);
    expect(m.kernel.pages.refcount[head]).toBe(0);
    expect(await nodesOf(p, a, 256)).toEqual(new Array(256).fill(1));
    expect(p.pageInfo(a)).toMatchObject({ node: 1, order: 0, huge: false });
    expect(sameBytes(p.read(a, 256 * PG), data.subarray(0, 256 * PG))).toBe(true);
  });

  it('mTHP (64 KiB) with 4 of 16 pages unmapped: nr_split=1 without the THP counters', async () => {
    const m = await machine();
    const p = m.spawn({ node: 0 });
    const { a, data } = largeFolio(p, 16, 8);
    p.munmap(a + 12 * PG, 4 * PG);
    const free1 = m.freePages(1);
    const before = counters(m);
    m.trace.clear();
    const r = await m.migrateFolios([p.pageInfo(a)!.pfn], { node: 1, reason: 'syscall_or_cpuset' });
    expect(r).toMatchObject({
      ret: 0,
      nrSucceeded: 16,
      nrFailed: 0,
      nrThpFailed: 0,
      nrThpSplit: 0,
      nrSplit: 1,
    });
    expect(deltaOf(m, before)).toMatchObject({
      thp_split_page: 0,
      thp_migration_fail: 0,
      thp_migration_split: 0,
      pgmigrate_success: 16,
      pgmigrate_fail: 0,
    });
    expect(migrateLine(m)).toEqual([
      'nr_succeeded=16 nr_failed=0 nr_thp_succeeded=0 nr_thp_failed=0 nr_thp_split=0 nr_split=1 mode=MIGRATE_SYNC reason=syscall_or_cpuset',
    ]);
    expect(free1 - m.freePages(1)).toBe(12);
    expect(await nodesOf(p, a, 12)).toEqual(new Array(12).fill(1));
    expect(sameBytes(p.read(a, 12 * PG), data.subarray(0, 12 * PG))).toBe(true);
  });

  it('the split after the child’s exit: the parent’s half moves (migrate_pages(2))', async () => {
    const m = await machine();
    const parent = m.spawn({ node: 0 });
    const { a, data } = largeFolio(parent, 512, 9);
    const child = parent.fork();
    parent.munmap(a + 256 * PG, 256 * PG);
    child.exit();
    const free1 = m.freePages(1);
    const before = counters(m);
    const r = await parent.migratePages(0, [0], [1]);
    expect(r).toEqual({ ret: 0 });
    expect(deltaOf(m, before)).toMatchObject({ thp_migration_split: 1, thp_migration_fail: 1 });
    expect(free1 - m.freePages(1)).toBe(256);
    expect(sameBytes(parent.read(a, 256 * PG), data.subarray(0, 256 * PG))).toBe(true);
  });

  it('a pinned folio cannot be split (extra references): it stays whole and fails', async () => {
    const m = await machine();
    const p = m.spawn({ node: 0 });
    const { a, data, head } = largeFolio(p, 512, 10);
    p.munmap(a + 256 * PG, 256 * PG);
    const unpin = m.pinFolio(head);
    const before = counters(m);
    const r = await p.movePages(0, [a], [1], MPOL_MF_MOVE);
    // One page not migrated (the pinned folio), nothing split.
    expect(r.ret).toBe(1);
    expect(deltaOf(m, before)).toMatchObject({
      thp_split_page: 0,
      thp_migration_split: 0,
      thp_migration_fail: 1,
      pgmigrate_fail: 512,
      pgmigrate_success: 0,
    });
    expect(p.pageInfo(a)).toMatchObject({ node: 0, order: 9, headPfn: head });
    expect(folioTestPartiallyMapped(m.kernel, head)).toBe(true);
    unpin();
    expect(sameBytes(p.read(a, 256 * PG), data.subarray(0, 256 * PG))).toBe(true);
  });

  it('property: whatever part of a THP is unmapped, exactly the mapped pages move, bytes intact', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.uniqueArray(fc.integer({ min: 0, max: 31 }), { minLength: 1, maxLength: 31 }),
        async (holes) => {
          const m = await machine();
          const p = m.spawn({ node: 0 });
          const { a, data } = largeFolio(p, 512, holes.length);
          // Unmap some of the 32 runs of 16 pages (never all of them).
          for (const h of holes) p.munmap(a + h * 16 * PG, 16 * PG);
          const mapped = 512 - holes.length * 16;
          const free0 = m.freePages(0);
          const free1 = m.freePages(1);
          const before = counters(m);
          const r = await p.migratePages(0, [0], [1]);
          expect(r).toEqual({ ret: 0 });
          expect(deltaOf(m, before)).toMatchObject({
            thp_migration_split: 1,
            thp_migration_success: 0,
            pgmigrate_success: 512,
          });
          expect(free1 - m.freePages(1)).toBe(mapped);
          expect(m.freePages(0) - free0).toBe(512);
          for (let run = 0; run < 32; run++) {
            if (holes.includes(run)) continue;
            const at = a + run * 16 * PG;
            expect(await nodesOf(p, at, 16)).toEqual(new Array(16).fill(1));
            const want = data.subarray(run * 16 * PG, (run + 1) * 16 * PG);
            expect(sameBytes(p.read(at, 16 * PG), want)).toBe(true);
          }
          m.checkInvariants();
        },
      ),
      { numRuns: 12 },
    );
  });
});
