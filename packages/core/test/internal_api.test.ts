import { describe, expect, it } from 'vitest';
import { EBUSY, EINVAL } from '../src/errno.js';
import * as publicApi from '../src/index.js';
import * as internal from '../src/internal.js';
import { PG_isolated, PG_lru } from '../src/page.js';
import { type AllocHooks, CompactPriority, zonelistOf } from '../src/page_alloc.js';
import {
  PMD_HUGE,
  PMD_TABLE,
  PTE_MIGRATION,
  PTE_PFN_SHIFT,
  PTE_PRESENT,
  ZERO_PFN,
} from '../src/pagetable.js';
import { entryPfn, type MmWalkOps, pageEntry, walkPageRange } from '../src/pagewalk.js';
import { threadCpuSeconds } from '../src/schedstat.js';
import { catchPagemig, machinesCheckedAfterEach, pattern, sameBytes } from './helpers.js';

const newMachine = machinesCheckedAfterEach();
const PG = 4096;

describe('the public and the internal entry', () => {
  it('keeps kernel-side names out of the public entry and in @pagemig/core/internal', () => {
    for (const name of ['Kernel', 'Zone', 'PgData', 'PageArray', 'pageFlags', 'MigrationRun', 'migratePages'])
      expect(name in publicApi, `public entry exports ${name}`).toBe(false);
    for (const name of [
      'Kernel',
      'Zone',
      'PgData',
      'pageFlags',
      'migratePages',
      'walkPageRange',
      'zonelistOf',
    ])
      expect(name in internal, `internal entry lacks ${name}`).toBe(true);
    // What applications use stays public.
    for (const name of ['createMachine', 'MPOL_MF_MOVE', 'MigrateReason', 'threadCpuSeconds', 'MAX_NUMNODES'])
      expect(name in publicApi, `public entry lacks ${name}`).toBe(true);
  });
});

describe('migratePages: the one engine entry', () => {
  it('refuses bad options with EINVAL and puts every isolated folio back', async () => {
    const m = await newMachine();
    const p = m.spawn();
    const a = p.mmap(8 * PG, { node: 0 });
    p.write(a, pattern(8));
    const pfns = Array.from({ length: 8 }, (_, i) => p.pageInfo(a + i * PG)!.pfn);
    const k = m.kernel;
    for (const bad of [
      { node: 1, copyTimeoutMs: Number.NaN },
      { node: 1, copyTimeoutMs: -1 },
      { node: 1, copyTimeoutMs: 0 },
      { node: 1, copyTimeoutMs: 'x' as unknown as number },
      { node: 1, abortGraceMs: -5 },
      { node: 7 },
      { node: 1, mode: 'MIGRATE_BOGUS' as never },
      { node: 1, reason: 'bogus' as never },
      { node: 1, demoteOrigin: 'nowhere' as never },
    ]) {
      const { heads } = internal.isolateFolios(k, pfns);
      expect(heads).toHaveLength(8);
      const e = await internal.migratePages(k, heads, bad).catch((err: unknown) => err);
      expect(publicApi.PagemigError.isInstance(e), JSON.stringify(bad)).toBe(true);
      expect((e as publicApi.PagemigError).errno).toBe(EINVAL);
      for (const pfn of pfns) {
        expect(k.pages.flags[pfn]! & PG_isolated).toBe(0);
        expect(k.pages.flags[pfn]! & PG_lru).toBe(PG_lru);
      }
      // m.migrateFolios refuses before isolating anything.
      await expect(m.migrateFolios(pfns, bad)).rejects.toMatchObject({ errno: EINVAL });
    }
    // Nothing was left isolated: the pages still move and keep their bytes.
    const r = await p.movePages(0, [a], [1], publicApi.MPOL_MF_MOVE);
    expect(r).toEqual({ ret: 0, status: [1] });
    expect(sameBytes(p.read(a, 8 * PG), pattern(8))).toBe(true);
  });

  it('puts back what it isolated when a later pfn is not RAM', async () => {
    const m = await newMachine();
    const p = m.spawn();
    const a = p.mmap(2 * PG, { node: 0 });
    p.write(a, pattern(2));
    const pfn = p.pageInfo(a)!.pfn;
    const e = await m.migrateFolios([pfn, m.kernel.nrPages + 5], { node: 1 }).catch((err: unknown) => err);
    expect((e as publicApi.PagemigError).errno).toBe(EINVAL);
    expect(m.kernel.pages.flags[pfn]! & PG_isolated).toBe(0);
    expect((await m.migrateFolios([pfn], { node: 1 })).nrSucceeded).toBe(1);
  });

  it('accounts each run it is told to: CPU time and the phase event, or neither', async () => {
    const m = await newMachine();
    const p = m.spawn();
    const a = p.mmap(16 * PG, { node: 0 });
    p.write(a, pattern(16));
    const pfns = Array.from({ length: 16 }, (_, i) => p.pageInfo(a + i * PG)!.pfn);
    const k = m.kernel;
    const before = m.trace.lines('pagemig:migrate_phases').length;
    const quiet = await internal.migratePages(k, internal.isolateFolios(k, pfns.slice(0, 8)).heads, {
      node: 1,
      account: false,
    });
    expect(quiet.nrSucceeded).toBe(8);
    expect(quiet.cpuSeconds).toBe(0);
    expect(m.trace.lines('pagemig:migrate_phases').length).toBe(before);
    const loud = await internal.migratePages(k, internal.isolateFolios(k, pfns.slice(8)).heads, { node: 1 });
    expect(loud.nrSucceeded).toBe(8);
    expect(m.trace.lines('pagemig:migrate_phases').length).toBe(before + 1);
    expect(sameBytes(p.read(a, 16 * PG), pattern(16))).toBe(true);
  });
});

describe('walkPageRange and pageEntry (mm/pagewalk.c)', () => {
  it('visits exactly the non-empty entries of the range, a huge PMD once', async () => {
    const m = await newMachine();
    const p = m.spawn();
    const thp = p.mmap(4 << 20, { thp: 'always', node: 0 });
    p.touch(thp, 2 << 20, 'write'); // one PMD-mapped folio, the second 2 MiB untouched
    const small = p.mmap(64 * PG, { node: 0 });
    for (let i = 0; i < 64; i += 3) p.touch(small + i * PG, 1, i % 2 ? 'read' : 'write');
    const pt = p.mm.pt;
    const seen: string[] = [];
    const ops: MmWalkOps = {
      pmdEntry: (_pt, pmdIdx, e, vpn) => {
        expect(e & PMD_HUGE).toBe(PMD_HUGE);
        seen.push(`pmd:${pmdIdx}:${vpn}`);
      },
      pteEntry: (_pt, slot, e, vpn) => {
        expect(pt.pte[slot]).toBe(e);
        seen.push(`pte:${vpn}`);
      },
    };
    const v0 = (thp - publicApi.USER_BASE) / PG;
    walkPageRange(pt, v0 + 5, v0 + 1024, ops);
    expect(seen).toEqual([`pmd:${v0 >>> 9}:${v0}`]);
    seen.length = 0;
    const s0 = (small - publicApi.USER_BASE) / PG;
    walkPageRange(pt, s0, s0 + 64, ops);
    // Every third page was touched: written pages have their own frame, read ones the zero page.
    expect(seen).toEqual(Array.from({ length: 22 }, (_, j) => `pte:${s0 + 3 * j}`));
    for (let i = 0; i < 64; i++) {
      const e = pageEntry(pt, s0 + i);
      const info = p.pageInfo(small + i * PG);
      if (!info) expect(e & PTE_PRESENT).toBe(0);
      else expect(entryPfn(e, s0 + i)).toBe(info.pfn);
    }
    const e = pageEntry(pt, v0 + 7);
    expect(e & PMD_HUGE).toBe(PMD_HUGE);
    expect(entryPfn(e, v0 + 7)).toBe((e >>> PTE_PFN_SHIFT) + 7);
    expect(entryPfn(ZERO_PFN << PTE_PFN_SHIFT, 0)).toBe(ZERO_PFN);
    expect(pageEntry(pt, v0 + 600)).toBe(0);
    expect(PMD_TABLE & PTE_MIGRATION).toBe(0);
  });
});

describe("the allocator's slow path in core", () => {
  it('installs each hook once (EBUSY for a second owner) and removes it', async () => {
    const m = await newMachine();
    const off = m.kernel.setAllocHook('kswapdSleep', () => {});
    expect(catchPagemig(() => m.kernel.setAllocHook('kswapdSleep', () => {})).errno).toBe(EBUSY);
    off();
    m.kernel.setAllocHook('kswapdSleep', () => {})();
  });

  it('refuses an unknown hook, a hook that is not a function, and a bad request with EINVAL', async () => {
    const m = await newMachine();
    const k = m.kernel;
    expect(catchPagemig(() => k.setAllocHook('bogus' as 'kswapdSleep', () => {})).errno).toBe(EINVAL);
    expect(catchPagemig(() => k.setAllocHook('kswapdSleep', 5 as never)).errno).toBe(EINVAL);
    for (const req of [
      null,
      { order: -1, nid: 0 },
      { order: 11, nid: 0 },
      { order: 9, nid: 7 },
      { order: 9, nid: Number.NaN },
      { order: 9, nid: 0, mt: 9 },
      { order: 9, nid: 0, allowed: [5] },
      { order: 9, nid: 0, allowed: 'x' },
    ]) {
      const e = await k.allocFolioSlowpath(req as never).catch((err: unknown) => err);
      expect(publicApi.PagemigError.isInstance(e), JSON.stringify(req)).toBe(true);
      expect((e as publicApi.PagemigError).errno).toBe(EINVAL);
    }
  });

  it('walks the zonelist once per node, compacts costly orders twice (async, then sync-light)', async () => {
    const m = await newMachine({ nodes: [{ memory: '8MiB' }, { memory: '8MiB' }, { memory: '8MiB' }] });
    const k = m.kernel;
    const held: number[] = [];
    for (let pfn = k.allocFolio({ order: 9, nid: 1 }); pfn >= 0; pfn = k.allocFolio({ order: 9, nid: 1 }))
      held.push(pfn);
    const woken: number[] = [];
    const prios: number[] = [];
    const hooks: AllocHooks = {
      wakeKswapd: (nid) => woken.push(nid),
      directCompact: async (_req, prio) => {
        prios.push(prio);
        return { pfn: -1, attempt: { priority: prio, status: 'skipped', allocated: false } };
      },
    };
    const r = await k.allocFolioSlowpath({ order: 9, nid: 1 }, hooks);
    expect(r).toEqual({
      pfn: -1,
      attempts: [
        { priority: CompactPriority.COMPACT_PRIO_ASYNC, status: 'skipped', allocated: false },
        { priority: CompactPriority.COMPACT_PRIO_SYNC_LIGHT, status: 'skipped', allocated: false },
      ],
    });
    expect(woken).toEqual(zonelistOf(k.nodes, { order: 9, nid: 1 }).map((z) => z.nid));
    expect(woken).toEqual([1, 0, 2]);
    // __GFP_THISNODE keeps the walk on the preferred node; order 0 never compacts.
    woken.length = 0;
    prios.length = 0;
    await k.allocFolioSlowpath({ order: 9, nid: 1, thisNode: true }, hooks);
    expect(woken).toEqual([1]);
    for (const pfn of held) k.folioPut(pfn);
  });

  it("a failed allocFolio runs kswapd's sleep step after the call, never inside it", async () => {
    const m = await newMachine({ nodes: [{ memory: '8MiB' }] });
    const k = m.kernel;
    const woken: string[] = [];
    const off = k.setAllocHook('kswapdSleep', (nid, order) => woken.push(`${nid}:${order}`));
    const held: number[] = [];
    for (let pfn = k.allocFolio({ order: 9, nid: 0 }); pfn >= 0; pfn = k.allocFolio({ order: 9, nid: 0 }))
      held.push(pfn);
    expect(woken).toEqual([]);
    await Promise.resolve();
    expect(woken).toEqual(['0:9']);
    // A THP-style request (no __GFP_KSWAPD_RECLAIM) wakes nobody.
    k.allocFolio({ order: 9, nid: 0, kswapdReclaim: false });
    await Promise.resolve();
    expect(woken).toEqual(['0:9']);
    off();
    for (const pfn of held) k.folioPut(pfn);
  });
});

describe('threadCpuSeconds', () => {
  it('grows with work on this thread and never goes back', () => {
    // Spin until this thread was charged 20 ms (on a loaded host that takes longer than 20 ms).
    const c0 = threadCpuSeconds(true);
    const deadline = performance.now() + 10_000;
    let last = c0;
    let x = 0;
    while (last - c0 < 0.02 && performance.now() < deadline) {
      for (let i = 0; i < 1e5; i++) x += Math.sqrt(x + i);
      const now = threadCpuSeconds();
      expect(now).toBeGreaterThanOrEqual(last);
      last = now;
    }
    expect(x).toBeGreaterThan(0);
    expect(threadCpuSeconds(true) - c0).toBeGreaterThanOrEqual(0.02);
  });
});

describe('EINVAL for a node the slow path does not have', () => {
  it('zonelistOf names the node', async () => {
    const m = await newMachine();
    const e = catchPagemig(() => zonelistOf(m.kernel.nodes, { order: 0, nid: 9 }));
    expect(e.errno).toBe(EINVAL);
    expect(e.message).toMatch(/node 9 does not exist/);
  });
});

describe('the trace buffer is a ring', () => {
  it('keeps the newest records in order', async () => {
    const m = await newMachine();
    m.trace.clear();
    m.trace.capacity = 3;
    for (let i = 0; i < 5; i++) m.trace.emit('test', 'tick', { i }, `i=${i}`);
    expect(m.trace.events().map((r) => r.fields.i)).toEqual([2, 3, 4]);
    expect(m.trace.lines('test:tick').map((l) => l.slice(-3))).toEqual(['i=2', 'i=3', 'i=4']);
    m.trace.capacity = 2;
    expect(m.trace.events().map((r) => r.fields.i)).toEqual([3, 4]);
    m.trace.capacity = 10;
    m.trace.emit('test', 'tick', { i: 5 }, 'i=5');
    expect(m.trace.events().map((r) => r.fields.i)).toEqual([3, 4, 5]);
    expect(catchPagemig(() => (m.trace.capacity = 0)).code).toBe('ERR_INVALID_ARGUMENT');
    m.trace.capacity = 1000;
    for (let i = 0; i < 100_000; i++) m.trace.emit('test', 'tick', { i }, 'x');
    expect(m.trace.events()).toHaveLength(1000);
    expect(m.trace.events().at(-1)!.fields.i).toBe(99_999);
    // A listener that is no function, or a name that is no string, is refused when it is given.
    const notFn = catchPagemig(() => m.trace.on('migrate:mm_migrate_pages', 5 as never));
    expect(notFn).toMatchObject({ code: 'ERR_INVALID_ARGUMENT', errno: 22 });
    expect(notFn.message).toBe('trace.on("migrate:mm_migrate_pages"): the listener 5 is not a function');
    expect(catchPagemig(() => m.trace.on(null as never, () => {})).message).toMatch(
      /^trace\.on: null is not an event/,
    );
    m.trace.emit('test', 'tick', { i: 0 }, 'x');
    expect(m.trace.listenerErrors).toEqual([]);
  });
});
