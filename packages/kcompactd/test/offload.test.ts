import {
  createMachine,
  defineMigrator,
  type Machine,
  MIGRATOR_API_VERSION,
  type MigrationBatch,
  type Migrator,
  type MigratorContext,
} from '@pagemig/core';
import { createMigrator as cpuSerial } from '@pagemig/migrator-cpu-serial';
import { afterEach, describe, expect, it } from 'vitest';
import { attachKcompactd, compactNode } from '../src/index.js';
import { fragment, verifyBytes } from './helpers.js';

let m: Machine | undefined;
afterEach(async () => {
  await m?.close();
  m = undefined;
});

/**
 * A stand-in for a DMA engine: it copies each batch later, from a timer callback (off the engine's
 * call stack, like a device completing), and marks the rows it copied.
 */
function fakeDma(opts: { fail?: boolean } = {}): Migrator & { batches: number } {
  let ram: Uint8Array[] = [];
  let shift = 0;
  const state = { batches: 0 };
  const mig = defineMigrator({
    apiVersion: MIGRATOR_API_VERSION,
    name: opts.fail ? 'broken-dma' : 'fake-dma',
    version: '0.0.1',
    engines: { core: '*' },
    capabilities: { offloadsCpu: true, channels: 1, maxInFlightBatches: 1, needsSharedMemory: true },
    init(ctx: MigratorContext) {
      ram = ctx.sections.map((s) => new Uint8Array(s));
      shift = ctx.sectionPfnShift;
    },
    async copyBatch(batch: MigrationBatch) {
      state.batches++;
      await new Promise((r) => setTimeout(r, 0));
      if (opts.fail) throw new Error('descriptor error');
      const mask = (1 << shift) - 1;
      for (let i = 0; i < batch.rows; i++) {
        const src = batch.src(i);
        const from = (src & mask) * 4096;
        const len = batch.nrPages(i) * 4096;
        ram[batch.dst(i) >>> shift]!.set(
          ram[src >>> shift]!.subarray(from, from + len),
          (batch.dst(i) & mask) * 4096,
        );
        batch.markCopied(i);
      }
    },
    dispose() {
      ram = [];
    },
  });
  return Object.defineProperty(mig, 'batches', { get: () => state.batches }) as unknown as Migrator & {
    batches: number;
  };
}

describe('compaction through the copy-offload migrators', () => {
  it('the migrator registered for `compaction` copies every folio; the report says how long the copy waited', async () => {
    m = await createMachine({ nodes: [{ memory: '32MiB' }] });
    await m.offload.register(cpuSerial(), 'compaction');
    const f = fragment(m, { fill: 0.96 });
    const r = (await compactNode(m.kernel, 0)).zones[0]!;
    expect(r.pagesMigrated).toBeGreaterThan(1000);
    expect(r.offload.migrator).toBe('cpu-serial');
    expect(r.offload.foliosCopied).toBe(r.pagesMigrated);
    expect(r.offload.batches).toBe(r.migrateCalls);
    expect(r.batchCopySeconds).toBeGreaterThan(0);
    expect(r.batchCopySeconds).toBe(r.phases.batchCopy);
    expect(r.cpuSeconds).toBeGreaterThan(0);
    expect(verifyBytes(f)).toBe(f.kept.length * 16);
    m.checkInvariants();
  });

  it('a migrator registered for other reasons does not see compaction batches', async () => {
    m = await createMachine({ nodes: [{ memory: '32MiB' }] });
    const mig = fakeDma();
    await m.offload.register(mig, 'syscall_or_cpuset,numa_misplaced');
    fragment(m, { fill: 0.96 });
    const r = (await compactNode(m.kernel, 0)).zones[0]!;
    expect(r.pagesMigrated).toBeGreaterThan(0);
    expect(r.offload).toMatchObject({ migrator: null, batches: 0, foliosCopied: 0 });
    expect(mig.batches).toBe(0);
  });

  it('a route for `compaction` wins over the default migrator; an asynchronous device copy is awaited', async () => {
    m = await createMachine({ nodes: [{ memory: '32MiB' }] });
    const dma = fakeDma();
    await m.offload.register(cpuSerial(), 'all');
    await m.offload.route('compaction', dma);
    expect(m.offload.routing().compaction).toBe('fake-dma');
    const f = fragment(m, { fill: 0.96 });
    const kd = attachKcompactd(m, { proactiveness: 0 });
    const r = (await kd.compactNode(0)).zones[0]!;
    expect(r.offload.migrator).toBe('fake-dma');
    expect(r.offload.foliosCopied).toBe(r.pagesMigrated);
    expect(dma.batches).toBe(r.migrateCalls);
    expect(kd.stats().manual).toMatchObject({
      runs: 1,
      pagesMigrated: r.pagesMigrated,
      foliosCopiedByMigrator: r.pagesMigrated,
    });
    expect(kd.stats().manual.batchCopySeconds).toBeGreaterThan(0);
    expect(verifyBytes(f)).toBe(f.kept.length * 16);
    m.checkInvariants();
    await kd.stop();
  });

  it('a failing migrator: the engine copies on the CPU, nothing is lost, failures are reported', async () => {
    m = await createMachine({ nodes: [{ memory: '32MiB' }] });
    await m.offload.register(fakeDma({ fail: true }), 'compaction');
    const f = fragment(m, { fill: 0.96 });
    const r = (await compactNode(m.kernel, 0)).zones[0]!;
    expect(r.pagesMigrated).toBeGreaterThan(1000);
    expect(r.offload.failures).toBeGreaterThan(0);
    expect(r.offload.foliosCopied).toBe(0);
    expect(m.offload.status()[0]!.disabled).toMatch(/consecutive failed batches/);
    expect(verifyBytes(f)).toBe(f.kept.length * 16);
    m.checkInvariants();
  });
});
