import {
  DRIVER_FAULT_SITES,
  type DriverFaultSite,
  type FaultRule,
  type Machine,
  MIGRATOR_API_VERSION,
  type MigrationBatch,
  type Migrator,
  type MmapOptions,
  PAGE_SIZE,
  type PatternResult,
  type UserThread,
  validateMigrator,
  verifyPattern as verifyLivePattern,
} from '@pagemig/core';
import { assertExpect, type ExpectLike } from './expect.js';
import {
  batchOf,
  checkRegion,
  createTestMachine,
  machineChecksum,
  migrateRegion,
  patternBytes,
  populateRegion,
  regionNodes,
  type TestRegion,
} from './fixtures.js';
import { trackHandles } from './leaks.js';

type Fn = () => void | Promise<void>;
/** `it`/`test` of the runner: vitest, jest, node:test (`it(name, fn)`). */
export type ItLike = (name: string, fn: Fn, timeout?: number) => unknown;

export interface ConformanceOptions {
  describe: (name: string, fn: () => void) => unknown;
  it: ItLike;
  /** vitest's or jest's expect; node:test users leave it out (node:assert is used). */
  expect?: ExpectLike;
  /** Returns a fresh, uninitialised migrator (the suite registers, uses and disposes it). */
  factory: () => Migrator | Promise<Migrator>;
  /** Cases to leave out (not registered): a case id ("copy/2MiB") or a pattern over the ids. */
  skip?: readonly (string | RegExp)[];
  /** Include the case with live user threads (worker threads). Default true. */
  liveThreads?: boolean;
  /** Per-case timeout passed to the runner (vitest, jest). Default 30 s. */
  timeoutMs?: number;
  /**
   * The capabilities used to prune cases when the suite is defined. Default: those of a migrator
   * the factory returns synchronously (an async factory prunes inside each case instead).
   */
  capabilities?: Migrator['capabilities'];
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Rows of a direct batch: frames allocated by the suite on node 0 (src) and node 1 (dst). */
interface DirectBatch {
  batch: MigrationBatch;
  src: number[];
  dst: number[];
  nr: number[];
  release(): void;
}

/** Allocates `orders.length` folio pairs, fills sources with a pattern and destinations with garbage. */
function directBatch(m: Machine, orders: readonly number[], seed = 1): DirectBatch {
  const k = m.kernel;
  const rows: [number, number, number][] = [];
  const src: number[] = [];
  const dst: number[] = [];
  const nr: number[] = [];
  const guard: number[] = [];
  orders.forEach((order, i) => {
    const s = k.allocFolio({ order, nid: 0 });
    // A guard page before each destination shows writes outside the row.
    const d = k.allocFolio({ order: order + 1, nid: 1 });
    if (s < 0 || d < 0) throw new Error('conformance: the test machine ran out of memory');
    const n = 1 << order;
    const dd = d + n;
    guard.push(d);
    if (k.mem.backed) {
      k.mem.view(s, n).set(patternBytes(n * PAGE_SIZE, seed * 1000 + i));
      k.mem.view(d, 2 * n).fill(0xee);
    }
    rows.push([s, dd, n]);
    src.push(s);
    dst.push(dd);
    nr.push(n);
  });
  return {
    batch: batchOf(rows),
    src,
    dst,
    nr,
    release() {
      for (const s of src) k.folioPut(s);
      for (const g of guard) k.folioPut(g);
    },
  };
}

/**
 * Marking semantics: a marked row's destination equals its source; no byte outside the rows'
 * destinations changed (the guard pages); sources unchanged. Returns the problems.
 */
function checkMarks(m: Machine, d: DirectBatch, seed = 1): { marked: number; problems: string[] } {
  const k = m.kernel;
  const problems: string[] = [];
  let marked = 0;
  for (let i = 0; i < d.batch.rows; i++) {
    const n = d.nr[i]!;
    const want = patternBytes(n * PAGE_SIZE, seed * 1000 + i);
    if (Buffer.compare(k.mem.view(d.src[i]!, n), want) !== 0) problems.push(`row ${i}: the source changed`);
    const guard = k.mem.view(d.dst[i]! - n, n);
    if (!guard.every((b) => b === 0xee))
      problems.push(`row ${i}: bytes written outside the row's destination`);
    if (!d.batch.isCopied(i)) continue;
    marked++;
    if (Buffer.compare(k.mem.view(d.dst[i]!, n), want) !== 0)
      problems.push(`row ${i} is marked copied but differs`);
  }
  return { marked, problems };
}

/** Settles `p` or fails after `ms`. */
async function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let t: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<never>((_, reject) => {
        t = setTimeout(() => reject(new Error(`${what} did not settle within ${ms} ms`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(t);
  }
}

/**
 * The migrator conformance suite (abstract-level style): the runner is injected, `factory()`
 * returns a fresh migrator per case, and the suite builds its own machines. Cases are pruned by
 * the declared capabilities (needsSharedMemory, maxInFlightBatches, faultSites).
 */
export function runMigratorConformance(opts: ConformanceOptions): void {
  const { describe, it, factory } = opts;
  const expect = opts.expect ?? assertExpect;
  const timeout = opts.timeoutMs ?? 30_000;
  const skipped = (id: string) =>
    (opts.skip ?? []).some((s) => (typeof s === 'string' ? s === id : s.test(id)));
  let caps = opts.capabilities;
  if (!caps) {
    try {
      const probe = factory();
      if (!(probe instanceof Promise)) {
        caps = probe.capabilities;
        void Promise.resolve(probe.dispose()).catch(() => {});
      } else void probe.then((p) => p.dispose()).catch(() => {});
    } catch {
      // A factory that throws fails every case, where the runner reports it.
    }
  }
  // A case that does not apply (pruned by the capabilities, or left out by `skip`) is not
  // registered at all: the runner reports only cases that ran.
  const test = (id: string, title: string, fn: Fn, pruned = false) => {
    if (!skipped(id) && !pruned) it(`${id}: ${title}`, fn, timeout);
  };

  /** A machine with a fresh migrator registered for every reason; closes both afterwards. */
  async function withMachine(
    fn: (m: Machine, mig: Migrator) => Promise<void>,
    machineOpts: Parameters<typeof createTestMachine>[0] = {},
  ): Promise<void> {
    const m = await createTestMachine(machineOpts);
    try {
      const mig = await factory();
      await m.offload.register(mig, 'all');
      await fn(m, mig);
      m.checkInvariants();
    } finally {
      m.injectFaults(null);
      await m.close();
    }
  }

  /** Migrates a region to node 1 and checks bytes, mapping, checksum, counters and invariants. */
  async function migrateAndCheck(
    m: Machine,
    regions: TestRegion[],
    expectCopiedByMigrator: boolean,
  ): Promise<void> {
    const before = machineChecksum(m);
    const heads = regions.flatMap((r) => r.heads);
    const pages = regions.reduce((s, r) => s + r.bytes / PAGE_SIZE, 0);
    const res = await m.migrateFolios(heads, { node: 1 });
    expect({ ret: res.ret, nrSucceeded: res.nrSucceeded, nrFailed: res.nrFailed }).toEqual({
      ret: 0,
      nrSucceeded: pages,
      nrFailed: 0,
    });
    for (const r of regions) {
      expect(regionNodes(r)).toEqual([1]);
      expect(checkRegion(m, r)).toEqual([]);
    }
    expect(machineChecksum(m)).toBe(before);
    expect(res.offload.foliosCopied).toBeLessThanOrEqual(res.offload.foliosOffered);
    if (expectCopiedByMigrator) {
      expect(res.offload.failures).toBe(0);
      expect(res.offload.foliosCopied).toBe(heads.length);
    }
  }

  describe('pagemig migrator conformance', () => {
    test('contract/shape', 'a structurally valid, serialisable pagemig.migrator/v1 object', async () => {
      const mig = await factory();
      validateMigrator(mig);
      expect(mig.apiVersion).toBe(MIGRATOR_API_VERSION);
      expect(typeof mig.name === 'string' && mig.name.length > 0).toBe(true);
      expect(typeof mig.version).toBe('string');
      expect(typeof mig.engines?.core).toBe('string');
      const caps = mig.capabilities;
      expect(JSON.parse(JSON.stringify(caps))).toEqual(caps);
      expect(typeof caps.offloadsCpu).toBe('boolean');
      expect(Number.isInteger(caps.channels) && caps.channels >= 1).toBe(true);
      expect(Number.isInteger(caps.maxInFlightBatches) && caps.maxInFlightBatches >= 1).toBe(true);
      const unknownSites = (caps.faultSites ?? []).filter(
        (s) => !(DRIVER_FAULT_SITES as readonly string[]).includes(s),
      );
      expect(unknownSites).toEqual([]);
      for (const method of ['init', 'copyBatch', 'dispose'] as const)
        expect(typeof mig[method]).toBe('function');
      // A fresh migrator is safe to dispose without init.
      await mig.dispose();
    });

    test(
      'contract/register',
      'registers, serves every reason, unregisters; the factory gives fresh objects',
      async () => {
        const a = await factory();
        const b = await factory();
        expect(a === b).toBe(false);
        const m = await createTestMachine();
        try {
          await m.offload.register(a, 'all');
          expect(m.offload.active === a).toBe(true);
          const st = m.offload.status();
          expect(st.map((s) => s.name)).toEqual([a.name]);
          await m.offload.unregister(a);
          expect(m.offload.active).toBe(null);
        } finally {
          await m.close();
        }
      },
    );

    const sizes: [string, MmapOptions['thp'], number][] = [
      ['4KiB', 'never', 256],
      ['16KiB', '16KiB', 256],
      ['64KiB', '64KiB', 512],
      ['2MiB', 'always', 1024],
    ];
    for (const [label, thp, pages] of sizes) {
      test(`copy/${label}`, `migrates ${label} folios through the migrator; every byte arrives`, () =>
        withMachine(async (m) => {
          const r = populateRegion(m, { bytes: pages * PAGE_SIZE, thp, seed: pages });
          await migrateAndCheck(m, [r], false);
        }),
      );
    }

    test('copy/mixed', 'one migration of 4KiB, 64KiB and 2MiB folios, private and shared', () =>
      withMachine(async (m) => {
        const p = m.spawn({ privileged: true });
        const regions = [
          populateRegion(m, { p, bytes: 64 * PAGE_SIZE, thp: 'never', seed: 2 }),
          populateRegion(m, { p, bytes: 2 << 20, thp: 'always', seed: 3 }),
          populateRegion(m, { p, bytes: 128 * PAGE_SIZE, thp: '64KiB', seed: 4 }),
          populateRegion(m, { p, bytes: 32 * PAGE_SIZE, thp: 'never', shared: true, seed: 5 }),
        ];
        await migrateAndCheck(m, regions, false);
      }),
    );

    test('copy/direct', 'copies and marks every row of a batch it is handed (4KiB..2MiB rows)', () =>
      withMachine(async (m, mig) => {
        const d = directBatch(m, [0, 0, 2, 4, 9, 0, 3]);
        try {
          await within(
            Promise.resolve(mig.copyBatch(d.batch, { signal: new AbortController().signal })),
            10_000,
            'copyBatch',
          );
          const { marked, problems } = checkMarks(m, d);
          expect(problems).toEqual([]);
          expect(marked).toBe(d.batch.rows);
        } finally {
          d.release();
        }
      }),
    );

    test('marking/only-copied', 'marks only rows it really copied, never writes outside them', () =>
      withMachine(async (m, mig) => {
        // Also with the rows' own faults when the driver honours them.
        const sites = mig.capabilities.faultSites ?? [];
        const rules: FaultRule[] = [];
        if (sites.includes('copy_row')) {
          rules.push(
            { site: 'copy_row', action: 'skip', nth: 2 },
            { site: 'copy_row', action: 'garbage', nth: 4 },
          );
        }
        if (rules.length) m.injectFaults(rules);
        const d = directBatch(m, [0, 0, 0, 0, 0, 1, 0, 2], 5);
        try {
          await within(
            Promise.resolve(mig.copyBatch(d.batch, { signal: new AbortController().signal })),
            10_000,
            'copyBatch',
          );
          const { marked, problems } = checkMarks(m, d, 5);
          expect(problems).toEqual([]);
          if (rules.length) {
            expect(d.batch.isCopied(1)).toBe(false);
            expect(d.batch.isCopied(3)).toBe(false);
            expect(marked).toBe(d.batch.rows - 2);
          }
        } finally {
          d.release();
        }
      }),
    );

    test('abort/before', 'a signal aborted before the call: settles at once, marks only real copies', () =>
      withMachine(async (m, mig) => {
        const d = directBatch(
          m,
          Array.from({ length: 64 }, () => 0),
        );
        try {
          const ac = new AbortController();
          ac.abort(new Error('aborted by the conformance suite'));
          try {
            await within(Promise.resolve(mig.copyBatch(d.batch, { signal: ac.signal })), 2000, 'copyBatch');
          } catch (e) {
            // Rejecting an aborted batch is allowed; hanging is not.
            if (e instanceof Error && /did not settle/.test(e.message)) throw e;
          }
          expect(checkMarks(m, d).problems).toEqual([]);
        } finally {
          d.release();
        }
      }),
    );

    test('abort/during', 'a signal aborted during a large batch: settles soon, marks only real copies', () =>
      withMachine(async (m, mig) => {
        const d = directBatch(m, [...Array.from({ length: 1500 }, () => 0), 9, 9]);
        try {
          const ac = new AbortController();
          const run = Promise.resolve(mig.copyBatch(d.batch, { signal: ac.signal }));
          setImmediate(() => ac.abort(new Error('aborted by the conformance suite')));
          try {
            await within(run, 2000, 'copyBatch after abort');
          } catch (e) {
            if (e instanceof Error && /did not settle/.test(e.message)) throw e;
          }
          expect(checkMarks(m, d).problems).toEqual([]);
        } finally {
          d.release();
        }
      }),
    );

    test('abort/engine-timeout', 'the engine aborts a slow batch; the data still arrives', () =>
      withMachine(async (m) => {
        const r = populateRegion(m, { bytes: 4 << 20, thp: 'always' });
        const res = await migrateRegion(m, r, 1, { copyTimeoutMs: 1 });
        expect(res.ret).toBe(0);
        expect(checkRegion(m, r)).toEqual([]);
      }),
    );

    test('concurrency/batches', 'concurrent batches (up to maxInFlightBatches) each copy correctly', () =>
      withMachine(async (m, mig) => {
        const n = Math.min(4, mig.capabilities.maxInFlightBatches);
        const ds = Array.from({ length: n }, (_, i) => directBatch(m, [0, 2, 0, 4, 0, 0], 10 + i));
        try {
          await within(
            Promise.all(ds.map((d) => mig.copyBatch(d.batch, { signal: new AbortController().signal }))),
            10_000,
            'concurrent copyBatch',
          );
          ds.forEach((d, i) => {
            const { marked, problems } = checkMarks(m, d, 10 + i);
            expect(problems).toEqual([]);
            expect(marked).toBe(d.batch.rows);
          });
        } finally {
          for (const d of ds) d.release();
        }
      }),
    );

    test('concurrency/migrations', 'two migrations in flight at once through the engine', () =>
      withMachine(async (m) => {
        const a = populateRegion(m, { bytes: 512 * PAGE_SIZE, thp: 'never', seed: 21 });
        const b = populateRegion(m, { bytes: 4 << 20, thp: 'always', seed: 22 });
        const [ra, rb] = await Promise.all([migrateRegion(m, a, 1), migrateRegion(m, b, 1)]);
        expect([ra.ret, rb.ret]).toEqual([0, 0]);
        expect(checkRegion(m, a)).toEqual([]);
        expect(checkRegion(m, b)).toEqual([]);
        expect(regionNodes(a).concat(regionNodes(b))).toEqual([1, 1]);
      }),
    );

    test(
      'dispose/idempotent',
      'dispose twice (and asyncDispose) without error; no handle leaked',
      async () => {
        const handles = trackHandles();
        try {
          const m = await createTestMachine();
          const mig = await factory();
          await m.offload.register(mig, 'all');
          const r = populateRegion(m, { bytes: 2 << 20, thp: '64KiB' });
          expect((await migrateRegion(m, r, 1)).ret).toBe(0);
          await m.offload.unregister(mig); // disposes
          await mig.dispose();
          if (mig[Symbol.asyncDispose]) await mig[Symbol.asyncDispose]!();
          await m.close();
          // Let terminated workers and cleared timers report their end.
          for (let i = 0; i < 20 && handles.leaked().length; i++) await handles.settle(10);
          expect(handles.leaked()).toEqual([]);
        } finally {
          handles.stop();
        }
      },
    );

    describe('fault plan', () => {
      const engine: [string, FaultRule[], (m: Machine, r: TestRegion) => Promise<void>][] = [
        [
          'faults/alloc_dst',
          [{ site: 'alloc_dst', nth: 3 }],
          async (m, r) => {
            const res = await migrateRegion(m, r, 1);
            expect({ ret: res.ret, nrSucceeded: res.nrSucceeded }).toEqual({ ret: -12, nrSucceeded: 2 });
          },
        ],
        [
          'faults/unmap_pin',
          [{ site: 'unmap_pin', times: Number.POSITIVE_INFINITY, match: { order: 0 } }],
          async (m, r) => {
            const res = await migrateRegion(m, r, 1);
            expect(res.ret).toBe(r.heads.length);
            expect(regionNodes(r)).toEqual([0]);
            expect(m.vmstat().pgmigrate_fail).toBe(r.heads.length);
          },
        ],
        [
          'faults/migrator_call-throw',
          [{ site: 'migrator_call', action: 'throw' }],
          async (m, r) => {
            const res = await migrateRegion(m, r, 1);
            expect({
              ret: res.ret,
              failures: res.offload.failures,
              copied: res.offload.foliosCopied,
            }).toEqual({
              ret: 0,
              failures: 1,
              copied: 0,
            });
          },
        ],
        [
          'faults/migrator_call-partial',
          [{ site: 'migrator_call', action: 'partial' }],
          async (m, r) => {
            const res = await migrateRegion(m, r, 1);
            expect(res.ret).toBe(0);
            expect(res.offload.foliosCopied).toBeLessThanOrEqual(Math.ceil(r.heads.length / 2));
          },
        ],
        [
          'faults/migrator_call-hang',
          [{ site: 'migrator_call', action: 'hang' }],
          async (m, r) => {
            const res = await migrateRegion(m, r, 1, { copyTimeoutMs: 20, abortGraceMs: 20 });
            expect({ ret: res.ret, failures: res.offload.failures }).toEqual({ ret: 0, failures: 1 });
            expect(typeof m.offload.status()[0]?.disabled).toBe('string');
          },
        ],
      ];
      for (const [id, rules, run] of engine) {
        test(
          id,
          `engine site ${rules[0]!.site}${rules[0]!.action ? ` (${rules[0]!.action})` : ''}: every folio mapped once, bytes intact`,
          () =>
            withMachine(async (m) => {
              const r = populateRegion(m, { bytes: 16 * PAGE_SIZE, thp: 'never', seed: 31 });
              const plan = m.injectFaults(rules)!;
              await run(m, r);
              expect(plan.fired()).toBeGreaterThan(0);
              expect(checkRegion(m, r)).toEqual([]);
            }),
        );
      }

      // Driver sites: only those the migrator declares it honours.
      const driver: Record<DriverFaultSite, FaultRule[]> = {
        copy_batch: [{ site: 'copy_batch', action: 'throw' }],
        copy_row: [{ site: 'copy_row', action: 'garbage', nth: 3 }],
        device_error: [{ site: 'device_error', nth: 5, code: 'EIO' }],
        device_hang: [{ site: 'device_hang', nth: 5, timeoutMs: 20 }],
        worker_exit: [{ site: 'worker_exit', nth: 2 }],
      };
      for (const site of DRIVER_FAULT_SITES) {
        const pruned = caps !== undefined && !(caps.faultSites ?? []).includes(site);
        test(
          `faults/${site}`,
          `driver site ${site} (declared in capabilities.faultSites)`,
          async () => {
            const mig = await factory();
            const declared = (mig.capabilities.faultSites ?? []).includes(site);
            await mig.dispose();
            if (!declared) return;
            await withMachine(async (m) => {
              const r = populateRegion(m, { bytes: 32 * PAGE_SIZE, thp: 'never', seed: 41 });
              const before = machineChecksum(m);
              const plan = m.injectFaults(driver[site])!;
              const res = await migrateRegion(m, r, 1, { copyTimeoutMs: 5000 });
              expect(res.ret).toBe(0);
              expect(plan.fired(site)).toBeGreaterThan(0);
              // Whatever the driver did, the engine copied what it did not mark.
              expect(res.offload.foliosCopied).toBeLessThanOrEqual(r.heads.length - 1);
              expect(regionNodes(r)).toEqual([1]);
              expect(checkRegion(m, r)).toEqual([]);
              expect(machineChecksum(m)).toBe(before);
            });
          },
          pruned,
        );
      }
    });

    test('capabilities/backing', 'needsSharedMemory is honoured on a machine without bytes', async () => {
      const m = await createTestMachine({ backing: 'none' });
      try {
        const mig = await factory();
        if (mig.capabilities.needsSharedMemory) {
          let refused = false;
          try {
            await m.offload.register(mig, 'all');
          } catch (e) {
            refused = (e as { errno?: number }).errno === 95;
          }
          expect(refused).toBe(true);
          await mig.dispose();
          return;
        }
        await m.offload.register(mig, 'all');
        const p = m.spawn();
        const a = p.mmap(64 * PAGE_SIZE, { node: 0 });
        p.touch(a, 64 * PAGE_SIZE, 'write');
        const r: TestRegion = { p, addr: a, bytes: 64 * PAGE_SIZE, data: new Uint8Array(0), heads: [] };
        const res = await migrateRegion(m, r, 1);
        expect(res.ret).toBe(0);
        expect(regionNodes(r)).toEqual([1]);
        m.checkInvariants();
      } finally {
        await m.close();
      }
    });

    if (opts.liveThreads !== false) {
      test('live/threads', 'user threads write a pattern while their memory migrates back and forth', () =>
        withMachine(async (m) => {
          const p = m.spawn({ privileged: true });
          const bytes = 64 * PAGE_SIZE;
          const a = p.mmap(bytes, { thp: '16KiB', node: 0 });
          p.touch(a, bytes, 'write');
          const w = { addr: a, bytes, lanes: 2 };
          const threads: UserThread<PatternResult>[] = [0, 1, -1].map((lane) =>
            p.spawnThread<PatternResult>({ workload: { kind: 'pattern', ...w, lane } }),
          );
          try {
            while (threads.some((t) => t.state === 'starting')) await sleep(2);
            const r: TestRegion = { p, addr: a, bytes, data: new Uint8Array(0), heads: [] };
            for (let i = 0; i < 16; i++) {
              const res = await migrateRegion(m, r, (i + 1) & 1);
              expect(res.ret).toBe(0);
            }
          } finally {
            for (const t of threads) t.stop();
          }
          const results = await Promise.all(threads.map((t) => t.join()));
          expect(results.map((x) => x.errors)).toEqual([0, 0, 0]);
          expect(verifyLivePattern((x, n) => p.read(x, n), w, results).mismatches).toBe(0);
        }),
      );
    }
  });
}
