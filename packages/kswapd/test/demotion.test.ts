import { type AccessResult, type Machine, PAGE_SIZE, type Process, verifyAccess } from '@pagemig/core';
import { folioLru, LRU_ACTIVE_ANON, LRU_INACTIVE_ANON, lruSize } from '@pagemig/core/internal';
import { afterEach, describe, expect, it } from 'vitest';
import { attachKswapd } from '../src/index.js';
import { nodesOf, pageBytes, tierMachine, traced, until, wmarks } from './helpers.js';

/*
 * include/trace/events/vmscan.h:
 *   mm_vmscan_lru_shrink_active "nid=%d nr_taken=%ld nr_active=%ld nr_deactivated=%ld
 *     nr_referenced=%ld priority=%d flags=%s"
 */

const cleanup: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (cleanup.length) await cleanup.pop()!();
});

/** The LRU list of the folio mapped at `a` in `p`. */
const lruOf = (p: Process, m: Machine, a: number) => folioLru(m.kernel, p.pageInfo(a)!.headPfn);

describe('what kswapd demotes', () => {
  it('demotes inactive cold pages oldest first, activates a page young in two mappings, leaves active pages', async () => {
    const m = await tierMachine();
    cleanup.push(() => m.close());
    const ks = attachKswapd(m, { demotion: true, napMs: 1 });
    const p = m.spawn({ comm: 'app', node: 0 });
    // A shared region mapped by two processes and touched in both: folio_referenced finds two
    // young mappings, so folio_check_references activates it at the first scan. It is the oldest
    // memory on the node.
    const hot = 96;
    const h = p.mmap(hot * PAGE_SIZE, { node: 0, thp: 'never', shared: true });
    const hotBytes = pageBytes(hot, 6);
    p.write(h, hotBytes);
    const child = p.fork();
    child.touch(h, hot * PAGE_SIZE, 'read');
    // Cold pages, written once, take node 0 below its low watermark.
    const w = wmarks(m, 0);
    const cold = m.freePages(0) - w.min - 16;
    const c = p.mmap(cold * PAGE_SIZE, { node: 0, thp: 'never' });
    const coldBytes = pageBytes(cold, 7);
    p.write(c, coldBytes);
    await ks.settled();

    const demoted = ks.stats().nodes[0]!.demoted;
    expect(demoted).toBeGreaterThan(0);
    expect(m.freePages(0)).toBeGreaterThan(w.high);
    expect(nodesOf(p, h, hot)).toEqual(new Array(hot).fill(0));
    for (let i = 0; i < hot; i++) expect(lruOf(p, m, h + i * PAGE_SIZE)).toBe(LRU_ACTIVE_ANON);
    expect(m.vmstat().pgactivate).toBe(hot);
    // The cold pages left in LRU order: exactly the oldest `demoted` of them, in address order,
    // each seen twice (kept once with PG_referenced, reclaimed at its next scan).
    expect(nodesOf(p, c, cold)).toEqual([
      ...new Array(demoted).fill(1),
      ...new Array(cold - demoted).fill(0),
    ]);
    expect(lruOf(p, m, c)).toBe(LRU_INACTIVE_ANON);
    // The demotions went through the engine as MR_DEMOTION, MIGRATE_ASYNC.
    const runs = traced(m, 'mm_migrate_pages');
    expect(runs.length).toBeGreaterThan(0);
    for (const run of runs) expect(run.text).toMatch(/ mode=MIGRATE_ASYNC reason=demotion$/);
    expect(ks.stats().demotion.pagesDemoted).toBe(demoted);
    m.checkInvariants();

    // The shared pages are idle now, yet on the active list: the next reclaim takes inactive pages
    // first (the rest of the cold pages in order, then the new ones) and leaves the active list
    // alone while the inactive list is not low.
    const more = m.freePages(0) - w.min - 16;
    const d = p.mmap(more * PAGE_SIZE, { node: 0, thp: 'never' });
    const moreBytes = pageBytes(more, 8);
    p.write(d, moreBytes);
    await ks.settled();
    const total = ks.stats().nodes[0]!.demoted;
    expect(total).toBeGreaterThan(demoted);
    expect(m.freePages(0)).toBeGreaterThan(w.high);
    expect(nodesOf(p, h, hot)).toEqual(new Array(hot).fill(0));
    for (let i = 0; i < hot; i++) expect(lruOf(p, m, h + i * PAGE_SIZE)).toBe(LRU_ACTIVE_ANON);
    const order = [...nodesOf(p, c, cold), ...nodesOf(p, d, more)];
    expect(order).toEqual([...new Array(total).fill(1), ...new Array(cold + more - total).fill(0)]);
    expect(m.vmstat().pgdeactivate).toBe(0);
    // Nothing was lost (read only now: p.read is an access, it would have made the pages young).
    expect(Buffer.compare(p.read(c, cold * PAGE_SIZE), coldBytes)).toBe(0);
    expect(Buffer.compare(p.read(d, more * PAGE_SIZE), moreBytes)).toBe(0);
    expect(Buffer.compare(child.read(h, hot * PAGE_SIZE), hotBytes)).toBe(0);
    m.checkInvariants();
  });

  it('keeps the pages a user thread touched again after their first scan, activating them', async () => {
    const m = await tierMachine();
    cleanup.push(() => m.close());
    const ks = attachKswapd(m, { demotion: true, napMs: 1 });
    const p = m.spawn({ comm: 'app', node: 0 });
    const w = wmarks(m, 0);
    // LRU order, oldest first: cold pages C, the thread's pages H, cold pages F.
    const nc = 640;
    const c = p.mmap(nc * PAGE_SIZE, { node: 0, thp: 'never' });
    const cBytes = pageBytes(nc, 1);
    p.write(c, cBytes);
    // 128 pages scanned in order miss the thread's 64-entry TLB every time, so every access walks
    // the page table and sets the accessed bit again after folio_referenced cleared it.
    const hot = 128;
    const h = p.mmap(hot * PAGE_SIZE, { node: 0, thp: 'never' });
    p.touch(h, hot * PAGE_SIZE, 'write');
    const workload = {
      kind: 'access' as const,
      addr: h,
      bytes: hot * PAGE_SIZE,
      pattern: 'scan' as const,
      writeShare: 1,
    };
    const t = p.spawnThread<AccessResult>({ workload, node: 0 });
    cleanup.push(async () => {
      t.stop();
      await t.join().catch(() => undefined);
    });
    const accesses = () => t.stats().accessesByNode.reduce((a, b) => a + b, 0);
    await until(() => accesses() > hot * 4, 10_000, 'the thread to run');
    const nf = m.freePages(0) - w.min - 16;
    const f = p.mmap(nf * PAGE_SIZE, { node: 0, thp: 'never' });
    const fBytes = pageBytes(nf, 2);
    p.write(f, fBytes);
    await ks.settled();
    // First reclaim: every page was seen once (kept, PG_referenced), then the oldest cold pages
    // went, in order, until node 0 was balanced; the scan did not come back to H.
    const first = ks.stats().nodes[0]!.demoted;
    expect(first).toBeGreaterThan(0);
    expect(first).toBeLessThan(nc);
    expect(nodesOf(p, c, nc)).toEqual([...new Array(first).fill(1), ...new Array(nc - first).fill(0)]);
    expect(nodesOf(p, h, hot)).toEqual(new Array(hot).fill(0));
    expect(m.vmstat().pgactivate).toBe(0);

    // The thread touches every page of H again (it scans them in order)...
    const seen = accesses();
    await until(() => accesses() > seen + hot * 2, 10_000, 'the thread to touch H again');
    // ...and the next reclaim, which reaches H after the rest of C, finds H young: activated.
    const ng = m.freePages(0) - w.min - 16;
    const g = p.mmap(ng * PAGE_SIZE, { node: 0, thp: 'never' });
    const gBytes = pageBytes(ng, 3);
    p.write(g, gBytes);
    await ks.settled();
    t.stop();
    const r = await t.join();
    expect(r.errors, JSON.stringify(r.firstErrors)).toBe(0);
    const total = ks.stats().nodes[0]!.demoted;
    expect(nodesOf(p, c, nc)).toEqual(new Array(nc).fill(1));
    expect(nodesOf(p, h, hot)).toEqual(new Array(hot).fill(0));
    for (let i = 0; i < hot; i++) expect(lruOf(p, m, h + i * PAGE_SIZE)).toBe(LRU_ACTIVE_ANON);
    expect(m.vmstat().pgactivate).toBe(hot);
    const fGone = total - nc;
    expect(fGone).toBeGreaterThan(0);
    expect(nodesOf(p, f, nf)).toEqual([...new Array(fGone).fill(1), ...new Array(nf - fGone).fill(0)]);
    expect(nodesOf(p, g, ng)).toEqual(new Array(ng).fill(0));
    expect(Buffer.compare(p.read(c, nc * PAGE_SIZE), cBytes)).toBe(0);
    expect(Buffer.compare(p.read(f, nf * PAGE_SIZE), fBytes)).toBe(0);
    expect(Buffer.compare(p.read(g, ng * PAGE_SIZE), gBytes)).toBe(0);
    const check = verifyAccess((a, n) => p.read(a, n), workload, [r]);
    expect(check.mismatches).toBe(0);
    expect(check.checked).toBe(hot);
    m.checkInvariants();
  });

  it('deactivates active pages once the inactive list is low, and demotes them when they stay cold', async () => {
    const m = await tierMachine();
    cleanup.push(() => m.close());
    const ks = attachKswapd(m, { demotion: true, napMs: 1 });
    const p = m.spawn({ comm: 'app', node: 0 });
    // Shared pages young in two mappings are activated at their first scan.
    const hot = 768;
    const h = p.mmap(hot * PAGE_SIZE, { node: 0, thp: 'never', shared: true });
    const hotBytes = pageBytes(hot, 9);
    p.write(h, hotBytes);
    const child = p.fork();
    child.touch(h, hot * PAGE_SIZE, 'read');
    const w = wmarks(m, 0);
    const cold = m.freePages(0) - w.min - 16;
    const c = p.mmap(cold * PAGE_SIZE, { node: 0, thp: 'never' });
    const coldBytes = pageBytes(cold, 10);
    p.write(c, coldBytes);
    await ks.settled();
    expect(m.vmstat().pgactivate).toBe(hot);
    expect(nodesOf(p, h, hot)).toEqual(new Array(hot).fill(0));
    // The inactive list ended up low already: shrink_lruvec's closing refill deactivated a batch.
    const deactivatedBefore = m.vmstat().pgdeactivate;
    expect(deactivatedBefore % 32).toBe(0);
    expect(lruSize(m.kernel, 0, LRU_ACTIVE_ANON)).toBe(hot - deactivatedBefore);
    expect(lruSize(m.kernel, 0, LRU_INACTIVE_ANON)).toBeLessThan(hot - deactivatedBefore);

    // Pressure that adds nothing to the LRU (kernel allocations, as slab would): kswapd finds the
    // inactive list low (inactive_is_low, ratio 1 below 1 GiB), shrink_active_list moves active
    // pages to it (anon pages go even when referenced), and the idle ones are demoted.
    const kernelPages: number[] = [];
    while (m.freePages(0) > w.min + 16) {
      const pfn = m.kernel.allocFolio({ order: 0, nid: 0, thisNode: true });
      expect(pfn).toBeGreaterThanOrEqual(0);
      kernelPages.push(pfn);
    }
    await ks.settled();
    const v = m.vmstat();
    expect(v.pgdeactivate).toBeGreaterThan(deactivatedBefore);
    expect(v.pgrefill).toBe(v.pgdeactivate);
    expect(lruSize(m.kernel, 0, LRU_ACTIVE_ANON)).toBe(hot - v.pgdeactivate);
    const lines = traced(m, 'mm_vmscan_lru_shrink_active');
    expect(lines.length).toBeGreaterThan(0);
    let deactivated = 0;
    for (const l of lines) {
      expect(l.comm).toBe('kswapd0');
      const f =
        /^nid=0 nr_taken=(\d+) nr_active=0 nr_deactivated=(\d+) nr_referenced=0 priority=\d+ flags=RECLAIM_WB_ANON\|RECLAIM_WB_ASYNC$/.exec(
          l.text,
        );
      expect(f, l.text).not.toBeNull();
      expect(f![1]).toBe(f![2]);
      deactivated += Number(f![2]);
    }
    expect(deactivated).toBe(v.pgdeactivate);
    // Demotion follows the inactive list: the rest of the cold pages oldest first, and a
    // deactivated shared page (younger than all of them) only once every cold page is gone.
    const cGone = nodesOf(p, c, cold).filter((n) => n === 1).length;
    expect(cGone).toBeGreaterThan(0);
    expect(nodesOf(p, c, cold)).toEqual([...new Array(cGone).fill(1), ...new Array(cold - cGone).fill(0)]);
    const hGone = nodesOf(p, h, hot).filter((n) => n === 1).length;
    expect(hGone === 0 || cGone === cold).toBe(true);
    expect(ks.stats().nodes[0]!.demoted).toBe(cGone + hGone);
    expect(m.freePages(0)).toBeGreaterThan(w.high);
    for (const pfn of kernelPages) m.kernel.folioPut(pfn);
    expect(Buffer.compare(p.read(c, cold * PAGE_SIZE), coldBytes)).toBe(0);
    expect(Buffer.compare(child.read(h, hot * PAGE_SIZE), hotBytes)).toBe(0);
    m.checkInvariants();
  });
});
