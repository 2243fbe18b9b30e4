import { createMachine, EBUSY, EINVAL, ENOENT, type Machine, MIGRATE_MOVABLE } from '@pagemig/core';
import { afterEach, describe, expect, it } from 'vitest';
import {
  allocFolioDirectCompact,
  attachKcompactd,
  type CompactRun,
  fragmentationScoreNode,
  fragmentationScoreZone,
  type Kcompactd,
} from '../src/index.js';
import { compactCounters, delta, fragment, keptPfns, shapeFreeLists, verifyBytes } from './helpers.js';

let m: Machine | undefined;
let kd: Kcompactd | undefined;
afterEach(async () => {
  await kd?.stop();
  await m?.close();
  kd = undefined;
  m = undefined;
});

const texts = (mach: Machine, event: string) => mach.trace.events(event).map((e) => e.text);

/** Resolves with the first run `kd` reports that matches. */
function nextRun(k: Kcompactd, match: (r: CompactRun) => boolean): Promise<CompactRun> {
  return new Promise((resolve) => {
    const off = k.onRun((r) => {
      if (match(r)) {
        off();
        resolve(r);
      }
    });
  });
}

describe('vm.compact_memory and per-node compaction', () => {
  it('ENOENT without kcompactd; 1 compacts every zone; anything else is EINVAL; ENOENT again after stop()', async () => {
    m = await createMachine({ nodes: [{ memory: '32MiB' }, { memory: '32MiB' }] });
    expect(await m.sysctl.writeAsync('vm.compact_memory', '1')).toBe(ENOENT);
    const f0 = fragment(m, { nid: 0, fill: 0.95 });
    const f1 = fragment(m, { nid: 1, fill: 0.95 });
    kd = attachKcompactd(m, { proactiveness: 0 });
    for (const v of ['0', '2', '-1', 'abc', '1x', ''])
      expect(await m.sysctl.writeAsync('vm.compact_memory', v)).toBe(EINVAL);
    expect(() => m!.sysctl.read('vm.compact_memory')).toThrow(/write-only/);
    const before = m.vmstat() as Record<string, number>;
    const runs: CompactRun[] = [];
    kd.onRun((r) => runs.push(r));
    expect(await m.sysctl.writeAsync('vm.compact_memory', '1')).toBe(0);
    expect(runs.map((r) => [r.nid, r.zone, r.trigger, r.mode, r.order, r.status])).toEqual([
      [0, 'Normal', 'manual', 'MIGRATE_SYNC', -1, 'complete'],
      [1, 'Normal', 'manual', 'MIGRATE_SYNC', -1, 'complete'],
    ]);
    const d = delta(m, before, compactCounters);
    // Manual compaction counts only the scanned and isolated counters (and pgmigrate_*).
    expect(d).toMatchObject({
      compact_stall: 0,
      compact_fail: 0,
      compact_success: 0,
      compact_daemon_wake: 0,
      compact_daemon_migrate_scanned: 0,
      compact_daemon_free_scanned: 0,
    });
    expect(d.compact_migrate_scanned).toBe(runs[0]!.migrateScanned + runs[1]!.migrateScanned);
    expect(d.pgmigrate_success).toBe(runs[0]!.pagesMigrated + runs[1]!.pagesMigrated);
    expect(kd.stats().manual.runs).toBe(2);
    expect(verifyBytes(f0) + verifyBytes(f1)).toBeGreaterThan(0);
    m.checkInvariants();

    // The per-node file compacts one node.
    const r = await kd.compactNode(1);
    expect(r.nid).toBe(1);
    expect(r.zones.map((z) => z.status)).toEqual(['complete']);
    await expect(kd.compactNode(2)).rejects.toThrow(/node 2/);

    await kd.stop();
    await kd.stop();
    expect(await m.sysctl.writeAsync('vm.compact_memory', '1')).toBe(ENOENT);
  });

  it('stop() while a compaction runs ends it at the next batch and leaves a consistent machine', async () => {
    m = await createMachine({ nodes: [{ memory: '128MiB' }] });
    const f = fragment(m, { fill: 0.95 });
    kd = attachKcompactd(m, { proactiveness: 0 });
    const run = kd.compactNode(0);
    await new Promise((r) => setImmediate(r));
    await kd.stop();
    const r = await run;
    expect(['contended', 'complete']).toContain(r.zones[0]!.status);
    expect(verifyBytes(f)).toBeGreaterThan(0);
    m.checkInvariants();
  });
});

describe('kcompactd', () => {
  it('wakeup_kcompactd: ignored for order 0, wakes a sleeping thread that has work, counts and traces', async () => {
    m = await createMachine({ nodes: [{ memory: '64MiB' }] });
    const f = fragment(m, { fill: 0.98 });
    kd = attachKcompactd(m, { proactiveness: 0 });
    await kd.settled();
    expect(kd.threads()).toMatchObject([{ nid: 0, comm: 'kcompactd0', sleeping: true, maxOrder: 0 }]);
    const before = m.vmstat() as Record<string, number>;
    m.trace.clear();
    expect(kd.wakeup(0, 0)).toBe(false);
    expect(m.trace.events('compaction')).toEqual([]);
    const done = nextRun(kd, (r) => r.trigger === 'kcompactd');
    expect(kd.wakeup(0, 9)).toBe(true);
    const run = await done;
    await kd.settled();
    expect(run).toMatchObject({ order: 9, mode: 'MIGRATE_SYNC_LIGHT', status: 'success' });
    expect(texts(m, 'mm_compaction_wakeup_kcompactd')).toEqual(['nid=0 order=9 classzone_idx=Normal  ']);
    expect(texts(m, 'mm_compaction_kcompactd_wake')).toEqual(['nid=0 order=9 classzone_idx=Normal  ']);
    expect(texts(m, 'mm_compaction_kcompactd_sleep')).toEqual(['nid=0']);
    // The thread's own events are kcompactd0's; the wake-up is the waker's (here: nobody, <idle>).
    const { pid } = kd.threads()[0]!;
    for (const e of [
      'mm_compaction_kcompactd_wake',
      'mm_compaction_kcompactd_sleep',
      'mm_migrate_pages_start',
    ])
      expect(m.trace.events(e).every((r) => r.pid === pid && r.comm === 'kcompactd0')).toBe(true);
    expect(m.trace.events('mm_compaction_wakeup_kcompactd')[0]).toMatchObject({ pid: 0, comm: '<idle>' });
    expect(m.trace.lines('mm_compaction_kcompactd_sleep')[0]).toMatch(new RegExp(`^ +kcompactd0-${pid} `));
    // compaction_deferred counted the attempt (consider=1); compaction success keeps the count.
    expect(texts(m, 'mm_compaction_defer_reset')).toEqual([
      'node=0 zone=Normal   order=9 order_failed=10 consider=1 limit=1',
    ]);
    expect(new Set(texts(m, 'mm_migrate_pages_start'))).toEqual(
      new Set(['mode=MIGRATE_SYNC_LIGHT reason=compaction']),
    );
    const d = delta(m, before, compactCounters);
    expect(d.compact_daemon_wake).toBe(1);
    expect(d.compact_daemon_migrate_scanned).toBe(d.compact_migrate_scanned);
    expect(d.compact_daemon_free_scanned).toBe(d.compact_free_scanned);
    expect(d.compact_daemon_migrate_scanned).toBe(run.migrateScanned);
    expect(d.compact_stall + d.compact_success + d.compact_fail).toBe(0);
    expect(kd.threads()[0]).toMatchObject({ sleeping: true, maxOrder: 0, wakes: 1 });
    // The order is free now: the node would not benefit, the thread is not woken.
    m.trace.clear();
    expect(kd.wakeup(0, 9)).toBe(false);
    expect(texts(m, 'mm_compaction_wakeup_kcompactd')).toEqual([]);
    expect(verifyBytes(f)).toBeGreaterThan(0);
    m.checkInvariants();
  });

  it('a failing zone is deferred: 1 failure skips the next attempt, 2 skip the next three', async () => {
    m = await createMachine({
      nodes: [{ memory: '32MiB' }],
      sysctl: { 'vm.compact_unevictable_allowed': 0 },
    });
    const f = fragment(m, { fill: 0.96, mlock: true });
    const pfns = keptPfns(f);
    kd = attachKcompactd(m, { proactiveness: 0 });
    const zone = m.kernel.zones[0]!;
    const outcome: string[] = [];
    for (let i = 0; i < 6; i++) {
      await kd.settled();
      m.trace.clear();
      expect(kd.wakeup(0, 9)).toBe(true);
      await kd.settled();
      outcome.push(
        m.trace.events('mm_compaction_deferred').length
          ? 'deferred'
          : m.trace.events('mm_compaction_end')[0]!.text.split('status=')[1]!,
      );
    }
    expect(outcome).toEqual(['complete', 'deferred', 'complete', 'deferred', 'deferred', 'deferred']);
    expect(zone.compact).toMatchObject({ deferShift: 2, orderFailed: 0 });
    expect(m.vmstat().compact_daemon_wake).toBe(6);
    expect(keptPfns(f)).toEqual(pfns);
  });

  it('proactive compaction: the timer notices a score above the high watermark and compacts to the low one', async () => {
    m = await createMachine({ nodes: [{ memory: '64MiB' }] });
    const f = fragment(m, { fill: 0.98 });
    const node = m.kernel.nodes[0]!;
    const zone = node.zones[0]!;
    expect(fragmentationScoreNode(node)).toBeGreaterThan(60);
    const before = m.vmstat() as Record<string, number>;
    kd = attachKcompactd(m, { proactiveness: 50, checkIntervalMs: 20 });
    const run = await nextRun(kd, (r) => r.trigger === 'proactive');
    await kd.settled();
    expect(run).toMatchObject({ order: -1, mode: 'MIGRATE_SYNC_LIGHT', status: 'success' });
    expect(fragmentationScoreZone(zone)).toBeLessThanOrEqual(50);
    expect(fragmentationScoreNode(node)).toBeLessThanOrEqual(60);
    const d = delta(m, before, compactCounters);
    // Proactive runs count the daemon scan counters but not compact_daemon_wake.
    expect(d.compact_daemon_wake).toBe(0);
    expect(d.compact_daemon_migrate_scanned).toBe(run.migrateScanned);
    expect(d.compact_daemon_free_scanned).toBe(run.freeScanned);
    expect(verifyBytes(f)).toBeGreaterThan(0);
    m.checkInvariants();
  });

  it('writing a non-zero vm.compaction_proactiveness wakes every kcompactd for a proactive pass', async () => {
    m = await createMachine({ nodes: [{ memory: '32MiB' }, { memory: '32MiB' }] });
    fragment(m, { nid: 0, fill: 0.96 });
    kd = attachKcompactd(m, { proactiveness: 0 });
    await kd.settled();
    m.trace.clear();
    expect(m.sysctl.write('vm.compaction_proactiveness', 0)).toBe(0);
    expect(texts(m, 'mm_compaction_wakeup_kcompactd')).toEqual([]);
    const done = nextRun(kd, (r) => r.trigger === 'proactive');
    expect(m.sysctl.write('vm.compaction_proactiveness', '30')).toBe(0);
    expect(texts(m, 'mm_compaction_wakeup_kcompactd')).toEqual([
      'nid=0 order=-1 classzone_idx=Normal  ',
      'nid=1 order=-1 classzone_idx=Normal  ',
    ]);
    const r = await done;
    await kd.settled();
    // Node 0 is fragmented (score above 100 − 30 + 10 = 80), node 1 is not.
    expect(r.nid).toBe(0);
    expect(kd.stats().proactive.runs).toBe(1);
    expect(m.sysctl.write('vm.compaction_proactiveness', 101)).toBe(EINVAL);
    m.checkInvariants();
  });

  it('the check timer keeps no process alive; stop() is idempotent; machine.close() does not hang', async () => {
    m = await createMachine({ nodes: [{ memory: '16MiB' }] });
    const timers = () => process.getActiveResourcesInfo().filter((t) => t === 'Timeout').length;
    const t0 = timers();
    kd = attachKcompactd(m, { proactiveness: 20, checkIntervalMs: 50 });
    await kd.settled();
    // The thread sleeps on a 50 ms timer that is unref'ed: no active Timeout was added.
    expect(kd.threads()[0]!.sleeping).toBe(true);
    expect(timers()).toBe(t0);
    await new Promise((r) => setTimeout(r, 120));
    expect(kd.errors).toEqual([]);
    expect(() => attachKcompactd(m!)).toThrow(/already has kcompactd attached/);
    expect(() => attachKcompactd(m!)).toThrow(expect.objectContaining({ code: 'EBUSY', errno: EBUSY }));
    // A refused attach changes nothing: its proactiveness is not written.
    expect(() => attachKcompactd(m!, { proactiveness: 55 })).toThrow(
      expect.objectContaining({ code: 'EBUSY' }),
    );
    expect(m.sysctl.read('vm.compaction_proactiveness')).toBe('20\n');
    await m.close();
    const stopped = kd.stop();
    expect(kd.stop()).toBe(stopped);
    await stopped;
    expect(kd.threads()[0]!.sleeping).toBe(false);
    expect(() => attachKcompactd(m!, { proactiveness: 101 })).toThrow(/proactiveness/);
    expect(() => attachKcompactd(m!, { bogus: 1 } as never)).toThrow(/unknown option "bogus"/);
    expect(() => attachKcompactd(m!, { clustrMax: 8 } as never)).toThrow(
      expect.objectContaining({
        code: 'ERR_KCOMPACTD_OPTION',
        errno: EINVAL,
        message:
          'attachKcompactd: unknown option "clustrMax"; did you mean "clusterMax"? (known options: proactiveness, checkIntervalMs, clusterMax, copyTimeoutMs)',
      }),
    );
    for (const copyTimeoutMs of [Number.NaN, -1, 0])
      expect(() => attachKcompactd(m!, { copyTimeoutMs })).toThrow(
        expect.objectContaining({ code: 'ERR_KCOMPACTD_OPTION' }),
      );
  });

  it('refuses what is not a machine with EINVAL, not a TypeError', () => {
    for (const bad of [undefined, null, 'm', {}, { kernel: {} }])
      expect(() => attachKcompactd(bad as unknown as Machine)).toThrow(
        expect.objectContaining({
          code: 'EINVAL',
          errno: EINVAL,
          message: expect.stringMatching(
            /^EINVAL: attachKcompactd: expected a machine from createMachine\(\), got /,
          ),
        }),
      );
  });
});

describe('direct compaction (the allocator slow path)', () => {
  it('a successful direct compaction: compact_stall and compact_success', async () => {
    m = await createMachine({ nodes: [{ memory: '64MiB' }] });
    const f = fragment(m, { fill: 0.98 });
    const before = m.vmstat() as Record<string, number>;
    m.trace.clear();
    const r = await allocFolioDirectCompact(m.kernel, { order: 9, nid: 0, mt: MIGRATE_MOVABLE });
    expect(r.pfn).toBeGreaterThanOrEqual(0);
    expect(r.attempts.map((a) => [a.priority, a.status, a.allocated])).toEqual([[2, 'success', true]]);
    const d = delta(m, before, compactCounters);
    expect(d).toMatchObject({
      compact_stall: 1,
      compact_success: 1,
      compact_fail: 0,
      compact_daemon_wake: 0,
    });
    expect(texts(m, 'mm_compaction_try_to_compact_pages')).toEqual([
      'order=9 gfp_mask=GFP_HIGHUSER_MOVABLE|__GFP_NOWARN|__GFP_RETRY_MAYFAIL|__GFP_COMP|__GFP_THISNODE priority=2',
    ]);
    expect(texts(m, 'mm_compaction_begin')[0]).toMatch(/, mode=async$/);
    // Allocation success resets the zone's deferral (alloc_success = true).
    expect(texts(m, 'mm_compaction_defer_reset').at(-1)).toBe(
      'node=0 zone=Normal   order=9 order_failed=10 consider=0 limit=1',
    );
    expect(verifyBytes(f)).toBeGreaterThan(0);
    m.kernel.folioPut(r.pfn);
    m.checkInvariants();
  });

  it('a failing one: async then sync-light, a stall and a fail each, and the zone is deferred', async () => {
    m = await createMachine({
      nodes: [{ memory: '32MiB' }],
      sysctl: { 'vm.compact_unevictable_allowed': 0 },
    });
    fragment(m, { fill: 0.96, mlock: true });
    const before = m.vmstat() as Record<string, number>;
    const r = await allocFolioDirectCompact(m.kernel, { order: 9, nid: 0 });
    expect(r.pfn).toBe(-1);
    expect(r.attempts.map((a) => [a.priority, a.status, a.allocated])).toEqual([
      [2, 'complete', false],
      [1, 'complete', false],
    ]);
    expect(delta(m, before, compactCounters)).toMatchObject({
      compact_stall: 2,
      compact_success: 0,
      compact_fail: 2,
    });
    expect(m.kernel.zones[0]!.compact).toMatchObject({ deferShift: 1, orderFailed: 0 });
    // The next attempt finds the zone deferred: no compaction ran, so no stall is counted.
    const before2 = m.vmstat() as Record<string, number>;
    const r2 = await allocFolioDirectCompact(m.kernel, { order: 9, nid: 0 });
    expect(r2.attempts.map((a) => a.status)).toEqual(['deferred', 'complete']);
    expect(delta(m, before2, compactCounters)).toMatchObject({ compact_stall: 2, compact_fail: 2 });
  });

  it('a skipped one (fragmentation index says: lack of memory): no stall at all', async () => {
    m = await createMachine({ nodes: [{ memory: '16MiB' }], prefault: false });
    shapeFreeLists(
      m,
      m.kernel.zones[0]!,
      [0, 512, 1024, 1536, 2048, 2560].map((pfn) => [pfn, 8] as [number, number]),
    );
    const before = m.vmstat() as Record<string, number>;
    const r = await allocFolioDirectCompact(m.kernel, { order: 9, nid: 0 });
    expect(r.pfn).toBe(-1);
    expect(r.attempts.map((a) => a.status)).toEqual(['skipped', 'skipped']);
    expect(delta(m, before, compactCounters)).toMatchObject({
      compact_stall: 0,
      compact_fail: 0,
      compact_success: 0,
    });
  });

  it('kd.allocFolio also runs kswapd’s sleep steps: the skip hints reset and kcompactd is woken', async () => {
    m = await createMachine({ nodes: [{ memory: '64MiB' }] });
    fragment(m, { fill: 0.98 });
    kd = attachKcompactd(m, { proactiveness: 0 });
    await kd.settled();
    m.trace.clear();
    const pfn = await kd.allocFolio({ order: 9, nid: 0 });
    expect(pfn).toBeGreaterThanOrEqual(0);
    await kd.settled();
    expect(texts(m, 'mm_compaction_wakeup_kcompactd')).toEqual(['nid=0 order=9 classzone_idx=Movable ']);
    expect(kd.stats().direct.runs).toBeGreaterThan(0);
    m.checkInvariants();
  });
});

describe("core's allocator and machine hooks", () => {
  it('a plain m.kernel.allocFolio that fails at order 9 wakes kcompactd; THP-style requests do not', async () => {
    m = await createMachine({ nodes: [{ memory: '64MiB' }] });
    const f = fragment(m, { fill: 0.98 });
    kd = attachKcompactd(m, { proactiveness: 0 });
    await kd.settled();
    m.trace.clear();
    // GFP_TRANSHUGE(_LIGHT) has no __GFP_KSWAPD_RECLAIM: nobody is woken.
    expect(m.kernel.allocFolio({ order: 9, nid: 0, kswapdReclaim: false })).toBe(-1);
    await kd.settled();
    expect(texts(m, 'mm_compaction_wakeup_kcompactd')).toEqual([]);
    expect(kd.stats().kcompactd.runs).toBe(0);
    // GFP_KERNEL-like: the failure wakes kswapd, whose sleep steps wake kcompactd for order 9.
    const ran = nextRun(kd, (r) => r.trigger === 'kcompactd');
    expect(m.kernel.allocFolio({ order: 9, nid: 0 })).toBe(-1);
    expect((await ran).order).toBe(9);
    await kd.settled();
    expect(texts(m, 'mm_compaction_wakeup_kcompactd')).toEqual(['nid=0 order=9 classzone_idx=Movable ']);
    const pfn = m.kernel.allocFolio({ order: 9, nid: 0 });
    expect(pfn).toBeGreaterThanOrEqual(0);
    m.kernel.folioPut(pfn);
    expect(verifyBytes(f)).toBeGreaterThan(0);
    m.checkInvariants();
  });

  it('machine.close() stops kcompactd before the machine goes', async () => {
    m = await createMachine({ nodes: [{ memory: '16MiB' }] });
    kd = attachKcompactd(m, { proactiveness: 20, checkIntervalMs: 20 });
    await kd.settled();
    await m.close();
    expect(kd.threads()[0]!.sleeping).toBe(false);
    await expect(kd.compactNode(0)).rejects.toThrow('kcompactd is stopped');
    await expect(kd.compactMemory()).rejects.toMatchObject({ code: 'ERR_KCOMPACTD_STOPPED' });
    await expect(kd.allocFolio({ order: 9, nid: 0 })).rejects.toMatchObject({
      code: 'ERR_KCOMPACTD_STOPPED',
    });
    expect(() => kd!.wakeup(0, 9)).toThrow(expect.objectContaining({ code: 'ERR_KCOMPACTD_STOPPED' }));
    expect(kd.errors).toEqual([]);
  });

  it('kd.wakeup refuses a bad node, order or zone index with EINVAL, and the thread still compacts', async () => {
    m = await createMachine({ nodes: [{ memory: '64MiB' }] });
    const f = fragment(m, { fill: 0.98 });
    kd = attachKcompactd(m, { proactiveness: 0 });
    await kd.settled();
    m.trace.clear();
    const bad: [unknown[], string][] = [
      [[0, 3.5], 'kd.wakeup: order 3.5 is not an integer in 0..10'],
      [[0, 11], 'kd.wakeup: order 11 is not an integer in 0..10'],
      [[0, -1], 'kd.wakeup: order -1 is not an integer in 0..10'],
      [[0, Number.NaN], 'kd.wakeup: order NaN is not an integer in 0..10'],
      [[0, '2'], 'kd.wakeup: order "2" is not an integer in 0..10'],
      [['0', 9], 'kd.wakeup: node "0" is not a node id'],
      [
        [1, 9],
        'kd.wakeup: node 1 has no kcompactd: no such node (kcompactd runs on the nodes with memory: 0)',
      ],
      [[0, 9, 4], 'kd.wakeup: highestZoneidx 4 is not a zone index 0..3'],
      [[0, 9, 1.5], 'kd.wakeup: highestZoneidx 1.5 is not a zone index 0..3'],
    ];
    for (const [args, message] of bad)
      expect(() => (kd!.wakeup as (...a: unknown[]) => boolean)(...args)).toThrow(
        expect.objectContaining({ errno: EINVAL, message: `EINVAL: ${message}` }),
      );
    // Nothing was recorded or traced, and the thread was not hurt: a good request still runs.
    expect(m.trace.events('compaction')).toEqual([]);
    expect(kd.threads()[0]).toMatchObject({ sleeping: true, maxOrder: 0 });
    const done = nextRun(kd, (r) => r.trigger === 'kcompactd');
    expect(kd.wakeup(0, 9)).toBe(true);
    expect(await done).toMatchObject({ order: 9, status: 'success' });
    await kd.settled();
    expect(kd.errors).toEqual([]);
    expect(verifyBytes(f)).toBeGreaterThan(0);
    // An allocation request names the field it lacks or gets wrong (`nid`, not `node`).
    await expect(kd.allocFolio({ order: 0 } as never)).rejects.toMatchObject({
      errno: EINVAL,
      message: 'EINVAL: allocation request: nid (the node to allocate on) is missing',
    });
    await expect(kd.allocFolio({ order: 0, node: 7 } as never)).rejects.toMatchObject({
      errno: EINVAL,
      message: expect.stringMatching(
        /^EINVAL: kd\.allocFolio: allocation request: unknown field "node"; known fields: order, nid,/,
      ),
    });
    await expect(kd.allocFolio({ order: 0, nid: 7 })).rejects.toMatchObject({
      message: 'EINVAL: allocation request: nid 7: no such node (nodes 0..0)',
    });
    // Options that are not an object are refused the same way.
    await kd.stop();
    for (const opts of [null, [], 'x', 5])
      expect(() => attachKcompactd(m!, opts as never)).toThrow(
        expect.objectContaining({ code: 'ERR_KCOMPACTD_OPTION', errno: EINVAL }),
      );
    m.checkInvariants();
  });
});
