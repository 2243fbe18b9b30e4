import type { MigrationBatch, Migrator, MigratorContext } from '@pagemig/core';
import { describe, expect, it } from 'vitest';
import { createMockMigrator, runMigratorConformance } from '../src/index.js';
import { atLeast64KiB, gatedMigrator } from './gated.js';

// The suite must fail broken migrators. It is collected with a recording runner, then the
// chosen cases are run one by one and their outcome compared.
async function outcomes(factory: () => Migrator, ids: readonly string[]): Promise<Record<string, string>> {
  const cases: { name: string; fn: () => unknown }[] = [];
  runMigratorConformance({
    describe: (_n, fn) => fn(),
    it: (name, fn) => cases.push({ name, fn }),
    expect,
    factory,
    liveThreads: false,
  });
  const out: Record<string, string> = {};
  for (const id of ids) {
    const c = cases.find((x) => x.name.startsWith(`${id}:`));
    if (!c) throw new Error(`no case ${id}`);
    try {
      await c.fn();
      out[id] = 'pass';
    } catch {
      out[id] = 'fail';
    }
  }
  return out;
}

/** The mock with one method replaced. */
function broken(patch: (base: Migrator, ctx: () => MigratorContext) => Partial<Migrator>): () => Migrator {
  return () => {
    const base = createMockMigrator({ name: 'broken' });
    let ctx: MigratorContext;
    const init = base.init.bind(base);
    return {
      ...base,
      init(c: MigratorContext) {
        ctx = c;
        return init(c);
      },
      ...patch(base, () => ctx),
    };
  };
}

function ram(ctx: MigratorContext, pfn: number): Uint8Array {
  const s = new Uint8Array(ctx.sections[pfn >>> ctx.sectionPfnShift]!);
  const off = (pfn & ((1 << ctx.sectionPfnShift) - 1)) * 4096;
  return s.subarray(off, off + 4096);
}

describe('the suite catches broken migrators', () => {
  it('a healthy mock passes the same cases', async () => {
    const r = await outcomes(
      () => createMockMigrator(),
      ['copy/direct', 'marking/only-copied', 'copy/4KiB', 'abort/during', 'dispose/idempotent'],
    );
    expect(Object.values(r).every((x) => x === 'pass')).toBe(true);
  });

  it('marking rows it did not copy', async () => {
    const liar = broken(() => ({
      copyBatch(batch: MigrationBatch) {
        for (let i = 0; i < batch.rows; i++) batch.markCopied(i);
      },
    }));
    expect(await outcomes(liar, ['copy/direct', 'marking/only-copied', 'copy/4KiB'])).toEqual({
      'copy/direct': 'fail',
      'marking/only-copied': 'fail',
      'copy/4KiB': 'fail',
    });
  });

  it('writing outside the rows', async () => {
    const scribbler = broken((base, ctx) => ({
      async copyBatch(batch: MigrationBatch, o: { signal: AbortSignal }) {
        await base.copyBatch(batch, o);
        const guard = ram(ctx(), batch.dst(0) - 1);
        guard[100] = guard[100]! ^ 1;
      },
    }));
    expect(await outcomes(scribbler, ['marking/only-copied'])).toEqual({ 'marking/only-copied': 'fail' });
  });

  it('ignoring the abort signal', async () => {
    const deaf = broken(() => ({
      async copyBatch() {
        await new Promise((r) => setTimeout(r, 2500));
      },
    }));
    expect(await outcomes(deaf, ['abort/during'])).toEqual({ 'abort/during': 'fail' });
  }, 10_000);

  it('leaking a timer, or a dispose that throws the second time', async () => {
    const timers: ReturnType<typeof setInterval>[] = [];
    const leaky = broken((base) => ({
      init(c: MigratorContext) {
        timers.push(setInterval(() => {}, 1000)); // never cleared by dispose
        return base.init(c);
      },
    }));
    const twice = broken((base) => {
      let disposed = false;
      return {
        dispose() {
          if (disposed) throw new Error('already disposed');
          disposed = true;
          return base.dispose();
        },
      };
    });
    try {
      expect(await outcomes(leaky, ['dispose/idempotent'])).toEqual({ 'dispose/idempotent': 'fail' });
      expect(await outcomes(twice, ['dispose/idempotent'])).toEqual({ 'dispose/idempotent': 'fail' });
    } finally {
      for (const t of timers) clearInterval(t);
    }
  });

  it('a migrator with run hooks passes run/*; one that stops copying after its first runEnd fails', async () => {
    const ids = ['run/paired', 'run/failed-batch', 'run/aborted-batch', 'run/overlap'];
    const healthy = await outcomes(() => createMockMigrator({ runHooks: true }), ids);
    expect(healthy).toEqual(Object.fromEntries(ids.map((id) => [id, 'pass'])));
    // Its "device" powers down for good when a run ends: the next run's batches fail.
    const sleepy = broken((base) => {
      let off = false;
      return {
        runStart() {},
        runEnd() {
          off = true;
        },
        copyBatch(batch: MigrationBatch, o: { signal: AbortSignal }) {
          if (off) throw new Error('powered down');
          return base.copyBatch(batch, o);
        },
      };
    });
    expect(await outcomes(sleepy, ['run/paired'])).toEqual({ 'run/paired': 'fail' });
  });

  // The gate spares a migrator only the batches it declines: what it accepts is checked in full.
  it('a gate that declines small folios, and corrupts the large ones it claims to copy', async () => {
    const liar = () => gatedMigrator('gated-liar', atLeast64KiB, { corrupt: 'taken' });
    expect(
      await outcomes(liar, [
        'copy/4KiB',
        'copy/64KiB',
        'copy/2MiB',
        'copy/mixed',
        'copy/direct',
        'marking/only-copied',
        'concurrency/batches',
      ]),
    ).toEqual({
      'copy/4KiB': 'pass', // declined, so never offered: the engine copied it
      'copy/64KiB': 'fail',
      'copy/2MiB': 'fail',
      'copy/mixed': 'fail',
      'copy/direct': 'fail',
      'marking/only-copied': 'fail',
      'concurrency/batches': 'fail',
    });
  });

  it('a gate that accepts a mixed batch, then marks its small rows without copying them', async () => {
    const liar = () => gatedMigrator('gated-liar', atLeast64KiB, { corrupt: 'declined' });
    expect(await outcomes(liar, ['copy/mixed'])).toEqual({ 'copy/mixed': 'fail' });
  });
});
