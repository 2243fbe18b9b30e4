import { describe, expect, it } from 'vitest';
import { EINVAL, ENOMEM } from '../src/errno.js';
import { splitFolio } from '../src/huge_memory.js';
import type { Kernel } from '../src/kernel.js';
import {
  folioLru,
  folioPutbackLru,
  folioReferenced,
  isolateLruFolios,
  LRU_ACTIVE_ANON,
  LRU_INACTIVE_ANON,
  LRU_UNEVICTABLE,
  lruSize,
  nrIsolatedAnon,
} from '../src/lru.js';
import type { Machine } from '../src/machine.js';
import { MigrateReason } from '../src/migrate_mode.js';
import { PAGE_SIZE, WMARK_LOW } from '../src/mmzone.js';
import { PG_active, PG_isolated, PG_lru, PG_referenced } from '../src/page.js';
import type { Process } from '../src/process.js';
import { expectErrno, machinesCheckedAfterEach, pattern, sameBytes } from './helpers.js';

const newMachine = machinesCheckedAfterEach();
const FNS = new URL('./fixtures/thread-fns.mjs', import.meta.url);
const ACCESS = new URL('./fixtures/access-fns.mjs', import.meta.url);
const PG = PAGE_SIZE;

/** The head pfn mapped at `addr`. */
function headAt(m: Machine, p: Process, addr: number): number {
  const info = p.pageInfo(addr);
  if (!info) throw new Error(`nothing mapped at ${addr}`);
  return m.kernel.pages.head(info.pfn);
}

/** Every folio of list `lru` of node `nid`, youngest first (walking the links). */
function listOf(k: Kernel, nid: number, lru: number): number[] {
  const out: number[] = [];
  for (let pfn = k.lru.first[nid * 3 + lru]!; pfn >= 0; pfn = k.pages.next[pfn]!) out.push(pfn);
  return out;
}

function vmstatOf(m: Machine, name: string): number {
  const line = m.procfs
    .vmstat()
    .split('\n')
    .find((l) => l.startsWith(`${name} `));
  if (!line) throw new Error(`no ${name} in /proc/vmstat`);
  return Number(line.split(' ')[1]);
}

describe('LRU lists (mm/swap.c, mm/vmscan.c)', () => {
  it('a fault puts a new anon or shmem folio first on its node’s inactive list; mlocked ones go unevictable', async () => {
    const m = await newMachine();
    const k = m.kernel;
    const p = m.spawn();
    const anon = p.mmap(4 * PG, { node: 0, thp: 'never' });
    const shm = p.mmap(2 * PG, { shared: true, thp: 'never' });
    const locked = p.mmap(3 * PG, { node: 0, mlock: true, thp: 'never' });
    p.touch(anon, 4 * PG, 'write');
    p.touch(shm, 2 * PG, 'write');
    const anonHeads = [0, 1, 2, 3].map((i) => headAt(m, p, anon + i * PG));
    const shmHeads = [0, 1].map((i) => headAt(m, p, shm + i * PG));
    // The youngest first: the last page touched heads the list (MAP_LOCKED populated at mmap).
    expect(listOf(k, 0, LRU_INACTIVE_ANON)).toEqual([...anonHeads, ...shmHeads].reverse());
    expect(listOf(k, 0, LRU_UNEVICTABLE).sort((a, b) => a - b)).toEqual(
      [0, 1, 2].map((i) => headAt(m, p, locked + i * PG)),
    );
    expect([
      lruSize(k, 0, LRU_INACTIVE_ANON),
      lruSize(k, 0, LRU_ACTIVE_ANON),
      lruSize(k, 0, LRU_UNEVICTABLE),
    ]).toEqual([6, 0, 3]);
    expect(lruSize(k, 1, LRU_INACTIVE_ANON)).toBe(0);
    for (const h of anonHeads) expect(folioLru(k, h)).toBe(LRU_INACTIVE_ANON);
    expect(folioLru(k, headAt(m, p, locked))).toBe(LRU_UNEVICTABLE);
    expect(vmstatOf(m, 'nr_inactive_anon')).toBe(6);
    expect(vmstatOf(m, 'nr_zone_inactive_anon')).toBe(6);
    expect(vmstatOf(m, 'nr_unevictable')).toBe(3);
    expect(vmstatOf(m, 'nr_active_anon')).toBe(0);
    const meminfo = m.procfs.meminfo();
    expect(meminfo).toContain('Inactive:             24 kB\n');
    expect(meminfo).toContain('Inactive(anon):       24 kB\n');
    expect(meminfo).toContain('Unevictable:          12 kB\n');
    // A read of untouched private memory maps the zero page: nothing goes on a list.
    const zero = p.mmap(PG, { node: 0 });
    p.touch(zero, PG, 'read');
    expect(lruSize(k, 0, LRU_INACTIVE_ANON)).toBe(6);
  });

  it('hugetlb folios never go on an LRU', async () => {
    const m = await newMachine();
    expect(m.sysctl.write('vm.nr_hugepages', '2')).toBe(0);
    const p = m.spawn();
    const a = p.mmap(2 << 20, { hugetlb: true, node: 0 });
    p.touch(a, PG, 'write');
    const head = headAt(m, p, a);
    expect(folioLru(m.kernel, head)).toBe(-1);
    expect(lruSize(m.kernel, 0, LRU_INACTIVE_ANON) + lruSize(m.kernel, 1, LRU_INACTIVE_ANON)).toBe(0);
  });

  it('isolateLruFolios takes the oldest first and counts nr_isolated_anon; putback links youngest', async () => {
    const m = await newMachine();
    const k = m.kernel;
    const p = m.spawn();
    const a = p.mmap(6 * PG, { node: 0, thp: 'never' });
    p.touch(a, 6 * PG, 'write');
    const heads = [0, 1, 2, 3, 4, 5].map((i) => headAt(m, p, a + i * PG));
    const out: number[] = [];
    expect(isolateLruFolios(k, 0, LRU_INACTIVE_ANON, 3, out)).toEqual({ scanned: 3, taken: 3 });
    expect(out).toEqual(heads.slice(0, 3));
    for (const h of out) {
      expect(k.pages.flags[h]! & (PG_lru | PG_isolated)).toBe(PG_isolated);
      expect(k.pages.refcount[h]).toBe(2);
    }
    expect(nrIsolatedAnon(k, 0)).toBe(3);
    expect(vmstatOf(m, 'nr_isolated_anon')).toBe(3);
    expect(vmstatOf(m, 'nr_inactive_anon')).toBe(3);
    m.checkInvariants();
    folioPutbackLru(k, out[0]!, LRU_ACTIVE_ANON);
    folioPutbackLru(k, out[1]!, LRU_INACTIVE_ANON);
    folioPutbackLru(k, out[2]!, LRU_ACTIVE_ANON);
    expect(listOf(k, 0, LRU_ACTIVE_ANON)).toEqual([out[2], out[0]]);
    expect(listOf(k, 0, LRU_INACTIVE_ANON)[0]).toBe(out[1]);
    expect(k.pages.flags[out[0]!]! & PG_active).toBe(PG_active);
    expect(k.pages.refcount[out[0]!]).toBe(1);
    expect(nrIsolatedAnon(k, 0)).toBe(0);
    expect(vmstatOf(m, 'nr_active_anon')).toBe(2);
    expect(m.procfs.meminfo()).toContain('Active(anon):          8 kB\n');
    // A scan larger than the list takes what there is.
    const all: number[] = [];
    expect(isolateLruFolios(k, 0, LRU_ACTIVE_ANON, 100, all)).toEqual({ scanned: 2, taken: 2 });
    expect(all).toEqual([out[0], out[2]]);
    for (const h of all) folioPutbackLru(k, h, LRU_INACTIVE_ANON);
    expect(lruSize(k, 0, LRU_ACTIVE_ANON)).toBe(0);
    expect(k.pages.flags[out[0]!]! & PG_active).toBe(0);
  });

  it('refuses bad arguments with EINVAL naming them, changing nothing', async () => {
    const m = await newMachine();
    const k = m.kernel;
    const p = m.spawn();
    const a = p.mmap(PG, { node: 0 });
    p.touch(a, PG, 'write');
    const h = headAt(m, p, a);
    expect(expectErrno(() => lruSize(k, 2, 0), EINVAL).message).toMatch(/node 2/);
    expect(expectErrno(() => lruSize(k, 0, 3), EINVAL).message).toMatch(/lru 3/);
    expect(expectErrno(() => isolateLruFolios(k, 0, 0, -1, []), EINVAL).message).toMatch(/nrToScan -1/);
    expect(expectErrno(() => isolateLruFolios(k, 0, 0, 1, null as never), EINVAL).message).toMatch(/out/);
    expect(expectErrno(() => folioPutbackLru(k, h, 0), EINVAL).message).toMatch(/not isolated/);
    expect(expectErrno(() => folioReferenced(k, -1), EINVAL).message).toMatch(/head -1 is not RAM/);
    expect(expectErrno(() => folioLru(k, 1.5), EINVAL).message).toMatch(/head 1\.5/);
    const thp = p.mmap(2 << 20, { node: 0, thp: 'always' });
    p.touch(thp, 2 << 20, 'write');
    const tail = headAt(m, p, thp) + 1;
    expect(expectErrno(() => folioLru(k, tail), EINVAL).message).toMatch(/tail page/);
    const out: number[] = [];
    isolateLruFolios(k, 0, 0, 1, out);
    expect(expectErrno(() => folioPutbackLru(k, h, LRU_UNEVICTABLE), EINVAL).message).toMatch(/evictable/);
    expect(k.pages.flags[h]! & PG_isolated).toBe(PG_isolated);
    folioPutbackLru(k, h, LRU_INACTIVE_ANON);
    expect(folioLru(k, h)).toBe(LRU_INACTIVE_ANON);
  });

  it('migration moves a folio to its list on the new node, keeping PG_active and PG_referenced', async () => {
    const m = await newMachine();
    const k = m.kernel;
    const p = m.spawn();
    const a = p.mmap(4 * PG, { node: 0, thp: 'never' });
    const data = pattern(4);
    p.write(a, data);
    const out: number[] = [];
    isolateLruFolios(k, 0, LRU_INACTIVE_ANON, 2, out);
    k.pages.flags[out[0]!]! |= PG_referenced;
    folioPutbackLru(k, out[0]!, LRU_ACTIVE_ANON);
    folioPutbackLru(k, out[1]!, LRU_INACTIVE_ANON);
    const heads = [0, 1, 2, 3].map((i) => headAt(m, p, a + i * PG));
    const r = await m.migrateFolios(heads, { node: 1, reason: MigrateReason.MR_SYSCALL });
    expect(r.nrSucceeded).toBe(4);
    const moved = [0, 1, 2, 3].map((i) => headAt(m, p, a + i * PG));
    for (const h of moved) expect(k.nodeOf(h)).toBe(1);
    expect(folioLru(k, moved[0]!)).toBe(LRU_ACTIVE_ANON);
    expect(k.pages.flags[moved[0]!]! & PG_referenced).toBe(PG_referenced);
    for (const h of moved.slice(1)) {
      expect(folioLru(k, h)).toBe(LRU_INACTIVE_ANON);
      expect(k.pages.flags[h]! & PG_referenced).toBe(0);
    }
    expect([lruSize(k, 0, LRU_INACTIVE_ANON), lruSize(k, 0, LRU_ACTIVE_ANON)]).toEqual([0, 0]);
    expect([lruSize(k, 1, LRU_INACTIVE_ANON), lruSize(k, 1, LRU_ACTIVE_ANON)]).toEqual([3, 1]);
    expect(nrIsolatedAnon(k, 0) + nrIsolatedAnon(k, 1)).toBe(0);
    expect(sameBytes(p.read(a, 4 * PG), data)).toBe(true);
  });

  it('a failed migration puts the folio back on its list (youngest), nothing left isolated', async () => {
    const m = await newMachine();
    const k = m.kernel;
    const p = m.spawn();
    const a = p.mmap(3 * PG, { node: 0, thp: 'never' });
    const data = pattern(3, 5);
    p.write(a, data);
    const heads = [0, 1, 2].map((i) => headAt(m, p, a + i * PG));
    // Node 1 full: every target allocation fails.
    const held: number[] = [];
    for (let pfn = k.allocFolio({ order: 0, nid: 1, thisNode: true }); pfn >= 0; ) {
      held.push(pfn);
      pfn = k.allocFolio({ order: 0, nid: 1, thisNode: true });
    }
    const r = await m.migrateFolios([heads[0]!], { node: 1, reason: MigrateReason.MR_SYSCALL });
    expect(r.nrSucceeded).toBe(0);
    expect(r.nrFailed).toBe(1);
    expect(folioLru(k, heads[0]!)).toBe(LRU_INACTIVE_ANON);
    // folio_putback_lru links it first: the oldest is now the second page.
    expect(listOf(k, 0, LRU_INACTIVE_ANON)).toEqual([heads[0], heads[2], heads[1]]);
    expect(nrIsolatedAnon(k, 0)).toBe(0);
    expect(sameBytes(p.read(a, 3 * PG), data)).toBe(true);
    for (const pfn of held) k.folioPut(pfn);
  });

  it('a THP split relinks its pieces next to the head, and partial munmap frees the unmapped pieces from the list', async () => {
    const m = await newMachine();
    const k = m.kernel;
    const p = m.spawn();
    const a = p.mmap(2 << 20, { node: 0, thp: 'always' });
    const data = pattern(512, 3);
    p.write(a, data);
    const head = headAt(m, p, a);
    expect(k.folioOrder(head)).toBe(9);
    expect(listOf(k, 0, LRU_INACTIVE_ANON)).toEqual([head]);
    expect(lruSize(k, 0, LRU_INACTIVE_ANON)).toBe(512);
    const pieces = splitFolio(k, head, 0);
    expect(pieces).toHaveLength(512);
    // __folio_split links the pieces in address order, each just before the head: the head stays
    // the oldest, the last piece next to it, the second piece youngest.
    expect(listOf(k, 0, LRU_INACTIVE_ANON)).toEqual([...pieces.slice(1), pieces[0]]);
    expect(lruSize(k, 0, LRU_INACTIVE_ANON)).toBe(512);
    m.checkInvariants();
    p.munmap(a + 256 * PG, 256 * PG);
    expect(lruSize(k, 0, LRU_INACTIVE_ANON)).toBe(256);
    expect(listOf(k, 0, LRU_INACTIVE_ANON)).toEqual([...pieces.slice(1, 256), pieces[0]]);
    expect(sameBytes(p.read(a, 256 * PG), data.subarray(0, 256 * PG))).toBe(true);
  });

  it('munmap, copy-on-write and exit take freed folios off the lists', async () => {
    const m = await newMachine();
    const k = m.kernel;
    const p = m.spawn();
    const a = p.mmap(8 * PG, { node: 0, thp: 'never' });
    p.touch(a, 8 * PG, 'write');
    p.munmap(a, 2 * PG);
    expect(lruSize(k, 0, LRU_INACTIVE_ANON)).toBe(6);
    const child = p.fork();
    // The child's write breaks COW: a new folio (first on the list), the old one still the parent's.
    child.touch(a + 2 * PG, PG, 'write');
    expect(lruSize(k, 0, LRU_INACTIVE_ANON)).toBe(7);
    expect(listOf(k, 0, LRU_INACTIVE_ANON)[0]).toBe(headAt(m, child, a + 2 * PG));
    p.touch(a + 3 * PG, PG, 'write');
    expect(lruSize(k, 0, LRU_INACTIVE_ANON)).toBe(8);
    // The child's exit frees its own copy and the old page the parent copied away from.
    child.exit();
    expect(lruSize(k, 0, LRU_INACTIVE_ANON)).toBe(6);
    p.exit();
    expect(lruSize(k, 0, LRU_INACTIVE_ANON)).toBe(0);
    expect(k.lru.first[0]).toBe(-1);
    expect(k.lru.last[0]).toBe(-1);
  });
});

describe('the invariant checker sees a broken LRU', () => {
  it('names the rule and the folio for each kind of damage, and passes again once repaired', async () => {
    const m = await newMachine();
    const k = m.kernel;
    const p = m.spawn();
    const a = p.mmap(3 * PG, { node: 0, thp: 'never' });
    p.touch(a, 3 * PG, 'write');
    const [h0, h1, h2] = [0, 1, 2].map((i) => headAt(m, p, a + i * PG)) as [number, number, number];
    const detects = (corrupt: () => void, repair: () => void, rule: RegExp) => {
      m.checkInvariants();
      corrupt();
      let msg = '';
      try {
        m.checkInvariants();
      } catch (e) {
        msg = (e as Error).message;
        expect((e as { code?: string }).code).toBe('ERR_INVARIANT');
      }
      expect(msg).toMatch(rule);
      repair();
      m.checkInvariants();
    };
    const f = k.pages.flags;
    // A flag that names another list than the one the folio is on.
    detects(
      () => (f[h1]! |= PG_active),
      () => (f[h1]! &= ~PG_active),
      new RegExp(`at pfn ${h1} .*on the node 0 inactive_anon list but its flags name active_anon`),
    );
    // A list count that disagrees with the links.
    detects(
      () => k.lru.nrPages[LRU_INACTIVE_ANON]!++,
      () => k.lru.nrPages[LRU_INACTIVE_ANON]!--,
      /node 0 inactive_anon list holds 3 pages, its lruvec counts 4/,
    );
    // A folio in use on no list (unlinked behind the lruvec's back).
    detects(
      () => {
        k.pages.next[h2] = h0;
        k.pages.prev[h0] = h2;
        k.lru.nrPages[LRU_INACTIVE_ANON]! -= 1;
      },
      () => {
        k.pages.next[h2] = h1;
        k.pages.prev[h0] = h1;
        k.lru.nrPages[LRU_INACTIVE_ANON]! += 1;
      },
      new RegExp(`at pfn ${h1} .*PG_lru folio on no LRU list`),
    );
    // nr_isolated_anon out of step with the isolated folios.
    detects(
      () => k.lru.nrIsolated[0]!++,
      () => k.lru.nrIsolated[0]!--,
      /node 0: 0 pages isolated from the LRU, nr_isolated_anon counts 1/,
    );
  });
});

describe('folioReferenced (mm/rmap.c)', () => {
  it('tests and clears the accessed bit of every mapping; a PMD mapping counts once', async () => {
    const m = await newMachine();
    const k = m.kernel;
    const p = m.spawn();
    const a = p.mmap(PG, { node: 0, shared: true, thp: 'never' });
    p.touch(a, PG, 'write');
    const child = p.fork();
    child.touch(a, PG, 'read');
    const h = headAt(m, p, a);
    expect(folioReferenced(k, h)).toBe(2);
    expect(folioReferenced(k, h)).toBe(0);
    expect(p.pageInfo(a)).toMatchObject({ accessed: false });
    // The main thread's accesses set the bit again (through the page tables).
    p.read(a, 8);
    expect(folioReferenced(k, h)).toBe(1);
    const thp = p.mmap(2 << 20, { node: 0, thp: 'always' });
    p.touch(thp, 2 << 20, 'write');
    const th = headAt(m, p, thp);
    expect(k.folioOrder(th)).toBe(9);
    expect(folioReferenced(k, th)).toBe(1);
    expect(folioReferenced(k, th)).toBe(0);
  });

  it('sees a user thread’s loads; a thread that still caches the translation does not set the bit again', async () => {
    const m = await newMachine();
    const k = m.kernel;
    const p = m.spawn();
    const pages = 8;
    const a = p.mmap(pages * PG, { node: 0, thp: 'never' });
    p.touch(a, pages * PG, 'write');
    const heads = Array.from({ length: pages }, (_, i) => headAt(m, p, a + i * PG));
    for (const h of heads) folioReferenced(k, h);
    const go = new SharedArrayBuffer(4);
    const done = new SharedArrayBuffer(4);
    const g = new Int32Array(go);
    const d = new Int32Array(done);
    const t = p.spawnThread({
      module: ACCESS,
      export: 'rounds',
      data: { addr: a, pages, rounds: 2, go, done },
    });
    const round = async (r: number) => {
      Atomics.store(g, 0, r + 1);
      Atomics.notify(g, 0);
      while (Atomics.load(d, 0) < r + 1) {
        if (t.state === 'exited') await t.join();
        const w = Atomics.waitAsync(d, 0, Atomics.load(d, 0), 1000);
        if (w.async) await w.value;
      }
    };
    await round(0);
    // A TLB miss walks the page tables and sets the accessed bit with a compare-and-swap.
    expect(heads.map((h) => folioReferenced(k, h))).toEqual(heads.map(() => 1));
    await round(1);
    // x86: ptep_clear_flush_young flushes no TLB, so the cached translations hide these loads.
    expect(heads.map((h) => folioReferenced(k, h))).toEqual(heads.map(() => 0));
    await t.join();
    // A new thread starts with an empty TLB: its loads are seen.
    const t2 = p.spawnThread({ module: ACCESS, export: 'loads', data: { addr: a, pages } });
    await t2.join();
    expect(heads.map((h) => folioReferenced(k, h))).toEqual(heads.map(() => 1));
  });
});

/** Fills node 0 of `m` with private pages of `p` until a fault fails; returns the area and pages. */
function fillNode(p: Process, maxPages: number): { addr: number; pages: number } {
  const addr = p.mmap(maxPages * PG, { node: 0, thp: 'never' });
  let pages = 0;
  for (; pages < maxPages; pages++) {
    try {
      p.touch(addr + pages * PG, PG, 'write');
    } catch (e) {
      expect((e as { errno?: number }).errno).toBe(ENOMEM);
      break;
    }
  }
  return { addr, pages };
}

describe('direct reclaim (the directReclaim alloc hook)', () => {
  it('a user thread whose fault finds no memory sleeps through the hook, then its fault is retried and succeeds', async () => {
    const m = await newMachine({ nodes: [{ memory: '8MiB' }] });
    const k = m.kernel;
    const p = m.spawn();
    const spare = p.mmap(16 * PG, { node: 0, thp: 'never' });
    p.touch(spare, 16 * PG, 'write');
    const { addr, pages } = fillNode(p, 4096);
    expect(pages).toBeLessThan(4096);
    const calls: { order: number; nid: number; state: string; pid: number }[] = [];
    let thread: ReturnType<typeof p.spawnThread> | undefined;
    k.setAllocHook('directReclaim', async (req) => {
      await new Promise((r) => setTimeout(r, 20));
      calls.push({ order: req.order, nid: req.nid, state: thread!.state, pid: k.trace.currentTask().pid });
      // "Reclaim": free the spare area.
      p.munmap(spare, 16 * PG);
      return 16;
    });
    thread = p.spawnThread<{ text: string }>({
      module: FNS,
      data: { addr: addr + pages * PG, text: 'after direct reclaim' },
    });
    const r = (await thread.done) as { text: string };
    expect(r.text).toBe('after direct reclaim');
    // Reclaim ran as the faulting thread, which slept in its fault meanwhile.
    expect(calls).toEqual([{ order: 0, nid: 0, state: 'blocked', pid: thread.tid }]);
    expect(new TextDecoder().decode(p.read(addr + pages * PG, 20))).toBe('after direct reclaim');
  });

  it('without progress the retried fault fails with ENOMEM (VM_FAULT_OOM), as without the hook', async () => {
    const m = await newMachine({ nodes: [{ memory: '8MiB' }] });
    const p = m.spawn();
    const { addr, pages } = fillNode(p, 4096);
    let calls = 0;
    m.kernel.setAllocHook('directReclaim', async () => {
      calls++;
      return 0;
    });
    const t = p.spawnThread({ module: FNS, data: { addr: addr + pages * PG, text: 'x' } });
    await expect(t.done).rejects.toMatchObject({ code: 'ERR_USER_THREAD', errno: ENOMEM });
    await expect(t.done).rejects.toThrow(/out of memory \(VM_FAULT_OOM\)/);
    expect(calls).toBe(1);
  });

  it('the slow path reclaims after the first compaction and retries the free lists after progress', async () => {
    const m = await newMachine({ nodes: [{ memory: '8MiB' }] });
    const k = m.kernel;
    const held: number[] = [];
    for (let pfn = k.allocFolio({ order: 0, nid: 0 }); pfn >= 0; pfn = k.allocFolio({ order: 0, nid: 0 }))
      held.push(pfn);
    const steps: string[] = [];
    const hooks = {
      directCompact: async (_req: unknown, prio: number) => {
        steps.push(`compact ${prio}`);
        return { pfn: -1, attempt: { priority: prio as 0, status: 'skipped', allocated: false } };
      },
      directReclaim: async () => {
        steps.push('reclaim');
        // Every other page: room for order 0, no order-9 block.
        let n = 0;
        for (let i = held.length - 2; i >= 0 && n < 300; i -= 2, n++) k.folioPut(held.splice(i, 1)[0]!);
        return n;
      },
    };
    // Order 0 never compacts; reclaim makes room and the retry succeeds.
    const r0 = await k.allocFolioSlowpath({ order: 0, nid: 0 }, hooks);
    expect(r0.pfn).toBeGreaterThanOrEqual(0);
    expect(steps).toEqual(['reclaim']);
    held.push(r0.pfn);
    // A costly order compacts asynchronously, then reclaims, then compacts at sync-light if the
    // retry failed (its order-9 block is not there: only scattered pages were freed).
    steps.length = 0;
    hooks.directReclaim = async () => {
      steps.push('reclaim');
      return 0;
    };
    const r9 = await k.allocFolioSlowpath({ order: 9, nid: 0 }, hooks);
    expect(r9.pfn).toBe(-1);
    expect(steps).toEqual(['compact 2', 'reclaim', 'compact 1']);
    for (const pfn of held) k.folioPut(pfn);
  });

  it('allocFolio wakes kswapd whenever the low watermark pass fails, order 0 included, even if the min pass succeeds', async () => {
    const m = await newMachine({ nodes: [{ memory: '8MiB' }] });
    const k = m.kernel;
    const woken: string[] = [];
    const off = k.setAllocHook('wakeKswapd', (nid, order) => woken.push(`${nid}:${order}`));
    const z = k.zones[0]!;
    const held: number[] = [];
    while (z.freePages > z.watermark[WMARK_LOW]!) held.push(k.allocFolio({ order: 0, nid: 0 }));
    await Promise.resolve();
    expect(woken).toEqual([]);
    // Now the low-watermark check fails; the min one still lets this allocation through.
    const pfn = k.allocFolio({ order: 0, nid: 0 });
    expect(pfn).toBeGreaterThanOrEqual(0);
    expect(k.lowWmarkFailed).toBe(true);
    expect(woken).toEqual([]);
    await Promise.resolve();
    expect(woken).toEqual(['0:0']);
    // A request without __GFP_KSWAPD_RECLAIM wakes nobody.
    k.folioPut(k.allocFolio({ order: 0, nid: 0, kswapdReclaim: false }));
    await Promise.resolve();
    expect(woken).toEqual(['0:0']);
    off();
    k.folioPut(pfn);
    for (const h of held) k.folioPut(h);
  });
});
