/**
 * migrate:set_migration_pte and migrate:remove_migration_pte (issue 17, item 5), the
 * migration_pte class of include/trace/events/migrate.h, `addr=%lx, pte=%lx order=%d`: one event
 * per entry try_to_migrate_one / set_pmd_migration_entry turns into a migration entry, one per
 * entry remove_migration_pte / remove_migration_pmd restores (to the new folio, or to the old one
 * when the migration failed). Off until enabled, as every kernel event is.
 */
import { describe, expect, it } from 'vitest';
import { PagemigError } from '../src/errno.js';
import type { Machine } from '../src/machine.js';
import { MPOL_MF_MOVE, MPOL_MF_MOVE_ALL } from '../src/mempolicy.js';
import { PAGE_SIZE } from '../src/mmzone.js';
import { PMD_HUGE, PTE_MIGRATION, PTE_PFN_SHIFT, PTE_PRESENT } from '../src/pagetable.js';
import type { Process } from '../src/process.js';
import { parseTraceLines, TRACE_EVENTS_OFF_BY_DEFAULT } from '../src/trace.js';
import { machinesCheckedAfterEach, pattern, sameBytes } from './helpers.js';

const machine = machinesCheckedAfterEach();
const SET = 'migrate:set_migration_pte';
const REMOVE = 'migrate:remove_migration_pte';

interface Pte {
  addr: number;
  pte: number;
  order: number;
}
/** The events' fields, parsed back from their text (what a trace file reader sees). */
function ptes(m: Machine, name: string): Pte[] {
  return m.trace.events(name).map((r) => {
    const t = /^addr=([0-9a-f]+), pte=([0-9a-f]+) order=(\d+)$/.exec(r.text);
    expect(t, r.text).not.toBeNull();
    return { addr: Number.parseInt(t![1]!, 16), pte: Number.parseInt(t![2]!, 16), order: Number(t![3]) };
  });
}
const pfnOf = (pte: number) => pte >>> PTE_PFN_SHIFT;
const isMigrationEntry = (pte: number) => (pte & (PTE_PRESENT | PTE_MIGRATION)) === PTE_MIGRATION;
const isPresent = (pte: number) => (pte & (PTE_PRESENT | PTE_MIGRATION)) === PTE_PRESENT;

function written(p: Process, bytes: number, opts: Parameters<Process['mmap']>[1], seed: number) {
  const addr = p.mmap(bytes, opts);
  const data = pattern(bytes / PAGE_SIZE, seed);
  p.write(addr, data);
  return { addr, data };
}

describe('set_migration_pte / remove_migration_pte', () => {
  it('are off by default: a migration records mm_migrate_pages but no per-entry event', async () => {
    const m = await machine();
    expect(TRACE_EVENTS_OFF_BY_DEFAULT).toEqual([SET, REMOVE]);
    expect([m.trace.isEnabled(SET), m.trace.isEnabled(REMOVE)]).toEqual([false, false]);
    const p = m.spawn();
    const r = written(p, 4 * PAGE_SIZE, { thp: 'never' }, 1);
    let seen = 0;
    m.trace.on('migrate', () => seen++);
    const addrs = [0, 1, 2, 3].map((i) => r.addr + i * PAGE_SIZE);
    expect(await p.movePages(0, addrs, [1, 1, 1, 1], MPOL_MF_MOVE)).toMatchObject({ ret: 0 });
    expect(m.trace.events('migrate').map((e) => e.event)).toEqual([
      'mm_migrate_pages_start',
      'mm_migrate_pages',
    ]);
    expect(seen).toBe(2);
  });

  it('base pages: one event per entry, with the address, the entry written and order 0', async () => {
    const m = await machine();
    m.trace.enable(SET);
    m.trace.enable(REMOVE);
    const p = m.spawn();
    const r = written(p, 3 * PAGE_SIZE, { thp: 'never' }, 2);
    const addrs = [0, 1, 2].map((i) => r.addr + i * PAGE_SIZE);
    const oldPfns = addrs.map((a) => p.pageInfo(a)!.pfn);
    m.trace.clear();
    expect(await p.movePages(0, addrs, [1, 1, 1], MPOL_MF_MOVE)).toEqual({ ret: 0, status: [1, 1, 1] });
    const newPfns = addrs.map((a) => p.pageInfo(a)!.pfn);
    const set = ptes(m, SET);
    const removed = ptes(m, REMOVE);
    expect(set.map((e) => [e.addr, pfnOf(e.pte), isMigrationEntry(e.pte), e.order])).toEqual(
      addrs.map((a, i) => [a, oldPfns[i], true, 0]),
    );
    expect(removed.map((e) => [e.addr, pfnOf(e.pte), isPresent(e.pte), e.order])).toEqual(
      addrs.map((a, i) => [a, newPfns[i], true, 0]),
    );
    // Every entry is unmapped before the batch's move phase remaps any.
    expect(m.trace.events('migrate').map((e) => e.event)).toEqual([
      'mm_migrate_pages_start',
      'set_migration_pte',
      'set_migration_pte',
      'set_migration_pte',
      'remove_migration_pte',
      'remove_migration_pte',
      'remove_migration_pte',
      'mm_migrate_pages',
    ]);
    // The trace file line: the caller's task, the event name, the kernel's text.
    const line = parseTraceLines(m.trace.lines(SET))[0]!;
    expect(line).toMatchObject({ comm: p.comm, pid: p.pid, event: 'set_migration_pte' });
    expect(line.text).toBe(`addr=${addrs[0]!.toString(16)}, pte=${set[0]!.pte.toString(16)} order=0`);
    expect(sameBytes(p.read(r.addr, 3 * PAGE_SIZE), r.data)).toBe(true);
  });

  it('a PMD-mapped THP is one entry of order 9; a PTE-mapped 64 KiB folio is 16 entries of order 4', async () => {
    const m = await machine();
    m.trace.enable('migrate');
    const p = m.spawn();
    const thp = written(p, 2 << 20, { thp: 'always' }, 3);
    const mthp = written(p, 64 << 10, { thp: '64KiB' }, 4);
    expect(p.pageInfo(thp.addr)).toMatchObject({ huge: true, order: 9 });
    expect(p.pageInfo(mthp.addr)).toMatchObject({ huge: false, order: 4 });
    m.trace.clear();
    expect(await p.movePages(0, [thp.addr, mthp.addr], [1, 1], MPOL_MF_MOVE)).toEqual({
      ret: 0,
      status: [1, 1],
    });
    const set = ptes(m, SET);
    const removed = ptes(m, REMOVE);
    expect(set[0]).toMatchObject({ addr: thp.addr, order: 9 });
    expect(set[0]!.pte & PMD_HUGE).toBe(PMD_HUGE);
    expect(set.slice(1).map((e) => [e.addr, e.order])).toEqual(
      Array.from({ length: 16 }, (_, i) => [mthp.addr + i * PAGE_SIZE, 4]),
    );
    expect(removed.map((e) => [e.addr, e.order])).toEqual(set.map((e) => [e.addr, e.order]));
    expect(pfnOf(removed[0]!.pte)).toBe(p.pageInfo(thp.addr)!.pfn);
    expect(sameBytes(p.read(thp.addr, 2 << 20), thp.data)).toBe(true);
    expect(sameBytes(p.read(mthp.addr, 64 << 10), mthp.data)).toBe(true);
  });

  it('every mapping of a shared folio gets its own pair; a failed migration restores the old pfn', async () => {
    const m = await machine();
    m.trace.enable('migrate');
    const parent = m.spawn({ privileged: true });
    const r = written(parent, PAGE_SIZE, { shared: true }, 5);
    const child = parent.fork();
    child.touch(r.addr, PAGE_SIZE, 'read');
    const old = parent.pageInfo(r.addr)!.pfn;
    m.trace.clear();
    expect(await parent.movePages(0, [r.addr], [1], MPOL_MF_MOVE_ALL)).toEqual({ ret: 0, status: [1] });
    expect(ptes(m, SET).map((e) => pfnOf(e.pte))).toEqual([old, old]);
    expect(ptes(m, REMOVE).map((e) => pfnOf(e.pte))).toEqual(new Array(2).fill(child.pageInfo(r.addr)!.pfn));
    // An extra reference: every pass sees it (-EAGAIN) and the entries go back to the old folio.
    const q = m.spawn();
    const pinned = written(q, PAGE_SIZE, { thp: 'never' }, 6);
    const pfn = q.pageInfo(pinned.addr)!.pfn;
    m.folioGet(pfn);
    m.trace.clear();
    expect(await q.movePages(0, [pinned.addr], [1], MPOL_MF_MOVE)).toMatchObject({ ret: 1 });
    m.folioPut(pfn);
    const set = ptes(m, SET);
    const removed = ptes(m, REMOVE);
    expect(set.length).toBeGreaterThan(0);
    expect(removed.length).toBe(set.length);
    expect(removed.every((e) => pfnOf(e.pte) === pfn && isPresent(e.pte))).toBe(true);
    expect(q.pageInfo(pinned.addr)!.pfn).toBe(pfn);
    expect(sameBytes(q.read(pinned.addr, PAGE_SIZE), pinned.data)).toBe(true);
  });

  it('enable/disable by event, system or *; a wider switch overrides narrower ones; bad names are refused', async () => {
    const m = await machine();
    const p = m.spawn();
    const move = async (seed: number) => {
      const r = written(p, PAGE_SIZE, { thp: 'never', node: 0 }, seed);
      m.trace.clear();
      await p.movePages(0, [r.addr], [1], MPOL_MF_MOVE);
      return m.trace.events('migrate').map((e) => e.event);
    };
    m.trace.enable('migrate');
    m.trace.disable(SET);
    expect(await move(7)).toEqual(['mm_migrate_pages_start', 'remove_migration_pte', 'mm_migrate_pages']);
    m.trace.disable('*');
    expect(m.trace.isEnabled('migrate:mm_migrate_pages')).toBe(false);
    expect(await move(8)).toEqual([]);
    m.trace.enable('*');
    expect(await move(9)).toEqual([
      'mm_migrate_pages_start',
      'set_migration_pte',
      'remove_migration_pte',
      'mm_migrate_pages',
    ]);
    for (const bad of ['', 'migrate:', 'a:b:c', 'migrate set'])
      expect(() => m.trace.enable(bad)).toThrow(PagemigError);
  });
});
