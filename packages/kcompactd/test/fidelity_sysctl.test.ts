/**
 * Issue 17, items 4 and 9. Writing vm.compact_memory runs compact_nodes() inside the write
 * (sysctl_compaction_handler, mm/compaction.c): selftests/mm/compaction_test.c writes it and then
 * reads /proc/vmstat and the free lists, which must show the compaction. And what compaction does
 * is traced as the task that asked for it: the writer of the sysctl, the allocating task in
 * direct compaction (__alloc_pages_direct_compact runs in the allocator's context), the writer of
 * vm.compaction_proactiveness for the kcompactd wake-up (compaction_proactiveness_sysctl_handler).
 */
import {
  createMachine,
  EACCES,
  EINVAL,
  ENOENT,
  type Machine,
  PagemigError,
  type TraceRecord,
} from '@pagemig/core';
import { afterEach, describe, expect, it } from 'vitest';
import { attachKcompactd, type CompactRun, type Kcompactd } from '../src/index.js';
import { compactCounters, delta, fragment, verifyBytes } from './helpers.js';

let m: Machine | undefined;
let kd: Kcompactd | undefined;
afterEach(async () => {
  await kd?.stop();
  await m?.close();
  kd = undefined;
  m = undefined;
});

/** Free blocks of order 9 and up on node 0's Normal zone, read back from /proc/buddyinfo. */
function hugeBlocks(mach: Machine): number {
  const line = mach.procfs.buddyinfo().split('\n')[0]!;
  const cols = line.trim().split(/\s+/).slice(4).map(Number);
  return cols[9]! + 2 * cols[10]!;
}

/** Every event between two marks that the kcompactd threads did not emit themselves. */
function notKcompactd(events: readonly TraceRecord[]): TraceRecord[] {
  return events.filter((e) => !e.comm.startsWith('kcompactd'));
}

describe('vm.compact_memory: the write returns once every node is compacted', () => {
  it('a /proc/vmstat and buddyinfo read right after the awaited write see the compaction', async () => {
    m = await createMachine({ nodes: [{ memory: '32MiB' }] });
    const f = fragment(m, { fill: 0.95 });
    kd = attachKcompactd(m, { proactiveness: 0 });
    await kd.settled();
    const runs: CompactRun[] = [];
    kd.onRun((r) => runs.push(r));
    const before = m.vmstat() as Record<string, number>;
    const blocksBefore = hugeBlocks(m);
    expect(await m.sysctl.writeAsync('vm.compact_memory', '1')).toBe(0);
    // No settled() in between: the write itself waited for compact_nodes().
    expect(runs.map((r) => [r.nid, r.trigger, r.mode, r.status])).toEqual([
      [0, 'manual', 'MIGRATE_SYNC', 'complete'],
    ]);
    const d = delta(m, before, compactCounters);
    expect(d.pgmigrate_success).toBe(runs[0]!.pagesMigrated);
    expect(d.pgmigrate_success).toBeGreaterThan(0);
    expect(d.compact_migrate_scanned).toBe(runs[0]!.migrateScanned);
    expect(m.procfs.vmstat()).toContain(
      `\ncompact_migrate_scanned ${before.compact_migrate_scanned! + d.compact_migrate_scanned}\n`,
    );
    expect(hugeBlocks(m)).toBeGreaterThan(blocksBefore);
    expect(kd.isSettled()).toBe(true);
    expect(verifyBytes(f)).toBeGreaterThan(0);
    m.checkInvariants();
  });

  it('a plain write() of it is refused before anything runs, pointing at writeAsync', async () => {
    m = await createMachine({ nodes: [{ memory: '32MiB' }] });
    fragment(m, { fill: 0.95 });
    kd = attachKcompactd(m, { proactiveness: 0 });
    await kd.settled();
    const before = m.vmstat() as Record<string, number>;
    let err: unknown;
    try {
      m.sysctl.write('vm.compact_memory', '1');
    } catch (e) {
      err = e;
    }
    expect(PagemigError.isInstance(err)).toBe(true);
    expect(err).toMatchObject({ code: 'ERR_SYSCTL_ASYNC' });
    expect((err as Error).message).toContain(`await m.sysctl.writeAsync("vm.compact_memory", "1")`);
    expect(kd.isSettled()).toBe(true);
    expect(delta(m, before, compactCounters).compact_migrate_scanned).toBe(0);
    expect(kd.stats().manual.runs).toBe(0);
  });

  it('writeAsync takes every knob with write()’s errno values; a non-root writer gets EACCES', async () => {
    m = await createMachine({ nodes: [{ memory: '32MiB' }] });
    expect(await m.sysctl.writeAsync('vm.compact_memory', '1')).toBe(ENOENT);
    expect(await m.sysctl.writeAsync('vm.no_such_knob', '1')).toBe(ENOENT);
    expect(await m.sysctl.writeAsync('vm.extfrag_threshold', '400')).toBe(0);
    expect(m.sysctl.read('vm.extfrag_threshold')).toBe('400\n');
    expect(await m.sysctl.writeAsync('vm.extfrag_threshold', '1001')).toBe(EINVAL);
    kd = attachKcompactd(m, { proactiveness: 0 });
    const user = m.spawn({ uid: 1000, capabilities: ['CAP_SYS_ADMIN'] });
    const root = m.spawn({ uid: 0, comm: 'sh' });
    // proc_sys_permission: root's files (0644, compact_memory 0200) take writes from uid 0 only.
    expect(await m.sysctl.writeAsync('vm.compact_memory', '1', { task: user })).toBe(EACCES);
    expect(m.sysctl.write('vm.extfrag_threshold', '300', { task: user })).toBe(EACCES);
    expect(m.sysctl.read('vm.extfrag_threshold')).toBe('400\n');
    expect(kd.stats().manual.runs).toBe(0);
    expect(m.sysctl.write('vm.extfrag_threshold', '300', { task: root })).toBe(0);
    expect(await m.sysctl.writeAsync('vm.compact_memory', '1', { task: root })).toBe(0);
    expect(kd.stats().manual.runs).toBe(1);
    await expect(
      m.sysctl.writeAsync('vm.compact_memory', '1', { task: 'sh' as never }),
    ).rejects.toMatchObject({
      code: 'EINVAL',
    });
    await kd.stop();
    await m.close();
    await expect(m.sysctl.writeAsync('vm.extfrag_threshold', '500')).rejects.toMatchObject({
      code: 'ERR_MACHINE_CLOSED',
    });
  });
});

describe('compaction is traced as the task that asked for it', () => {
  it('a vm.compact_memory write by a process: its compaction and migration events are that process’s', async () => {
    m = await createMachine({ nodes: [{ memory: '32MiB' }] });
    const f = fragment(m, { fill: 0.95 });
    kd = attachKcompactd(m, { proactiveness: 0 });
    await kd.settled();
    const sh = m.spawn({ uid: 0, comm: 'sh' });
    m.trace.clear();
    expect(await m.sysctl.writeAsync('vm.compact_memory', '1', { task: sh })).toBe(0);
    const events = notKcompactd(m.trace.events());
    expect(events.map((e) => e.event)).toEqual(
      expect.arrayContaining(['mm_compaction_begin', 'mm_migrate_pages', 'mm_compaction_end']),
    );
    expect(events.every((e) => e.pid === sh.pid && e.comm === 'sh')).toBe(true);
    expect(m.trace.lines('mm_compaction_end')[0]).toMatch(new RegExp(`^ +sh-${sh.pid} +\\[000\\] `));
    expect(verifyBytes(f)).toBeGreaterThan(0);
  });

  it('direct compaction runs as the allocating task, and its allocation counts local to its node', async () => {
    m = await createMachine({ nodes: [{ memory: '32MiB' }, { memory: '32MiB' }] });
    const f = fragment(m, { nid: 0, fill: 0.98 });
    kd = attachKcompactd(m, { proactiveness: 0 });
    await kd.settled();
    const p = m.spawn({ comm: 'thp_user', node: 1 });
    m.trace.clear();
    const before = m.vmstat();
    const r = await kd.allocFolioDetailed({ order: 9, nid: 0, thisNode: true }, { task: p });
    expect(r.attempts.length).toBeGreaterThan(0);
    expect(r.pfn).toBeGreaterThanOrEqual(0);
    const events = notKcompactd(m.trace.events());
    expect(events.map((e) => e.event)).toEqual(
      expect.arrayContaining([
        'mm_compaction_try_to_compact_pages',
        'mm_compaction_begin',
        'mm_migrate_pages',
      ]),
    );
    expect(events.every((e) => e.pid === p.pid && e.comm === 'thp_user')).toBe(true);
    // The folio is on node 0, the task on node 1: numa_other, not numa_local.
    const after = m.vmstat();
    expect(after.numa_other - before.numa_other).toBe(1);
    expect(after.numa_local - before.numa_local).toBe(0);
    m.kernel.folioPut(r.pfn);
    expect(verifyBytes(f)).toBeGreaterThan(0);
    await expect(kd.allocFolio({ order: 9, nid: 0 }, { task: 42 as never })).rejects.toMatchObject({
      code: 'EINVAL',
    });
  });

  it('the kcompactd wake-up of a vm.compaction_proactiveness write is the writer’s', async () => {
    m = await createMachine({ nodes: [{ memory: '32MiB' }] });
    kd = attachKcompactd(m, { proactiveness: 0 });
    await kd.settled();
    const sh = m.spawn({ uid: 0, comm: 'sh' });
    m.trace.clear();
    expect(m.sysctl.write('vm.compaction_proactiveness', '20', { task: sh })).toBe(0);
    expect(m.trace.events('mm_compaction_wakeup_kcompactd')).toMatchObject([
      { pid: sh.pid, comm: 'sh', text: 'nid=0 order=-1 classzone_idx=Normal  ' },
    ]);
  });
});
