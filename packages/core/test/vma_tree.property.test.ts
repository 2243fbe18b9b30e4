import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ENOMEM } from '../src/errno.js';
import { createMachine } from '../src/machine.js';
import type { Mm } from '../src/mm.js';
import { PAGE_SIZE } from '../src/mmzone.js';
import { PTE_PFN_SHIFT, PTE_PRESENT, USER_BASE, USER_PAGES } from '../src/pagetable.js';
import { pageEntry } from '../src/pagewalk.js';
import type { Process } from '../src/process.js';
import { rmapWalk } from '../src/rmap.js';
import { expectErrno } from './helpers.js';

/** The reference model: each process's areas as sorted [startVpn, endVpn) pairs in a plain array. */
type Areas = [number, number][];

const vpnOf = (addr: number) => (addr - USER_BASE) / PAGE_SIZE;

/** Naive munmap of [lo, hi) on the reference areas. */
function refUnmap(areas: Areas, lo: number, hi: number): Areas {
  const out: Areas = [];
  for (const [s, e] of areas) {
    if (e <= lo || s >= hi) out.push([s, e]);
    else {
      if (s < lo) out.push([s, lo]);
      if (e > hi) out.push([hi, e]);
    }
  }
  return out;
}

/** Naive first fit with one guard page after every area, as get_unmapped_area here does. */
function refFirstFit(areas: Areas, npages: number, align: number): number {
  let cursor = 0;
  for (const [s, e] of areas) {
    const start = Math.ceil(cursor / align) * align;
    if (start + npages <= s) return start;
    cursor = e + 1;
  }
  const start = Math.ceil(cursor / align) * align;
  return start + npages <= USER_PAGES ? start : -1;
}

/** Every (mm, vpn) that maps each pfn, found by scanning every process's areas page by page. */
function mappersByScan(procs: Process[]): Map<number, string[]> {
  const out = new Map<number, string[]>();
  for (const p of procs) {
    for (const a of p.maps()) {
      for (let vpn = vpnOf(a.start); vpn < vpnOf(a.end); vpn++) {
        const e = pageEntry(p.mm.pt, vpn);
        if (!(e & PTE_PRESENT)) continue;
        const pfn = e >>> PTE_PFN_SHIFT;
        const list = out.get(pfn) ?? [];
        list.push(`${p.pid}:${vpn}`);
        out.set(pfn, list);
      }
    }
  }
  return out;
}

const op = fc.oneof(
  fc.record({ kind: fc.constant('mmap' as const), pages: fc.integer({ min: 1, max: 24 }) }),
  fc.record({
    kind: fc.constant('munmap' as const),
    area: fc.nat(),
    from: fc.nat({ max: 30 }),
    pages: fc.integer({ min: 1, max: 30 }),
  }),
  fc.record({ kind: fc.constant('touch' as const), area: fc.nat(), page: fc.nat({ max: 30 }) }),
  fc.record({ kind: fc.constant('fork' as const), proc: fc.nat() }),
  fc.record({ kind: fc.constant('exit' as const), proc: fc.nat() }),
);

describe('the VMA tree and the rmap interval tree against a plain reference model', () => {
  it('random mmap/munmap/split/touch/fork/exit: same areas, same rmap answers, invariants hold', async () => {
    const m = await createMachine({ nodes: [{ memory: '16MiB' }, { memory: '16MiB' }], prefault: false });
    try {
      await fc.assert(
        fc.asyncProperty(fc.array(op, { minLength: 1, maxLength: 40 }), async (ops) => {
          const root = m.spawn();
          const procs: Process[] = [root];
          const ref = new Map<Process, Areas>([[root, []]]);
          try {
            for (const o of ops) {
              const p = procs[(('proc' in o ? o.proc : 0) as number) % procs.length]!;
              const areas = ref.get(p)!;
              if (o.kind === 'mmap') {
                const want = refFirstFit(areas, o.pages, 1);
                const a = p.mmap(o.pages * PAGE_SIZE, { node: 0 });
                expect(vpnOf(a)).toBe(want);
                ref.set(
                  p,
                  [...areas, [want, want + o.pages] as [number, number]].sort((x, y) => x[0] - y[0]),
                );
              } else if (o.kind === 'munmap' && areas.length) {
                const [s] = areas[o.area % areas.length]!;
                const lo = s + o.from;
                p.munmap(USER_BASE + lo * PAGE_SIZE, o.pages * PAGE_SIZE);
                ref.set(p, refUnmap(areas, lo, lo + o.pages));
              } else if (o.kind === 'touch' && areas.length) {
                const [s, e] = areas[o.area % areas.length]!;
                const vpn = s + (o.page % (e - s));
                p.touch(USER_BASE + vpn * PAGE_SIZE, 1, 'write');
              } else if (o.kind === 'fork' && procs.length < 6) {
                const c = p.fork();
                procs.push(c);
                ref.set(c, [...areas]);
              } else if (o.kind === 'exit' && p !== root) {
                p.exit();
                procs.splice(procs.indexOf(p), 1);
                ref.delete(p);
              }
              for (const q of procs) {
                const got: Areas = q.maps().map((a) => [vpnOf(a.start), vpnOf(a.end)]);
                expect(got).toEqual(ref.get(q));
                const mm: Mm = q.mm;
                expect(mm.vmas.size).toBe(got.length);
                // Lookups of the first, a middle and a past-the-end page of every area.
                for (const [s, e] of got) {
                  expect(mm.findVma(s)?.startVpn).toBe(s);
                  expect(mm.findVma((s + e) >> 1)?.startVpn).toBe(s);
                  if (!got.some(([s2]) => s2 === e)) expect(mm.findVma(e)).toBeUndefined();
                }
              }
              // rmap: every mapping of every mapped frame is found from the frame, and nothing else.
              for (const [pfn, mappers] of mappersByScan(procs)) {
                const k = m.kernel;
                const head = k.pages.head(pfn);
                const mapping = k.mappingOf(head);
                expect(mapping).toBeDefined();
                const seen: string[] = [];
                rmapWalk(mapping!, k.pages.index[head]!, head, 1 << k.folioOrder(head), (hit) => {
                  seen.push(`${procs.find((q) => q.mm === hit.mm)!.pid}:${hit.vpn}`);
                });
                expect(seen.sort()).toEqual([...mappers].sort());
              }
              m.checkInvariants();
            }
          } finally {
            for (const p of procs) p.exit();
          }
          m.checkInvariants();
        }),
        { numRuns: 60 },
      );
    } finally {
      await m.close();
    }
  }, 120_000);

  it('vmasFrom(vpn) iterates the areas that end above vpn, in order, from anywhere in the space', async () => {
    const m = await createMachine({ nodes: [{ memory: '8MiB' }], prefault: false });
    try {
      await fc.assert(
        fc.property(
          fc.array(fc.tuple(fc.integer({ min: 1, max: 12 }), fc.boolean()), { minLength: 0, maxLength: 60 }),
          fc.array(fc.nat({ max: 800 }), { minLength: 1, maxLength: 20 }),
          fc.nat({ max: 70 }),
          (sizes, probes, take) => {
            const p = m.spawn();
            try {
              // Areas of random sizes; every other one unmapped again, leaving holes of all sizes.
              for (const [pages, drop] of sizes) {
                const a = p.mmap(pages * PAGE_SIZE);
                if (drop) p.munmap(a, pages * PAGE_SIZE);
              }
              const areas: Areas = p.maps().map((a) => [vpnOf(a.start), vpnOf(a.end)]);
              for (const vpn of [...probes, USER_PAGES - 1]) {
                const want = areas.filter(([, e]) => e > vpn);
                const got: Areas = [...p.mm.vmasFrom(vpn)].map((v) => [v.startVpn, v.endVpn]);
                expect(got).toEqual(want);
                // A pass that stops early takes only the first few (the iterator is lazy).
                const first: Areas = [];
                for (const v of p.mm.vmasFrom(vpn)) {
                  if (first.length === take) break;
                  first.push([v.startVpn, v.endVpn]);
                }
                expect(first).toEqual(want.slice(0, take));
              }
            } finally {
              p.exit();
            }
          },
        ),
        { numRuns: 200 },
      );
      m.checkInvariants();
    } finally {
      await m.close();
    }
  });

  it('vm.max_map_count: mmap past it and a splitting munmap at it fail with ENOMEM, changing nothing', async () => {
    const m = await createMachine({ nodes: [{ memory: '8MiB' }], prefault: false });
    try {
      expect(m.sysctl.read('vm.max_map_count')).toBe('65530\n');
      expect(m.sysctl.write('vm.max_map_count', 4)).toBe(0);
      const p = m.spawn();
      // do_mmap refuses once map_count > max_map_count: the fifth area is still allowed.
      const areas = Array.from({ length: 5 }, () => p.mmap(4 * PAGE_SIZE));
      expectErrno(() => p.mmap(PAGE_SIZE), ENOMEM);
      expect(p.maps()).toHaveLength(5);
      // Trimming an end or removing a whole area needs no split; the inside of one does.
      p.munmap(areas[0]!, PAGE_SIZE);
      p.munmap(areas[1]!, 4 * PAGE_SIZE);
      expect(p.maps()).toHaveLength(4);
      // __split_vma refuses at map_count >= max_map_count: 4 areas, limit 4.
      expectErrno(() => p.munmap(areas[2]! + PAGE_SIZE, PAGE_SIZE), ENOMEM);
      expect(m.sysctl.write('vm.max_map_count', 5)).toBe(0);
      p.munmap(areas[2]! + PAGE_SIZE, PAGE_SIZE); // 4 areas -> 5
      expect(p.maps()).toHaveLength(5);
      p.write(areas[3]! + PAGE_SIZE, new Uint8Array([7]));
      expectErrno(() => p.munmap(areas[3]! + PAGE_SIZE, PAGE_SIZE), ENOMEM);
      expect(p.maps()).toHaveLength(5);
      expect(p.read(areas[3]! + PAGE_SIZE, 1)[0]).toBe(7);
      m.checkInvariants();
    } finally {
      await m.close();
    }
  });

  it('finds a fit for aligned THP areas among many small ones', async () => {
    const m = await createMachine({ nodes: [{ memory: '8MiB' }], prefault: false });
    try {
      const p = m.spawn();
      const small = Array.from({ length: 300 }, () => p.mmap(3 * PAGE_SIZE));
      for (let i = 0; i < small.length; i += 7) p.munmap(small[i]!, 3 * PAGE_SIZE);
      const areas: Areas = p.maps().map((a) => [vpnOf(a.start), vpnOf(a.end)]);
      const thp = p.mmap(2 << 20, { thp: 'always' });
      expect(vpnOf(thp)).toBe(refFirstFit(areas, 512, 512));
      expect(vpnOf(thp) % 512).toBe(0);
      // A small area lands in the first freed hole.
      expect(vpnOf(p.mmap(2 * PAGE_SIZE))).toBe(refFirstFit(areas, 2, 1));
      m.checkInvariants();
    } finally {
      await m.close();
    }
  });
});
