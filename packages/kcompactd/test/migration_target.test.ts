import { createMachine, type Machine, MPOL_MF_MOVE, PAGE_SIZE, type Process } from '@pagemig/core';
import { afterEach, describe, expect, it } from 'vitest';
import { attachKcompactd, type Kcompactd } from '../src/index.js';
import { compactCounters, delta, fragment, verifyBytes } from './helpers.js';

/**
 * Issue 17, item 3: alloc_migration_target() asks for a large folio's destination with
 * GFP_TRANSHUGE | __GFP_THISNODE (move_pages' do_move_pages_to_node), which allows direct reclaim
 * and therefore direct compaction: __alloc_pages_slowpath compacts a costly order at
 * COMPACT_PRIO_ASYNC first and, with no reclaim progress and no __GFP_NORETRY, once more at
 * COMPACT_PRIO_SYNC_LIGHT before it gives up; only then does migrate_pages_batch split the THP.
 * Direct compaction is @pagemig/kcompactd's directCompact hook: without it nothing compacts.
 */

const PG = PAGE_SIZE;
const THP = 2 << 20;

let m: Machine | undefined;
let kd: Kcompactd | undefined;
afterEach(async () => {
  await kd?.stop();
  m?.checkInvariants();
  await m?.close();
  kd = undefined;
  m = undefined;
});

const COUNTERS = [
  ...compactCounters,
  'thp_migration_success',
  'thp_migration_fail',
  'thp_migration_split',
  'thp_split_page',
] as const;

/** Node 1 fragmented (free memory, no free 2 MiB block); a process with a THP on node 0. */
async function fragmentedTarget() {
  const mach = await createMachine({ nodes: [{ memory: '32MiB' }, { memory: '32MiB' }], prefault: false });
  m = mach;
  const f = fragment(mach, { nid: 1, fill: 0.98 });
  const zone = mach.kernel.nodes[1]!.zones[0]!;
  for (let o = 9; o <= 10; o++) expect(mach.kernel.nrFreeBlocks(zone, o)).toBe(0);
  expect(mach.freePages(1)).toBeGreaterThan(1024);
  const p: Process = mach.spawn({ node: 0 });
  const a = p.mmap(THP, { thp: 'always', node: 0 });
  const data = new Uint8Array(THP);
  for (let i = 0; i < THP; i += PG) data.fill(((i / PG) % 251) | 1, i, i + PG);
  p.write(a, data);
  expect(p.pageInfo(a)).toMatchObject({ node: 0, order: 9, huge: true });
  return { mach, f, p, a, data };
}

const texts = (mach: Machine, event: string) => mach.trace.events(event).map((e) => e.text);
const counters = (mach: Machine) => mach.vmstat() as Record<string, number>;
const same = (a: Uint8Array, b: Uint8Array) => Buffer.compare(Buffer.from(a), Buffer.from(b)) === 0;

describe('THP migration target on a fragmented node (alloc_migration_target)', () => {
  it('with kcompactd attached: direct compaction makes the 2 MiB block, the THP moves whole', async () => {
    const { mach, f, p, a, data } = await fragmentedTarget();
    kd = attachKcompactd(mach, { proactiveness: 0 });
    await kd.settled();
    const before = counters(mach);
    mach.trace.clear();
    const r = await p.movePages(0, [a], [1], MPOL_MF_MOVE);
    expect(r).toEqual({ ret: 0, status: [1] });
    expect(delta(mach, before, COUNTERS as never)).toMatchObject({
      compact_stall: 1,
      compact_success: 1,
      compact_fail: 0,
      thp_migration_success: 1,
      thp_migration_fail: 0,
      thp_migration_split: 0,
      thp_split_page: 0,
      pgmigrate_fail: 0,
    });
    // One attempt, async (COMPACT_PRIO_ASYNC = 2), with the migration target's gfp mask.
    expect(texts(mach, 'mm_compaction_try_to_compact_pages')).toEqual([
      'order=9 gfp_mask=GFP_TRANSHUGE|__GFP_THISNODE priority=2',
    ]);
    expect(texts(mach, 'mm_compaction_begin')[0]).toMatch(/, mode=async$/);
    expect(texts(mach, 'mm_compaction_end')[0]).toMatch(/status=success$/);
    // The THP's mm_migrate_pages is the last one (compaction's own runs come first).
    expect(texts(mach, 'mm_migrate_pages').at(-1)).toBe(
      'nr_succeeded=512 nr_failed=0 nr_thp_succeeded=1 nr_thp_failed=0 nr_thp_split=0 nr_split=0 mode=MIGRATE_SYNC reason=syscall_or_cpuset',
    );
    expect(p.pageInfo(a)).toMatchObject({ node: 1, order: 9, huge: true });
    expect(same(p.read(a, THP), data)).toBe(true);
    expect(verifyBytes(f)).toBeGreaterThan(0);
    expect(kd.stats().direct.runs).toBe(1);
  });

  it('without kcompactd: no compaction, the THP is split at once and its pages move', async () => {
    const { mach, f, p, a, data } = await fragmentedTarget();
    const before = counters(mach);
    mach.trace.clear();
    const r = await p.movePages(0, [a], [1], MPOL_MF_MOVE);
    expect(r).toEqual({ ret: 0, status: [1] });
    expect(delta(mach, before, COUNTERS as never)).toMatchObject({
      compact_stall: 0,
      compact_success: 0,
      compact_fail: 0,
      thp_migration_success: 0,
      thp_migration_fail: 1,
      thp_migration_split: 1,
      thp_split_page: 1,
      pgmigrate_success: 512,
    });
    expect(texts(mach, 'mm_compaction_try_to_compact_pages')).toEqual([]);
    expect(p.pageInfo(a)).toMatchObject({ node: 1, order: 0, huge: false });
    expect(same(p.read(a, THP), data)).toBe(true);
    expect(verifyBytes(f)).toBeGreaterThan(0);
  });

  it('compaction that cannot help: async then sync-light, both fail, then the split', async () => {
    const mach = await createMachine({
      nodes: [{ memory: '32MiB' }, { memory: '32MiB' }],
      prefault: false,
      sysctl: { 'vm.compact_unevictable_allowed': 0 },
    });
    m = mach;
    // Node 1 full of mlocked 64 KiB chunks, every other chunk freed: compaction may not move them.
    const f = fragment(mach, { nid: 1, fill: 0.96, mlock: true });
    const p = mach.spawn({ node: 0 });
    const a = p.mmap(THP, { thp: 'always', node: 0 });
    p.write(a, new Uint8Array(THP).fill(7));
    kd = attachKcompactd(mach, { proactiveness: 0 });
    await kd.settled();
    const before = counters(mach);
    mach.trace.clear();
    const r = await p.movePages(0, [a], [1], MPOL_MF_MOVE);
    expect(r).toEqual({ ret: 0, status: [1] });
    expect(delta(mach, before, COUNTERS as never)).toMatchObject({
      compact_stall: 2,
      compact_success: 0,
      compact_fail: 2,
      thp_migration_split: 1,
      thp_migration_fail: 1,
    });
    expect(texts(mach, 'mm_compaction_try_to_compact_pages')).toEqual([
      'order=9 gfp_mask=GFP_TRANSHUGE|__GFP_THISNODE priority=2',
      'order=9 gfp_mask=GFP_TRANSHUGE|__GFP_THISNODE priority=1',
    ]);
    expect(same(p.read(a, THP), new Uint8Array(THP).fill(7))).toBe(true);
    expect(verifyBytes(f)).toBeGreaterThan(0);
  });

  it('NUMA hinting migration (GFP_TRANSHUGE_LIGHT) does not compact, nor split', async () => {
    const { mach, p, a, data } = await fragmentedTarget();
    kd = attachKcompactd(mach, { proactiveness: 0 });
    await kd.settled();
    const before = counters(mach);
    const r = await mach.migrateFolios([p.pageInfo(a)!.pfn], {
      node: 1,
      mode: 'MIGRATE_ASYNC',
      reason: 'numa_misplaced',
    });
    expect(r).toMatchObject({ ret: -12, nrThpFailed: 1, nrThpSplit: 0 });
    expect(delta(mach, before, COUNTERS as never)).toMatchObject({
      compact_stall: 0,
      thp_migration_fail: 1,
      thp_migration_split: 0,
    });
    expect(p.pageInfo(a)).toMatchObject({ node: 0, order: 9 });
    expect(same(p.read(a, THP), data)).toBe(true);
  });
});

describe('kcompactd on a machine with a memory-less node', () => {
  it('no kcompactd thread for it; compact_memory and direct compaction skip it', async () => {
    const mach = await createMachine({
      nodes: [{ memory: '32MiB' }, { memory: 0 }, { memory: '32MiB' }],
      prefault: false,
    });
    m = mach;
    const f = fragment(mach, { nid: 2, fill: 0.98 });
    kd = attachKcompactd(mach, { proactiveness: 0 });
    expect(kd.threads().map((t) => t.comm)).toEqual(['kcompactd0', 'kcompactd2']);
    const runs = await kd.compactMemory();
    expect(runs.map((r) => r.nid)).toEqual([0, 2]);
    // A THP allocation for a task on the memory-less node falls back to node 0 (its zonelist).
    const got = await kd.allocFolioDetailed({ order: 9, nid: 1 });
    expect(got.pfn).toBeGreaterThanOrEqual(0);
    expect(mach.kernel.nodeOf(got.pfn)).toBe(0);
    mach.kernel.folioPut(got.pfn);
    // __GFP_THISNODE on the memory-less node: no zone to allocate from or compact.
    const none = await kd.allocFolioDetailed({ order: 9, nid: 1, thisNode: true });
    expect(none).toEqual({ pfn: -1, attempts: expect.any(Array) });
    expect(none.attempts.every((at) => at.zones.length === 0)).toBe(true);
    expect(verifyBytes(f)).toBeGreaterThan(0);
  });
});
