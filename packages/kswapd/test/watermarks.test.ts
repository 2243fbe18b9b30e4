import { PAGE_SIZE } from '@pagemig/core';
import { afterEach, describe, expect, it } from 'vitest';
import { attachKswapd } from '../src/index.js';
import { nodesOf, pageBytes, tierMachine, traced, until, wmarks } from './helpers.js';

/*
 * When kswapd wakes and when it sleeps, as mm/vmscan.c and mm/page_alloc.c decide: an allocation
 * whose fast path (WMARK_LOW) fails wakes it (wakeup_kswapd), balance_pgdat reclaims until a zone
 * is above WMARK_HIGH (pgdat_balanced), and kswapd_try_to_sleep puts it back to sleep
 * (mm_vmscan_kswapd_sleep). The print formats quoted from include/trace/events/vmscan.h:
 *   mm_vmscan_kswapd_sleep   "nid=%d"
 *   mm_vmscan_kswapd_wake    "nid=%d order=%d"
 *   mm_vmscan_wakeup_kswapd  "nid=%d order=%d gfp_flags=%s"
 *   mm_vmscan_lru_shrink_inactive "nid=%d nr_scanned=%ld nr_reclaimed=%ld nr_dirty=%ld
 *     nr_writeback=%ld nr_congested=%ld nr_immediate=%ld nr_activate_anon=%d nr_activate_file=%d
 *     nr_ref_keep=%ld nr_unmap_fail=%ld priority=%d flags=%s"
 */

const cleanup: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (cleanup.length) await cleanup.pop()!();
});

describe('kswapd wake-up and sleep', () => {
  it('sleeps at attach, is not woken above low, is woken below low and balances the node to high', async () => {
    const m = await tierMachine();
    cleanup.push(() => m.close());
    const ks = attachKswapd(m, { demotion: true, napMs: 1 });
    await ks.settled();
    // kswapd0 and kswapd1 napped, found their nodes balanced and went to sleep.
    expect(traced(m, 'mm_vmscan_kswapd_sleep')).toEqual([
      { comm: 'kswapd0', text: 'nid=0' },
      { comm: 'kswapd1', text: 'nid=1' },
    ]);
    expect(ks.threadInfo().map((t) => [t.comm, t.state])).toEqual([
      ['kswapd0', 'sleeping'],
      ['kswapd1', 'sleeping'],
    ]);

    const w = wmarks(m, 0);
    expect(w.low).toBeLessThan(w.high);
    const p = m.spawn({ comm: 'filler', node: 0 });
    // Fault in pages bound to node 0 while every allocation leaves the zone above low.
    const above = m.freePages(0) - w.low - 8;
    const a = p.mmap(above * PAGE_SIZE, { node: 0, thp: 'never' });
    const bytesA = pageBytes(above, 1);
    p.write(a, bytesA);
    expect(m.freePages(0)).toBeGreaterThan(w.low);
    await ks.settled();
    expect(traced(m, 'mm_vmscan_wakeup_kswapd')).toEqual([]);
    expect(ks.stats().wakes).toBe(0);

    // Now below low (above min): the fast path fails, kswapd0 is woken.
    const below = m.freePages(0) - w.min - 8;
    const b = p.mmap(below * PAGE_SIZE, { node: 0, thp: 'never' });
    const bytesB = pageBytes(below, 2);
    p.write(b, bytesB);
    expect(m.freePages(0)).toBeLessThanOrEqual(w.low);
    await ks.settled();
    expect(traced(m, 'mm_vmscan_wakeup_kswapd')[0]?.text).toBe(
      'nid=0 order=0 gfp_flags=GFP_HIGHUSER_MOVABLE',
    );
    expect(traced(m, 'mm_vmscan_kswapd_wake')[0]).toEqual({ comm: 'kswapd0', text: 'nid=0 order=0' });
    // balance_pgdat went on until node 0 was above its high watermark, demoting to node 1.
    expect(m.freePages(0)).toBeGreaterThan(w.high);
    const s = ks.stats();
    expect(s.nodes[0]!.demoted).toBeGreaterThan(0);
    expect(s.nodes[0]!.demoted).toBe(m.vmstat().pgdemote_kswapd);
    expect(m.vmstat().pgdemote_direct).toBe(0);
    expect(s.nodes[0]!.reclaimed).toBe(m.vmstat().pgsteal_kswapd);
    expect(s.nodes[0]!.scanned).toBe(m.vmstat().pgscan_kswapd);
    expect(m.vmstat().pgscan_anon).toBe(m.vmstat().pgscan_kswapd);
    expect(m.vmstat().pageoutrun).toBe(s.nodes[0]!.balanceRuns);
    expect(s.reclaimFailed).toBeNull();
    // Every shrink_inactive_list pass printed the kernel's line.
    const shrink = traced(m, 'mm_vmscan_lru_shrink_inactive');
    expect(shrink.length).toBeGreaterThan(0);
    for (const r of shrink) {
      expect(r.comm).toBe('kswapd0');
      expect(r.text).toMatch(
        /^nid=0 nr_scanned=\d+ nr_reclaimed=\d+ nr_dirty=0 nr_writeback=0 nr_congested=0 nr_immediate=0 nr_activate_anon=\d+ nr_activate_file=0 nr_ref_keep=\d+ nr_unmap_fail=0 priority=\d+ flags=RECLAIM_WB_ANON\|RECLAIM_WB_ASYNC$/,
      );
    }
    const reclaimedByTrace = shrink.reduce((n, r) => n + Number(/nr_reclaimed=(\d+)/.exec(r.text)![1]), 0);
    expect(reclaimedByTrace).toBe(s.nodes[0]!.reclaimed);
    // The demoted pages moved to node 1 with their bytes; none is lost.
    const onNode1 = [...nodesOf(p, a, above), ...nodesOf(p, b, below)].filter((n) => n === 1).length;
    expect(onNode1).toBe(s.nodes[0]!.demoted);
    expect(Buffer.compare(p.read(a, above * PAGE_SIZE), bytesA)).toBe(0);
    expect(Buffer.compare(p.read(b, below * PAGE_SIZE), bytesB)).toBe(0);
    // Asleep again after the run.
    expect(traced(m, 'mm_vmscan_kswapd_sleep').at(-1)).toEqual({ comm: 'kswapd0', text: 'nid=0' });
    expect(ks.threadInfo()[0]!.state).toBe('sleeping');
    m.checkInvariants();

    // Woken again by the next dip below low.
    const wakes = ks.stats().wakes;
    const more = m.freePages(0) - w.min - 8;
    const c = p.mmap(more * PAGE_SIZE, { node: 0, thp: 'never' });
    p.write(c, pageBytes(more, 3));
    await ks.settled();
    expect(ks.stats().wakes).toBeGreaterThan(wakes);
    expect(m.freePages(0)).toBeGreaterThan(w.high);
    expect(Buffer.compare(p.read(c, more * PAGE_SIZE), pageBytes(more, 3))).toBe(0);
    expect(Buffer.compare(p.read(a, above * PAGE_SIZE), bytesA)).toBe(0);
    m.checkInvariants();
  });

  it('stops in the middle of a balance run: waits for it, leaves nothing isolated, loses nothing', async () => {
    const m = await tierMachine();
    cleanup.push(() => m.close());
    const ks = attachKswapd(m, { demotion: true, napMs: 1 });
    await ks.settled();
    const p = m.spawn({ comm: 'filler', node: 0 });
    const n = m.freePages(0) - wmarks(m, 0).min - 8;
    const a = p.mmap(n * PAGE_SIZE, { node: 0, thp: 'never' });
    const bytes = pageBytes(n, 5);
    // Stop kswapd0 as its first demotion starts (a migration is in flight, folios are isolated).
    let stopped: Promise<void> | undefined;
    let isolated = 0;
    let state = '';
    m.trace.on('mm_migrate_pages_start', () => {
      if (stopped) return;
      isolated = m.vmstat().nr_isolated_anon;
      state = ks.threadInfo()[0]!.state;
      stopped = ks.stop();
    });
    p.write(a, bytes);
    await until(() => stopped !== undefined, 10_000, 'kswapd0 to demote');
    await stopped;
    expect(state).toBe('running');
    expect(isolated).toBeGreaterThan(0);
    expect(ks.threadInfo().map((t) => t.state)).toEqual(['stopped', 'stopped']);
    expect(m.vmstat().nr_isolated_anon).toBe(0);
    const demoted = m.vmstat().pgdemote_kswapd;
    expect(nodesOf(p, a, n).filter((x) => x === 1).length).toBe(demoted);
    // Nothing runs after stop(): more pressure wakes no kswapd.
    const b = p.mmap(8 * PAGE_SIZE, { node: 0, thp: 'never' });
    p.write(b, pageBytes(8, 6));
    await new Promise((r) => setTimeout(r, 20));
    expect(m.vmstat().pgdemote_kswapd).toBe(demoted);
    expect(Buffer.compare(p.read(a, n * PAGE_SIZE), bytes)).toBe(0);
    m.checkInvariants();
  });

  it('balances to the promo watermark under NUMA_BALANCING_MEMORY_TIERING', async () => {
    const m = await tierMachine();
    cleanup.push(() => m.close());
    expect(m.sysctl.write('kernel.numa_balancing', '2')).toBe(0);
    const ks = attachKswapd(m, { demotion: true, napMs: 1 });
    const w = wmarks(m, 0);
    const p = m.spawn({ comm: 'filler', node: 0 });
    const n = m.freePages(0) - w.min - 8;
    const a = p.mmap(n * PAGE_SIZE, { node: 0, thp: 'never' });
    p.write(a, pageBytes(n, 4));
    await ks.settled();
    expect(m.freePages(0)).toBeGreaterThan(w.promo);
    expect(Buffer.compare(p.read(a, n * PAGE_SIZE), pageBytes(n, 4))).toBe(0);
    m.checkInvariants();
  });
});
