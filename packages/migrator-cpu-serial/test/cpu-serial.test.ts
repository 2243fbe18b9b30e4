import {
  createMachine,
  type Machine,
  MigrateMode,
  MigrateReason,
  MigrationBatch,
  PagemigError,
} from '@pagemig/core';
import { afterEach, describe, expect, it } from 'vitest';
import { createMigrator } from '../src/index.js';

let m: Machine | undefined;
afterEach(async () => {
  await m?.close();
  m = undefined;
});

function fill(seed: number, n: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = (i * 31 + seed * 7 + (i >>> 12)) & 255;
  return out;
}

describe('cpu-serial', () => {
  it.each([
    ['never', 4 << 10],
    ['64KiB', 64 << 10],
    ['always', 2 << 20],
  ] as const)('migrates %s folios through the batch hook and every byte arrives', async (thp, folio) => {
    m = await createMachine({ nodes: [{ memory: '64MiB' }, { memory: '64MiB' }], prefault: false });
    const mig = createMigrator();
    await m.offload.register(mig, 'all');
    const p = m.spawn();
    const len = 8 << 20;
    const a = p.mmap(len, { thp, node: 0 });
    const data = fill(folio, len);
    p.write(a, data);
    const pfns: number[] = [];
    for (let off = 0; off < len; off += folio) pfns.push(p.pageInfo(a + off)!.headPfn);
    const r = await m.migrateFolios(pfns, { node: 1 });
    expect(r.ret).toBe(0);
    expect(r.offload.foliosCopied).toBe(pfns.length);
    expect(r.phases.fallbackCopy).toBeLessThan(r.phases.batchCopy + 0.01);
    expect(mig.stats()).toMatchObject({ folios: pfns.length, bytes: len });
    expect(p.pageInfo(a)!.node).toBe(1);
    expect(Buffer.compare(p.read(a, len), data)).toBe(0);
    m.checkInvariants();
  });

  it('copies exactly the rows of a batch and marks each one', async () => {
    m = await createMachine({ nodes: [{ memory: '16MiB' }], prefault: false });
    const mig = createMigrator();
    const k = m.kernel;
    await mig.init({
      sections: k.mem.sections,
      sectionPfnShift: k.mem.pagesPerSectionShift,
      pageSize: 4096,
      nrPages: k.nrPages,
      logger: { info() {}, warn() {}, error() {} },
      count() {},
      allocCoherent: () => {
        throw new Error('not used');
      },
      freeCoherent() {},
      host: { coreVersion: '0.1.0', apiVersion: 'pagemig.migrator/v1' },
    });
    const table = new Int32Array(new SharedArrayBuffer(3 * 16));
    // Rows: pfn 10 → 100 (1 page), pfn 20 → 200 (2 pages), pfn 30 → 300 (1 page).
    table.set([10, 100, 1, 0, 20, 200, 2, 0, 30, 300, 1, 0]);
    for (const pfn of [10, 20, 21, 30]) k.mem.view(pfn).fill(pfn);
    await mig.copyBatch(
      new MigrationBatch(table, 3, MigrateReason.MR_COMPACTION, MigrateMode.MIGRATE_ASYNC),
      {
        signal: new AbortController().signal,
      },
    );
    expect([0, 1, 2].map((i) => table[i * 4 + 3])).toEqual([1, 1, 1]);
    expect(k.mem.view(100).every((b) => b === 10)).toBe(true);
    expect(k.mem.view(200).every((b) => b === 20)).toBe(true);
    expect(k.mem.view(201).every((b) => b === 21)).toBe(true);
    expect(k.mem.view(300).every((b) => b === 30)).toBe(true);
    expect(k.mem.view(301).every((b) => b === 0)).toBe(true);
  });

  it('stops at an aborted signal and leaves the rest unmarked', async () => {
    m = await createMachine({ nodes: [{ memory: '16MiB' }], prefault: false });
    const mig = createMigrator({ checkEvery: 1 });
    await m.offload.register(mig);
    const table = new Int32Array(new SharedArrayBuffer(2 * 16));
    table.set([1, 2, 1, 0, 3, 4, 1, 0]);
    const ac = new AbortController();
    ac.abort();
    await mig.copyBatch(new MigrationBatch(table, 2, MigrateReason.MR_SYSCALL, MigrateMode.MIGRATE_SYNC), {
      signal: ac.signal,
    });
    expect(table[3]).toBe(0);
    expect(table[7]).toBe(0);
  });

  it('rejects unknown and invalid options with a coded error', () => {
    expect(() => createMigrator({ chekEvery: 3 } as never)).toThrow(/unknown option "chekEvery"/);
    try {
      createMigrator({ checkEvery: 0 });
      expect.unreachable();
    } catch (e) {
      expect(PagemigError.isInstance(e) && e.code).toBe('ERR_MIGRATOR_OPTION');
    }
  });

  it('declares a manifest the host accepts', async () => {
    m = await createMachine({ nodes: [{ memory: '16MiB' }], prefault: false });
    const mig = createMigrator();
    expect(mig.capabilities).toEqual({
      offloadsCpu: false,
      channels: 1,
      maxInFlightBatches: 1,
      needsSharedMemory: true,
    });
    await m.offload.register(mig, 'compaction,demotion');
    expect(m.offload.reasonMask).toBe('compaction,demotion');
    await m.offload.unregister(mig);
    expect(m.offload.active).toBeNull();
  });
});
