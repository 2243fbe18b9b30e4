import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ENOMEM, PagemigError } from '../src/errno.js';
import {
  folioPutbackLru,
  folioReferenced,
  isolateLruFolios,
  LRU_ACTIVE_ANON,
  LRU_INACTIVE_ANON,
  lruSize,
  NR_LRU_LISTS,
  nrIsolatedAnon,
} from '../src/lru.js';
import { createMachine, type Machine } from '../src/machine.js';
import { MPOL_MF_MOVE } from '../src/mempolicy.js';
import { PAGE_SIZE } from '../src/mmzone.js';
import { PG_unevictable } from '../src/page.js';
import type { Process } from '../src/process.js';

const PG = PAGE_SIZE;

interface Area {
  start: number;
  npages: number;
  shared: boolean;
}
interface ProcModel {
  proc: Process;
  areas: Area[];
  /** Private pages written: address -> byte value. */
  priv: Map<number, number>;
}

type Op =
  | { kind: 'mmap'; npages: number; thp: 'never' | '16KiB' | 'always'; shared: boolean; mlock: boolean }
  | { kind: 'write'; who: number; area: number; page: number; value: number }
  | { kind: 'migrate'; who: number; area: number; page: number; len: number }
  | { kind: 'munmap'; who: number; area: number; page: number; len: number }
  | { kind: 'fork'; who: number }
  | { kind: 'exit'; who: number }
  | { kind: 'scan'; nid: number; active: boolean; nr: number; activate: number };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('mmap' as const),
      npages: fc.oneof(fc.integer({ min: 1, max: 24 }), fc.constant(512)),
      thp: fc.constantFrom('never' as const, '16KiB' as const, 'always' as const),
      shared: fc.boolean(),
      mlock: fc.integer({ min: 0, max: 5 }).map((x) => x === 0),
    }),
  },
  {
    weight: 6,
    arbitrary: fc.record({
      kind: fc.constant('write' as const),
      who: fc.nat(),
      area: fc.nat(),
      page: fc.nat(),
      value: fc.integer({ min: 1, max: 255 }),
    }),
  },
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant('migrate' as const),
      who: fc.nat(),
      area: fc.nat(),
      page: fc.nat(),
      len: fc.integer({ min: 1, max: 16 }),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('munmap' as const),
      who: fc.nat(),
      area: fc.nat(),
      page: fc.nat(),
      len: fc.integer({ min: 1, max: 300 }),
    }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('fork' as const), who: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('exit' as const), who: fc.nat() }) },
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant('scan' as const),
      nid: fc.integer({ min: 0, max: 1 }),
      active: fc.boolean(),
      nr: fc.integer({ min: 0, max: 600 }),
      activate: fc.nat(),
    }),
  },
);

function pageIs(bytes: Uint8Array, value: number): boolean {
  for (let i = 0; i < bytes.length; i++) if (bytes[i] !== value) return false;
  return true;
}

/** The LRU holds every anon and shmem page in use: their sum is nr_anon_pages + nr_shmem. */
function expectLruCoversMemory(m: Machine): void {
  const v = m.vmstat();
  let onLru = 0;
  for (let nid = 0; nid < 2; nid++)
    for (let lru = 0; lru < NR_LRU_LISTS; lru++) onLru += lruSize(m.kernel, nid, lru);
  expect(onLru).toBe(v.nr_anon_pages + v.nr_shmem);
  expect(v.nr_inactive_anon + v.nr_active_anon + v.nr_unevictable).toBe(onLru);
  expect(nrIsolatedAnon(m.kernel, 0) + nrIsolatedAnon(m.kernel, 1)).toBe(0);
}

describe('LRU lists under random faults, migrations, munmaps, forks and reclaim scans', () => {
  it('keep the LRU invariants, hold every page in use, and every private page keeps its bytes', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(opArb, { minLength: 1, maxLength: 30 }), async (ops) => {
        const m = await createMachine({ nodes: [{ memory: '8MiB' }, { memory: '8MiB' }], prefault: false });
        const k = m.kernel;
        try {
          const procs: ProcModel[] = [{ proc: m.spawn({ privileged: true }), areas: [], priv: new Map() }];
          const oom = (e: unknown) => {
            if (!(PagemigError.isInstance(e) && e.errno === ENOMEM)) throw e;
          };
          for (const op of ops) {
            const pm = procs[('who' in op ? op.who : 0) % procs.length]!;
            const a = 'area' in op && pm.areas.length ? pm.areas[op.area % pm.areas.length]! : undefined;
            switch (op.kind) {
              case 'mmap': {
                try {
                  const start = pm.proc.mmap(op.npages * PG, {
                    thp: op.thp,
                    shared: op.shared,
                    mlock: op.mlock,
                    node: 0,
                  });
                  pm.areas.push({ start, npages: op.npages, shared: op.shared });
                } catch (e) {
                  oom(e);
                }
                break;
              }
              case 'write': {
                if (!a) break;
                const addr = a.start + (op.page % a.npages) * PG;
                try {
                  pm.proc.write(addr, new Uint8Array(PG).fill(op.value));
                  if (!a.shared) pm.priv.set(addr, op.value);
                } catch (e) {
                  oom(e);
                }
                break;
              }
              case 'migrate': {
                if (!a) break;
                const first = op.page % a.npages;
                const n = Math.min(op.len, a.npages - first);
                const addrs = Array.from({ length: n }, (_, i) => a.start + (first + i) * PG);
                const to = pm.proc.pageInfo(addrs[0]!)?.node === 1 ? 0 : 1;
                await pm.proc.movePages(0, addrs, new Array(n).fill(to), MPOL_MF_MOVE);
                break;
              }
              case 'munmap': {
                if (!a) break;
                const from = op.page % a.npages;
                const len = Math.min(op.len, a.npages - from);
                pm.proc.munmap(a.start + from * PG, len * PG);
                for (let i = from; i < from + len; i++) pm.priv.delete(a.start + i * PG);
                const pieces: Area[] = [];
                if (from > 0) pieces.push({ ...a, npages: from });
                if (from + len < a.npages)
                  pieces.push({ ...a, start: a.start + (from + len) * PG, npages: a.npages - from - len });
                pm.areas.splice(pm.areas.indexOf(a), 1, ...pieces);
                break;
              }
              case 'fork': {
                const child = pm.proc.fork();
                procs.push({ proc: child, areas: pm.areas.map((x) => ({ ...x })), priv: new Map(pm.priv) });
                break;
              }
              case 'exit': {
                if (procs.length === 1) break;
                pm.proc.exit();
                procs.splice(procs.indexOf(pm), 1);
                break;
              }
              case 'scan': {
                // What reclaim does with the lists: isolate from the tail, check references, put back.
                const out: number[] = [];
                const lru = op.active ? LRU_ACTIVE_ANON : LRU_INACTIVE_ANON;
                const before = lruSize(k, op.nid, lru);
                const r = isolateLruFolios(k, op.nid, lru, op.nr, out);
                expect(r.taken).toBe(r.scanned);
                expect(lruSize(k, op.nid, lru)).toBe(before - r.taken);
                expect(nrIsolatedAnon(k, op.nid)).toBe(r.taken);
                m.checkInvariants();
                out.forEach((h, i) => {
                  expect(k.pages.flags[h]! & PG_unevictable).toBe(0);
                  const young = folioReferenced(k, h) > 0;
                  folioPutbackLru(
                    k,
                    h,
                    young || (op.activate >> i) & 1 ? LRU_ACTIVE_ANON : LRU_INACTIVE_ANON,
                  );
                });
                break;
              }
            }
            m.checkInvariants();
            expectLruCoversMemory(m);
          }
          for (const pm of procs) {
            for (const [addr, value] of pm.priv) {
              if (!pageIs(pm.proc.read(addr, PG), value))
                expect.fail(`pid ${pm.proc.pid} page at 0x${addr.toString(16)} lost its bytes`);
            }
          }
          for (const pm of procs) pm.proc.exit();
          m.checkInvariants();
          for (let nid = 0; nid < 2; nid++)
            for (let lru = 0; lru < NR_LRU_LISTS; lru++) expect(lruSize(k, nid, lru)).toBe(0);
        } finally {
          await m.close();
        }
      }),
      { numRuns: Number(process.env.RUNS ?? 100) },
    );
  }, 120_000);
});
