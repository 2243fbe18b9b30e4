import type { Machine } from '@pagemig/core';
import { afterEach, describe, expect, it } from 'vitest';
import {
  checkRegion,
  createMockMigrator,
  createTestMachine,
  type MockMigrator,
  migrateRegion,
  populateRegion,
  type TestRegion,
} from '../src/index.js';

// Each driver fault site through the engine, honoured by the mock: the batch ends with every
// folio mapped once and every byte intact, and the counters say what happened.
let m: Machine | undefined;
afterEach(async () => {
  if (m) {
    m.checkInvariants();
    await m.close();
  }
  m = undefined;
});

async function setup(opts: Parameters<typeof createMockMigrator>[0] = {}): Promise<{
  m: Machine;
  mig: MockMigrator;
  r: TestRegion;
}> {
  m = await createTestMachine();
  const mig = createMockMigrator(opts);
  await m.offload.register(mig, 'all');
  const r = populateRegion(m, { bytes: 32 * 4096, thp: 'never', seed: 9 });
  return { m, mig, r };
}

function counters(m: Machine): Record<string, number> {
  return m.offload.status()[0]!.counters;
}

describe('mock migrator fault sites', () => {
  it.each(['throw', 'reject'] as const)(
    'copy_batch %s: the engine copies the batch and counts a failure',
    async (action) => {
      const { m, mig, r } = await setup();
      m.injectFaults([{ site: 'copy_batch', action }]);
      const res = await migrateRegion(m, r, 1);
      expect(res.ret).toBe(0);
      expect(res.offload).toMatchObject({ foliosOffered: 32, foliosCopied: 0, failures: 1 });
      expect(mig.honoured).toEqual([`copy_batch:${action}@-1`]);
      expect(checkRegion(m, r)).toEqual([]);
    },
  );

  it('copy_batch hang: settles at the copy timeout; the migrator stays enabled', async () => {
    const { m, r } = await setup();
    m.injectFaults([{ site: 'copy_batch', action: 'hang' }]);
    const res = await migrateRegion(m, r, 1, { copyTimeoutMs: 20 });
    expect(res.offload).toMatchObject({ foliosCopied: 0, failures: 1 });
    expect(m.offload.status()[0]!.disabled).toBeNull();
    expect(m.offload.log.some((l) => l.includes('timed out after 20 ms'))).toBe(true);
    expect(checkRegion(m, r)).toEqual([]);
  });

  it('copy_batch hang_ignore_abort: abandoned after the grace period and disabled', async () => {
    const { m, r } = await setup();
    m.injectFaults([{ site: 'copy_batch', action: 'hang_ignore_abort' }]);
    const res = await migrateRegion(m, r, 1, { copyTimeoutMs: 20, abortGraceMs: 20 });
    expect(res.ret).toBe(0);
    expect(m.offload.status()[0]!.disabled).toMatch(/never settled/);
    expect(checkRegion(m, r)).toEqual([]);
    const back = await migrateRegion(m, r, 0);
    expect(back.offload.batches).toBe(0);
  });

  it('copy_row skip and garbage: only the rows really copied are marked', async () => {
    const { m, mig, r } = await setup();
    m.injectFaults([
      { site: 'copy_row', action: 'skip', nth: 2, times: 3 },
      { site: 'copy_row', action: 'garbage', nth: 10 },
    ]);
    const res = await migrateRegion(m, r, 1);
    expect(res.offload).toMatchObject({ foliosOffered: 32, foliosCopied: 28, failures: 0 });
    expect(mig.honoured).toEqual([
      'copy_row:skip@1',
      'copy_row:skip@2',
      'copy_row:skip@3',
      'copy_row:garbage@9',
    ]);
    expect(checkRegion(m, r)).toEqual([]);
  });

  it('device_error mid-batch: rows before it stay marked, the error is counted and logged', async () => {
    const { m, r } = await setup();
    m.injectFaults([{ site: 'device_error', nth: 12, code: 'PT_ERR_DMA' }]);
    const res = await migrateRegion(m, r, 1);
    expect(res.offload).toMatchObject({ foliosCopied: 11, failures: 0 });
    expect(counters(m)).toMatchObject({ device_errors: 1 });
    expect(m.offload.log.some((l) => l.includes('descriptor error PT_ERR_DMA at row 11'))).toBe(true);
    expect(checkRegion(m, r)).toEqual([]);
  });

  it('device_hang: completion timeout, channel reset, unfinished rows left to the engine', async () => {
    const { m, mig, r } = await setup();
    m.injectFaults([{ site: 'device_hang', nth: 20, timeoutMs: 15 }]);
    const t0 = performance.now();
    const res = await migrateRegion(m, r, 1);
    expect(performance.now() - t0).toBeGreaterThanOrEqual(14);
    expect(res.offload).toMatchObject({ foliosCopied: 19, failures: 0 });
    expect(counters(m)).toMatchObject({ device_resets: 1 });
    expect(mig.stats()).toMatchObject({ deviceResets: 1, rowsCopied: 19 });
    expect(checkRegion(m, r)).toEqual([]);
    // After the reset the device works again.
    const back = await migrateRegion(m, r, 0);
    expect(back.offload.foliosCopied).toBe(32);
    expect(checkRegion(m, r)).toEqual([]);
  });

  it('worker_exit: a copy worker dies mid-batch; its rows go to the engine, the worker is replaced', async () => {
    const { m, mig, r } = await setup({ workers: 2 });
    m.injectFaults([{ site: 'worker_exit', nth: 3 }]);
    const res = await migrateRegion(m, r, 1);
    // Worker 0 had rows 0..15 and died at row 2; worker 1 copied rows 16..31.
    expect(res.offload).toMatchObject({ foliosCopied: 18, failures: 0 });
    expect(counters(m)).toMatchObject({ worker_restarts: 1 });
    expect(mig.stats().workerRestarts).toBe(1);
    expect(checkRegion(m, r)).toEqual([]);
    const back = await migrateRegion(m, r, 0);
    expect(back.offload.foliosCopied).toBe(32);
    expect(checkRegion(m, r)).toEqual([]);
  });

  it('a plan of its own overrides the machine plan; dispose is idempotent', async () => {
    const { createFaultPlan } = await import('../src/index.js');
    const own = createFaultPlan([{ site: 'copy_row', action: 'skip', times: Number.POSITIVE_INFINITY }]);
    const { m, mig, r } = await setup({ faults: own });
    const res = await migrateRegion(m, r, 1);
    expect(res.offload.foliosCopied).toBe(0);
    expect(own.fired('copy_row')).toBe(32);
    expect(checkRegion(m, r)).toEqual([]);
    await m.offload.unregister(mig);
    await mig.dispose();
    expect(mig.stats()).toMatchObject({ inits: 1, disposes: 2 });
  });
});
