import { type AccessResult, PAGE_SIZE, verifyAccess } from '@pagemig/core';
import { DEMOTION_ENABLED_PATH } from '@pagemig/core/internal';
import { afterEach, describe, expect, it } from 'vitest';
import { attachKswapd, MAX_RECLAIM_RETRIES, VMSCAN_TRACE_EVENTS } from '../src/index.js';
import { nodesOf, pageBytes, tierMachine, traced, wmarks } from './helpers.js';

/*
 * include/trace/events/vmscan.h:
 *   mm_vmscan_direct_reclaim_begin "order=%d gfp_flags=%s"
 *   mm_vmscan_direct_reclaim_end   "nr_reclaimed=%lu"
 */

const cleanup: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (cleanup.length) await cleanup.pop()!();
});

describe('reclaim that cannot demote', () => {
  it('fails with the reason, gives up after MAX_RECLAIM_RETRIES runs and sleeps; nothing is lost', async () => {
    const m = await tierMachine();
    cleanup.push(() => m.close());
    // demotion_enabled is false at boot: anon memory cannot be reclaimed (no swap).
    const ks = attachKswapd(m, { napMs: 1 });
    expect(ks.knobs().demotionEnabled).toBe(false);
    await ks.settled();
    const p = m.spawn({ comm: 'filler', node: 0 });
    const n = m.freePages(0) - wmarks(m, 0).min - 16;
    const a = p.mmap(n * PAGE_SIZE, { node: 0, thp: 'never' });
    const bytes = pageBytes(n, 11);
    p.write(a, bytes);
    await ks.settled();
    const s0 = ks.stats().nodes[0]!;
    // balance_pgdat ran until kswapd_failures reached MAX_RECLAIM_RETRIES, then kswapd slept.
    expect(s0.failedRuns).toBe(MAX_RECLAIM_RETRIES);
    expect(s0.wakes).toBe(MAX_RECLAIM_RETRIES);
    expect(s0.kswapdFailures).toBe(MAX_RECLAIM_RETRIES);
    expect(s0.scanned).toBe(0);
    expect(s0.demoted).toBe(0);
    expect(s0.reclaimFailed).toBe(
      'demotion is disabled (/sys/kernel/mm/numa/demotion_enabled is false) and there is no swap device',
    );
    expect(ks.stats().reclaimFailed).toBe(s0.reclaimFailed);
    expect(m.vmstat().kswapd_high_wmark_hit_quickly).toBe(MAX_RECLAIM_RETRIES - 1);
    expect(ks.threadInfo()[0]!.state).toBe('sleeping');
    // A hopeless node is not woken again by allocations below low.
    const b = p.mmap(4 * PAGE_SIZE, { node: 0, thp: 'never' });
    p.write(b, pageBytes(4, 12));
    await ks.settled();
    expect(ks.stats().nodes[0]!.wakes).toBe(MAX_RECLAIM_RETRIES);
    expect(nodesOf(p, a, n).every((x) => x === 0)).toBe(true);
    expect(Buffer.compare(p.read(a, n * PAGE_SIZE), bytes)).toBe(0);
    m.checkInvariants();
  });

  it('says so for the lowest tier, which has no demotion target even with demotion on', async () => {
    const m = await tierMachine(8, 8);
    cleanup.push(() => m.close());
    const ks = attachKswapd(m, { demotion: true, napMs: 1 });
    const p = m.spawn({ comm: 'filler', node: 0 });
    const n = m.freePages(1) - wmarks(m, 1).min - 16;
    const a = p.mmap(n * PAGE_SIZE, { node: 1, thp: 'never' });
    p.write(a, pageBytes(n, 13));
    await ks.settled();
    const s1 = ks.stats().nodes[1]!;
    expect(s1.reclaimFailed).toBe('no demotion target for node 1 (lowest memory tier) and no swap device');
    expect(s1.failedRuns).toBe(MAX_RECLAIM_RETRIES);
    expect(s1.demoted).toBe(0);
    expect(ks.stats().nodes[0]!.wakes).toBe(0);
    expect(Buffer.compare(p.read(a, n * PAGE_SIZE), pageBytes(n, 13))).toBe(0);
    m.checkInvariants();
  });
});

describe('direct reclaim', () => {
  it('lets a user thread fault on a full DRAM node after demoting for it, and revives kswapd', async () => {
    const m = await tierMachine();
    cleanup.push(() => m.close());
    const ks = attachKswapd(m, { napMs: 1 });
    // Attaching defines the vmscan events; the run below emits no event that is not defined.
    const available = m.trace.availableEvents();
    expect(available.filter((e) => e.startsWith('vmscan:'))).toEqual(
      VMSCAN_TRACE_EVENTS.map((e) => `vmscan:${e}`).sort(),
    );
    const p = m.spawn({ comm: 'app', node: 0 });
    const n = m.freePages(0) - wmarks(m, 0).min - 8;
    const a = p.mmap(n * PAGE_SIZE, { node: 0, thp: 'never' });
    const bytes = pageBytes(n, 21);
    p.write(a, bytes);
    // Without demotion kswapd0 fails and gives up on the node.
    await ks.settled();
    expect(ks.stats().nodes[0]!.kswapdFailures).toBe(MAX_RECLAIM_RETRIES);
    // Demotion on: the dormant kswapd is not woken, so only direct reclaim can make room.
    expect(m.sysfs.write(DEMOTION_ENABLED_PATH, '1')).toBe(0);
    expect(ks.knobs().demotionEnabled).toBe(true);

    const pages = 64;
    const r0 = p.mmap(pages * PAGE_SIZE, { node: 0, thp: 'never' });
    const workload = {
      kind: 'access' as const,
      addr: r0,
      bytes: pages * PAGE_SIZE,
      pattern: 'scan' as const,
      writeShare: 1,
      ops: pages,
    };
    const t = p.spawnThread<AccessResult>({ workload, node: 0 });
    const r = await t.join();
    expect(r.errors, JSON.stringify(r.firstErrors)).toBe(0);
    expect(r.ops).toBe(pages);
    // Every page of the thread's region is on node 0: its faults were served after reclaim.
    expect(nodesOf(p, r0, pages)).toEqual(new Array(pages).fill(0));
    expect(verifyAccess((x, k) => p.read(x, k), workload, [r]).mismatches).toBe(0);
    const v = m.vmstat();
    expect(v.pgdemote_direct).toBeGreaterThan(0);
    expect(v.pgsteal_direct).toBe(v.pgdemote_direct);
    expect(v.allocstall_movable).toBeGreaterThan(0);
    expect(v.pgscan_direct).toBeGreaterThanOrEqual(v.pgsteal_direct);
    const s = ks.stats();
    expect(s.nodes[0]!.directReclaims).toBeGreaterThan(0);
    expect(s.nodes[0]!.kswapdFailures).toBe(0);
    expect(traced(m, 'mm_vmscan_direct_reclaim_begin')[0]?.text).toBe(
      'order=0 gfp_flags=GFP_HIGHUSER_MOVABLE',
    );
    const ends = traced(m, 'mm_vmscan_direct_reclaim_end').map((e) => e.text);
    expect(ends.length).toBe(traced(m, 'mm_vmscan_direct_reclaim_begin').length);
    const sum = ends.reduce((x, e) => x + Number(/^nr_reclaimed=(\d+)$/.exec(e)![1]), 0);
    expect(sum).toBe(v.pgsteal_direct);
    // The demoted pages are the filler's, on node 1 with their bytes.
    expect(nodesOf(p, a, n).filter((x) => x === 1).length).toBe(v.pgdemote_direct + v.pgdemote_kswapd);
    expect(Buffer.compare(p.read(a, n * PAGE_SIZE), bytes)).toBe(0);
    await ks.settled();
    m.checkInvariants();
    expect(new Set(m.trace.events('vmscan').map((r) => r.event)).size).toBeGreaterThan(3);
    expect(m.trace.availableEvents()).toEqual(available);
  });

  it('does nothing once stopped: the fault fails as without reclaim, nothing stays isolated', async () => {
    const m = await tierMachine();
    cleanup.push(() => m.close());
    const ks = attachKswapd(m, { demotion: true, napMs: 1 });
    await ks.stop();
    const p = m.spawn({ comm: 'app', node: 0 });
    const n = m.freePages(0) - wmarks(m, 0).min;
    const a = p.mmap(n * PAGE_SIZE, { node: 0, thp: 'never' });
    p.write(a, pageBytes(n, 31));
    const before = m.vmstat();
    const pages = 8;
    const r0 = p.mmap(pages * PAGE_SIZE, { node: 0, thp: 'never' });
    const t = p.spawnThread<AccessResult>({
      workload: {
        kind: 'access',
        addr: r0,
        bytes: pages * PAGE_SIZE,
        pattern: 'scan',
        writeShare: 1,
        ops: pages,
      },
      node: 0,
    });
    await expect(t.join()).rejects.toThrow();
    const after = m.vmstat();
    expect(after.pgdemote_direct).toBe(before.pgdemote_direct);
    expect(after.allocstall_movable).toBe(before.allocstall_movable);
    expect(traced(m, 'mm_vmscan_wakeup_kswapd')).toEqual([]);
    expect(after.nr_isolated_anon).toBe(0);
    expect(Buffer.compare(p.read(a, n * PAGE_SIZE), pageBytes(n, 31))).toBe(0);
    m.checkInvariants();
  });
});
