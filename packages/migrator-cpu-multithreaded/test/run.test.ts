// Workers kept awake for a migration run (runStart .. runEnd): woken once per run, polling for a
// bounded time between batches, back in the pool (asleep) once the run ends. Against dist/, as the
// other tests (piscina loads dist/copy_worker.js).
import { availableParallelism } from 'node:os';
import {
  createMachine,
  type Machine,
  MigrateMode,
  MigrateReason,
  MigrationBatch,
  type MigrationRunInfo,
} from '@pagemig/core';
import { afterEach, describe, expect, it } from 'vitest';
import { type CpuMultithreadedMigrator, createMigrator } from '../dist/index.js';
import { AWAKE, chooseMode, endCycle, INLINE, newAdaptiveCopy, preferredMode } from '../src/adaptive.js';
import type { AdaptiveCopy } from '../src/state.js';

let m: Machine | undefined;
let mig: CpuMultithreadedMigrator | undefined;
afterEach(async () => {
  await m?.close();
  await mig?.dispose();
  m = undefined;
  mig = undefined;
});

/** Polls `cond` every 5 ms for up to 5 s. */
async function until(cond: () => boolean, what: string): Promise<void> {
  const t0 = performance.now();
  while (!cond()) {
    if (performance.now() - t0 > 5000) throw new Error(`timed out waiting until ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** A 2 MiB batch of one row, its source filled with `seed`, in `table`. */
function batchIn(
  machine: Machine,
  table: Int32Array,
  src: number,
  dst: number,
  seed: number,
): MigrationBatch {
  table.set([src, dst, 512, 0], 0);
  machine.kernel.mem.view(src, 512).fill(seed);
  machine.kernel.mem.view(dst, 512).fill(0);
  return new MigrationBatch(table, 1, MigrateReason.MR_SYSCALL, MigrateMode.MIGRATE_SYNC);
}

function arrived(machine: Machine, b: MigrationBatch): boolean {
  const mem = machine.kernel.mem;
  return Buffer.compare(mem.view(b.dst(0), 512), mem.view(b.src(0), 512)) === 0;
}

/** Workers a run keeps with threads: 2: as many as may poll, one per core beside the engine's. */
const AWAKE_WORKERS = Math.min(2, Math.max(1, availableParallelism() - 1));

const info = (pages: number): MigrationRunInfo => ({
  reason: MigrateReason.MR_SYSCALL,
  mode: MigrateMode.MIGRATE_SYNC,
  node: 1,
  folios: pages / 512,
  pages,
});

describe('cpu-multithreaded: workers awake for a migration run', () => {
  it('keeps the workers for runs: every batch on them, asleep between runs, back in the pool later', async () => {
    m = await createMachine({ nodes: [{ memory: '64MiB' }, { memory: '64MiB' }], prefault: false });
    mig = createMigrator({ threads: 2, adaptive: false });
    await m.offload.register(mig, 'all');
    const p = m.spawn();
    const len = 8 << 20;
    const a = p.mmap(len, { thp: 'always', node: 0 });
    const data = new Uint8Array(len).map((_, i) => (i * 13 + (i >>> 12)) & 255);
    p.write(a, data);
    for (const node of [1, 0]) {
      const pfns: number[] = [];
      for (let off = 0; off < len; off += 2 << 20) pfns.push(p.pageInfo(a + off)!.headPfn);
      const r = await m.migrateFolios(pfns, { node });
      expect(r.ret).toBe(0);
      expect(r.offload.foliosCopied).toBe(4);
      expect(Buffer.compare(p.read(a, len), data)).toBe(0);
      // The run ended: the workers stop polling and sleep.
      await until(() => mig!.stats().sleepingWorkers === AWAKE_WORKERS, 'the workers sleep after the run');
    }
    // Two runs of four 2 MiB batches (the default batch) on workers started once and woken once
    // per run (the second run found them asleep in the session).
    const st = mig.stats();
    // (adaptive: false, so no batch is copied inline to compare.)
    expect(st).toMatchObject({
      runs: 2,
      sessions: 1,
      batches: 8,
      awakeBatches: 8,
      pooledBatches: 8,
      inlineBatches: 0,
    });
    expect(st.workerSleeps).toBeGreaterThanOrEqual(2 * AWAKE_WORKERS);
    // No run for SESSION_LINGER_MS: they go back to the pool.
    await until(() => mig!.stats().awakeWorkers === 0, 'the workers left the session');
    m.checkInvariants();
  });

  it('polls a bounded time after a batch, then sleeps while the run goes on; the next batch wakes it', async () => {
    m = await createMachine({ nodes: [{ memory: '16MiB' }], prefault: false });
    mig = createMigrator({ threads: 2, runSpinUs: 200, adaptive: false });
    await m.offload.register(mig, 'all');
    const table = new Int32Array(new SharedArrayBuffer(64));
    const run = info(1024);
    mig.runStart!(run);
    const b1 = batchIn(m, table, 0, 1024, 7);
    await mig.copyBatch(b1, { signal: new AbortController().signal });
    expect(arrived(m, b1) && b1.isCopied(0)).toBe(true);
    // The run still goes on, but no batch comes: each worker gives up polling and sleeps.
    await until(() => mig!.stats().sleepingWorkers === AWAKE_WORKERS, 'the workers sleep');
    expect(mig.stats().awakeWorkers).toBe(AWAKE_WORKERS);
    const b2 = batchIn(m, table, 2048, 3072, 9);
    await mig.copyBatch(b2, { signal: new AbortController().signal });
    expect(arrived(m, b2) && b2.isCopied(0)).toBe(true);
    mig.runEnd!(run);
    await until(() => mig!.stats().awakeWorkers === 0, 'the workers left the session');
    const st = mig.stats();
    expect(st).toMatchObject({ runs: 1, sessions: 1, awakeBatches: 2, sleepingWorkers: 0 });
    expect(st.workerSleeps).toBeGreaterThanOrEqual(AWAKE_WORKERS);
  });

  it('the caller copies shares with callerCopies, and batches outside a run use the sleeping pool', async () => {
    m = await createMachine({ nodes: [{ memory: '16MiB' }], prefault: false });
    mig = createMigrator({ threads: 1, callerCopies: true, adaptive: false });
    await m.offload.register(mig, 'all');
    const table = new Int32Array(new SharedArrayBuffer(64));
    const run = info(512);
    mig.runStart!(run);
    const b1 = batchIn(m, table, 0, 1024, 3);
    await mig.copyBatch(b1, { signal: new AbortController().signal });
    mig.runEnd!(run);
    expect(arrived(m, b1) && b1.isCopied(0)).toBe(true);
    const st = mig.stats();
    // The caller and the worker share the batch (whoever claims a share first copies it).
    const copied = Object.values(st.threads).reduce((n, t) => n + t.bytes, 0);
    expect(copied).toBe(2 << 20);
    expect(st).toMatchObject({ awakeBatches: 1, sessions: 1 });
    // No run: a 2 MiB batch is below inlineBelow (8 MiB with callerCopies), copied inline.
    const b2 = batchIn(m, table, 2048, 3072, 5);
    await mig.copyBatch(b2, { signal: new AbortController().signal });
    expect(arrived(m, b2)).toBe(true);
    expect(mig.stats()).toMatchObject({ awakeBatches: 1, inlineBatches: 1, sessions: 1 });
  });

  it('a run with no pooled batch wakes nobody, and runEnd after dispose does nothing', async () => {
    m = await createMachine({ nodes: [{ memory: '16MiB' }], prefault: false });
    mig = createMigrator({ threads: 2 });
    await m.offload.register(mig, 'all');
    const table = new Int32Array(new SharedArrayBuffer(64));
    const run = info(16);
    mig.runStart!(run);
    // 64 KiB: below the run's inline threshold.
    table.set([0, 1024, 16, 0], 0);
    const small = new MigrationBatch(table, 1, MigrateReason.MR_COMPACTION, MigrateMode.MIGRATE_ASYNC);
    await mig.copyBatch(small, { signal: new AbortController().signal });
    expect(small.isCopied(0)).toBe(true);
    mig.runEnd!(run);
    expect(mig.stats()).toMatchObject({ runs: 1, sessions: 0, inlineBatches: 1 });
    const late = info(512);
    mig.runStart!(late);
    await m.offload.unregister(mig);
    expect(() => mig!.runEnd!(late)).not.toThrow();
    expect(mig.stats().awakeWorkers).toBe(0);
  });
});

describe('cpu-multithreaded: awake workers or inline, whichever is faster', () => {
  const fresh = (): AdaptiveCopy => newAdaptiveCopy();
  const MiB = 1 << 20;
  /** `n` batches of 1 MiB, each costing `costMs(mode)` until the next: the modes chosen. */
  const batches = (a: AdaptiveCopy, n: number, costMs: (mode: number) => number, t0 = 0) => {
    const modes: number[] = [];
    let t = t0;
    for (let i = 0; i < n; i++) {
      const mode = chooseMode(a, t, MiB);
      modes.push(mode);
      t += costMs(mode);
    }
    return { modes, t };
  };

  it('copies inline until a look at the workers finds them faster, then keeps to them, looking back ever less often', () => {
    const a = fresh();
    // Workers faster (the other core is free): 0.1 ms per batch against 0.2 inline.
    const { modes } = batches(a, 300, (mode) => (mode === AWAKE ? 0.1 : 0.2));
    // Inline first; the fourth batch starts a look of two awake batches, which wins.
    expect(modes.slice(0, 3)).toEqual([INLINE, INLINE, INLINE]);
    expect(modes.slice(3, 5)).toEqual([AWAKE, AWAKE]);
    // Then one-batch looks back at inline, 64 batches apart and twice as far each time they
    // confirm the choice.
    const looks = modes.flatMap((m, i) => (i >= 5 && m === INLINE ? [i] : []));
    expect(looks.length).toBe(2);
    expect(looks[1]! - looks[0]!).toBeGreaterThan(64);
    expect(a.awakeNsPerByte).toBeLessThan(a.inlineNsPerByte);
  });

  it('goes inline while the workers are the slower (a busy system) and back when they are not', () => {
    const a = fresh();
    let busy = true;
    const cost = (mode: number) => (mode === INLINE ? 0.2 : busy ? 0.4 : 0.1);
    const first = batches(a, 40, cost);
    // After the first inline measurement the awake batches lose: every later batch is inline but
    // the one probe of the workers.
    const late = first.modes.slice(10);
    expect(late.filter((m) => m === AWAKE).length).toBeLessThanOrEqual(1);
    busy = false;
    const second = batches(a, 200, cost, first.t);
    // A probe finds them faster again: from then on the workers copy, with probes 32 apart again.
    expect(second.modes.slice(-32).filter((m) => m === INLINE).length).toBeLessThanOrEqual(1);
    expect(second.modes.slice(-100).filter((m) => m === AWAKE).length).toBeGreaterThanOrEqual(98);
  });

  it('does not count the wake-up of the first awake batch after inline ones against the workers', () => {
    const a = fresh();
    // The first awake batch after an inline one finds the workers asleep: 1 ms; warm ones 0.1 ms.
    let prev = 0;
    const cost = (mode: number) => {
      const c = mode === INLINE ? 0.2 : prev === AWAKE ? 0.1 : 1;
      prev = mode;
      return c;
    };
    const { modes } = batches(a, 300, cost);
    expect(modes.slice(8).filter((m) => m === INLINE).length).toBeLessThanOrEqual(3);
    expect(a.awakeNsPerByte).toBeLessThan(a.inlineNsPerByte);
  });

  it('looks at the awake mode with a streak of two batches when inline is the faster', () => {
    const a = fresh();
    const { modes } = batches(a, 200, (mode) => (mode === INLINE ? 0.2 : 0.4));
    // (a look cut short by the end of the batches is left out)
    const awakeRuns = modes.join('').replace(/2+$/, '').match(/2+/g) ?? [];
    // Looks of two batches each (a wake-up, then one measured), the first from the fourth batch.
    expect(awakeRuns.every((r) => r.length === 2)).toBe(true);
    expect(awakeRuns.length).toBeGreaterThan(1);
  });

  it('does not switch for a difference within the margin: one noisy look flips nothing', () => {
    const a = fresh();
    // The workers measure 5% faster: not enough to leave the inline copy.
    const { modes } = batches(a, 200, (mode) => (mode === AWAKE ? 0.19 : 0.2));
    expect(modes.slice(10).filter((m) => m === AWAKE).length).toBeLessThanOrEqual(4);
    expect(preferredMode(a)).toBe(INLINE);
  });

  it('does not charge the time between two runs to a batch', () => {
    const a = fresh();
    batches(a, 8, () => 0.2);
    endCycle(a);
    const before = a.inlineNsPerByte;
    chooseMode(a, 10_000, MiB); // the next run's first batch, ten seconds later
    expect(a.inlineNsPerByte).toBe(before);
  });
});
