// Tests run against the built package (dist/): piscina loads dist/copy_worker.js in its threads,
// and Node 20 cannot load a .ts worker. turbo builds the package before `test`.
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import {
  createMachine,
  type Machine,
  MigrateMode,
  MigrateReason,
  MigrationBatch,
  type MigratorContext,
  PagemigError,
} from '@pagemig/core';
import { Piscina } from 'piscina';
import { afterEach, describe, expect, it } from 'vitest';
import {
  type CpuMultithreadedMigrator,
  type CpuMultithreadedOptions,
  createMigrator,
  optionKeys,
  splitBatch,
  workerUrl,
} from '../dist/index.js';

const PAGE = 4096;
let m: Machine | undefined;
const migrators: CpuMultithreadedMigrator[] = [];
const pools: Piscina[] = [];

// Pools a test injects are destroyed after it: an idle worker they retire later would change
// the handle count the next test measures.
afterEach(async () => {
  await m?.close();
  m = undefined;
  for (const mig of migrators.splice(0)) await mig.dispose();
  for (const pool of pools.splice(0)) await pool.destroy();
});

/** A migrator this test file disposes after each test. */
function make(options: CpuMultithreadedOptions = {}): CpuMultithreadedMigrator {
  const mig = createMigrator(options);
  migrators.push(mig);
  return mig;
}

function fill(seed: number, n: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = (i * 31 + seed * 7 + (i >>> 12)) & 255;
  return out;
}

interface Ctx extends MigratorContext {
  warnings: string[];
  counters: Record<string, number>;
}

/** The context the host would hand over, for driving copyBatch directly. */
function contextOf(machine: Machine): Ctx {
  const k = machine.kernel;
  const warnings: string[] = [];
  const counters: Record<string, number> = {};
  return {
    sections: k.mem.sections,
    sectionPfnShift: k.mem.pagesPerSectionShift,
    pageSize: PAGE,
    nrPages: k.nrPages,
    logger: { info() {}, warn: (s) => warnings.push(s), error: (s) => warnings.push(s) },
    count(name, delta = 1) {
      counters[name] = (counters[name] ?? 0) + delta;
    },
    allocCoherent() {
      throw new Error('cpu-multithreaded allocates no coherent memory');
    },
    freeCoherent() {},
    host: { coreVersion: '0.1.0', apiVersion: 'pagemig.migrator/v1' },
    warnings,
    counters,
  };
}

/** A batch of rows [src, dst, nrPages]; every source page is filled with a pattern of its pfn. */
function batchOf(machine: Machine, rows: [number, number, number][]): MigrationBatch {
  const table = new Int32Array(new SharedArrayBuffer(rows.length * 16));
  rows.forEach(([src, dst, nr], i) => {
    table.set([src, dst, nr, 0], i * 4);
    for (let j = 0; j < nr; j++) {
      const v = machine.kernel.mem.view(src + j);
      for (let b = 0; b < PAGE; b += 64) v[b] = (src + j + b) & 255;
      v[PAGE - 1] = (src + j) >> 8;
    }
  });
  return new MigrationBatch(table, rows.length, MigrateReason.MR_COMPACTION, MigrateMode.MIGRATE_ASYNC);
}

/** True when row i's destination holds its source's bytes. */
function rowArrived(machine: Machine, batch: MigrationBatch, i: number): boolean {
  const mem = machine.kernel.mem;
  return (
    Buffer.compare(mem.view(batch.dst(i), batch.nrPages(i)), mem.view(batch.src(i), batch.nrPages(i))) === 0
  );
}

function marks(batch: MigrationBatch): boolean[] {
  return Array.from({ length: batch.rows }, (_, i) => batch.isCopied(i));
}

const never = () => new AbortController().signal;

describe('cpu-multithreaded: migrator conformance', () => {
  it.each([
    ['never', 4 << 10, {}],
    ['64KiB', 64 << 10, {}],
    ['always', 2 << 20, {}],
    ['never', 4 << 10, { inlineBelow: 0, minChunk: PAGE }],
    ['64KiB', 64 << 10, { inlineBelow: 0, minChunk: PAGE }],
    ['always', 2 << 20, { inlineBelow: 0, minChunk: PAGE }],
    ['always', 2 << 20, { inlineBelow: 0, minChunk: PAGE, callerCopies: true }],
  ] as const)('migrates %s folios (%d bytes) with %j and every byte arrives', async (thp, folio, opts) => {
    m = await createMachine({ nodes: [{ memory: '64MiB' }, { memory: '64MiB' }], prefault: false });
    const mig = make({ threads: 2, ...opts });
    await m.offload.register(mig, 'all');
    const p = m.spawn();
    const len = 16 << 20;
    const a = p.mmap(len, { thp, node: 0 });
    const data = fill(folio, len);
    p.write(a, data);
    const pfns: number[] = [];
    for (let off = 0; off < len; off += folio) pfns.push(p.pageInfo(a + off)!.headPfn);
    const r = await m.migrateFolios(pfns, { node: 1 });
    expect(r.ret).toBe(0);
    expect(r.offload.foliosCopied).toBe(pfns.length);
    expect(r.offload.failures).toBe(0);
    const st = mig.stats();
    expect(st).toMatchObject({ folios: pfns.length, bytes: len, failedTasks: 0, incompleteBatches: 0 });
    // 16 MiB in batches of 512 base pages: 8 batches of 2 MiB, on the workers the run keeps awake
    // (woken once, for the run). With inlineBelow 0 every batch goes to them; by default the run
    // copies inline until its fourth batch starts a look of two at the workers, and whichever
    // measured faster takes the last three.
    expect(st.batches).toBe(8);
    expect(st).toMatchObject({ runs: 1, sessions: 1 });
    expect(st.inlineBatches + st.pooledBatches).toBe(8);
    if ('inlineBelow' in opts) expect(st.pooledBatches).toBe(8);
    else {
      expect(st.inlineBatches).toBeGreaterThanOrEqual(3);
      expect(st.pooledBatches).toBeGreaterThanOrEqual(2);
    }
    expect(st.awakeBatches).toBe(st.pooledBatches);
    expect(p.pageInfo(a)!.node).toBe(1);
    expect(Buffer.compare(p.read(a, len), data)).toBe(0);
    m.checkInvariants();
  });

  it.each([
    ['inline', {}],
    ['pooled', { inlineBelow: 0, minChunk: PAGE }],
    ['pooled with the caller copying', { inlineBelow: 0, minChunk: PAGE, callerCopies: true }],
  ] as const)('copies exactly the rows of a batch and marks each one (%s)', async (_, opts) => {
    m = await createMachine({ nodes: [{ memory: '16MiB' }], prefault: false });
    const mig = make({ threads: 2, ...opts });
    await mig.init(contextOf(m));
    // Rows: pfn 10 → 100 (1 page), pfn 20 → 200 (2 pages), pfn 30 → 300 (1 page).
    const batch = batchOf(m, [
      [10, 100, 1],
      [20, 200, 2],
      [30, 300, 1],
    ]);
    await mig.copyBatch(batch, { signal: never() });
    expect(marks(batch)).toEqual([true, true, true]);
    for (let i = 0; i < 3; i++) expect(rowArrived(m, batch, i)).toBe(true);
    // Nothing beyond the rows was written.
    expect(m.kernel.mem.view(99).every((b) => b === 0)).toBe(true);
    expect(m.kernel.mem.view(101).every((b) => b === 0)).toBe(true);
    expect(m.kernel.mem.view(202).every((b) => b === 0)).toBe(true);
    expect(m.kernel.mem.view(301).every((b) => b === 0)).toBe(true);
  });

  it.each([
    ['inline', {}],
    ['pooled', { inlineBelow: 0, minChunk: PAGE }],
  ] as const)('leaves every row unmarked when the signal is already aborted (%s)', async (_, opts) => {
    m = await createMachine({ nodes: [{ memory: '16MiB' }], prefault: false });
    const mig = make({ threads: 2, ...opts });
    await m.offload.register(mig);
    const batch = batchOf(m, [
      [1, 2, 1],
      [3, 4, 1],
    ]);
    const ac = new AbortController();
    ac.abort();
    await mig.copyBatch(batch, { signal: ac.signal });
    expect(marks(batch)).toEqual([false, false]);
    expect(mig.stats()).toMatchObject({ incompleteBatches: 1, folios: 0 });
  });

  it('stops a pooled batch aborted while it runs; marked rows are complete, the rest unmarked', async () => {
    m = await createMachine({ nodes: [{ memory: '64MiB' }, { memory: '64MiB' }], prefault: false });
    const mig = make({ threads: 2, inlineBelow: 0, minChunk: PAGE });
    await mig.init(contextOf(m));
    const rows: [number, number, number][] = [];
    for (let i = 0; i < 4096; i++) rows.push([i * 4, 16384 + i * 4, 4]); // 64 MiB in 16 KiB folios
    const batch = batchOf(m, rows);
    const ac = new AbortController();
    const run = mig.copyBatch(batch, { signal: ac.signal });
    ac.abort();
    await run;
    const marked = marks(batch);
    expect(marked.filter(Boolean).length).toBeLessThan(rows.length);
    marked.forEach((copied, i) => {
      if (copied) expect(rowArrived(m!, batch, i)).toBe(true);
    });
    expect(mig.stats().incompleteBatches).toBe(1);
  });

  it('rejects unknown and invalid options with a coded error, and lists its option keys', () => {
    expect(optionKeys).toEqual([
      'threads',
      'minChunk',
      'inlineBelow',
      'pool',
      'callerCopies',
      'runSpinUs',
      'adaptive',
    ]);
    expect(() => createMigrator({ thread: 2 } as never)).toThrow(/unknown option "thread"/);
    for (const bad of [
      { threads: 0 },
      { threads: 1.5 },
      { minChunk: 100 },
      { inlineBelow: -1 },
      { callerCopies: 'yes' },
      { pool: {} },
      { runSpinUs: -1 },
      { adaptive: 'no' },
    ]) {
      try {
        createMigrator(bad as never);
        expect.unreachable(JSON.stringify(bad));
      } catch (e) {
        expect(PagemigError.isInstance(e) && e.code).toBe('ERR_MIGRATOR_OPTION');
      }
    }
  });

  it('declares a manifest the host accepts, and registers and unregisters cleanly', async () => {
    m = await createMachine({ nodes: [{ memory: '16MiB' }], prefault: false });
    const mig = make({ threads: 2 });
    expect(mig.capabilities).toMatchObject({
      offloadsCpu: true,
      channels: 2,
      needsSharedMemory: true,
      minFolioBytes: PAGE,
    });
    expect(mig.capabilities.maxInFlightBatches).toBeGreaterThanOrEqual(1);
    expect(make({ threads: 1, callerCopies: true }).capabilities).toMatchObject({
      offloadsCpu: false,
      channels: 2,
    });
    await m.offload.register(mig, 'compaction,demotion');
    expect(m.offload.reasonMask).toBe('compaction,demotion');
    await m.offload.unregister(mig);
    expect(m.offload.active).toBeNull();
    // Registering again after dispose starts a fresh pool.
    await m.offload.register(mig, 'all');
    const batch = batchOf(m, [[5, 6, 1]]);
    await mig.copyBatch(batch, { signal: never() });
    expect(marks(batch)).toEqual([true]);
  });
});

describe('cpu-multithreaded: splitting', () => {
  it('splits by bytes: one 2 MiB folio is cut into one byte range per thread', async () => {
    m = await createMachine({ nodes: [{ memory: '16MiB' }], prefault: false });
    for (const threads of [2, 3]) {
      const mig = make({ threads, inlineBelow: 0, minChunk: PAGE });
      await mig.init(contextOf(m));
      const batch = batchOf(m, [[512, 2048 + (threads - 2) * 512, 512]]);
      const shares = splitBatch(batch.table, 1, 512, threads);
      expect(shares.map((s) => s.pages).reduce((a, b) => a + b)).toBe(512);
      expect(
        Math.max(...shares.map((s) => s.pages)) - Math.min(...shares.map((s) => s.pages)),
      ).toBeLessThanOrEqual(1);
      await mig.copyBatch(batch, { signal: never() });
      expect(marks(batch)).toEqual([true]);
      expect(rowArrived(m, batch, 0)).toBe(true);
      const st = mig.stats();
      expect(st.pooledBatches).toBe(1);
      const perThread = Object.values(st.threads);
      expect(perThread).toHaveLength(threads);
      for (const t of perThread) {
        expect(t.tasks).toBe(1);
        expect(Math.abs(t.bytes - (2 << 20) / threads)).toBeLessThanOrEqual(PAGE);
      }
    }
  });

  it('does not split below minChunk', async () => {
    m = await createMachine({ nodes: [{ memory: '16MiB' }], prefault: false });
    const mig = make({ threads: 2, inlineBelow: 0, minChunk: 2 << 20 });
    await mig.init(contextOf(m));
    const batch = batchOf(m, [[512, 2048, 512]]);
    await mig.copyBatch(batch, { signal: never() });
    expect(marks(batch)).toEqual([true]);
    expect(Object.values(mig.stats().threads)).toEqual([{ tasks: 1, bytes: 2 << 20 }]);
  });

  it('divides 512 x 4 KiB folios into contiguous runs', () => {
    const table = new Int32Array(512 * 4);
    for (let i = 0; i < 512; i++) table.set([i, 1000 + i, 1, 0], i * 4);
    expect(splitBatch(table, 512, 512, 2)).toEqual([
      { startRow: 0, startPage: 0, pages: 256, firstPage: 0 },
      { startRow: 256, startPage: 0, pages: 256, firstPage: 256 },
    ]);
  });

  it('coalesces physically contiguous rows, but never across a section boundary', async () => {
    // 4 MiB sections: pfns 1024.. are in section 1.
    m = await createMachine({ nodes: [{ memory: '16MiB' }], sectionSize: '4MiB', prefault: false });
    const mig = make({ threads: 2, inlineBelow: 0, minChunk: PAGE });
    await mig.init(contextOf(m));
    const rows: [number, number, number][] = [];
    // 8 contiguous rows that cross the section boundary at the source (1020..1027 -> 2048..2055),
    // then a gap, then 8 contiguous rows crossing one at the destination (1536.. -> 3068..3075).
    for (let i = 0; i < 8; i++) rows.push([1020 + i, 2048 + i, 1]);
    for (let i = 0; i < 8; i++) rows.push([1536 + i, 3068 + i, 1]);
    const batch = batchOf(m, rows);
    await mig.copyBatch(batch, { signal: never() });
    expect(marks(batch).every(Boolean)).toBe(true);
    for (let i = 0; i < 16; i++) expect(rowArrived(m, batch, i)).toBe(true);
    expect(mig.stats()).toMatchObject({ folios: 16, bytes: 16 * PAGE });
  });

  it('copies a batch of mixed folio sizes, balanced by bytes, each row marked once', async () => {
    m = await createMachine({ nodes: [{ memory: '32MiB' }], prefault: false });
    const sizes = [1, 512, 4, 1, 16, 128, 1, 256, 4, 64, 1, 2];
    const rows: [number, number, number][] = [];
    let src = 0;
    let dst = 2048;
    for (const nr of sizes) {
      src = Math.ceil(src / nr) * nr;
      dst = Math.ceil(dst / nr) * nr;
      rows.push([src, dst, nr]);
      src += nr;
      dst += nr;
    }
    const pages = sizes.reduce((a, b) => a + b);
    for (const threads of [2, 3, 4]) {
      const mig = make({ threads, inlineBelow: 0, minChunk: PAGE });
      await mig.init(contextOf(m));
      const batch = batchOf(
        m,
        rows.map(([s, d, nr]) => [s, d + (threads - 2) * 1024, nr]),
      );
      const shares = splitBatch(batch.table, batch.rows, pages, threads);
      const sharePages = shares.map((s) => s.pages);
      expect(Math.max(...sharePages) - Math.min(...sharePages)).toBeLessThanOrEqual(1);
      await mig.copyBatch(batch, { signal: never() });
      expect(marks(batch).every(Boolean)).toBe(true);
      for (let i = 0; i < batch.rows; i++) expect(rowArrived(m, batch, i)).toBe(true);
      const st = mig.stats();
      expect(st.folios).toBe(sizes.length);
      expect(st.bytes).toBe(pages * PAGE);
      expect(Object.values(st.threads).reduce((a, t) => a + t.bytes, 0)).toBe(pages * PAGE);
    }
  });
});

describe('cpu-multithreaded: failures', () => {
  it('a worker that throws on one chunk leaves its unfinished rows unmarked and the rest copied', async () => {
    m = await createMachine({ nodes: [{ memory: '16MiB' }], prefault: false });
    const ctx = contextOf(m);
    const mig = make({ threads: 2, inlineBelow: 0, minChunk: PAGE });
    await mig.init(ctx);
    // 8 rows of 16 KiB: rows 0-3 go to the first worker, 4-7 to the second. Row 5 points past RAM.
    const rows: [number, number, number][] = [];
    for (let i = 0; i < 8; i++) rows.push([i * 4, 1024 + i * 4, 4]);
    rows[5] = [20, m.nrPages + 100, 4];
    const batch = batchOf(m, rows);
    await mig.copyBatch(batch, { signal: never() });
    // Row 4 was copied before the worker reached row 5; rows 5-7 were not.
    expect(marks(batch)).toEqual([true, true, true, true, true, false, false, false]);
    for (const i of [0, 1, 2, 3, 4]) expect(rowArrived(m, batch, i)).toBe(true);
    expect(m.kernel.mem.view(1024 + 24).every((b) => b === 0)).toBe(true);
    expect(mig.stats()).toMatchObject({ failedTasks: 1, incompleteBatches: 1, folios: 5 });
    expect(ctx.counters.tasks_failed).toBe(1);
    expect(ctx.warnings.join('\n')).toMatch(/1 of 2 copy tasks failed.*outside the machine's RAM/);
  });

  it('a row cut between two shares is marked only if both shares copied their part', async () => {
    m = await createMachine({ nodes: [{ memory: '16MiB' }], prefault: false });
    const mig = make({ threads: 2, inlineBelow: 0, minChunk: PAGE });
    await mig.init(contextOf(m));
    // 24 pages in two shares of 12: row 1 (64 KiB) is cut by the boundary after its 8th page, and the
    // second share throws at row 2 after copying its half of row 1.
    const batch = batchOf(m, [
      [0, 1024, 4],
      [16, 1040, 16],
      [32, m.nrPages, 4],
    ]);
    await mig.copyBatch(batch, { signal: never() });
    expect(marks(batch)).toEqual([true, false, false]);
    expect(mig.stats()).toMatchObject({ failedTasks: 1, folios: 1 });
  });

  it('rejects when nothing could be copied, so the host counts a failed batch', async () => {
    m = await createMachine({ nodes: [{ memory: '16MiB' }], prefault: false });
    const mig = make({ threads: 2, inlineBelow: 0, minChunk: PAGE });
    await mig.init(contextOf(m));
    const batch = batchOf(m, [
      [0, m.nrPages, 4],
      [4, m.nrPages + 4, 4],
    ]);
    await expect(mig.copyBatch(batch, { signal: never() })).rejects.toThrow(/outside the machine's RAM/);
    expect(marks(batch)).toEqual([false, false]);
  });

  it('dispose during a batch stops the workers, leaves unfinished rows unmarked and resolves', async () => {
    m = await createMachine({ nodes: [{ memory: '64MiB' }, { memory: '64MiB' }], prefault: false });
    const mig = make({ threads: 2, inlineBelow: 0, minChunk: PAGE });
    await mig.init(contextOf(m));
    const rows: [number, number, number][] = [];
    for (let i = 0; i < 32; i++) rows.push([i * 512, 16384 + i * 512, 512]); // 64 MiB of 2 MiB folios
    const batch = batchOf(m, rows);
    const run = mig.copyBatch(batch, { signal: never() });
    const disposed = mig.dispose();
    await run;
    await disposed;
    const marked = marks(batch);
    expect(marked.filter(Boolean).length).toBeLessThan(rows.length);
    marked.forEach((copied, i) => {
      if (copied) expect(rowArrived(m!, batch, i)).toBe(true);
    });
    expect(() => mig.copyBatch(batchOf(m!, [[1, 2, 1]]), { signal: never() })).toThrow(/after dispose/);
    // Idempotent.
    await mig.dispose();
    await mig[Symbol.asyncDispose]!();
  });

  it('an injected pool destroyed mid-batch loses nothing: the engine copies the unmarked rows', async () => {
    m = await createMachine({ nodes: [{ memory: '64MiB' }, { memory: '64MiB' }], prefault: false });
    const pool = new Piscina({ filename: workerUrl, minThreads: 2, maxThreads: 2, idleTimeout: 1000 });
    pools.push(pool);
    const mig = make({ pool, inlineBelow: 0, minChunk: PAGE });
    await m.offload.register(mig, 'all');
    const p = m.spawn();
    const len = 32 << 20;
    const a = p.mmap(len, { thp: 'always', node: 0 });
    const data = fill(7, len);
    p.write(a, data);
    const pfns: number[] = [];
    for (let off = 0; off < len; off += 2 << 20) pfns.push(p.pageInfo(a + off)!.headPfn);
    const migrating = m.migrateFolios(pfns, { node: 1 });
    await pool.destroy();
    const r = await migrating;
    expect(r.ret).toBe(0);
    expect(r.nrSucceeded).toBe(len / PAGE);
    expect(Buffer.compare(p.read(a, len), data)).toBe(0);
    m.checkInvariants();
  });
});

describe('cpu-multithreaded: pools, stats and handles', () => {
  it('runs on an injected pool and never destroys it', async () => {
    m = await createMachine({ nodes: [{ memory: '16MiB' }], prefault: false });
    const pool = new Piscina({ filename: workerUrl, minThreads: 1, maxThreads: 2, idleTimeout: 1000 });
    pools.push(pool);
    const mig = make({ pool, inlineBelow: 0, minChunk: PAGE });
    expect(mig.capabilities).toMatchObject({ injectedPool: true });
    await m.offload.register(mig, 'all');
    const batch = batchOf(m, [
      [0, 1024, 16],
      [16, 1040, 16],
    ]);
    await mig.copyBatch(batch, { signal: never() });
    expect(marks(batch)).toEqual([true, true]);
    await m.close();
    m = undefined;
    // Still usable by the application after the migrator was disposed.
    expect(await pool.run(null, { name: 'ping' })).toBeGreaterThan(0);
  });

  it('stats(): bytes and tasks per thread, inline versus pooled batches', async () => {
    m = await createMachine({ nodes: [{ memory: '16MiB' }], prefault: false });
    const mig = make({ threads: 2, inlineBelow: 64 << 10, minChunk: 32 << 10 });
    await mig.init(contextOf(m));
    await mig.copyBatch(batchOf(m, [[0, 1024, 4]]), { signal: never() }); // 16 KiB: inline
    await mig.copyBatch(batchOf(m, [[0, 1024, 16]]), { signal: never() }); // 64 KiB: 2 shares
    await mig.copyBatch(batchOf(m, [[512, 2048, 512]]), { signal: never() }); // 2 MiB: 2 shares
    const st = mig.stats();
    expect(st).toMatchObject({
      batches: 3,
      inlineBatches: 1,
      pooledBatches: 2,
      tasks: 4,
      failedTasks: 0,
      folios: 3,
      bytes: (4 + 16 + 512) * PAGE,
    });
    expect(st.threads.caller).toEqual({ tasks: 1, bytes: 16 << 10 });
    const workers = Object.entries(st.threads).filter(([k]) => k.startsWith('worker-'));
    expect(workers.reduce((a, [, t]) => a + t.tasks, 0)).toBe(4);
    expect(workers.reduce((a, [, t]) => a + t.bytes, 0)).toBe((16 + 512) * PAGE);
    // A copy, not a live view.
    st.threads.caller!.bytes = 0;
    expect(mig.stats().threads.caller!.bytes).toBe(16 << 10);
  });

  it('leaves no worker or port handles behind after dispose', async () => {
    const kinds = () => process.getActiveResourcesInfo().filter((r) => /Worker|MessagePort/i.test(r)).length;
    const before = kinds();
    m = await createMachine({ nodes: [{ memory: '16MiB' }, { memory: '16MiB' }], prefault: false });
    const mig = make({ threads: 2, inlineBelow: 0, minChunk: PAGE });
    await m.offload.register(mig, 'all');
    const batch = batchOf(m, [[0, 4096, 512]]);
    const run = mig.copyBatch(batch, { signal: never() });
    expect(kinds()).toBeGreaterThan(before);
    await run;
    await m.close();
    m = undefined;
    expect(kinds()).toBe(before);
  });

  it('a process that creates a machine, registers, migrates and closes exits on its own', async () => {
    const dist = new URL('../dist/index.js', import.meta.url).href;
    const script = `
      import { createMachine } from '@pagemig/core';
      import { createMigrator } from ${JSON.stringify(dist)};
      const m = await createMachine({ nodes: [{ memory: '16MiB' }, { memory: '16MiB' }] });
      const mig = createMigrator({ inlineBelow: 0, minChunk: 4096 });
      await m.offload.register(mig, 'all');
      const p = m.spawn();
      const a = p.mmap(4 << 20, { thp: 'always', node: 0 });
      p.write(a, new Uint8Array(4 << 20).fill(9));
      const r = await m.migrateFolios([p.pageInfo(a).headPfn, p.pageInfo(a + (2 << 20)).headPfn], { node: 1 });
      await m.close();
      console.log(JSON.stringify({ ret: r.ret, copied: r.offload.foliosCopied, pooled: mig.stats().pooledBatches }));
    `;
    const cwd = fileURLToPath(new URL('..', import.meta.url));
    const t0 = Date.now();
    const out = await new Promise<string>((resolve, reject) => {
      execFile(
        process.execPath,
        ['--input-type=module', '-e', script],
        { cwd, timeout: 20_000 },
        (err, stdout, stderr) => (err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(stdout)),
      );
    });
    // Two 2 MiB folios are two batches of 512 base pages, both on the workers (inlineBelow 0).
    expect(JSON.parse(out)).toEqual({ ret: 0, copied: 2, pooled: 2 });
    expect(Date.now() - t0).toBeLessThan(20_000);
  });
});
