import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { splitFolio } from '../src/huge_memory.js';
import { createMachine, type Machine } from '../src/machine.js';
import {
  MAX_PAGE_ORDER,
  MIGRATE_ISOLATE,
  MIGRATE_MOVABLE,
  MIGRATE_RECLAIMABLE,
  MIGRATE_TYPES,
  MIGRATE_UNMOVABLE,
  NR_PAGE_ORDERS,
} from '../src/mmzone.js';
import { PG_buddy } from '../src/page.js';
import type { Zone } from '../src/zone.js';

/** Every free block of a zone as [pfn, order], walked from its free lists, sorted by pfn. */
function freeBlocks(m: Machine, z: Zone): [number, number][] {
  const p = m.kernel.pages;
  const out: [number, number][] = [];
  for (let o = 0; o < NR_PAGE_ORDERS; o++) {
    for (let mt = 0; mt < MIGRATE_TYPES; mt++) {
      for (let pfn = z.freeHead[o * MIGRATE_TYPES + mt]!; pfn >= 0; pfn = p.next[pfn]!) out.push([pfn, o]);
    }
  }
  return out.sort((a, b) => a[0] - b[0]);
}

/**
 * The buddy allocator's free blocks for a set of free frames, computed independently: a naturally
 * aligned block of order o (o <= MAX_PAGE_ORDER) is one free block exactly when all its frames are
 * free and its parent block (order o + 1) is not entirely free.
 */
function expectedBlocks(free: Uint8Array, start: number, nr: number): [number, number][] {
  const out: [number, number][] = [];
  const visit = (pfn: number, order: number) => {
    let all = true;
    for (let i = pfn; i < pfn + (1 << order); i++) if (!free[i - start]) all = false;
    if (all) out.push([pfn, order]);
    else if (order > 0) {
      visit(pfn, order - 1);
      visit(pfn + (1 << (order - 1)), order - 1);
    }
  };
  for (let pfn = start; pfn < start + nr; pfn += 1 << MAX_PAGE_ORDER) visit(pfn, MAX_PAGE_ORDER);
  return out;
}

type Op =
  | { kind: 'alloc'; order: number; nid: number; mt: number }
  | { kind: 'free'; pick: number }
  | { kind: 'split'; pick: number; newOrder: number; at: number | null };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 5,
    arbitrary: fc.record({
      kind: fc.constant('alloc' as const),
      order: fc.integer({ min: 0, max: MAX_PAGE_ORDER }),
      nid: fc.integer({ min: 0, max: 1 }),
      mt: fc.constantFrom(MIGRATE_UNMOVABLE, MIGRATE_MOVABLE, MIGRATE_RECLAIMABLE),
    }),
  },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('free' as const), pick: fc.nat() }) },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('split' as const),
      pick: fc.nat(),
      newOrder: fc.nat(),
      at: fc.option(fc.nat(), { nil: null }),
    }),
  },
);

const twoNodes = { nodes: [{ memory: '8MiB' }, { memory: '8MiB' }], prefault: false };

function totalFree(m: Machine): number {
  return m.kernel.zones.reduce((s, z) => s + z.freePages, 0);
}

describe('buddy allocator (properties)', () => {
  it('keeps the invariants through alloc/free/split and restores buddyinfo when all is freed', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(opArb, { minLength: 1, maxLength: 60 }), async (ops) => {
        const m = await createMachine(twoNodes);
        try {
          const k = m.kernel;
          const initial = m.procfs.buddyinfo();
          const live: { head: number; order: number }[] = [];
          for (const op of ops) {
            if (op.kind === 'alloc') {
              const before = totalFree(m);
              const head = k.allocFolio({ order: op.order, nid: op.nid, mt: op.mt });
              if (head >= 0) {
                expect(head % (1 << op.order)).toBe(0);
                expect(k.pages.refcount[head]).toBe(1);
                expect(k.folioOrder(head)).toBe(op.order);
                expect(totalFree(m)).toBe(before - (1 << op.order));
                live.push({ head, order: op.order });
              } else {
                expect(totalFree(m)).toBe(before);
              }
            } else if (op.kind === 'free') {
              if (live.length === 0) continue;
              const [f] = live.splice(op.pick % live.length, 1);
              const before = totalFree(m);
              k.folioPut(f!.head);
              expect(totalFree(m)).toBe(before + (1 << f!.order));
            } else {
              const large = live.filter((f) => f.order > 0);
              if (large.length === 0) continue;
              const f = large[op.pick % large.length]!;
              const nr = 1 << f.order;
              const newOrder = op.newOrder % f.order;
              const at = op.at === null ? undefined : f.head + (op.at % nr);
              const before = totalFree(m);
              // An allocated, unmapped folio: the caller's reference is its only one.
              const heads = splitFolio(k, f.head, newOrder, { at, callerRefs: 1 });
              // Only the piece holding the caller's reference survives; the rest go back to the
              // buddy allocator (the split's final folio_put of every other piece).
              const keep = (at ?? f.head) & ~((1 << newOrder) - 1);
              expect(heads).toEqual([keep]);
              expect(k.pages.refcount[keep]).toBe(1);
              expect(k.folioOrder(keep)).toBe(newOrder);
              expect(totalFree(m)).toBe(before + nr - (1 << newOrder));
              live.splice(live.indexOf(f), 1, { head: keep, order: newOrder });
            }
            m.checkInvariants();
            const used = live.reduce((s, f) => s + (1 << f.order), 0);
            expect(totalFree(m) + used).toBe(m.nrPages);
          }
          for (const f of live) k.folioPut(f.head);
          m.checkInvariants();
          expect(m.procfs.buddyinfo()).toBe(initial);
        } finally {
          await m.close();
        }
      }),
      { numRuns: 80 },
    );
  });

  it('merges a freed page exactly with free buddies of the same order', async () => {
    // One 4 MiB zone (1024 frames, two pageblocks); min_free_kbytes 0 lets every frame be taken.
    const m = await createMachine({
      nodes: [{ memory: '4MiB' }],
      prefault: false,
      sysctl: { 'vm.min_free_kbytes': 0 },
    });
    try {
      const k = m.kernel;
      const z = k.zones[0]!;
      const nr = z.spanned;
      const pfns: number[] = [];
      for (let i = 0; i < nr; i++) {
        const pfn = k.allocFolio({ order: 0, nid: 0 });
        expect(pfn).toBeGreaterThanOrEqual(0);
        pfns.push(pfn);
      }
      expect(new Set(pfns).size).toBe(nr);
      expect(k.allocFolio({ order: 0, nid: 0 })).toBe(-1);
      expect(freeBlocks(m, z)).toEqual([]);
      m.checkInvariants();

      await fc.assert(
        fc.property(
          fc.uniqueArray(fc.integer({ min: 0, max: nr - 1 }), { minLength: 1, maxLength: nr }),
          (toFree) => {
            const free = new Uint8Array(nr);
            try {
              for (const pfn of toFree) {
                k.folioPut(z.startPfn + pfn);
                free[pfn] = 1;
                expect(freeBlocks(m, z)).toEqual(expectedBlocks(free, z.startPfn, nr));
              }
              m.checkInvariants();
              const counts = new Array<number>(NR_PAGE_ORDERS).fill(0);
              for (const [, o] of expectedBlocks(free, z.startPfn, nr)) counts[o]!++;
              for (let o = 0; o < NR_PAGE_ORDERS; o++) expect(k.nrFreeBlocks(z, o)).toBe(counts[o]);
            } finally {
              // Take the freed frames back so the next run starts from a full zone.
              for (let i = 0; i < toFree.length; i++)
                expect(k.allocFolio({ order: 0, nid: 0 })).toBeGreaterThanOrEqual(0);
            }
            expect(z.freePages).toBe(0);
          },
        ),
        { numRuns: 60 },
      );
    } finally {
      await m.close();
    }
  });

  it('follows the reference example: pfn 8 order 1 + free pfn 10 order 1 → order 2, + pfn 12 order 2 → order 3', async () => {
    const m = await createMachine({
      nodes: [{ memory: '4MiB' }],
      prefault: false,
      sysctl: { 'vm.min_free_kbytes': 0 },
    });
    try {
      const k = m.kernel;
      const z = k.zones[0]!;
      const order1: number[] = [];
      for (let i = 0; i < 512; i++) order1.push(k.allocFolio({ order: 1, nid: 0 }));
      const at = (pfn: number) => order1.indexOf(pfn);
      expect(at(8)).toBeGreaterThanOrEqual(0);
      expect(at(10)).toBeGreaterThanOrEqual(0);
      expect(at(12)).toBeGreaterThanOrEqual(0);
      expect(at(14)).toBeGreaterThanOrEqual(0);
      k.folioPut(10);
      expect(freeBlocks(m, z)).toEqual([[10, 1]]);
      k.folioPut(8);
      expect(freeBlocks(m, z)).toEqual([[8, 2]]);
      // 12..15 as order 1 + order 1: freeing 12 alone does not merge with 8 (different order).
      k.folioPut(12);
      expect(freeBlocks(m, z)).toEqual([
        [8, 2],
        [12, 1],
      ]);
      k.folioPut(14);
      expect(freeBlocks(m, z)).toEqual([[8, 3]]);
      m.checkInvariants();
    } finally {
      await m.close();
    }
  });

  it('merges across pageblocks of mergeable types (taking the freed type) but never with an isolated block', async () => {
    const m = await createMachine({
      nodes: [{ memory: '4MiB' }],
      prefault: false,
      sysctl: { 'vm.min_free_kbytes': 0 },
    });
    try {
      const k = m.kernel;
      const z = k.zones[0]!;
      // Fresh: one order-10 block over the two MOVABLE pageblocks.
      expect(freeBlocks(m, z)).toEqual([[0, 10]]);
      const low = k.allocFolio({ order: 9, nid: 0, mt: MIGRATE_MOVABLE });
      expect(low).toBe(0);
      expect(freeBlocks(m, z)).toEqual([[512, 9]]);

      // The upper pageblock becomes UNMOVABLE: the order-9 buddies still merge, as MOVABLE.
      z.movePageblock(512, MIGRATE_UNMOVABLE);
      expect(k.pageblocks.migratetype(512)).toBe(MIGRATE_UNMOVABLE);
      m.checkInvariants();
      k.folioPut(low);
      expect(freeBlocks(m, z)).toEqual([[0, 10]]);
      expect(k.pageblocks.migratetype(0)).toBe(MIGRATE_MOVABLE);
      expect(k.pageblocks.migratetype(512)).toBe(MIGRATE_MOVABLE);
      m.checkInvariants();

      // Isolated upper pageblock: no merge.
      const again = k.allocFolio({ order: 9, nid: 0, mt: MIGRATE_MOVABLE });
      expect(again).toBe(0);
      z.movePageblock(512, MIGRATE_ISOLATE);
      k.folioPut(again);
      expect(freeBlocks(m, z)).toEqual([
        [0, 9],
        [512, 9],
      ]);
      expect(k.pages.flags[0]! & PG_buddy).toBe(PG_buddy);
      expect(m.procfs.buddyinfo()).toBe(
        'Node 0, zone   Normal      0      0      0      0      0      0      0      0      0      2      0 \n',
      );
      m.checkInvariants();
    } finally {
      await m.close();
    }
  });
});
