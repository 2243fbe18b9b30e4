import {
  createMachine,
  defineMigrator,
  type Machine,
  MIGRATOR_API_VERSION,
  MigrateMode,
  MigrateReason,
  type MigrationBatch,
  type MigrationRunInfo,
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

  it('a compaction pass is one run for the migrator: its clusters are runs inside it, each paired', async () => {
    m = await createMachine({ nodes: [{ memory: '32MiB' }] });
    const serial = cpuSerial();
    const log: [string, MigrationRunInfo][] = [];
    const mig = defineMigrator({
      ...serial,
      name: 'run-recorder',
      init: (ctx: MigratorContext) => serial.init(ctx),
      copyBatch: (b: MigrationBatch, o: { signal: AbortSignal }) => serial.copyBatch(b, o),
      dispose: () => serial.dispose(),
      runStart: (info: MigrationRunInfo) => {
        log.push(['start', info]);
      },
      runEnd: (info: MigrationRunInfo) => {
        log.push(['end', info]);
      },
    });
    await m.offload.register(mig, 'compaction');
    const f = fragment(m, { fill: 0.96 });
    const r = (await compactNode(m.kernel, 0)).zones[0]!;
    expect(r.migrateCalls).toBeGreaterThan(10);
    const zone = m.kernel.nodes[0]!.zones.find((z) => z.present > 0)!;
    // The pass first, with no folios and the pages it may move; its end last.
    const pass = log[0]![1];
    expect(log[0]![0]).toBe('start');
    expect(pass).toEqual({
      reason: MigrateReason.MR_COMPACTION,
      mode: MigrateMode.MIGRATE_SYNC,
      node: 0,
      folios: 0,
      pages: zone.present,
    });
    expect(log.at(-1)).toEqual(['end', pass]);
    // Inside it, one run per migrate_pages() call (cluster), each with its own runEnd.
    const inner = log.slice(1, -1);
    expect(inner.length).toBe(2 * r.migrateCalls);
    for (let i = 0; i < inner.length; i += 2) {
      expect(inner[i]![0]).toBe('start');
      expect(inner[i + 1]).toEqual(['end', inner[i]![1]]);
      expect(inner[i]![1].folios).toBeGreaterThan(0);
    }
    expect(verifyBytes(f)).toBe(f.kept.length * 16);
    m.checkInvariants();
  });

  it('the pass still ends (runEnd) when compaction throws inside it', async () => {
    m = await createMachine({ nodes: [{ memory: '32MiB' }] });
    const serial = cpuSerial();
    const log: string[] = [];
    const mig = defineMigrator({
      ...serial,
      name: 'run-recorder',
      init: (ctx: MigratorContext) => serial.init(ctx),
      copyBatch: (b: MigrationBatch, o: { signal: AbortSignal }) => serial.copyBatch(b, o),
      dispose: () => serial.dispose(),
      runStart: (info: MigrationRunInfo) => {
        log.push(`start ${info.folios}`);
      },
      runEnd: (info: MigrationRunInfo) => {
        log.push(`end ${info.folios}`);
      },
    });
    await m.offload.register(mig, 'compaction');
    fragment(m, { fill: 0.96 });
    let calls = 0;
    await expect(
      compactNode(m.kernel, 0, {
        shouldAbort: () => {
          if (++calls === 3) throw new Error('abort check broke');
          return false;
        },
      }),
    ).rejects.toThrow(/abort check broke/);
    expect(log[0]).toBe('start 0');
    expect(log.at(-1)).toBe('end 0');
    expect(log.filter((l) => l.startsWith('start')).length).toBe(
      log.filter((l) => l.startsWith('end')).length,
    );
    m.checkInvariants();
  });
});
