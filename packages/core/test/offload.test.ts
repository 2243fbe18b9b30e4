import { describe, expect, it } from 'vitest';
import { EBUSY, EINVAL, EOPNOTSUPP } from '../src/errno.js';
import type { Machine } from '../src/machine.js';
import {
  formatReasonMask,
  MigrateMode,
  MigrateReason,
  migrateReasonNames,
  parseReasonMask,
  REASON_MASK_ALL,
} from '../src/migrate_mode.js';
import { MIGRATOR_MAX_CONSECUTIVE_FAILURES } from '../src/migrate_offload.js';
import {
  BATCH_COPIED,
  BATCH_FLAGS,
  BATCH_ROW_INTS,
  defineMigrator,
  type MigrationBatch,
  type Migrator,
  type MigratorContext,
  type OffloadInfo,
} from '../src/migrator.js';
import { MigratorErrorCode } from '../src/migrator_validate.js';
import { PAGE_SIZE } from '../src/mmzone.js';
import type { MmapOptions, Process } from '../src/process.js';
import { machinesCheckedAfterEach, pattern, sameBytes } from './helpers.js';

const CPU_SERIAL = new URL('../../migrator-cpu-serial/src/index.ts', import.meta.url).pathname;
async function cpuSerial(): Promise<Migrator> {
  const mod = (await import(/* @vite-ignore */ CPU_SERIAL)) as { createMigrator(): Migrator };
  return mod.createMigrator();
}

const PG = PAGE_SIZE;
const GARBAGE = 0xee;

const newMachine = machinesCheckedAfterEach();
const machine = (backing: 'shared' | 'none' = 'shared') => newMachine({ backing });

interface Region {
  p: Process;
  a: number;
  bytes: number;
  data: Uint8Array;
  heads: number[];
}

function populate(m: Machine, pages: number, thp: MmapOptions['thp'] = 'never', seed = 1): Region {
  const p = m.spawn();
  const bytes = pages * PG;
  const a = p.mmap(bytes, { thp, node: 0 });
  const data = pattern(pages, seed);
  p.write(a, data);
  const seen = new Set<number>();
  for (let off = 0; off < bytes; off += PG) seen.add(p.pageInfo(a + off)!.headPfn);
  return { p, a, bytes, data, heads: [...seen] };
}

function intact(r: Region): boolean {
  return sameBytes(r.p.read(r.a, r.bytes), r.data);
}

function onNode(r: Region, node: number): boolean {
  for (let off = 0; off < r.bytes; off += PG) if (r.p.pageInfo(r.a + off)?.node !== node) return false;
  return true;
}

/** A test migrator with direct access to the machine's RAM. */
interface TestMigrator extends Migrator {
  calls: number;
  disposed: number;
  inits: number;
  infos: OffloadInfo[];
  /** Copies row i as the engine would. */
  copyRow(batch: MigrationBatch, i: number): void;
  /** Fills row i's destination with GARBAGE. */
  scribble(batch: MigrationBatch, i: number): void;
}

function testMigrator(
  name: string,
  copy: (self: TestMigrator, batch: MigrationBatch, signal: AbortSignal) => void | Promise<void>,
  extra: Partial<Migrator> = {},
): TestMigrator {
  let ram: Uint8Array[] = [];
  let shift = 0;
  const bytesOf = (pfn: number, nr: number) => {
    const off = (pfn & ((1 << shift) - 1)) * PG;
    return ram[pfn >>> shift]!.subarray(off, off + nr * PG);
  };
  const self: TestMigrator = defineMigrator({
    apiVersion: 'pagemig.migrator/v1' as const,
    name,
    version: '1.0.0',
    engines: { core: '^0.1.0' },
    capabilities: { offloadsCpu: true, channels: 1, maxInFlightBatches: 1, needsSharedMemory: true },
    calls: 0,
    disposed: 0,
    inits: 0,
    infos: [] as OffloadInfo[],
    init(ctx: MigratorContext) {
      self.inits++;
      ram = ctx.sections.map((s) => new Uint8Array(s));
      shift = ctx.sectionPfnShift;
    },
    copyBatch(batch: MigrationBatch, { signal }: { signal: AbortSignal }) {
      self.calls++;
      return copy(self, batch, signal);
    },
    dispose() {
      self.disposed++;
    },
    copyRow(batch: MigrationBatch, i: number) {
      bytesOf(batch.dst(i), batch.nrPages(i)).set(bytesOf(batch.src(i), batch.nrPages(i)));
    },
    scribble(batch: MigrationBatch, i: number) {
      bytesOf(batch.dst(i), batch.nrPages(i)).fill(GARBAGE);
    },
    ...extra,
  });
  return self;
}

const copyAll = (self: TestMigrator, batch: MigrationBatch) => {
  for (let i = 0; i < batch.rows; i++) {
    self.copyRow(batch, i);
    batch.markCopied(i);
  }
};

describe('partial batches: the engine trusts the FOLIO_CONTENT_COPIED mark, and only the mark', () => {
  it('copying and marking only even rows: every byte still arrives, foliosCopied = marked rows', async () => {
    const m = await machine();
    const r = populate(m, 64, '64KiB'); // 4 folios of 16 pages
    const small = populate(m, 7, 'never', 2);
    const mig = testMigrator('even', (self, batch) => {
      for (let i = 0; i < batch.rows; i += 2) {
        self.copyRow(batch, i);
        batch.markCopied(i);
      }
      for (let i = 0; i < batch.rows; i++) expect(batch.isCopied(i)).toBe(i % 2 === 0);
    });
    await m.offload.register(mig);
    const res = await m.migrateFolios([...r.heads, ...small.heads], { node: 1 });
    expect(res.ret).toBe(0);
    expect(mig.calls).toBe(1);
    expect(res.offload).toMatchObject({
      migrator: 'even',
      batches: 1,
      foliosOffered: 11,
      foliosCopied: 6,
      failures: 0,
    });
    expect(m.offload.status()[0]).toMatchObject({
      name: 'even',
      batches: 1,
      foliosOffered: 11,
      foliosCopied: 6,
    });
    expect(intact(r) && intact(small)).toBe(true);
    expect(onNode(r, 1) && onNode(small, 1)).toBe(true);
    m.checkInvariants();
  });

  it('marking rows WITHOUT copying them leaves exactly those destinations wrong', async () => {
    const m = await machine();
    const r = populate(m, 8);
    const mig = testMigrator('liar', (self, batch) => {
      for (let i = 0; i < batch.rows; i++) {
        self.scribble(batch, i);
        if (i % 2 === 0) batch.markCopied(i);
      }
    });
    await m.offload.register(mig);
    const res = await m.migrateFolios(r.heads, { node: 1 });
    expect(res).toMatchObject({ ret: 0, nrSucceeded: 8 });
    expect(res.offload.foliosCopied).toBe(4);
    expect(onNode(r, 1)).toBe(true);
    const got = r.p.read(r.a, r.bytes);
    expect(sameBytes(got, r.data)).toBe(false);
    for (let pg = 0; pg < 8; pg++) {
      const page = got.subarray(pg * PG, (pg + 1) * PG);
      if (pg % 2 === 0) expect(page.every((b) => b === GARBAGE)).toBe(true);
      else expect(sameBytes(page, r.data.subarray(pg * PG, (pg + 1) * PG))).toBe(true);
    }
    m.checkInvariants();
  });

  it('scribbling on destinations without marking them changes nothing: the CPU copies them', async () => {
    const m = await machine();
    const r = populate(m, 512, 'always');
    const mig = testMigrator('scribbler', (self, batch) => {
      for (let i = 0; i < batch.rows; i++) self.scribble(batch, i);
    });
    await m.offload.register(mig);
    const res = await m.migrateFolios(r.heads, { node: 1 });
    expect(res.offload).toMatchObject({ batches: 1, foliosOffered: 1, foliosCopied: 0, failures: 0 });
    expect(intact(r)).toBe(true);
    expect(onNode(r, 1)).toBe(true);
    m.checkInvariants();
  });

  it('the batch is a shared table of (src, dst, nrPages, flags) rows in the migrate mode and reason', async () => {
    const m = await machine();
    const r = populate(m, 64, '64KiB');
    let seen: { rows: number; pages: number; reason: number; mode: number; shared: boolean } | null = null;
    const pairs: [number, number, number][] = [];
    const mig = testMigrator('inspector', (self, batch) => {
      seen = {
        rows: batch.rows,
        pages: batch.pages,
        reason: batch.reason,
        mode: batch.mode,
        shared: batch.table.buffer instanceof SharedArrayBuffer,
      };
      for (let i = 0; i < batch.rows; i++) {
        const o = i * BATCH_ROW_INTS;
        expect([batch.table[o], batch.table[o + 1], batch.table[o + 2]]).toEqual([
          batch.src(i),
          batch.dst(i),
          batch.nrPages(i),
        ]);
        pairs.push([batch.src(i), batch.dst(i), batch.nrPages(i)]);
        // markCopied is an atomic OR of BATCH_COPIED into the flags word.
        expect(batch.table[o + BATCH_FLAGS]).toBe(0);
      }
      copyAll(self, batch);
      expect(batch.table[BATCH_FLAGS]! & BATCH_COPIED).toBe(BATCH_COPIED);
    });
    await m.offload.register(mig);
    await m.migrateFolios(r.heads, { node: 1, reason: 'compaction', mode: 'MIGRATE_SYNC' });
    // The batch copy happens in the async first pass of a sync migration (migrate_pages_sync).
    expect(seen).toEqual({ rows: 4, pages: 64, reason: MigrateReason.MR_COMPACTION, mode: 0, shared: true });
    expect(pairs.map(([s]) => s)).toEqual(r.heads);
    for (const [, d, nr] of pairs) {
      expect(nr).toBe(16);
      expect(m.kernel.nodeOf(d)).toBe(1);
    }
    // The destinations became the new folios.
    const after = new Set<number>();
    for (let off = 0; off < r.bytes; off += PG) after.add(r.p.pageInfo(r.a + off)!.headPfn);
    expect([...after]).toEqual(pairs.map(([, d]) => d));
    expect(intact(r)).toBe(true);
    m.checkInvariants();
  });

  it('a folio with an extra reference is not offered (batch eligibility) but still migrates', async () => {
    const m = await machine();
    const r = populate(m, 6);
    const extra = r.heads[4]!;
    m.folioGet(extra);
    const offered: number[] = [];
    const mig = testMigrator('eligible', (self, batch) => {
      for (let i = 0; i < batch.rows; i++) offered.push(batch.src(i));
      copyAll(self, batch);
      // Dropping the reference before the move phase lets the folio move (copied by the CPU).
      m.folioPut(extra);
    });
    await m.offload.register(mig);
    const res = await m.migrateFolios(r.heads, { node: 1, mode: 'MIGRATE_ASYNC' });
    expect(offered).toEqual(r.heads.filter((h) => h !== extra));
    expect(res).toMatchObject({ ret: 0, nrSucceeded: 6 });
    expect(res.offload).toMatchObject({ foliosOffered: 5, foliosCopied: 5 });
    expect(intact(r) && onNode(r, 1)).toBe(true);
    m.checkInvariants();
  });
});

describe('failing migrators fall back to the CPU', () => {
  const kinds = {
    throwing: () =>
      testMigrator('thrower', (self, batch) => {
        // Marks set before the failure are not trusted: the whole batch is copied on the CPU.
        for (let i = 0; i < batch.rows; i++) {
          self.scribble(batch, i);
          batch.markCopied(i);
        }
        throw new Error('device fell off the bus');
      }),
    rejecting: () =>
      testMigrator('rejecter', async (self, batch) => {
        await Promise.resolve();
        for (let i = 0; i < batch.rows; i++) {
          self.scribble(batch, i);
          batch.markCopied(i);
        }
        throw new Error('DMA transfer error');
      }),
  };

  it.each(Object.keys(kinds) as (keyof typeof kinds)[])(
    'a %s migrator: bytes correct, failures counted, disabled after 3 consecutive failed batches',
    async (kind) => {
      expect(MIGRATOR_MAX_CONSECUTIVE_FAILURES).toBe(3);
      const m = await machine();
      const mig = kinds[kind]();
      await m.offload.register(mig);
      const regions: Region[] = [];
      for (let n = 1; n <= 4; n++) {
        const r = populate(m, 4, 'never', n);
        regions.push(r);
        const res = await m.migrateFolios(r.heads, { node: 1 });
        expect(res).toMatchObject({ ret: 0, nrSucceeded: 4 });
        expect(intact(r) && onNode(r, 1)).toBe(true);
        const st = m.offload.status()[0]!;
        if (n <= 3) {
          expect(res.offload).toMatchObject({ batches: 1, foliosOffered: 4, foliosCopied: 0, failures: 1 });
          expect(st).toMatchObject({ batches: n, failures: n, foliosCopied: 0 });
          expect(st.disabled === null).toBe(n < 3);
        } else {
          // Disabled: nothing is offered any more.
          expect(res.offload).toMatchObject({ migrator: null, batches: 0, foliosOffered: 0 });
          expect(st).toMatchObject({ batches: 3, failures: 3 });
        }
        m.checkInvariants();
      }
      expect(mig.calls).toBe(3);
      const why = kind === 'throwing' ? 'device fell off the bus' : 'DMA transfer error';
      const st = m.offload.status()[0]!;
      expect(st.disabled).toBe(`disabled after 3 consecutive failed batches; last error: ${why}`);
      expect(m.offload.log.filter((l) => l.startsWith(`warn: ${mig.name}: batch failed`))).toHaveLength(3);
      expect(m.offload.log).toContain(`error: ${mig.name}: ${st.disabled}`);
      expect(m.offload.routing().syscall_or_cpuset).toBeNull();
      expect(regions.every(intact)).toBe(true);
    },
  );

  it('a successful batch resets the consecutive-failure count', async () => {
    const m = await machine();
    let fail = [true, true, false, true, true, false];
    const mig = testMigrator('flaky', (self, batch) => {
      const f = fail.shift();
      copyAll(self, batch);
      if (f) throw new Error('flaky');
    });
    await m.offload.register(mig);
    for (let n = 0; n < 6; n++) {
      const r = populate(m, 2, 'never', n + 1);
      await m.migrateFolios(r.heads, { node: 1 });
      expect(intact(r)).toBe(true);
    }
    expect(m.offload.status()[0]).toMatchObject({ batches: 6, failures: 4, disabled: null, foliosCopied: 4 });
    fail = [true, true, true];
    for (let n = 0; n < 3; n++) await m.migrateFolios(populate(m, 1).heads, { node: 1 });
    expect(m.offload.status()[0]!.disabled).toMatch(
      /^disabled after 3 consecutive failed batches; last error: flaky$/,
    );
  });

  it('shouldOffload returning false: nothing is offered, nothing is counted', async () => {
    const m = await machine();
    const r = populate(m, 64, '64KiB');
    const infos: OffloadInfo[] = [];
    const mig = testMigrator('picky', copyAll, {
      shouldOffload(info) {
        infos.push(info);
        return false;
      },
    });
    await m.offload.register(mig);
    const res = await m.migrateFolios(r.heads, { node: 1, reason: 'demotion', mode: 'MIGRATE_SYNC_LIGHT' });
    expect(mig.calls).toBe(0);
    expect(infos).toEqual([
      {
        reason: MigrateReason.MR_DEMOTION,
        mode: MigrateMode.MIGRATE_ASYNC,
        folios: 4,
        pages: 64,
        maxFolioPages: 16,
      },
    ]);
    expect(res.offload).toEqual({
      migrator: null,
      batches: 0,
      foliosOffered: 0,
      foliosCopied: 0,
      failures: 0,
    });
    expect(m.offload.status()[0]).toMatchObject({
      batches: 0,
      foliosOffered: 0,
      failures: 0,
      disabled: null,
    });
    expect(intact(r) && onNode(r, 1)).toBe(true);
    m.checkInvariants();
  });

  it('shouldOffload that throws counts as a failed batch and the CPU copies', async () => {
    const m = await machine();
    const r = populate(m, 3);
    const mig = testMigrator('gatecrash', copyAll, {
      shouldOffload() {
        throw new Error('gate broke');
      },
    });
    await m.offload.register(mig);
    const res = await m.migrateFolios(r.heads, { node: 1 });
    expect(mig.calls).toBe(0);
    expect(res.offload.failures).toBe(1);
    expect(m.offload.status()[0]).toMatchObject({ failures: 1, foliosCopied: 0 });
    expect(m.offload.log.some((l) => l.includes('gate broke'))).toBe(true);
    expect(intact(r) && onNode(r, 1)).toBe(true);
  });

  it('a migrator that ignores the abort signal: the engine waits for it, then ignores its marks', async () => {
    const m = await machine();
    const r = populate(m, 8);
    let settledAt = 0;
    let abortedInside = false;
    const mig = testMigrator('slowpoke', async (self, batch, signal) => {
      await new Promise((res) => setTimeout(res, 120));
      abortedInside = signal.aborted;
      // Too late: whatever it writes or marks after the timeout must not be trusted.
      for (let i = 0; i < batch.rows; i++) {
        self.scribble(batch, i);
        batch.markCopied(i);
      }
      settledAt = performance.now();
    });
    await m.offload.register(mig);
    const t0 = performance.now();
    const res = await m.migrateFolios(r.heads, { node: 1, copyTimeoutMs: 10 });
    const doneAt = performance.now();
    expect(abortedInside).toBe(true);
    // The destinations are not reused while the migrator may still write to them.
    expect(settledAt).toBeGreaterThan(0);
    expect(doneAt).toBeGreaterThanOrEqual(settledAt);
    expect(doneAt - t0).toBeGreaterThanOrEqual(100);
    expect(res).toMatchObject({ ret: 0, nrSucceeded: 8 });
    expect(res.offload).toMatchObject({ batches: 1, foliosOffered: 8, foliosCopied: 0, failures: 1 });
    expect(m.offload.status()[0]).toMatchObject({ failures: 1, foliosCopied: 0, disabled: null });
    // Issue 15: the log says what was waited for, and which knob set the timeout.
    expect(m.offload.log).toContain(
      'warn: slowpoke: batch failed, copied on the CPU instead: batch copy timed out after 10 ms (copyTimeoutMs) waiting for slowpoke to copy 8 folios (8 pages)',
    );
    expect(intact(r) && onNode(r, 1)).toBe(true);
    m.checkInvariants();
  });

  it('a migrator that honours the abort signal: the batch is a failure and the CPU copies it', async () => {
    const m = await machine();
    const r = populate(m, 4);
    const mig = testMigrator('polite', async (_self, _batch, signal) => {
      await new Promise<void>((res) => signal.addEventListener('abort', () => res(), { once: true }));
      expect(signal.reason).toBeInstanceOf(Error);
    });
    await m.offload.register(mig);
    const res = await m.migrateFolios(r.heads, { node: 1, copyTimeoutMs: 5 });
    expect(res.offload).toMatchObject({ batches: 1, foliosCopied: 0, failures: 1 });
    expect(intact(r) && onNode(r, 1)).toBe(true);
  });
});

describe('register / unregister (migrate_offload_register/unregister)', () => {
  it('register while one is registered rejects with EBUSY (16); unregister then register works', async () => {
    const m = await machine();
    const a = testMigrator('a', copyAll);
    const b = testMigrator('b', copyAll);
    await m.offload.register(a);
    expect(m.offload.active).toBe(a);
    await expect(m.offload.register(b)).rejects.toMatchObject({ errno: EBUSY, code: 'EBUSY' });
    await expect(m.offload.register(a)).rejects.toMatchObject({ errno: 16 });
    expect(b.inits).toBe(0);
    expect(m.offload.active).toBe(a);
    await m.offload.unregister(a);
    expect(m.offload.active).toBeNull();
    expect(a.disposed).toBe(1);
    await m.offload.register(b, 'compaction,demotion');
    expect(m.offload.active).toBe(b);
    expect(m.offload.reasonMask).toBe('compaction,demotion');
  });

  it('two concurrent registers: one wins, the other gets EBUSY and is disposed', async () => {
    const m = await machine();
    let release!: () => void;
    const gate = new Promise<void>((res) => (release = res));
    const slow = testMigrator('slow-init', copyAll, {
      async init() {
        await gate;
      },
    });
    const fast = testMigrator('fast', copyAll);
    const p1 = m.offload.register(slow);
    await m.offload.register(fast);
    release();
    await expect(p1).rejects.toMatchObject({ errno: EBUSY });
    expect(m.offload.active).toBe(fast);
    expect(slow.disposed).toBe(1);
  });

  it('unregister of a migrator that is not registered is EINVAL', async () => {
    const m = await machine();
    const a = testMigrator('a', copyAll);
    const b = testMigrator('b', copyAll);
    await expect(m.offload.unregister(a)).rejects.toMatchObject({ errno: EINVAL, code: 'EINVAL' });
    await m.offload.register(a);
    await expect(m.offload.unregister(b)).rejects.toMatchObject({ errno: EINVAL });
    expect(() => m.offload.setReasonMask(b, 'all')).toThrow(expect.objectContaining({ errno: EINVAL }));
    await m.offload.unregister(a);
    await expect(m.offload.unregister(a)).rejects.toMatchObject({ errno: EINVAL });
    expect(a.disposed).toBe(1);
  });

  it('unregister waits for an in-flight batch, stops new batches at once, and disposes once', async () => {
    const m = await machine();
    const r = populate(m, 8);
    let release!: () => void;
    const gate = new Promise<void>((res) => (release = res));
    let entered!: () => void;
    const inCopy = new Promise<void>((res) => (entered = res));
    const mig = testMigrator('held', async (self, batch) => {
      entered();
      await gate;
      copyAll(self, batch);
    });
    await m.offload.register(mig);
    const migration = m.migrateFolios(r.heads, { node: 1 });
    await inCopy;
    let unregistered = false;
    const un = m.offload.unregister(mig).then(() => {
      unregistered = true;
    });
    // New batches stop at once: a second migration is not offered to the leaving migrator.
    const other = populate(m, 2, 'never', 5);
    const res2 = await m.migrateFolios(other.heads, { node: 1 });
    expect(res2.offload.batches).toBe(0);
    for (let i = 0; i < 5; i++) await new Promise((res) => setTimeout(res, 2));
    expect(unregistered).toBe(false);
    expect(mig.disposed).toBe(0);
    expect(m.offload.active).toBeNull();
    release();
    const res = await migration;
    await un;
    expect(unregistered).toBe(true);
    expect(mig.disposed).toBe(1);
    expect(mig.calls).toBe(1);
    expect(res).toMatchObject({ ret: 0, nrSucceeded: 8 });
    expect(res.offload).toMatchObject({ migrator: 'held', foliosCopied: 8, failures: 0 });
    expect(intact(r) && onNode(r, 1) && intact(other)).toBe(true);
    await m.close();
    expect(mig.disposed).toBe(1);
    m.checkInvariants();
  });

  it('machine.close() unregisters and disposes every migrator once', async () => {
    const m = await machine();
    const a = testMigrator('a', copyAll);
    const b = testMigrator('b', copyAll);
    await m.offload.register(a);
    await m.offload.route('compaction', b);
    await m.close();
    await m.close();
    expect([a.disposed, b.disposed]).toEqual([1, 1]);
  });

  it('validates at registration: bad apiVersion, needsSharedMemory on backing none, bad mask', async () => {
    const m = await machine();
    const bad = { ...testMigrator('old', copyAll), apiVersion: 'pagemig.migrator/v0' } as unknown as Migrator;
    await expect(m.offload.register(bad)).rejects.toMatchObject({ code: MigratorErrorCode.API_VERSION });
    await expect(m.offload.register(testMigrator('x', copyAll), 'bogus')).rejects.toMatchObject({
      errno: EINVAL,
    });
    expect(m.offload.active).toBeNull();
    const bare = await machine('none');
    await expect(bare.offload.register(testMigrator('y', copyAll))).rejects.toMatchObject({
      errno: EOPNOTSUPP,
    });
  });

  it('a migrator whose fields throw, or whose init throws what is no Error, is refused with a coded error', async () => {
    const m = await machine();
    const trap = new Proxy(
      {},
      {
        get() {
          throw new TypeError('proxy trap');
        },
      },
    );
    const nameThrows = Object.defineProperty({ ...testMigrator('n', copyAll) }, 'name', {
      get() {
        throw new Error('name getter');
      },
    });
    for (const bad of [trap, nameThrows]) {
      const e = await m.offload.register(bad as Migrator).catch((x: unknown) => x);
      expect(e).toMatchObject({
        code: MigratorErrorCode.INVALID,
        message: expect.stringMatching(/^a migrator's fields could not be read: (proxy trap|name getter)$/),
      });
      expect((e as Error).cause).toBeInstanceOf(Error);
    }
    for (const thrown of [Symbol('s'), null, 42]) {
      const init = () => {
        throw thrown;
      };
      await expect(m.offload.register({ ...testMigrator('i', copyAll), init })).rejects.toMatchObject({
        code: 'ERR_MIGRATOR_INIT',
        message: expect.stringMatching(/^migrator i: init failed: /),
      });
    }
    // A driver's own Error passes as it was thrown.
    const own = new RangeError('no such device');
    const ownInit = () => Promise.reject(own);
    await expect(m.offload.register({ ...testMigrator('j', copyAll), init: ownInit })).rejects.toBe(own);
    // Nothing was left registered: a good one registers under the same names.
    expect(m.offload.active).toBeNull();
    await m.offload.register(testMigrator('i', copyAll));
    expect(m.offload.active?.name).toBe('i');
  });

  it('the context counts into status().counters', async () => {
    const m = await machine();
    const r = populate(m, 3);
    let ctx!: MigratorContext;
    const mig = testMigrator('counting', (self, batch) => {
      copyAll(self, batch);
      ctx.count('rows', batch.rows);
      ctx.count('batches');
      ctx.logger.info('copied');
    });
    const init = mig.init.bind(mig);
    mig.init = (c) => {
      ctx = c;
      return init(c);
    };
    await m.offload.register(mig);
    await m.migrateFolios(r.heads, { node: 1 });
    expect(m.offload.status()[0]!.counters).toEqual({ rows: 3, batches: 1 });
    expect(m.offload.log).toContain('info: counting: copied');
  });
});

describe('reason masks (migrate_offload_reason_mask_parse / _format)', () => {
  it('every reason name round-trips', () => {
    migrateReasonNames.forEach((name, i) => {
      expect(parseReasonMask(name)).toBe(1 << i);
      expect(formatReasonMask(1 << i)).toBe(name);
    });
    for (let mask = 0; mask <= REASON_MASK_ALL; mask++) {
      expect(parseReasonMask(formatReasonMask(mask))).toBe(mask);
    }
  });

  it("'all', 'none', numbers, lists", () => {
    expect(REASON_MASK_ALL).toBe(0x3ff);
    expect(parseReasonMask('all')).toBe(REASON_MASK_ALL);
    expect(formatReasonMask(REASON_MASK_ALL)).toBe(migrateReasonNames.join(','));
    expect(parseReasonMask('none')).toBe(0);
    expect(formatReasonMask(0)).toBe('none');
    expect(parseReasonMask(8)).toBe(8);
    expect(formatReasonMask(8)).toBe('syscall_or_cpuset');
    expect(parseReasonMask('8')).toBe(8);
    expect(parseReasonMask('0x101')).toBe(0x101);
    expect(formatReasonMask(0x101)).toBe('compaction,demotion');
    // Clamped to the allowed reasons.
    expect(parseReasonMask(0xffff)).toBe(REASON_MASK_ALL);
    expect(parseReasonMask('0xfc00')).toBe(0);
    expect(parseReasonMask('compaction,demotion')).toBe(0x101);
    expect(parseReasonMask('demotion, compaction')).toBe(0x101);
    expect(parseReasonMask('numa_misplaced\n')).toBe(1 << MigrateReason.MR_NUMA_MISPLACED);
    expect(parseReasonMask(['damon', 'compaction'])).toBe(0x201);
  });

  it('unknown names and bad numbers are EINVAL', () => {
    for (const bad of ['bogus', 'compaction,bogus', 'never_migrated', 'COMPACTION', -1, 1.5]) {
      expect(() => parseReasonMask(bad)).toThrow(expect.objectContaining({ errno: EINVAL }));
    }
  });

  it("a migrator registered for 'compaction' is not offered syscall_or_cpuset batches", async () => {
    const m = await machine();
    const mig = testMigrator('compact-only', copyAll);
    await m.offload.register(mig, 'compaction');
    expect(m.offload.reasonMask).toBe('compaction');
    const r1 = populate(m, 4);
    const res1 = await m.migrateFolios(r1.heads, { node: 1 });
    expect(res1.offload.batches).toBe(0);
    expect(mig.calls).toBe(0);
    const r2 = populate(m, 4, 'never', 2);
    const res2 = await m.migrateFolios(r2.heads, { node: 1, reason: 'compaction' });
    expect(res2.offload).toMatchObject({ migrator: 'compact-only', batches: 1, foliosCopied: 4 });
    expect(mig.calls).toBe(1);
    // move_pages (MR_SYSCALL) is not offered either.
    const r3 = populate(m, 2, 'never', 3);
    const mv = await r3.p.movePages(0, [r3.a, r3.a + PG], [1, 1], 2);
    expect(mv.ret).toBe(0);
    expect(mig.calls).toBe(1);
    // The mask can be widened at runtime.
    m.offload.setReasonMask(mig, 'compaction,syscall_or_cpuset');
    const r4 = populate(m, 2, 'never', 4);
    await m.migrateFolios(r4.heads, { node: 1 });
    expect(mig.calls).toBe(2);
    expect(m.offload.status()[0]!.reasons).toBe('compaction,syscall_or_cpuset');
    expect([r1, r2, r3, r4].every((r) => intact(r) && onNode(r, 1))).toBe(true);
  });

  it("route('compaction', other) sends compaction batches to `other`", async () => {
    const m = await machine();
    const def = testMigrator('default', copyAll);
    const other = testMigrator('other', copyAll);
    await m.offload.register(def, 'all');
    await m.offload.route('compaction', other);
    expect(other.inits).toBe(1);
    const routing = m.offload.routing();
    expect(routing.compaction).toBe('other');
    expect(routing.syscall_or_cpuset).toBe('default');
    expect(Object.keys(routing)).toEqual([...migrateReasonNames]);
    const r1 = populate(m, 3);
    const c = await m.migrateFolios(r1.heads, { node: 1, reason: 'compaction' });
    expect(c.offload.migrator).toBe('other');
    expect([def.calls, other.calls]).toEqual([0, 1]);
    const r2 = populate(m, 3, 'never', 2);
    const s = await m.migrateFolios(r2.heads, { node: 1 });
    expect(s.offload.migrator).toBe('default');
    expect([def.calls, other.calls]).toEqual([1, 1]);
    const st = Object.fromEntries(m.offload.status().map((e) => [e.name, e]));
    expect(st.other).toMatchObject({ isDefault: false, reasons: 'compaction', batches: 1, foliosCopied: 3 });
    // The default's `reasons` is its registered mask (plus routes to it), as documented; who gets
    // a reason is what routing() says.
    expect(st.default).toMatchObject({ isDefault: true, reasons: migrateReasonNames.join(','), batches: 1 });
    // Removing the route gives compaction back to the default and releases `other`.
    await m.offload.route('compaction', null);
    expect(other.disposed).toBe(1);
    const r3 = populate(m, 3, 'never', 3);
    expect((await m.migrateFolios(r3.heads, { node: 1, reason: 0 })).offload.migrator).toBe('default');
    expect([r1, r2, r3].every((r) => intact(r) && onNode(r, 1))).toBe(true);
    m.checkInvariants();
  });

  it('a route works without a default migrator; cpu-serial serves it', async () => {
    const m = await machine();
    const cpu = await cpuSerial();
    await m.offload.route('demotion', cpu);
    expect(m.offload.active).toBeNull();
    const r = populate(m, 512, 'always');
    const res = await m.migrateFolios(r.heads, { node: 1, reason: 'demotion' });
    expect(res.offload).toMatchObject({ migrator: 'cpu-serial', batches: 1, foliosCopied: 1 });
    const r2 = populate(m, 2, 'never', 2);
    expect((await m.migrateFolios(r2.heads, { node: 1 })).offload.batches).toBe(0);
    expect(intact(r) && onNode(r, 1) && intact(r2)).toBe(true);
    m.checkInvariants();
  });
});

describe('THP and mixed batches through a migrator', () => {
  it('cpu-serial copies a THP and 4 KiB folios in the same run (two batches)', async () => {
    const m = await machine();
    const thp = populate(m, 512, 'always');
    const small = populate(m, 5, 'never', 9);
    await m.offload.register(await cpuSerial());
    const res = await m.migrateFolios([...thp.heads, ...small.heads], { node: 1 });
    expect(res).toMatchObject({ ret: 0, nrSucceeded: 517, nrThpSucceeded: 1 });
    expect(res.offload).toMatchObject({ batches: 2, foliosOffered: 6, foliosCopied: 6 });
    expect(m.offload.status()[0]!.stats).toEqual({ batches: 2, folios: 6, bytes: (512 + 5) * PG });
    expect(intact(thp) && intact(small) && onNode(thp, 1) && onNode(small, 1)).toBe(true);
    expect(thp.p.pageInfo(thp.a)!.huge).toBe(true);
    m.checkInvariants();
  });
});
