// Migration runs on an emulated SDXI function: it polls for doorbells between the batches of a run
// (no thread wake-up per batch), signals one completion per context per batch, and sleeps once the
// run ends or its bounded poll runs out.
import { type Machine, MigrateMode, MigrateReason, type MigrationRunInfo } from '@pagemig/core';
import { batchOf, createTestMachine, markedRows, populateRegion } from '@pagemig/testkit';
import { afterEach, describe, expect, it } from 'vitest';
import { createMigrator, regs } from '../dist/index.js';

let m: Machine | undefined;
afterEach(async () => {
  await m?.close();
  m = undefined;
});

async function until(cond: () => boolean, what: string): Promise<void> {
  const t0 = performance.now();
  while (!cond()) {
    if (performance.now() - t0 > 5000) throw new Error(`timed out waiting until ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

/** The emulator's run word (an Int32 in BAR 0). */
const runFlag = (fn: { mmio: { i32: Int32Array } }) => Atomics.load(fn.mmio.i32, regs.EMU_RUN >>> 2);

describe('sdxi: migration runs', () => {
  it('one copy and one completion interrupt per 2 MiB batch; asleep after the run', async () => {
    m = await createTestMachine();
    const mig = createMigrator({ channels: 2, runSpinUs: 1e6 });
    await m.offload.register(mig, 'all');
    const fn = mig.function!;
    // MSI vector of context c is c (vector 0: the error log).
    const msis = (c: number) => Atomics.load(fn.mmio.i32, (regs.EMU_MSI_VECTORS >>> 2) + c);
    const r = populateRegion(m, { bytes: 8 << 20, thp: 'always', seed: 4 });
    const before = [msis(1), msis(2)];
    const desc0 = fn.deviceCounters().descriptors;
    const res = await m.migrateFolios(r.heads, { node: 1 });
    expect(res.ret).toBe(0);
    expect(res.offload.foliosCopied).toBe(4);
    expect(Buffer.compare(r.p.read(r.addr, r.bytes), r.data)).toBe(0);
    // Four batches of one 2 MiB folio. The function's one data mover runs its contexts in turn, so
    // during a run the batches go to context 1 alone: per batch one COPY and the fenced DSC_INTR
    // after it, whose MSI is the batch's only completion.
    expect([msis(1) - before[0]!, msis(2) - before[1]!]).toEqual([4, 0]);
    expect(fn.deviceCounters().descriptors - desc0).toBe(4 * 2);
    expect(runFlag(fn)).toBe(0);
    await until(() => fn.sleeping, 'the function sleeps after the run');
    m.checkInvariants();
  });

  it('the function polls for a bounded time, then sleeps even while the run goes on', async () => {
    m = await createTestMachine();
    const mig = createMigrator({ channels: 1, runSpinUs: 2000 });
    await m.offload.register(mig, 'all');
    const fn = mig.function!;
    await until(() => fn.sleeping, 'the idle function sleeps');
    const sleeps0 = fn.deviceCounters().sleeps;
    const info: MigrationRunInfo = {
      reason: MigrateReason.MR_SYSCALL,
      mode: MigrateMode.MIGRATE_SYNC,
      node: 1,
      folios: 1,
      pages: 512,
    };
    mig.runStart!(info);
    await until(() => fn.deviceCounters().sleeps > sleeps0, 'the poll runs out');
    expect(fn.sleeping).toBe(true);
    expect(runFlag(fn)).toBe(1);
    mig.runEnd!(info);
    expect(runFlag(fn)).toBe(0);
  });

  it('waits for a batch in place: copyBatch returns done (no promise) once the function completed it', async () => {
    m = await createTestMachine();
    const mig = createMigrator({ channels: 2 });
    await m.offload.register(mig, 'all');
    const src = m.kernel.mem.view(4096, 64);
    for (let i = 0; i < src.length; i++) src[i] = (i * 11 + 5) & 255;
    // (Of five tries one must end in place: a host too loaded to run the function's thread within
    // the 20 ms wait gets a promise.)
    let inPlace = false;
    let batch = batchOf([[4096, 8192, 64]]);
    for (let i = 0; i < 5 && !inPlace; i++) {
      m.kernel.mem.view(8192, 64).fill(0);
      batch = batchOf([[4096, 8192, 64]]);
      const ret = mig.copyBatch(batch, { signal: new AbortController().signal });
      inPlace = ret === undefined;
      await ret;
    }
    expect(inPlace).toBe(true);
    expect(markedRows(batch)).toEqual([0]);
    expect(Buffer.compare(m.kernel.mem.view(8192, 64), src)).toBe(0);
  });
});
