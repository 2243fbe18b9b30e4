import { describe, expect, it } from 'vitest';
import { createMachine, type Machine } from '../../src/machine.js';
import { defineMigrator, type MigrationBatch, type MigratorContext } from '../../src/migrator.js';
import { PAGE_SIZE } from '../../src/mmzone.js';
import type { Process } from '../../src/process.js';
import { machinesCheckedAfterEach, pattern, sameBytes } from '../helpers.js';

const THP = 2 << 20;
const machine = machinesCheckedAfterEach();

function populate(m: Machine, bytes: number, thp: 'always' | 'never') {
  const p = m.spawn();
  const a = p.mmap(bytes, { thp, node: 0 });
  const data = pattern(bytes / PAGE_SIZE);
  p.write(a, data);
  const heads = new Set<number>();
  for (let off = 0; off < bytes; off += PAGE_SIZE) heads.add(p.pageInfo(a + off)!.headPfn);
  return { p, a, bytes, data, heads: [...heads] };
}
const nodeOf = (p: Process, a: number) => p.pageInfo(a)!.node;

/** A migrator that says it is a 4-channel PTDMA and copies with TypedArray.set. */
function fakePtdma() {
  let ram: Uint8Array[] = [];
  let shift = 0;
  const bytes = (pfn: number, nr: number) => {
    const off = (pfn & ((1 << shift) - 1)) * PAGE_SIZE;
    return ram[pfn >>> shift]!.subarray(off, off + nr * PAGE_SIZE);
  };
  return defineMigrator({
    apiVersion: 'pagemig.migrator/v1' as const,
    name: 'fake-ptdma',
    version: '1.0.0',
    engines: { core: '^0.1.0' },
    capabilities: {
      offloadsCpu: true,
      channels: 4,
      maxInFlightBatches: 1,
      needsSharedMemory: true,
      dmaengine: { provider: 'ptdma', maxChannels: 16 },
    },
    init(ctx: MigratorContext) {
      ram = ctx.sections.map((s) => new Uint8Array(s));
      shift = ctx.sectionPfnShift;
    },
    copyBatch(batch: MigrationBatch) {
      for (let i = 0; i < batch.rows; i++) {
        bytes(batch.dst(i), batch.nrPages(i)).set(bytes(batch.src(i), batch.nrPages(i)));
        batch.markCopied(i);
      }
    },
    dispose() {},
  });
}

describe("clock: 'modeled'", () => {
  it('still migrates and verifies every byte, and adds modeled phases for the run shape', async () => {
    const m = await machine({ clock: 'modeled', profile: 'zen3-epyc-ptdma' });
    const r = populate(m, 4 * THP, 'always');
    const res = await m.migrateFolios(r.heads, { node: 1 });
    expect(res.nrSucceeded).toBe((4 * THP) / PAGE_SIZE);
    expect(nodeOf(r.p, r.a)).toBe(1);
    expect(sameBytes(r.p.read(r.a, r.bytes), r.data)).toBe(true);
    const mod = res.modeled!;
    expect(mod).toMatchObject({ clock: 'modeled', profile: 'zen3-epyc-ptdma', copier: { kind: 'kernel' } });
    expect(Object.values(mod.phases).reduce((s, v) => s + v, 0)).toBeCloseTo(mod.totalSeconds, 12);
    expect(mod.phases.fallbackCopy).toBeGreaterThan(0);
    expect(mod.GBps).toBeCloseTo((4 * THP) / mod.totalSeconds / 1e9, 9);
    // The wall-clock phases are still measured alongside.
    expect(res.phases.fallbackCopy).toBeGreaterThan(0);
  });

  it('charges the routed migrator as the DMA engine its capabilities name', async () => {
    const m = await machine({ clock: 'modeled', profile: 'zen3-epyc-ptdma' });
    await m.offload.register(fakePtdma());
    const r = populate(m, 2 * THP, 'always');
    const res = await m.migrateFolios(r.heads, { node: 1 });
    expect(sameBytes(r.p.read(r.a, r.bytes), r.data)).toBe(true);
    expect(res.offload.foliosCopied).toBe(2);
    expect(res.modeled!.copier).toEqual({ kind: 'dma', engine: 'ptdma', channels: 4 });
    expect(res.modeled!.phases.batchCopy).toBeGreaterThan(0);
    expect(res.modeled!.phases.fallbackCopy).toBe(0);
  });

  it('a run can choose the modeled clock and its profile; the real clock adds nothing', async () => {
    const m = await machine();
    const r = populate(m, 64 * PAGE_SIZE, 'never');
    const real = await m.migrateFolios(r.heads.slice(0, 32), { node: 1 });
    expect(real.modeled).toBeUndefined();
    const res = await m.migrateFolios(r.heads.slice(32), { node: 1, clock: 'modeled', profile: 'dram-cxl' });
    expect(res.modeled?.profile).toBe('dram-cxl');
    expect(sameBytes(r.p.read(r.a, r.bytes), r.data)).toBe(true);
  });

  it('refuses before touching a folio: unknown profile, DMA engine the profile lacks', async () => {
    await expect(
      createMachine({ nodes: [{ memory: '32MiB' }], clock: 'modeled', profile: 'zen4' }),
    ).rejects.toMatchObject({
      code: 'ERR_INVALID_CONFIG',
      message: expect.stringMatching(
        /^createMachine: profile: no hardware profile named "zen4"; shipped: dram-cxl, zen3-epyc-ptdma/,
      ),
    });
    await expect(createMachine({ nodes: [{ memory: '32MiB' }], clock: 'modeled' })).rejects.toThrow(
      "createMachine: profile: clock 'modeled' needs a hardware profile",
    );
    const m = await machine({ clock: 'modeled', profile: 'dram-cxl' });
    await m.offload.register(fakePtdma());
    const r = populate(m, THP, 'always');
    await expect(m.migrateFolios(r.heads, { node: 1 })).rejects.toThrow(
      /profile dram-cxl has no DMA engine "ptdma"/,
    );
    expect(nodeOf(r.p, r.a)).toBe(0);
    expect(sameBytes(r.p.read(r.a, r.bytes), r.data)).toBe(true);
  });
});
