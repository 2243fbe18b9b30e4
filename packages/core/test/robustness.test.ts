import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { EAGAIN, EFAULT, EINVAL, ENOENT, ENOMEM, PagemigError } from '../src/errno.js';
import { FaultPlan } from '../src/fault_inject.js';
import { hostTasks, setHostTaskLimit } from '../src/kernel.js';
import { createMachine, type Machine } from '../src/machine.js';
import { MPOL_MF_MOVE, MPOL_MF_MOVE_ALL } from '../src/mempolicy.js';
import { isolateFolios, migratePages } from '../src/migrate.js';
import { defineMigrator } from '../src/migrator.js';
import { MIGRATE_MOVABLE, PAGE_SIZE } from '../src/mmzone.js';
import { PG_isolated } from '../src/page.js';
import {
  PageTables,
  PMD_HUGE,
  PTE_MIGRATION,
  PTE_PFN_SHIFT,
  PTE_PRESENT,
  PTE_WRITE,
} from '../src/pagetable.js';
import { type MmWalkOps, pageEntry, walkPageRange } from '../src/pagewalk.js';
import type { Process } from '../src/process.js';
import {
  catchPagemig,
  expectErrno,
  gateMigrator,
  machinesCheckedAfterEach,
  pattern,
  sameBytes,
} from './helpers.js';

/** Issue 15, the "unbreakable machine": bad input, throws mid-way, fork mid-migration, close, limits. */

const PG = PAGE_SIZE;
const machine = machinesCheckedAfterEach();

/** Pfns whose folio is still isolated (PG_isolated): after a call returns there must be none. */
function isolated(m: Machine): number[] {
  const f = m.kernel.pages.flags;
  const out: number[] = [];
  for (let pfn = 0; pfn < m.nrPages; pfn++) if (f[pfn]! & PG_isolated) out.push(pfn);
  return out;
}

/** Migration entries left in any live process's page tables. */
function migrationEntries(m: Machine): number {
  let n = 0;
  const count = (e: number) => {
    if ((e & (PTE_PRESENT | PTE_MIGRATION)) === PTE_MIGRATION) n++;
  };
  const ops: MmWalkOps = { pmdEntry: (_pt, _i, e) => count(e), pteEntry: (_pt, _i, e) => count(e) };
  for (const p of m.kernel.processes.values())
    for (const vma of p.mm.vmas) walkPageRange(p.mm.pt, vma.startVpn, vma.endVpn, ops);
  return n;
}

/** The machine is whole: invariants, nothing isolated, no migration entry, no run in flight. */
function expectSettled(m: Machine): void {
  m.checkInvariants();
  expect(isolated(m)).toEqual([]);
  expect(migrationEntries(m)).toBe(0);
  expect(m.kernel.migrations.size).toBe(0);
}

function freeTotal(m: Machine): number {
  return m.nodes.reduce((s, n) => s + m.freePages(n.nid), 0);
}

/** A region of `pages` pages on node 0 filled with a pattern. */
function region(p: Process, pages: number, opts: { thp?: 'never' | 'always' | '64KiB'; node?: number } = {}) {
  const bytes = pages * PG;
  const a = p.mmap(bytes, { thp: opts.thp ?? 'never', node: opts.node ?? 0 });
  const data = pattern(pages, pages);
  p.write(a, data);
  return { a, bytes, data, addrs: Array.from({ length: pages }, (_, i) => a + i * PG) };
}

/** A migrator that never settles and ignores its abort signal. */
const hungMigrator = (name = 'hung') => gateMigrator(name).migrator;

describe('a throw inside move_pages / the engine leaves nothing isolated', () => {
  it('a frozen status array: -1 EFAULT after the queued page moved; nothing stays isolated or leaks', async () => {
    const m = await machine();
    const free0 = freeTotal(m);
    const p = m.spawn();
    const r = region(p, 2);
    // The second page is already on node 1.
    expect((await p.movePages(0, [r.addrs[1]!], [1], MPOL_MF_MOVE)).ret).toBe(0);
    const status = Object.freeze([0, 0]) as number[];
    const res = await p.movePages(0, r.addrs, [1, 1], MPOL_MF_MOVE, status);
    // store_status failed: out_flush migrates the queued page, then the call fails with EFAULT.
    expect(res).toMatchObject({ ret: -1, errno: EFAULT });
    expectSettled(m);
    expect(p.pageInfo(r.a)!.node).toBe(1);
    // Before the fix page a stayed isolated for ever: every later move got -EBUSY.
    expect(await p.movePages(0, r.addrs, [0, 0], MPOL_MF_MOVE)).toEqual({ ret: 0, status: [0, 0] });
    expect(sameBytes(p.read(r.a, r.bytes), r.data)).toBe(true);
    // Query mode with a status it cannot write is EFAULT too; a primitive status as well.
    expect(await p.movePages(0, r.addrs, null, 0, status)).toMatchObject({ ret: -1, errno: EFAULT });
    expect(await p.movePages(0, r.addrs, [1, 1], 0, 7 as never)).toMatchObject({ ret: -1, errno: EFAULT });
    expect(await p.movePages(0, r.addrs, [1, 1], 0, 'ab' as never)).toMatchObject({ ret: -1, errno: EFAULT });
    expectSettled(m);
    p.exit();
    // exit() freed everything: no folio leaked.
    expect(freeTotal(m)).toBe(free0);
  });

  it('a hook that throws mid-batch (after some folios were unmapped): mappings restored, destinations freed', async () => {
    const m = await machine();
    const p = m.spawn();
    const r = region(p, 8);
    const k = m.kernel;
    const pfns = r.addrs.map((x) => p.pageInfo(x)!.pfn);
    const free1 = m.freePages(1);
    const { heads } = isolateFolios(k, pfns);
    let n = 0;
    const err = await migratePages(k, heads, {
      node: 1,
      alloc: (_src, order) => {
        if (++n === 5) throw new Error('get_new_folio exploded');
        return k.allocFolio({ order, nid: 1, thisNode: true, mt: MIGRATE_MOVABLE, kswapdReclaim: false });
      },
    }).catch((e: unknown) => e);
    expect((err as Error).message).toBe('get_new_folio exploded');
    expectSettled(m);
    expect(m.freePages(1)).toBe(free1);
    expect(r.addrs.map((x) => p.pageInfo(x)!.node)).toEqual(new Array(8).fill(0));
    expect(sameBytes(p.read(r.a, r.bytes), r.data)).toBe(true);
    expect((await p.movePages(0, r.addrs, new Array(8).fill(1), MPOL_MF_MOVE)).ret).toBe(0);
    expect(sameBytes(p.read(r.a, r.bytes), r.data)).toBe(true);
  });

  it('a migrator that throws (even an unprintable value) in copyBatch: the CPU copies, nothing stays isolated', async () => {
    for (const thrown of [new Error('driver bug'), Object.create(null) as object]) {
      const m = await machine();
      const p = m.spawn();
      const r = region(p, 16);
      const { migrator } = gateMigrator('thrower', {
        copyBatch() {
          throw thrown;
        },
      });
      await m.offload.register(migrator);
      const res = await p.movePages(0, r.addrs, new Array(16).fill(1), MPOL_MF_MOVE);
      expect(res.ret).toBe(0);
      expect(m.offload.status()[0]!.failures).toBe(1);
      expect(m.offload.log.at(-1)).toMatch(/^warn: thrower: batch failed/);
      expectSettled(m);
      expect(sameBytes(p.read(r.a, r.bytes), r.data)).toBe(true);
    }
  });

  it('a migrator whose promise rejects with a thenable or a Proxy that throws on every read: the CPU copies, the failure is counted', async () => {
    const hostile = new Proxy(
      {},
      {
        get() {
          throw new Error('trap');
        },
      },
    );
    const reasons: [string, () => unknown][] = [
      ['a Proxy', () => Promise.reject(hostile)],
      // biome-ignore lint/suspicious/noThenProperty: a thenable rejection value is the case under test
      ['a thenable', () => Promise.reject({ then: () => {} })],
      [
        'a Proxy, through a thenable',
        // biome-ignore lint/suspicious/noThenProperty: a migrator returning a thenable is the case under test
        () => ({ then: (_: unknown, rej: (e: unknown) => void) => rej(hostile) }),
      ],
    ];
    for (const [what, copyBatch] of reasons) {
      const m = await machine();
      const p = m.spawn();
      const r = region(p, 8);
      const { migrator } = gateMigrator('rejecter', { copyBatch: copyBatch as never });
      await m.offload.register(migrator);
      const res = await p.movePages(0, r.addrs, new Array(8).fill(1), MPOL_MF_MOVE);
      expect(res, what).toEqual({ ret: 0, status: new Array(8).fill(1) });
      expect(m.offload.status()[0]!.failures, what).toBe(1);
      expect(m.offload.log.at(-1)).toMatch(/^warn: rejecter: batch failed, copied on the CPU instead: /);
      expectSettled(m);
      expect(sameBytes(p.read(r.a, r.bytes), r.data), what).toBe(true);
    }
  });

  it('a trace listener that throws cannot break a migration: the event goes on, the error is kept', async () => {
    const m = await machine();
    const p = m.spawn();
    const r = region(p, 4);
    m.trace.on('migrate:mm_migrate_pages_start', () => {
      throw new Error('listener bug');
    });
    const res = await p.movePages(0, r.addrs, [1, 1, 1, 1], MPOL_MF_MOVE);
    expect(res).toEqual({ ret: 0, status: [1, 1, 1, 1] });
    expect(m.trace.listenerErrors).toHaveLength(1);
    expect((m.trace.listenerErrors[0]!.error as Error).message).toBe('listener bug');
    expectSettled(m);
    expect(sameBytes(p.read(r.a, r.bytes), r.data)).toBe(true);
  });
});

describe('fork() while a migration is in flight (copy_nonpresent_pte)', () => {
  for (const [what, thp, pages] of [
    ['4 KiB pages', 'never', 8],
    ['a PMD-mapped THP', 'always', 512],
    ['64 KiB mTHP', '64KiB', 32],
  ] as const) {
    it(`${what}: the child gets read-only migration entries; the remap maps the new folio in both`, async () => {
      const m = await machine();
      const parent = m.spawn();
      const r = region(parent, pages, { thp });
      const vpn = (r.a - 0x7f00_0000_0000) / PG;
      const gate = gateMigrator();
      await m.offload.register(gate.migrator);
      const moving = parent.movePages(0, r.addrs, new Array(pages).fill(1), MPOL_MF_MOVE);
      await gate.running;
      // Mid-flight: the parent's entries are migration entries. Before the fix fork threw EBUSY
      // and left a half-built child registered.
      const pe = pageEntry(parent.mm.pt, vpn);
      expect(pe & PTE_PRESENT).toBe(0);
      expect(pe & PTE_MIGRATION).toBe(PTE_MIGRATION);
      const child = parent.fork();
      const ce = pageEntry(child.mm.pt, vpn);
      expect(ce & (PTE_PRESENT | PTE_MIGRATION)).toBe(PTE_MIGRATION);
      expect(ce >>> PTE_PFN_SHIFT).toBe(pe >>> PTE_PFN_SHIFT);
      expect(ce & PTE_WRITE).toBe(0);
      expect(pageEntry(parent.mm.pt, vpn) & PTE_WRITE).toBe(0);
      expect((ce & PMD_HUGE) !== 0).toBe(thp === 'always');
      m.checkInvariants();
      gate.release();
      const res = await moving;
      expect(res.ret).toBe(0);
      expectSettled(m);
      // Both map the same new folio on node 1, counted twice (remove_migration_pte found both).
      const pi = parent.pageInfo(r.a)!;
      const ci = child.pageInfo(r.a)!;
      expect(pi).toMatchObject({ node: 1, writable: false });
      expect(ci).toMatchObject({ node: 1, pfn: pi.pfn, huge: pi.huge, writable: false });
      expect(m.kernel.pages.mapcount[pi.headPfn]).toBe(thp === 'never' ? 2 : 2 * (thp === 'always' ? 1 : 16));
      expect(sameBytes(child.read(r.a, r.bytes), r.data)).toBe(true);
      // Copy-on-write works: the child's write does not reach the parent.
      child.write(r.a, new Uint8Array([1, 2, 3]));
      expect(sameBytes(parent.read(r.a, r.bytes), r.data)).toBe(true);
      expect(Array.from(child.read(r.a, 3))).toEqual([1, 2, 3]);
      m.checkInvariants();
      child.exit();
      parent.exit();
      expectSettled(m);
    });
  }

  it('a migration that fails after the fork restores the old folio in parent and child', async () => {
    const m = await machine();
    const parent = m.spawn();
    const r = region(parent, 2);
    const held = parent.pageInfo(r.addrs[0]!)!.pfn;
    m.folioGet(held); // an extra reference: page 0 cannot move (-EAGAIN), page 1 can
    const gate = gateMigrator();
    await m.offload.register(gate.migrator);
    const moving = parent.movePages(0, r.addrs, [1, 1], MPOL_MF_MOVE);
    await gate.running;
    const child = parent.fork();
    gate.release();
    const res = await moving;
    expect(res.ret).toBe(1);
    expectSettled(m);
    expect(parent.pageInfo(r.addrs[0]!)).toMatchObject({ node: 0, pfn: held });
    expect(child.pageInfo(r.addrs[0]!)).toMatchObject({ node: 0, pfn: held });
    expect(child.pageInfo(r.addrs[1]!)!.node).toBe(1);
    expect(m.kernel.pages.mapcount[held]).toBe(2);
    expect(sameBytes(child.read(r.a, r.bytes), r.data)).toBe(true);
    m.folioPut(held);
  });

  it('a fork that fails mid-copy leaves no half-built child: no pid, no mapping, no reference', async () => {
    const m = await machine();
    const free0 = freeTotal(m);
    const parent = m.spawn();
    region(parent, 4);
    // 512 pages: aligned to a new PMD, so the child needs a second page table for it.
    const r2 = region(parent, 512);
    const procs = m.kernel.processes.size;
    const vma = parent.mm.findVma((r2.a - 0x7f00_0000_0000) / PG)!;
    const owners = vma.mapping.vmas.size;
    // The host refuses the child's second page table (as a failed SharedArrayBuffer grow would).
    const alloc = PageTables.prototype.allocTable;
    let calls = 0;
    PageTables.prototype.allocTable = function (this: PageTables, pmdIdx: number) {
      if (++calls === 2) throw new RangeError('Array buffer allocation failed');
      return alloc.call(this, pmdIdx);
    };
    try {
      expectErrno(() => parent.fork(), ENOMEM, 'ENOMEM');
    } finally {
      PageTables.prototype.allocTable = alloc;
    }
    expect(m.kernel.processes.size).toBe(procs);
    expect(vma.mapping.vmas.size).toBe(owners);
    expectSettled(m);
    const child = parent.fork();
    expect(sameBytes(child.read(r2.a, r2.bytes), r2.data)).toBe(true);
    child.exit();
    parent.exit();
    // Every folio the failed fork mapped was given back.
    expect(freeTotal(m)).toBe(free0);
  });
});

describe('munmap() and exit() while a migration is in flight (zap_nonpresent_ptes)', () => {
  for (const [what, thp, pages, lo, hi] of [
    ['4 KiB pages, the middle unmapped', 'never', 8, 2, 6],
    ['a PMD-mapped THP, unmapped whole', 'always', 512, 0, 512],
    ['a PMD-mapped THP, its first half unmapped (the migration entry is split)', 'always', 512, 0, 256],
    ['64 KiB mTHPs, one and a half unmapped', '64KiB', 32, 8, 32],
  ] as const) {
    it(`${what}: the entries are dropped, the rest moves with its bytes, nothing leaks`, async () => {
      const m = await machine();
      const free0 = freeTotal(m);
      const p = m.spawn();
      const r = region(p, pages, { thp });
      const gate = gateMigrator();
      await m.offload.register(gate.migrator);
      // One address per folio: a second address of a folio under migration is -EBUSY and makes
      // move_pages migrate what it queued before going on.
      const step = thp === 'always' ? 512 : thp === '64KiB' ? 16 : 1;
      const heads = r.addrs.filter((_, i) => i % step === 0);
      const status = new Array<number>(heads.length).fill(0);
      const moving = p.movePages(0, heads, new Array(heads.length).fill(1), MPOL_MF_MOVE, status);
      await gate.running;
      expect(migrationEntries(m)).toBe(thp === 'always' ? 1 : pages);
      // Before, this threw EBUSY ("await the migration first") and changed nothing.
      p.munmap(r.a + lo * PG, (hi - lo) * PG);
      m.checkInvariants();
      expect(p.pageInfo(r.a + lo * PG)).toBeNull();
      gate.release();
      const res = await moving;
      expect(res.ret).toBe(0);
      expect(status).toEqual(new Array(heads.length).fill(1));
      expectSettled(m);
      // What stayed mapped moved to node 1 with its bytes.
      for (const [a, b] of [
        [0, lo],
        [hi, pages],
      ] as const) {
        if (a === b) continue;
        expect(p.pageInfo(r.a + a * PG)!.node).toBe(1);
        expect(sameBytes(p.read(r.a + a * PG, (b - a) * PG), r.data.subarray(a * PG, b * PG))).toBe(true);
      }
      p.exit();
      expectSettled(m);
      expect(freeTotal(m)).toBe(free0);
    });
  }

  it('exit() of the process whose pages kcompactd-style migration moves: its folios are freed after the move', async () => {
    const m = await machine();
    const free0 = freeTotal(m);
    const p = m.spawn();
    const r = region(p, 16);
    const q = m.spawn();
    const keep = region(q, 4);
    const gate = gateMigrator();
    await m.offload.register(gate.migrator, 'compaction');
    const pfns = r.addrs.map((a) => p.pageInfo(a)!.pfn);
    const keepPfns = keep.addrs.map((a) => q.pageInfo(a)!.pfn);
    const moving = m.migrateFolios([...pfns, ...keepPfns], { node: 1, reason: 'compaction' });
    await gate.running;
    p.exit();
    m.checkInvariants();
    gate.release();
    const res = await moving;
    expect(res.ret).toBe(0);
    expect(res.nrSucceeded).toBe(20);
    expectSettled(m);
    expect(keep.addrs.map((a) => q.pageInfo(a)!.node)).toEqual([1, 1, 1, 1]);
    expect(sameBytes(q.read(keep.a, keep.bytes), keep.data)).toBe(true);
    q.exit();
    expectSettled(m);
    expect(freeTotal(m)).toBe(free0);
  });

  it('exit() during its own move_pages: the call still returns its result, and every folio is freed', async () => {
    const m = await machine();
    const free0 = freeTotal(m);
    const p = m.spawn();
    const r = region(p, 8);
    const gate = gateMigrator();
    await m.offload.register(gate.migrator);
    const status = new Array<number>(8).fill(0);
    const moving = p.movePages(0, r.addrs, new Array(8).fill(1), MPOL_MF_MOVE, status);
    await gate.running;
    p.exit();
    m.checkInvariants();
    gate.release();
    expect((await moving).ret).toBe(0);
    expect(status).toEqual(new Array(8).fill(1));
    expectSettled(m);
    expect(freeTotal(m)).toBe(free0);
  });

  it('a shared mapping unmapped by its last mapper: its page cache goes, the folio under migration is freed', async () => {
    const m = await machine();
    const free0 = freeTotal(m);
    const p = m.spawn();
    const a = p.mmap(4 * PG, { shared: true, node: 0 });
    const data = pattern(4, 9);
    p.write(a, data);
    const addrs = [0, 1, 2, 3].map((i) => a + i * PG);
    const gate = gateMigrator();
    await m.offload.register(gate.migrator);
    const moving = p.movePages(0, addrs, [1, 1, 1, 1], MPOL_MF_MOVE);
    await gate.running;
    p.munmap(a, 4 * PG);
    m.checkInvariants();
    // A new shared mapping may take the released one's id while the migration is in flight.
    const b = p.mmap(4 * PG, { shared: true, node: 0 });
    const other = pattern(4, 10);
    p.write(b, other);
    gate.release();
    // The pages were freed from under the migration: done, as migrate_folio_unmap counts them.
    expect(await moving).toEqual({ ret: 0, status: [1, 1, 1, 1] });
    expect(sameBytes(p.read(b, 4 * PG), other)).toBe(true);
    expect([0, 1, 2, 3].map((i) => p.pageInfo(b + i * PG)!.node)).toEqual([0, 0, 0, 0]);
    expectSettled(m);
    p.exit();
    expectSettled(m);
    expect(freeTotal(m)).toBe(free0);
  });
});

describe('a closed machine starts nothing', () => {
  it('every call that would start work throws ERR_MACHINE_CLOSED; a second close is harmless', async () => {
    const m = await machine();
    const p = m.spawn();
    const r = region(p, 4);
    const pfn = p.pageInfo(r.a)!.pfn;
    const { migrator } = gateMigrator();
    expect(m.closed).toBe(false);
    await Promise.all([m.close(), m.close()]);
    await m.close();
    expect(m.closed).toBe(true);
    const closed = (fn: () => unknown) =>
      expect(catchPagemig(fn)).toMatchObject({ code: 'ERR_MACHINE_CLOSED', errno: EINVAL });
    const closedAsync = (pr: Promise<unknown>) =>
      expect(pr).rejects.toMatchObject({ code: 'ERR_MACHINE_CLOSED', errno: EINVAL });
    closed(() => m.spawn());
    closed(() => m.sysctl.write('vm.min_free_kbytes', 1024));
    closed(() => m.injectFaults([{ site: 'alloc_dst' }]));
    closed(() => m.folioGet(pfn));
    closed(() => m.pinFolio(pfn));
    closed(() => m.splitFolio(pfn, 0));
    closed(() => m.assertOpen('attachKcompactd'));
    closed(() => p.mmap(PG));
    closed(() => p.fork());
    closed(() => p.write(r.a, new Uint8Array(1)));
    closed(() => p.touch(r.a, PG));
    await closedAsync(m.offload.register(migrator));
    await closedAsync(m.offload.route('compaction', migrator));
    await closedAsync(m.migrateFolios([pfn], { node: 1 }));
    await closedAsync(p.movePages(0, [r.a], [1], MPOL_MF_MOVE));
    await closedAsync(p.migratePages(0, [0], [1]));
    // Reading is not work: the views still answer.
    expect(m.sysctl.read('vm.min_free_kbytes')).toMatch(/^\d+\n$/);
    expect(m.injectFaults(null)).toBeNull();
    expect(m.offload.status()).toEqual([]);
    expect(m.kernel.processes.size).toBe(0);
  });

  it('close() during a migration waits for it: the run finishes, then the processes exit', async () => {
    const m = await machine({
      sysctl: { 'vm.migrate_copy_timeout_ms': 30, 'vm.migrate_abort_grace_ms': 10 },
    });
    const free0 = freeTotal(m);
    const p = m.spawn();
    const r = region(p, 8);
    await m.offload.register(hungMigrator());
    const moving = p.movePages(0, r.addrs, new Array(8).fill(1), MPOL_MF_MOVE);
    await new Promise((res) => setTimeout(res, 5));
    await m.close();
    expect((await moving).ret).toBe(0);
    expect(p.exited).toBe(true);
    expect(freeTotal(m)).toBe(free0);
    m.checkInvariants();
  });
});

describe('process limits: kernel.threads-max, kernel.pid_max and the host budget (EAGAIN)', () => {
  it('the sysctls read and write with the kernel names and ranges', async () => {
    const m = await machine();
    const s = m.sysctl;
    expect(s.read('kernel.pid_max')).toBe('32768\n');
    expect(s.read('/proc/sys/kernel/threads-max')).toBe('8192\n');
    expect(s.write('kernel.pid_max', 300)).toBe(EINVAL);
    expect(s.write('kernel.pid_max', 4194305)).toBe(EINVAL);
    expect(s.write('kernel.pid_max', 301)).toBe(0);
    expect(s.write('kernel.threads-max', 0)).toBe(EINVAL);
    expect(s.write('kernel.threads-max', '100')).toBe(0);
    expect(s.read('kernel.threads-max')).toBe('100\n');
    const c = await machine({ sysctl: { 'kernel.threads-max': 50 } });
    expect(c.sysctl.read('kernel.threads-max')).toBe('50\n');
  });

  it('threads-max: spawn and fork beyond it are EAGAIN and build nothing; an exit makes room', async () => {
    const m = await machine();
    expect(m.sysctl.write('kernel.threads-max', 20)).toBe(0);
    const root = m.spawn();
    const r = region(root, 4);
    const procs = [root];
    while (procs.length < 20) procs.push(procs.length % 2 ? root.fork() : m.spawn());
    const free = freeTotal(m);
    expectErrno(() => root.fork(), EAGAIN, 'EAGAIN');
    const e = expectErrno(() => m.spawn(), EAGAIN, 'EAGAIN');
    expect(e.message).toMatch(/kernel\.threads-max is 20/);
    expect(m.kernel.processes.size).toBe(20);
    expect(freeTotal(m)).toBe(free);
    procs.pop()!.exit();
    const child = root.fork();
    expect(sameBytes(child.read(r.a, r.bytes), r.data)).toBe(true);
    m.checkInvariants();
  });

  it('pid_max: pids are handed out cyclically from RESERVED_PIDS; none free is EAGAIN', async () => {
    const m = await machine();
    expect(m.sysctl.write('kernel.pid_max', 310)).toBe(0);
    const procs: Process[] = [];
    for (let i = 1; i < 310; i++) procs.push(m.spawn());
    expect(procs.at(-1)!.pid).toBe(309);
    expect(expectErrno(() => m.spawn(), EAGAIN).message).toMatch(/pid_max 310/);
    procs[302]!.exit(); // pid 303
    procs[4]!.exit(); // pid 5: below RESERVED_PIDS, not reused after the wrap
    expect(m.spawn().pid).toBe(303);
    expectErrno(() => m.spawn(), EAGAIN);
  });

  it('the host-wide budget of emulated processes (vm.max_map_count) is EAGAIN, never a V8 abort', async () => {
    const m = await machine();
    const p = m.spawn();
    const old = setHostTaskLimit(hostTasks() + 2);
    try {
      expect(old).toBeGreaterThan(1000);
      p.fork();
      m.spawn();
      const e = expectErrno(() => p.fork(), EAGAIN, 'EAGAIN');
      expect(e.message).toMatch(/host process already runs \d+ emulated processes.*max_map_count/);
      expectErrno(() => m.spawn(), EAGAIN);
    } finally {
      setHostTaskLimit(null);
    }
    p.fork();
  });
});

describe('bad input gets a coded PagemigError and changes nothing', () => {
  it('read, write, touch and munmap past a mapping or with the wrong types', async () => {
    const m = await machine();
    const p = m.spawn();
    const r = region(p, 4);
    const hole = p.mmap(2 * PG);
    expectErrno(() => p.read(r.a, 2 ** 40), EFAULT, 'EFAULT');
    expectErrno(() => p.read(null as never, 4), EFAULT);
    expectErrno(() => p.read(Symbol('x') as never, 4), EFAULT);
    expectErrno(() => p.touch(r.a, 2 ** 40), EFAULT);
    expectErrno(() => p.touch(hole, 3 * PG), EFAULT);
    expect(p.pageInfo(hole)).toBeNull(); // nothing was touched before the bad page
    expectErrno(() => p.write(r.a, 'str' as never), EINVAL, 'EINVAL');
    expectErrno(() => p.write(r.a, null as never), EINVAL);
    expectErrno(() => p.write(r.a, new Float64Array([1.5, 2]) as never), EINVAL);
    expectErrno(() => p.write(r.a, new DataView(new ArrayBuffer(8)) as never), EINVAL);
    expectErrno(() => p.write(hole + PG, new Uint8Array(2 * PG).fill(7)), EFAULT);
    expect(p.pageInfo(hole + PG)).toBeNull(); // no partial write
    expectErrno(() => p.munmap(r.a, 2 ** 50), EINVAL);
    expectErrno(() => p.munmap(null as never, PG), EINVAL);
    expectErrno(() => p.mmap(PG, null as never), EINVAL);
    expectErrno(() => p.mmap(PG, { shared: 'yes' as never }), EINVAL);
    expectErrno(() => p.mmap(PG, { policy: null as never }), EINVAL);
    expectErrno(() => p.mmap(PG, { policy: { mode: 'bind' } as never }), EINVAL);
    // Buffer is a Uint8Array: accepted.
    p.write(r.a, Buffer.from([9, 9]));
    r.data[0] = 9;
    r.data[1] = 9;
    expect(sameBytes(p.read(r.a, r.bytes), r.data)).toBe(true);
    expectSettled(m);
  });

  it('spawn options: a uid_t, booleans, node lists; nothing is started', async () => {
    const m = await machine();
    const before = m.kernel.processes.size;
    for (const bad of [
      null,
      5,
      { uid: Number.NaN },
      { uid: -1 },
      { uid: 2 ** 32 - 1 },
      { privileged: 'yes' },
      { memsAllowed: 3 },
      { memsAllowed: [7] },
      { node: 'x' },
      { comm: 42 },
    ]) {
      expect(catchPagemig(() => m.spawn(bad as never)).errno, JSON.stringify(bad)).toBe(EINVAL);
    }
    expect(m.kernel.processes.size).toBe(before);
    expect(m.spawn({ uid: 0, privileged: true }).uid).toBe(0);
  });

  it('sysctl names that are not strings throw EINVAL; values that are not numbers are EINVAL', async () => {
    const m = await machine();
    expectErrno(() => m.sysctl.write(null as never, 1), EINVAL, 'EINVAL');
    expectErrno(() => m.sysctl.read(undefined as never), EINVAL);
    expect(m.sysctl.write('vm.min_free_kbytes', {} as never)).toBe(EINVAL);
    expect(m.sysctl.write('vm.min_free_kbytes', null as never)).toBe(EINVAL);
    expect(m.sysctl.write('vm.nope', 1)).toBe(ENOENT);
  });

  it('migrateFolios: pfns and options are checked before anything is isolated', async () => {
    const m = await machine();
    const p = m.spawn();
    const r = region(p, 4);
    const pfns = r.addrs.map((x) => p.pageInfo(x)!.pfn);
    for (const [args, what] of [
      [[null, { node: 1 }], 'null pfns'],
      [[7, { node: 1 }], 'a number'],
      [[pfns], 'no options'],
      [[pfns, null], 'null options'],
      [[pfns, { node: 1, clock: 'modelled' }], 'a clock typo'],
      [[pfns, { node: 1, profile: null }], 'a null profile'],
      [[pfns, { node: 1, copyTimeoutMs: 2 ** 40 }], 'a timer Node cannot keep'],
      [[pfns, { node: 1, abortGraceMs: Number.POSITIVE_INFINITY }], 'an endless grace'],
    ] as const) {
      await expect(
        (m.migrateFolios as (...a: unknown[]) => Promise<unknown>)(...args),
        what,
      ).rejects.toMatchObject({ errno: EINVAL, code: 'EINVAL' });
      expectSettled(m);
    }
  });

  it('copyTimeoutMs NaN, -1, 0, "x": EINVAL, and the migrator stays enabled and in use', async () => {
    const m = await machine();
    const p = m.spawn();
    const r = region(p, 4);
    const pfns = r.addrs.map((x) => p.pageInfo(x)!.pfn);
    let copied = 0;
    const { migrator } = gateMigrator('copier', {
      copyBatch(batch) {
        copied += batch.rows;
      },
    });
    await m.offload.register(migrator);
    for (const copyTimeoutMs of [Number.NaN, -1, 0, 'x'])
      await expect(
        m.migrateFolios(pfns, { node: 1, copyTimeoutMs: copyTimeoutMs as number }),
      ).rejects.toMatchObject({
        errno: EINVAL,
      });
    expect(m.offload.status()[0]).toMatchObject({ disabled: null, failures: 0, batches: 0 });
    expectSettled(m);
    expect((await m.migrateFolios(pfns, { node: 1 })).ret).toBe(0);
    expect(copied).toBe(4);
  });

  it('fault plans: bad counts, unknown actions or keys, and driver sites nobody honours are refused', async () => {
    const m = await machine();
    const bad: unknown[] = [
      'alloc_dst',
      undefined,
      [null],
      [{ site: 'alloc_dst', times: Number.NaN }],
      [{ site: 'alloc_dst', times: 0 }],
      [{ site: 'migrator_call', action: 'explode' }],
      [{ site: 'copy_row', action: 'throw' }],
      [{ site: 'alloc_dst', action: 'throw' }],
      [{ site: 'alloc_dst', time: 3 }],
      [{ site: 'alloc_dst', match: { nodes: 1 } }],
      [{ site: 'device_hang', timeoutMs: -5 }],
    ];
    for (const rules of bad) {
      const e = catchPagemig(() => m.injectFaults(rules as never));
      expect(e, JSON.stringify(rules)).toMatchObject({ code: 'ERR_INVALID_FAULT_PLAN', errno: EINVAL });
    }
    expect(() => new FaultPlan([{ site: 'copy_row', nth: 0 }])).toThrow(PagemigError);
    expect(m.faults).toBeNull();
    // Driver sites: only when a migrator in use declares them (else the rule would never fire).
    const site = [{ site: 'copy_row' as const, action: 'skip' as const }];
    expect(catchPagemig(() => m.injectFaults(site)).message).toMatch(/none is registered or routed/);
    const plain = gateMigrator('plain').migrator;
    await m.offload.register(plain);
    expect(catchPagemig(() => m.injectFaults(site)).message).toMatch(/plain \(declares none\)/);
    const honest = gateMigrator('honest', {
      capabilities: {
        offloadsCpu: true,
        channels: 1,
        maxInFlightBatches: 1,
        needsSharedMemory: false,
        faultSites: ['copy_row'],
      },
    }).migrator;
    await m.offload.route('compaction', honest);
    expect(m.injectFaults(site)!.rules).toHaveLength(1);
    expect(catchPagemig(() => m.injectFaults([{ ...site[0]!, match: { migrator: 'plain' } }])).code).toBe(
      'ERR_INVALID_FAULT_PLAN',
    );
    expect(
      m.injectFaults([{ site: 'migrator_call', action: 'partial', times: Number.POSITIVE_INFINITY }]),
    ).not.toBeNull();
  });

  it('folioPut without a folioGet is EINVAL: it would free a mapped folio', async () => {
    const m = await machine();
    const p = m.spawn();
    const r = region(p, 1);
    const pfn = p.pageInfo(r.a)!.pfn;
    expectErrno(() => m.folioPut(pfn), EINVAL);
    m.folioGet(pfn);
    m.folioPut(pfn);
    expectErrno(() => m.folioPut(pfn), EINVAL);
    expect(sameBytes(p.read(r.a, r.bytes), r.data)).toBe(true);
    expectSettled(m);
  });
});

describe("the batch copy timeout is a sysctl (vm.migrate_copy_timeout_ms, pagemig's own)", () => {
  it('defaults to 10 s and 1 s; move_pages and migrate_pages(2) under a hung migrator wait only that long', async () => {
    const m = await machine();
    expect(m.sysctl.read('vm.migrate_copy_timeout_ms')).toBe('10000\n');
    expect(m.sysctl.read('vm.migrate_abort_grace_ms')).toBe('1000\n');
    expect(m.sysctl.write('vm.migrate_copy_timeout_ms', 0)).toBe(EINVAL);
    expect(m.sysctl.write('vm.migrate_copy_timeout_ms', 40)).toBe(0);
    expect(m.sysctl.write('vm.migrate_abort_grace_ms', 20)).toBe(0);
    const p = m.spawn({ privileged: true });
    const r = region(p, 8);
    await m.offload.register(hungMigrator('stuck'));
    const t0 = performance.now();
    const res = await p.movePages(0, r.addrs, new Array(8).fill(1), MPOL_MF_MOVE_ALL);
    // Before: 10 s of timeout and 1 s of grace before the CPU took over.
    expect(performance.now() - t0).toBeLessThan(2000);
    expect(res.ret).toBe(0);
    expect(sameBytes(p.read(r.a, r.bytes), r.data)).toBe(true);
    // The log says what was waited for and which knob set the time.
    expect(m.offload.log).toContain(
      'warn: stuck: batch failed, copied on the CPU instead: batch copy did not settle 20 ms (vm.migrate_abort_grace_ms) after its signal aborted (batch copy timed out after 40 ms (vm.migrate_copy_timeout_ms) waiting for stuck to copy 8 folios (8 pages)); abandoned',
    );
    expectSettled(m);
    // migrate_pages(2) uses the same knob (the stuck migrator is disabled now: a fresh one).
    await m.offload.unregister(m.offload.active!);
    await m.offload.register(hungMigrator('stuck2'));
    const t1 = performance.now();
    expect(await p.migratePages(0, [1], [0])).toEqual({ ret: 0 });
    expect(performance.now() - t1).toBeLessThan(2000);
    expect(r.addrs.every((x) => p.pageInfo(x)!.node === 0)).toBe(true);
    expect(sameBytes(p.read(r.a, r.bytes), r.data)).toBe(true);
    expectSettled(m);
  });

  it('an abandoned copy that writes late never reaches the process: its destinations stay out of use until it settles', async () => {
    const m = await machine();
    expect(m.sysctl.write('vm.migrate_copy_timeout_ms', 40)).toBe(0);
    expect(m.sysctl.write('vm.migrate_abort_grace_ms', 20)).toBe(0);
    const p = m.spawn({ privileged: true });
    const r = region(p, 8);
    const free0 = freeTotal(m);
    let ram: Uint8Array[] = [];
    let shift = 0;
    const dsts: number[] = [];
    let writeLate!: () => void;
    const late = defineMigrator({
      apiVersion: 'pagemig.migrator/v1' as const,
      name: 'late',
      version: '1.0.0',
      engines: { core: '^0.1.0' },
      capabilities: { offloadsCpu: true, channels: 1, maxInFlightBatches: 1, needsSharedMemory: true },
      init(ctx) {
        ram = ctx.sections.map((b) => new Uint8Array(b));
        shift = ctx.sectionPfnShift;
      },
      // Ignores its abort; when told, fills every destination it was given and settles.
      copyBatch(batch) {
        for (let i = 0; i < batch.rows; i++) dsts.push(batch.dst(i));
        return new Promise<void>((resolve) => {
          writeLate = () => {
            for (const d of dsts) {
              const off = (d & ((1 << shift) - 1)) * PG;
              ram[d >>> shift]!.fill(0xee, off, off + PG);
            }
            resolve();
          };
        });
      },
      dispose() {},
    });
    await m.offload.register(late);
    const res = await p.movePages(0, r.addrs, new Array(8).fill(1), MPOL_MF_MOVE);
    // The first (async) pass gave its pairs up with the abandoned copy; the retry moved them with
    // new destinations, copied on the CPU.
    expect(res).toEqual({ ret: 0, status: new Array(8).fill(1) });
    expect(m.offload.status()[0]!.disabled).toBe('disabled: a batch copy never settled after its abort');
    expect(dsts).toHaveLength(8);
    for (const x of r.addrs) expect(dsts).not.toContain(p.pageInfo(x)!.pfn);
    // The abandoned copy still holds its 8 frames (allocated, referenced, mapped by no one).
    expect(freeTotal(m)).toBe(free0 - 8);
    m.checkInvariants();
    writeLate();
    await new Promise((resolve) => setTimeout(resolve, 10));
    expect(sameBytes(p.read(r.a, r.bytes), r.data)).toBe(true);
    // Settled: the frames are free again.
    expect(freeTotal(m)).toBe(free0);
    expectSettled(m);
  });

  it('is set at creation through the config sysctl table', async () => {
    const m = await machine({ sysctl: { 'vm.migrate_copy_timeout_ms': 250 } });
    expect(m.sysctl.read('vm.migrate_copy_timeout_ms')).toBe('250\n');
    await expect(
      createMachine({ nodes: [{ memory: '4MiB' }], sysctl: { 'vm.migrate_copy_timeout_ms': -1 } }),
    ).rejects.toMatchObject({
      code: 'ERR_INVALID_CONFIG',
    });
  });
});

/** Values a careless or hostile caller passes. `{ $addr: i }` becomes page i of the test region. */
const weird = fc.constantFrom<unknown>(
  null,
  undefined,
  Number.NaN,
  Number.POSITIVE_INFINITY,
  Number.NEGATIVE_INFINITY,
  -1,
  -0,
  0,
  1,
  0.5,
  2 ** 40,
  2 ** 50,
  2 ** 53,
  '',
  'x',
  '4096',
  'always',
  true,
  false,
  [],
  {},
  Symbol('s'),
  Object.create(null),
  Object.freeze([0, 0]),
  new Float64Array(2),
  10n,
);
const addrRef = fc.integer({ min: -3, max: 40 }).map((i) => ({ $addr: i }));
const val: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 3, arbitrary: weird },
  { weight: 3, arbitrary: addrRef },
  { weight: 2, arbitrary: fc.integer({ min: -5, max: 70_000 }) },
  { weight: 1, arbitrary: fc.double() },
  { weight: 1, arbitrary: fc.string({ maxLength: 5 }) },
  { weight: 1, arbitrary: fc.array(fc.integer({ min: -2, max: 3 }), { maxLength: 4 }) },
  { weight: 1, arbitrary: fc.object({ maxDepth: 1 }) },
);
const list = fc.oneof(fc.array(fc.oneof(addrRef, val), { maxLength: 6 }), val);
const ruleArb = fc.record(
  {
    site: fc.constantFrom('alloc_dst', 'unmap_pin', 'migrator_call', 'copy_row', 'bogus'),
    action: fc.constantFrom('throw', 'hang', 'partial', 'skip', 'explode'),
    nth: fc.oneof(fc.integer({ min: 1, max: 4 }), weird),
    times: fc.oneof(fc.constant(Number.POSITIVE_INFINITY), fc.integer({ min: 0, max: 3 }), weird),
    probability: fc.oneof(fc.double({ min: 0, max: 1, noNaN: true }), weird),
  },
  { requiredKeys: ['site'] },
);

type Ctx = { m: Machine; procs: Process[]; a: number };
type Call = { who: number; name: string; args: unknown[] };

const calls: fc.Arbitrary<Call> = fc.oneof(
  ...(
    [
      [
        'mmap',
        [
          val,
          fc.oneof(val, fc.record({ thp: val, node: val, shared: val, policy: val }, { requiredKeys: [] })),
        ],
      ],
      ['munmap', [val, val]],
      ['read', [val, val]],
      ['write', [val, fc.oneof(val, fc.uint8Array({ maxLength: 9000 }))]],
      ['touch', [val, val, val]],
      [
        'movePages',
        [
          fc.oneof(fc.constantFrom(0, 1, 2), val),
          list,
          fc.oneof(list, fc.constant(null)),
          fc.constantFrom(0, 2, 4, 6, 8),
          fc.oneof(fc.constant(undefined), val),
        ],
      ],
      ['migratePages', [fc.oneof(fc.constantFrom(0, 1), val), list, list]],
      ['fork', []],
      ['exit', []],
      ['pageInfo', [val]],
      [
        'spawn',
        [
          fc.oneof(
            val,
            fc.record({ uid: val, privileged: val, memsAllowed: val, node: val }, { requiredKeys: [] }),
          ),
        ],
      ],
      [
        'migrateFolios',
        [
          fc.oneof(list, fc.constant('$pfns')),
          fc.oneof(
            val,
            fc.record(
              { node: fc.oneof(fc.constantFrom(0, 1), val), mode: val, reason: val, copyTimeoutMs: val },
              { requiredKeys: [] },
            ),
          ),
        ],
      ],
      [
        'sysctlWrite',
        [
          fc.oneof(
            fc.constantFrom(
              'vm.min_free_kbytes',
              'kernel.threads-max',
              'kernel.pid_max',
              'vm.migrate_copy_timeout_ms',
              'vm.compact_memory',
            ),
            val,
          ),
          val,
        ],
      ],
      [
        'sysctlRead',
        [fc.oneof(fc.constantFrom('vm.min_free_kbytes', 'kernel.pid_max', 'vm.compact_memory'), val)],
      ],
      ['injectFaults', [fc.oneof(fc.array(ruleArb, { maxLength: 2 }), val)]],
      ['splitFolio', [fc.oneof(fc.constant('$pfn'), val), val, val]],
      ['freePages', [val]],
      ['folioGet', [fc.oneof(fc.constant('$pfn'), val)]],
      ['folioPut', [fc.oneof(fc.constant('$pfn'), val)]],
    ] as [string, fc.Arbitrary<unknown>[]][]
  ).map(([name, args]) =>
    fc.record({ who: fc.nat({ max: 5 }), name: fc.constant(name), args: fc.tuple(...args) }),
  ),
);

function resolve(v: unknown, ctx: Ctx, p: Process): unknown {
  if (Array.isArray(v) && !Object.isFrozen(v)) return v.map((x) => resolve(x, ctx, p));
  if (typeof v === 'object' && v !== null && '$addr' in v) return ctx.a + (v as { $addr: number }).$addr * PG;
  if (v === '$pfn') return p.pageInfo(ctx.a)?.pfn ?? 0;
  if (v === '$pfns') return [0, 1, 2, 3].map((i) => p.pageInfo(ctx.a + i * PG)?.pfn ?? 0);
  return v;
}

async function run(ctx: Ctx, c: Call): Promise<void> {
  const { m, procs } = ctx;
  const p = procs[c.who % procs.length]!;
  const a = c.args.map((x) => resolve(x, ctx, p)) as never[];
  switch (c.name) {
    case 'fork':
      procs.push(p.fork());
      return;
    case 'exit':
      if (p !== procs[0]) p.exit();
      return;
    case 'spawn':
      procs.push(m.spawn(a[0]));
      return;
    case 'sysctlWrite':
      m.sysctl.write(a[0]!, a[1]!);
      return;
    case 'sysctlRead':
      m.sysctl.read(a[0]!);
      return;
    case 'injectFaults':
      m.injectFaults(a[0]!);
      return;
    case 'migrateFolios':
    case 'splitFolio':
    case 'freePages':
    case 'folioGet':
    case 'folioPut':
      await (m[c.name] as (...x: unknown[]) => unknown)(...a);
      return;
    default:
      await (p[c.name as keyof Process] as (...x: unknown[]) => unknown).apply(p, a);
  }
}

describe('property: random bad input to the public Process/Machine methods', () => {
  it('each call succeeds or throws a PagemigError with a string code, and the machine stays whole', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(calls, { minLength: 1, maxLength: 14 }), async (seq) => {
        const m = await createMachine({ nodes: [{ memory: '16MiB' }, { memory: '16MiB' }], prefault: false });
        m.sysctl.write('vm.migrate_copy_timeout_ms', 50);
        m.sysctl.write('vm.migrate_abort_grace_ms', 10);
        try {
          const p = m.spawn({ privileged: true });
          const a = p.mmap(32 * PG, { node: 0 });
          p.write(a, pattern(4));
          const ctx: Ctx = { m, procs: [p], a };
          for (const c of seq) {
            try {
              await run(ctx, c);
            } catch (e) {
              const what = `${c.name}: ${String(e)}`;
              expect(PagemigError.isInstance(e), what).toBe(true);
              expect(typeof (e as PagemigError).code, what).toBe('string');
            }
            ctx.procs = ctx.procs.filter((x) => !x.exited);
            m.checkInvariants();
            expect(isolated(m), c.name).toEqual([]);
            expect(migrationEntries(m), c.name).toBe(0);
          }
        } finally {
          m.injectFaults(null);
          await m.close();
        }
        m.checkInvariants();
      }),
      { numRuns: Number(process.env.ROBUST_RUNS ?? 60) },
    );
  }, 120_000);
});
