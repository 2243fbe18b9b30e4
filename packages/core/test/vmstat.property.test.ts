import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ENOMEM, PagemigError } from '../src/errno.js';
import type { Kernel } from '../src/kernel.js';
import { createMachine, type Machine } from '../src/machine.js';
import { MPOL_MF_MOVE_ALL } from '../src/mempolicy.js';
import { PAGE_SIZE } from '../src/mmzone.js';
import { PG_anon, PG_head, PG_hugetlb, PG_mlocked, PG_swapbacked } from '../src/page.js';
import type { Process } from '../src/process.js';
import { nodeStatNames } from '../src/vmstat.js';

const PG = PAGE_SIZE;
/** Base pages of a hugetlb page. */
const HPN = 512;

type Gauge = (typeof nodeStatNames)[number] | 'nr_hugetlb';

/**
 * The folio-state gauges of every node by a scan of all struct pages: the definitions /proc/vmstat
 * has always printed (anon and shmem folios with an rmap owner, shmem mapped by some page table,
 * PMD-size folios, mlocked ones, hugetlb folios in use).
 */
function recount(k: Kernel): Record<Gauge, number>[] {
  const p = k.pages;
  return k.nodes.map((node) => {
    const g = {
      nr_mlock: 0,
      nr_anon_pages: 0,
      nr_mapped: 0,
      nr_shmem: 0,
      nr_shmem_hugepages: 0,
      nr_anon_transparent_hugepages: 0,
      nr_hugetlb: 0,
    };
    for (let pfn = node.startPfn; pfn < node.endPfn; ) {
      const f = p.flags[pfn]!;
      const nr = f & PG_head ? 1 << p.order[pfn]! : 1;
      if (f & PG_hugetlb && p.refcount[pfn]! > 0) g.nr_hugetlb += nr;
      if (f & PG_swapbacked && p.mapping[pfn]) {
        const thp = f & PG_head && p.order[pfn] === 9 ? 1 : 0;
        if (f & PG_mlocked) g.nr_mlock += nr;
        if (f & PG_anon) {
          g.nr_anon_pages += nr;
          g.nr_anon_transparent_hugepages += thp;
        } else {
          g.nr_shmem += nr;
          g.nr_shmem_hugepages += thp;
          if (p.mapcount[pfn]! > 0) g.nr_mapped += nr;
        }
      }
      pfn += nr;
    }
    return g;
  });
}

/** m.vmstat() and every node's counters equal the recount; `step` names the op for a failure. */
function expectGaugesExact(m: Machine, step: string): void {
  const k = m.kernel;
  const want = recount(k);
  const v = m.vmstat();
  for (const name of [...nodeStatNames, 'nr_hugetlb'] as const) {
    const total = want.reduce((s, g) => s + g[name], 0);
    expect(v[name], `${name} after ${step}`).toBe(total);
  }
  k.nodes.forEach((node, nid) => {
    nodeStatNames.forEach((name, item) => {
      expect(node.vmStat[item], `node ${nid} ${name} after ${step}`).toBe(want[nid]![name]);
    });
  });
}

interface Area {
  p: Process;
  addr: number;
  npages: number;
  hugetlb: boolean;
  shared: boolean;
}

type Op =
  | {
      kind: 'mmap';
      who: number;
      npages: number;
      thp: 'never' | '16KiB' | '64KiB' | 'always';
      shared: boolean;
      mlock: boolean;
      hugetlb: boolean;
    }
  | { kind: 'write' | 'read'; area: number; page: number; count: number }
  | { kind: 'munmap'; area: number; from: number; len: number }
  | { kind: 'move'; area: number; page: number; count: number; node: number }
  | { kind: 'split'; area: number; page: number; order: number; at: boolean }
  | { kind: 'fork' | 'exit'; who: number };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant('mmap' as const),
      who: fc.nat(),
      npages: fc.oneof(fc.integer({ min: 1, max: 40 }), fc.constantFrom(512, 600, 1024)),
      thp: fc.constantFrom('never' as const, '16KiB' as const, '64KiB' as const, 'always' as const),
      shared: fc.boolean(),
      mlock: fc.integer({ min: 0, max: 3 }).map((x) => x === 0),
      hugetlb: fc.integer({ min: 0, max: 4 }).map((x) => x === 0),
    }),
  },
  {
    weight: 6,
    arbitrary: fc.record({
      kind: fc.constantFrom('write' as const, 'read' as const),
      area: fc.nat(),
      page: fc.nat(),
      count: fc.oneof(fc.constant(1), fc.integer({ min: 1, max: 600 })),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('munmap' as const),
      area: fc.nat(),
      from: fc.nat(),
      len: fc.integer({ min: 1, max: 600 }),
    }),
  },
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant('move' as const),
      area: fc.nat(),
      page: fc.nat(),
      count: fc.integer({ min: 1, max: 64 }),
      node: fc.nat(1),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('split' as const),
      area: fc.nat(),
      page: fc.nat(),
      order: fc.nat(),
      at: fc.boolean(),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({ kind: fc.constantFrom('fork' as const, 'exit' as const), who: fc.nat() }),
  },
);

/** Runs `fn`; only the errors a full machine or an empty hugetlb pool give (ENOMEM, SIGBUS) pass. */
function allowing(fn: () => void): void {
  try {
    fn();
  } catch (e) {
    if (!PagemigError.isInstance(e) || !['ENOMEM', 'SIGBUS'].includes(e.code)) throw e;
  }
}

async function step(m: Machine, procs: Process[], areas: Area[], op: Op): Promise<void> {
  const a = 'area' in op && areas.length ? areas[op.area % areas.length]! : undefined;
  switch (op.kind) {
    case 'mmap': {
      const p = procs[op.who % procs.length]!;
      const npages = op.hugetlb ? HPN * (1 + (op.npages % 2)) : op.npages;
      allowing(() => {
        const addr = op.hugetlb
          ? p.mmap(npages * PG, { hugetlb: true, shared: op.shared, mlock: op.mlock })
          : p.mmap(npages * PG, { thp: op.thp, shared: op.shared, mlock: op.mlock });
        areas.push({ p, addr, npages, hugetlb: op.hugetlb, shared: op.shared });
      });
      break;
    }
    case 'write':
    case 'read': {
      if (!a) break;
      const first = op.page % a.npages;
      const len = Math.min(op.count, a.npages - first) * PG;
      allowing(() => {
        if (op.kind === 'write') a.p.write(a.addr + first * PG, new Uint8Array(len).fill(7));
        else a.p.touch(a.addr + first * PG, len, 'read');
      });
      break;
    }
    case 'munmap': {
      if (!a) break;
      // A hugetlb area unmaps whole huge pages.
      const unit = a.hugetlb ? HPN : 1;
      const units = a.npages / unit;
      const from = (op.from % units) * unit;
      const len = Math.min(Math.ceil(op.len / unit) * unit, a.npages - from);
      a.p.munmap(a.addr + from * PG, len * PG);
      const pieces: Area[] = [];
      if (from > 0) pieces.push({ ...a, npages: from });
      if (from + len < a.npages)
        pieces.push({ ...a, addr: a.addr + (from + len) * PG, npages: a.npages - from - len });
      areas.splice(areas.indexOf(a), 1, ...pieces);
      break;
    }
    case 'move': {
      if (!a) break;
      const first = op.page % a.npages;
      const count = Math.min(op.count, a.npages - first);
      const addrs = Array.from({ length: count }, (_, i) => a.addr + (first + i) * PG);
      const r = await a.p.movePages(
        0,
        addrs,
        addrs.map(() => op.node),
        MPOL_MF_MOVE_ALL,
      );
      if (r.ret < 0) expect(r.errno).toBe(ENOMEM);
      break;
    }
    case 'split': {
      if (!a || a.hugetlb) break;
      const addr = a.addr + (op.page % a.npages) * PG;
      const info = a.p.pageInfo(addr);
      if (!info || info.zeroPage || info.order === 0) break;
      const orders = Array.from({ length: info.order }, (_, i) => i).filter((o) => a.shared || o !== 1);
      m.splitFolio(info.headPfn, orders[op.order % orders.length]!, op.at ? { at: info.pfn } : {});
      break;
    }
    case 'fork': {
      const p = procs[op.who % procs.length]!;
      const child = p.fork();
      procs.push(child);
      for (const x of areas.filter((x) => x.p === p)) areas.push({ ...x, p: child });
      break;
    }
    case 'exit': {
      if (procs.length === 1) break;
      const p = procs[op.who % procs.length]!;
      p.exit();
      procs.splice(procs.indexOf(p), 1);
      for (let i = areas.length - 1; i >= 0; i--) if (areas[i]!.p === p) areas.splice(i, 1);
      break;
    }
  }
}

describe('vmstat gauges kept as counters', () => {
  it('equal a scan of every folio, per node, after every mmap, fault, fork, munmap, exit, move_pages and split', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(opArb, { minLength: 1, maxLength: 40, size: 'max' }), async (ops) => {
        const m = await createMachine({ nodes: [{ memory: '16MiB' }, { memory: '16MiB' }], prefault: false });
        try {
          expect(m.sysctl.write('vm.nr_hugepages', 4)).toBe(0);
          expect(m.sysctl.write('vm.nr_overcommit_hugepages', 2)).toBe(0);
          const procs = [m.spawn({ privileged: true })];
          const areas: Area[] = [];
          for (const [i, op] of ops.entries()) {
            await step(m, procs, areas, op);
            expectGaugesExact(m, `op ${i} ${JSON.stringify(op)}`);
            m.checkInvariants();
          }
          for (const p of procs) p.exit();
          expectGaugesExact(m, 'the last exit');
          const v = m.vmstat();
          for (const name of [...nodeStatNames, 'nr_hugetlb'] as const) expect(v[name]).toBe(0);
        } finally {
          await m.close();
        }
      }),
      { numRuns: Number(process.env.RUNS ?? 100) },
    );
  }, 180_000);
});
