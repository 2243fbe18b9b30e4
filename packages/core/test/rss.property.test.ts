import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { PagemigError } from '../src/errno.js';
import { createMachine, type Machine } from '../src/machine.js';
import { MPOL_MF_MOVE_ALL } from '../src/mempolicy.js';
import { PAGE_SIZE } from '../src/mmzone.js';
import { changeProtNuma } from '../src/mprotect.js';
import {
  PTE_PFN_SHIFT,
  PTRS_PER_PTE,
  pteIsMigration,
  pteIsPresent,
  pteIsProtnone,
  USER_BASE,
  ZERO_PFN,
} from '../src/pagetable.js';
import { walkPageRange } from '../src/pagewalk.js';
import type { Process } from '../src/process.js';
import { gateMigrator } from './helpers.js';

/** The mm's rss counter (get_mm_rss) against its page tables, under random address-space changes. */

const PG = PAGE_SIZE;

/** What the entries of one address space map; `rss` is get_mm_rss recomputed (zero page excepted). */
function walk(p: Process) {
  const t = { rss: 0, migration: 0, protnone: 0, pmd: 0, hugetlb: 0 };
  for (const vma of p.mm.vmas) {
    const count = (e: number, nr: number) => {
      if (e >>> PTE_PFN_SHIFT === ZERO_PFN) return;
      if (pteIsPresent(e) || pteIsMigration(e)) t.rss += nr;
      if (pteIsMigration(e)) t.migration++;
      if (pteIsProtnone(e)) t.protnone++;
      if (nr > 1) t[vma.hugetlb ? 'hugetlb' : 'pmd']++;
    };
    walkPageRange(p.mm.pt, vma.startVpn, vma.endVpn, {
      pmdEntry: (_pt, _i, e) => count(e, PTRS_PER_PTE),
      pteEntry: (_pt, _i, e) => count(e, 1),
    });
  }
  return t;
}

type Kind = 'never' | 'always' | '16KiB' | 'shared' | 'sharedHuge' | 'hugetlb';

type Op =
  | { kind: 'mmap'; area: Kind; pages: number }
  | { kind: 'touch'; who: number; area: number; from: number; pages: number; write: boolean }
  | { kind: 'munmap'; who: number; area: number; from: number; pages: number; whole: boolean }
  | { kind: 'fork'; who: number; midMigration: boolean }
  | { kind: 'exit'; who: number }
  | { kind: 'movePages'; who: number; area: number; from: number; pages: number; node: number }
  | { kind: 'split'; who: number; area: number; from: number; order: number }
  | { kind: 'protnone'; who: number; area: number };

const who = fc.nat({ max: 7 });
const area = fc.nat({ max: 15 });
const from = fc.nat({ max: 1100 });
const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant('mmap' as const),
      area: fc.constantFrom<Kind>('never', 'always', '16KiB', 'shared', 'sharedHuge', 'hugetlb'),
      // Whole 2 MiB blocks often, so that THP areas get PMDs.
      pages: fc.oneof(
        fc.integer({ min: 1, max: 64 }),
        fc.constantFrom(512, 1024),
        fc.integer({ min: 1, max: 1100 }),
      ),
    }),
  },
  {
    weight: 4,
    arbitrary: fc.record({
      kind: fc.constant('touch' as const),
      who,
      area,
      from,
      pages: fc.integer({ min: 1, max: 600 }),
      write: fc.boolean(),
    }),
  },
  fc.record({
    kind: fc.constant('munmap' as const),
    who,
    area,
    from,
    pages: fc.integer({ min: 1, max: 600 }),
    // The whole area: its THP and hugetlb PMDs go whole.
    whole: fc.boolean(),
  }),
  {
    weight: 2,
    arbitrary: fc.record({ kind: fc.constant('fork' as const), who, midMigration: fc.boolean() }),
  },
  fc.record({ kind: fc.constant('exit' as const), who }),
  fc.record({
    kind: fc.constant('movePages' as const),
    who,
    area,
    from,
    pages: fc.integer({ min: 1, max: 64 }),
    node: fc.nat({ max: 1 }),
  }),
  fc.record({ kind: fc.constant('split' as const), who, area, from, order: fc.constantFrom(0, 2) }),
  fc.record({ kind: fc.constant('protnone' as const), who, area }),
);

const MMAP_OPTIONS = {
  never: { thp: 'never' },
  always: { thp: 'always' },
  '16KiB': { thp: '16KiB' },
  shared: { shared: true, thp: 'never' },
  sharedHuge: { shared: true, thp: 'always' },
  hugetlb: { hugetlb: true },
} as const;

/** Runs `fn`; a PagemigError (ENOMEM, EBUSY, SIGBUS, EAGAIN...) is a refusal that changes nothing. */
async function refused(fn: () => unknown): Promise<void> {
  try {
    await fn();
  } catch (e) {
    if (!(e instanceof PagemigError)) throw e;
  }
}

/** How often the runs met each kind of entry: the property must have covered them all. */
const seen = { childMigration: 0, protnone: 0, pmd: 0, hugetlb: 0 };

/**
 * fork() while every page of `p` is under migration (held by a gate migrator): the child copies
 * migration entries, which count in its rss as they do in the parent's.
 */
async function forkMidMigration(m: Machine, p: Process, procs: Process[]): Promise<void> {
  const addrs = p
    .maps()
    .flatMap((a) => Array.from({ length: (a.end - a.start) / PG }, (_, i) => a.start + i * PG));
  // Each page to the other node, so that every mapped page migrates.
  const nodes = addrs.map((a) => 1 - (p.pageInfo(a)?.node ?? 1));
  const gate = gateMigrator();
  await m.offload.register(gate.migrator);
  const moving = p.movePages(0, addrs, nodes, MPOL_MF_MOVE_ALL);
  await Promise.race([gate.running, moving]);
  const child = p.fork();
  procs.push(child);
  const t = walk(child);
  seen.childMigration += t.migration;
  expect(child.mm.rss).toBe(t.rss);
  expect(p.mm.rss).toBe(walk(p).rss);
  gate.release();
  await moving;
  await m.offload.unregister(gate.migrator);
}

/** Applies one op to the process it names (changing `procs` on fork and exit). */
async function apply(m: Machine, o: Op, procs: Process[]): Promise<void> {
  const p = procs[('who' in o ? o.who : 0) % procs.length]!;
  if (o.kind === 'mmap') {
    await refused(() => p.mmap(o.pages * PG, MMAP_OPTIONS[o.area]));
    return;
  }
  if (o.kind === 'fork') {
    if (procs.length >= 6) return;
    if (o.midMigration && p.maps().length) await forkMidMigration(m, p, procs);
    else procs.push(p.fork());
    return;
  }
  if (o.kind === 'exit') {
    if (p === procs[0]) return;
    p.exit();
    procs.splice(procs.indexOf(p), 1);
    return;
  }
  const areas = p.maps();
  const a = areas[o.area % (areas.length || 1)];
  if (!a) return;
  // Pages [lo, lo + n) of area `a`, clipped to it.
  const len = (a.end - a.start) / PG;
  const lo = 'from' in o ? o.from % len : 0;
  const n = 'pages' in o ? Math.min(o.pages, len - lo) : 1;
  const addr = a.start + lo * PG;
  if (o.kind === 'touch') await refused(() => p.touch(addr, n * PG, o.write ? 'write' : 'read'));
  else if (o.kind === 'munmap')
    await refused(() => (o.whole ? p.munmap(a.start, len * PG) : p.munmap(addr, n * PG)));
  else if (o.kind === 'movePages') {
    const addrs = Array.from({ length: n }, (_, i) => addr + i * PG);
    const r = await p.movePages(
      0,
      addrs,
      addrs.map(() => o.node),
      MPOL_MF_MOVE_ALL,
    );
    expect(r.ret).toBeGreaterThanOrEqual(0);
  } else if (o.kind === 'split') {
    // A THP or mTHP split (split_huge_page): PMD mappings become PTE mappings of the pieces.
    const info = p.pageInfo(addr);
    if (info && info.order > o.order) await refused(() => m.splitFolio(info.pfn, o.order));
  } else {
    // The NUMA scanner's change_prot_numa over one area (task_numa_work skips hugetlb ones).
    const vma = p.mm.findVma((a.start - USER_BASE) / PG)!;
    if (!vma.hugetlb) changeProtNuma(m.kernel, vma, vma.startVpn, vma.endVpn, -1);
  }
}

describe('the rss counter (get_mm_rss)', () => {
  it('equals a walk of the page tables after random mmap/touch/fork/munmap/exit/move_pages/split/PROT_NONE', async () => {
    const m = await createMachine({ nodes: [{ memory: '32MiB' }, { memory: '32MiB' }], prefault: false });
    m.sysctl.write('vm.nr_hugepages', '4');
    // change_prot_numa marks top-tier folios only under NUMA_BALANCING_NORMAL (no scanner runs).
    m.sysctl.write('kernel.numa_balancing', '1');
    try {
      await fc.assert(
        fc.asyncProperty(fc.array(opArb, { minLength: 1, maxLength: 40 }), async (ops) => {
          // Privileged: move_pages with MPOL_MF_MOVE_ALL moves pages a fork shares too.
          const procs: Process[] = [m.spawn({ privileged: true })];
          try {
            for (const o of ops) {
              await apply(m, o, procs);
              for (const q of procs) {
                const t = walk(q);
                expect(q.mm.rss, `pid ${q.pid} after ${JSON.stringify(o)}`).toBe(t.rss);
                seen.protnone += t.protnone;
                seen.pmd += t.pmd;
                seen.hugetlb += t.hugetlb;
              }
            }
            m.checkInvariants();
          } finally {
            for (const q of procs) q.exit();
          }
          m.checkInvariants();
        }),
        { numRuns: 300 },
      );
      for (const [kind, n] of Object.entries(seen)) expect(n, kind).toBeGreaterThan(0);
    } finally {
      await m.close();
    }
  }, 240_000);
});
