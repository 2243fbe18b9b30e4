// The optional run hooks of the migrator contract (pagemig.migrator/v1): runStart/runEnd around
// every migrate_pages() call whose batches go to the migrator, paired whatever happens inside the
// run; a migrator without them works as before.
import { describe, expect, it } from 'vitest';
import { isolateFolios, migratePages } from '../src/migrate.js';
import { MigrateMode, MigrateReason } from '../src/migrate_mode.js';
import { defineMigrator, type MigrationRunInfo, type Migrator } from '../src/migrator.js';
import { MigratorErrorCode } from '../src/migrator_validate.js';
import { PAGE_SIZE } from '../src/mmzone.js';
import { machinesCheckedAfterEach, pattern, sameBytes } from './helpers.js';

const newMachine = machinesCheckedAfterEach();

/** A migrator that records its calls; `hooks: false` leaves runStart/runEnd out (a v1 migrator). */
function recorder(opts: { hooks?: boolean; throwOnStart?: boolean } = {}) {
  const log: string[] = [];
  const infos: MigrationRunInfo[] = [];
  const ended: MigrationRunInfo[] = [];
  const mig: Migrator = defineMigrator({
    apiVersion: 'pagemig.migrator/v1',
    name: 'recorder',
    version: '1.0.0',
    engines: { core: '*' },
    capabilities: { offloadsCpu: false, channels: 1, maxInFlightBatches: 1, needsSharedMemory: false },
    init() {},
    copyBatch() {
      log.push('batch');
    },
    dispose() {},
    ...(opts.hooks === false
      ? {}
      : {
          runStart(info: MigrationRunInfo) {
            log.push('start');
            infos.push(info);
            if (opts.throwOnStart) throw new Error('runStart broke');
          },
          runEnd(info: MigrationRunInfo) {
            log.push('end');
            ended.push(info);
          },
        }),
  });
  return { mig, log, infos, ended };
}

async function region(pages: number, thp: 'always' | 'never' = 'never') {
  const m = await newMachine();
  const p = m.spawn();
  const a = p.mmap(pages * PAGE_SIZE, { thp, node: 0 });
  const data = pattern(pages);
  p.write(a, data);
  const headsNow = () => [
    ...new Set(Array.from({ length: pages }, (_, i) => p.pageInfo(a + i * PAGE_SIZE)!.headPfn)),
  ];
  return { m, p, a, data, heads: headsNow(), headsNow };
}

describe('migrator run hooks', () => {
  it('one run per migrate_pages() call: runStart with its size before the batches, runEnd after', async () => {
    const { m, p, a, data, heads } = await region(1024, 'always');
    const r = recorder();
    await m.offload.register(r.mig, 'all');
    const res = await m.migrateFolios(heads, { node: 1 });
    expect(res.ret).toBe(0);
    expect(r.log).toEqual(['start', 'batch', 'batch', 'end']);
    expect(r.infos).toEqual([
      { reason: MigrateReason.MR_SYSCALL, mode: MigrateMode.MIGRATE_SYNC, node: 1, folios: 2, pages: 1024 },
    ]);
    expect(r.ended[0]).toBe(r.infos[0]);
    expect(sameBytes(p.read(a, data.length), data)).toBe(true);
  });

  it('a run that throws inside the engine still ends with runEnd, after every folio is put back', async () => {
    const { m, p, a, data, heads } = await region(16);
    const r = recorder();
    await m.offload.register(r.mig, 'all');
    const k = m.kernel;
    const isolated = isolateFolios(k, heads).heads;
    await expect(
      migratePages(k, isolated, {
        node: 1,
        alloc: () => {
          throw new Error('the allocation hook broke');
        },
      }),
    ).rejects.toThrow(/allocation hook broke/);
    expect(r.log).toEqual(['start', 'end']);
    expect(r.ended[0]).toBe(r.infos[0]);
    expect(sameBytes(p.read(a, data.length), data)).toBe(true);
  });

  it('a runStart that throws is logged; the run goes on and still gets its runEnd', async () => {
    const { m, heads } = await region(8);
    const r = recorder({ throwOnStart: true });
    await m.offload.register(r.mig, 'all');
    const res = await m.migrateFolios(heads, { node: 1 });
    expect(res.ret).toBe(0);
    expect(r.log).toEqual(['start', 'batch', 'end']);
    expect(m.offload.log).toContain('warn: recorder: runStart failed: runStart broke');
  });

  it('no run hook for a reason the migrator does not serve, nor for a v1 migrator without them', async () => {
    const { m, heads, headsNow } = await region(8);
    const r = recorder();
    await m.offload.register(r.mig, 'compaction');
    await m.migrateFolios(heads, { node: 1 });
    expect(r.log).toEqual([]);
    await m.offload.unregister(r.mig);
    const old = recorder({ hooks: false });
    await m.offload.register(old.mig, 'all');
    const res = await m.migrateFolios(headsNow(), { node: 0 });
    expect(res.ret).toBe(0);
    expect(old.log).toEqual(['batch']);
  });

  it('runStart/runEnd must be functions when present', async () => {
    const m = await newMachine();
    const bad = { ...recorder().mig, runEnd: 'later' } as unknown as Migrator;
    await expect(m.offload.register(bad)).rejects.toMatchObject({
      code: MigratorErrorCode.INVALID,
      message: expect.stringMatching(/`runEnd` must be a function when present/),
    });
  });

  it("a daemon's pass: passStart announces it once (0 folios, its pages); bad arguments are EINVAL", async () => {
    const m = await newMachine();
    const r = recorder();
    // No migrator serves compaction yet: nothing to announce, and runEnd(null) does nothing.
    const none = m.offload.passStart('compaction', 'MIGRATE_SYNC_LIGHT', 0, 4096);
    expect(none).toBeNull();
    m.offload.runEnd(none);
    await m.offload.register(r.mig, 'compaction');
    const pass = m.offload.passStart('compaction', 'MIGRATE_SYNC_LIGHT', 0, 4096);
    expect(r.infos).toEqual([
      {
        reason: MigrateReason.MR_COMPACTION,
        mode: MigrateMode.MIGRATE_SYNC_LIGHT,
        node: 0,
        folios: 0,
        pages: 4096,
      },
    ]);
    m.offload.runEnd(pass);
    expect(r.ended).toEqual([r.infos[0]]);
    for (const [args, msg] of [
      [['compactoin', 'MIGRATE_SYNC', 0, 1], /unknown migrate reason "compactoin"/],
      [['compaction', 'SYNC', 0, 1], /unknown migrate mode/],
      [['compaction', 'MIGRATE_SYNC', 7, 1], /node 7 does not exist/],
      [['compaction', 'MIGRATE_SYNC', 0, -1], /pages must be an integer >= 0/],
      [['compaction', 'MIGRATE_SYNC', 0, 1.5], /pages must be an integer >= 0/],
    ] as const) {
      expect(() => (m.offload.passStart as (...a: unknown[]) => unknown)(...args)).toThrow(
        expect.objectContaining({ code: 'EINVAL', message: expect.stringMatching(msg) }),
      );
    }
    expect(() => m.offload.runEnd({} as never)).toThrow(
      /runEnd: expected what runStart or passStart returned/,
    );
    // runStart (the engine's call, public on m.offload) checks its input the same way, and its heads.
    for (const [args, msg] of [
      [['compaction', 'MIGRATE_SYNC', 9, []], /runStart: node 9 does not exist/],
      [['compaction', 'MIGRATE_SYNC', 0, 'heads'], /heads must be an array of folio head pfns/],
      [['compaction', 'MIGRATE_SYNC', 0, [0, -1]], /heads\[1\] = -1 is not a pfn of this machine/],
      [['compaction', 'MIGRATE_SYNC', 0, [1e12]], /heads\[0\] = 1000000000000 is not a pfn/],
    ] as const) {
      expect(() => (m.offload.runStart as (...a: unknown[]) => unknown)(...args)).toThrow(
        expect.objectContaining({ code: 'EINVAL', message: expect.stringMatching(msg) }),
      );
    }
    expect(r.log).toEqual(['start', 'end']);
  });
});
