import { type Machine, type MigrationResult, PagemigError } from '@pagemig/core';
import { describe, expect, it, onTestFinished } from 'vitest';
import {
  changedPages,
  copyBatchRounds,
  createMockMigrator,
  createTestMachine,
  engineTimeoutProblems,
  fillMemory,
  mapDmaWindows,
  migrateEachFolioSize,
  migratorOptionError,
  scatteredRows,
  snapshotMemory,
  type TestMachineOptions,
} from '../src/index.js';

/** A test machine closed when the test ends. */
async function machine(opts: TestMachineOptions = {}): Promise<Machine> {
  const m = await createTestMachine(opts);
  onTestFinished(() => m.close());
  return m;
}

describe('helpers for driver tests', () => {
  it('scatteredRows skips every other frame', () => {
    expect(scatteredRows(3, 100, 300)).toEqual([
      [100, 300, 1],
      [102, 302, 1],
      [104, 304, 1],
    ]);
  });

  it('migrateEachFolioSize migrates three folio sizes, and reports what the migrator did not copy', async () => {
    const m = await machine();
    expect(await migrateEachFolioSize(m, { bytes: 2 << 20, seed: 3 })).toEqual({
      folios: 545,
      problems: [
        'thp never: the migrator copied 0 of 512 folios',
        'thp 64KiB: the migrator copied 0 of 32 folios',
        'thp always: the migrator copied 0 of 1 folios',
      ],
    });
    await m.offload.register(createMockMigrator(), 'all');
    expect(await migrateEachFolioSize(m, { bytes: 2 << 20 })).toEqual({ folios: 545, problems: [] });
  });

  it('copyBatchRounds copies the rows again and again, and reports rows left unmarked or uncopied', async () => {
    const m = await machine();
    const mig = createMockMigrator();
    await m.offload.register(mig);
    const rows = scatteredRows(8, 1000, 3000);
    expect(await copyBatchRounds(m, mig, rows, 3)).toEqual([]);
    expect(mig.stats().rowsCopied).toBe(3 * 8);
    m.kernel.mem.view(3002).fill(0);
    const idle = { copyBatch: () => {} };
    expect(await copyBatchRounds(m, idle, rows.slice(0, 2), 2)).toEqual([
      'round 0: 0 of 2 rows marked',
      'round 1: 0 of 2 rows marked',
      'pfn 3002 differs from its source 1002',
    ]);
  });

  it('migratorOptionError returns the message, and throws for anything but ERR_MIGRATOR_OPTION', () => {
    const bad = new PagemigError('ERR_MIGRATOR_OPTION', 'channels must be 1..16');
    expect(
      migratorOptionError(() => {
        throw bad;
      }),
    ).toBe('channels must be 1..16');
    expect(() => migratorOptionError(() => ({}))).toThrow(/but the migrator was created/);
    expect(() =>
      migratorOptionError(() => {
        throw new PagemigError('EINVAL', 'nope');
      }),
    ).toThrow(/expected ERR_MIGRATOR_OPTION, got/);
  });

  it('engineTimeoutProblems lists every way a timed-out migration went wrong', () => {
    const r = (offload: Partial<MigrationResult['offload']>, ret = 0) =>
      ({ ret, offload: { batches: 2, failures: 2, foliosCopied: 0, ...offload } }) as MigrationResult;
    const aborted = { timeouts: 2, channels: [{ aborted: 0 }, { aborted: 1 }] };
    expect(engineTimeoutProblems(r({}), aborted)).toEqual([]);
    expect(
      engineTimeoutProblems(r({ failures: 1, foliosCopied: 4 }, -12), {
        timeouts: 1,
        channels: [{ aborted: 0 }],
      }),
    ).toEqual([
      'migrateFolios returned -12',
      'the migrator copied 4 folios',
      '1 of 2 batches failed',
      '1 timeouts for 2 batches',
      'no channel aborted',
    ]);
  });

  it('mapDmaWindows maps what fits, skips overlaps and the kept-clear page, and resolves targets', () => {
    const maps: number[][] = [];
    const domain = {
      map(pfn: number, nr: number, dir: 1 | 2 | 3) {
        if (maps.some(([p, n]) => pfn < p! + n! && p! < pfn + nr)) throw new Error('overlap');
        maps.push([pfn, nr, dir]);
      },
    };
    const at = mapDmaWindows(
      domain,
      [
        { pfn: 10, nr: 4, dir: 1 },
        { pfn: 12, nr: 4, dir: 2 }, // overlaps the first
        { pfn: 3, nr: 2, dir: 2 }, // covers pfn 4
        { pfn: 98, nr: 5, dir: 3 }, // cut at 100 pages
      ],
      { pages: 100, keepClear: 4 },
    );
    expect(maps).toEqual([
      [10, 4, 1],
      [98, 2, 3],
    ]);
    expect(at({ kind: 'win', idx: 0, off: 5 * 4096 + 7 })).toBe(11 * 4096 + 7);
    expect(at({ kind: 'win', idx: 3, off: 100 })).toBe(98 * 4096 + 100);
    expect(at({ kind: 'ram', addr: 12345 })).toBe(12345);
    expect(at({ kind: 'wild', addr: 2 ** 50 })).toBe(2 ** 50);
    expect(mapDmaWindows(domain, [], { pages: 100 })({ kind: 'win', idx: 1, off: 77 })).toBe(77);
  });

  it('fillMemory leaves no page blank, and changedPages finds the pages written since a snapshot', async () => {
    const m = await machine({ nodes: 1, nodeMemory: '8MiB' });
    fillMemory(m);
    const mem = m.kernel.mem;
    expect(mem.view(0).some((b) => b !== 0)).toBe(true);
    expect(mem.view(m.kernel.nrPages - 1).every((b) => b !== 0)).toBe(true);
    expect(Buffer.compare(mem.view(5), mem.view(6))).not.toBe(0);
    const snapshot = snapshotMemory(m);
    expect(changedPages(m, snapshot)).toEqual([]);
    mem.view(7).fill(0, 100, 101);
    mem.view(m.kernel.nrPages - 1).fill(0, 0, 1);
    expect(changedPages(m, snapshot)).toEqual([7, m.kernel.nrPages - 1]);
    expect(changedPages(m, snapshot, (pfn) => pfn === 7)).toEqual([m.kernel.nrPages - 1]);
  });
});
