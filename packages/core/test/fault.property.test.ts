import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ENOMEM, PagemigError } from '../src/errno.js';
import { createMachine } from '../src/machine.js';
import { PAGE_SIZE } from '../src/mmzone.js';
import type { Process } from '../src/process.js';

const PG = PAGE_SIZE;

/** What a page should read as: private pages per process, shared pages per shmem object. */
interface Obj {
  data: Map<number, number>;
}
interface VmaModel {
  start: number;
  npages: number;
  shared: Obj | null;
  /** Page offset of `start` in the shared object. */
  pgoff: number;
}
interface ProcModel {
  proc: Process;
  vmas: VmaModel[];
  priv: Map<number, number>;
}

type Op =
  | {
      kind: 'mmap';
      who: number;
      npages: number;
      thp: 'never' | '16KiB' | '64KiB' | 'always';
      shared: boolean;
      mlock: boolean;
      interleave: boolean;
    }
  | { kind: 'munmap'; who: number; vma: number; from: number; len: number }
  | { kind: 'write'; who: number; vma: number; page: number; value: number }
  | { kind: 'read'; who: number; vma: number; page: number }
  | { kind: 'fork'; who: number }
  | { kind: 'exit'; who: number }
  | { kind: 'split'; who: number; vma: number; page: number; order: number; at: boolean };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant('mmap' as const),
      who: fc.nat(),
      npages: fc.oneof(
        fc.integer({ min: 1, max: 8 }),
        fc.integer({ min: 1, max: 40 }),
        fc.constantFrom(512, 1024, 600),
      ),
      thp: fc.constantFrom('never' as const, '16KiB' as const, '64KiB' as const, 'always' as const),
      shared: fc.boolean(),
      mlock: fc.integer({ min: 0, max: 6 }).map((x) => x === 0),
      interleave: fc.boolean(),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('munmap' as const),
      who: fc.nat(),
      vma: fc.nat(),
      from: fc.nat(),
      len: fc.integer({ min: 1, max: 600 }),
    }),
  },
  {
    weight: 6,
    arbitrary: fc.record({
      kind: fc.constant('write' as const),
      who: fc.nat(),
      vma: fc.nat(),
      page: fc.nat(),
      value: fc.integer({ min: 1, max: 255 }),
    }),
  },
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant('read' as const),
      who: fc.nat(),
      vma: fc.nat(),
      page: fc.nat(),
    }),
  },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('fork' as const), who: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('exit' as const), who: fc.nat() }) },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('split' as const),
      who: fc.nat(),
      vma: fc.nat(),
      page: fc.nat(),
      order: fc.nat(),
      at: fc.boolean(),
    }),
  },
);

function expected(pm: ProcModel, v: VmaModel, page: number): number {
  if (v.shared) return v.shared.data.get(v.pgoff + page) ?? 0;
  return pm.priv.get(v.start + page * PG) ?? 0;
}

function pageIs(bytes: Uint8Array, value: number): boolean {
  for (let i = 0; i < bytes.length; i++) if (bytes[i] !== value) return false;
  return true;
}

describe('faults, fork, munmap and split against a model of memory contents', () => {
  // Hundreds of runs, each with its own hang check: minutes on a loaded two-core host, not hung.
  it('every page reads what was last written to it (or zeros) and the invariants hold', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(opArb, { minLength: 1, maxLength: 40 }), async (ops) => {
        const m = await createMachine({ nodes: [{ memory: '8MiB' }, { memory: '8MiB' }], prefault: false });
        try {
          const procs: ProcModel[] = [{ proc: m.spawn(), vmas: [], priv: new Map() }];
          const oom = (e: unknown) => {
            if (!(PagemigError.isInstance(e) && e.errno === ENOMEM)) throw e;
          };
          for (const op of ops) {
            const pm = procs[op.who % procs.length]!;
            const v = 'vma' in op && pm.vmas.length ? pm.vmas[op.vma % pm.vmas.length]! : undefined;
            switch (op.kind) {
              case 'mmap': {
                let start: number;
                try {
                  start = pm.proc.mmap(op.npages * PG, {
                    thp: op.thp,
                    shared: op.shared,
                    mlock: op.mlock,
                    policy: op.interleave ? { mode: 'interleave', nodes: [0, 1] } : undefined,
                  });
                } catch (e) {
                  oom(e);
                  break;
                }
                pm.vmas.push({
                  start,
                  npages: op.npages,
                  shared: op.shared ? { data: new Map() } : null,
                  pgoff: 0,
                });
                pm.vmas.sort((a, b) => a.start - b.start);
                break;
              }
              case 'munmap': {
                if (!v) break;
                const from = op.from % v.npages;
                const len = Math.min(op.len, v.npages - from);
                pm.proc.munmap(v.start + from * PG, len * PG);
                for (let i = from; i < from + len; i++) pm.priv.delete(v.start + i * PG);
                const pieces: VmaModel[] = [];
                if (from > 0) pieces.push({ ...v, npages: from });
                if (from + len < v.npages)
                  pieces.push({
                    ...v,
                    start: v.start + (from + len) * PG,
                    npages: v.npages - from - len,
                    pgoff: v.pgoff + from + len,
                  });
                pm.vmas.splice(pm.vmas.indexOf(v), 1, ...pieces);
                break;
              }
              case 'write': {
                if (!v) break;
                const page = op.page % v.npages;
                try {
                  pm.proc.write(v.start + page * PG, new Uint8Array(PG).fill(op.value));
                } catch (e) {
                  oom(e);
                  break;
                }
                if (v.shared) v.shared.data.set(v.pgoff + page, op.value);
                else pm.priv.set(v.start + page * PG, op.value);
                break;
              }
              case 'read': {
                if (!v) break;
                const page = op.page % v.npages;
                expect(pageIs(pm.proc.read(v.start + page * PG, PG), expected(pm, v, page))).toBe(true);
                break;
              }
              case 'fork': {
                const child = pm.proc.fork();
                procs.push({ proc: child, vmas: pm.vmas.map((x) => ({ ...x })), priv: new Map(pm.priv) });
                break;
              }
              case 'exit': {
                if (procs.length === 1) break;
                pm.proc.exit();
                procs.splice(procs.indexOf(pm), 1);
                break;
              }
              case 'split': {
                if (!v) break;
                const info = pm.proc.pageInfo(v.start + (op.page % v.npages) * PG);
                if (!info || info.zeroPage || info.order === 0) break;
                const anon = !v.shared;
                const choices = Array.from({ length: info.order }, (_, i) => i).filter(
                  (o) => !anon || o !== 1,
                );
                const order = choices[op.order % choices.length]!;
                m.splitFolio(info.headPfn, order, op.at ? { at: info.pfn } : {});
                expect(pm.proc.pageInfo(v.start + (op.page % v.npages) * PG)!.pfn).toBe(info.pfn);
                break;
              }
            }
            m.checkInvariants();
          }
          // Every page of every process still reads as the model says.
          for (const pm of procs) {
            for (const v of pm.vmas) {
              const bytes = pm.proc.read(v.start, v.npages * PG);
              for (let i = 0; i < v.npages; i++) {
                const ok = pageIs(bytes.subarray(i * PG, (i + 1) * PG), expected(pm, v, i));
                if (!ok) expect.fail(`pid ${pm.proc.pid} page ${i} of the area at 0x${v.start.toString(16)}`);
              }
            }
          }
          for (const pm of procs) pm.proc.exit();
          m.checkInvariants();
          expect(m.freePages(0) + m.freePages(1)).toBe(m.nrPages);
        } finally {
          await m.close();
        }
      }),
      { numRuns: Number(process.env.RUNS ?? 200) },
    );
  }, 120_000);
});
