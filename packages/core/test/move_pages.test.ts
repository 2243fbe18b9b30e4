import { describe, expect, it } from 'vitest';
import { EACCES, EBUSY, EFAULT, EINVAL, ENODEV, ENOENT, ENOMEM, EPERM, ESRCH } from '../src/errno.js';
import type { Machine } from '../src/machine.js';
import { MPOL_MF_LAZY, MPOL_MF_MOVE, MPOL_MF_MOVE_ALL, MPOL_MF_STRICT } from '../src/mempolicy.js';
import { MAX_NUMNODES, PAGE_SIZE } from '../src/mmzone.js';
import type { Process } from '../src/process.js';
import type { VmstatName } from '../src/vmstat.js';
import { machinesCheckedAfterEach, pattern, sameBytes } from './helpers.js';

const PG = PAGE_SIZE;
const THP = 2 << 20;
/** numactl's "impossible value" that move_pages pre-fills status with. */
const UNTOUCHED = -123;

const machine = machinesCheckedAfterEach();

/** numa_alloc_onnode(pagesize, node) + a touch: one private page on `node`, filled with a pattern. */
function allocPage(p: Process, node: number, seed: number): { addr: number; data: Uint8Array } {
  const addr = p.mmap(PG, { node });
  const data = pattern(1, seed);
  p.write(addr, data);
  return { addr, data };
}

/** LTP's alloc_shared_pages_on_node: one MAP_SHARED|MAP_ANONYMOUS region bound to `node`, touched. */
function allocShared(p: Process, pages: number, node: number, seed: number) {
  const addr = p.mmap(pages * PG, { shared: true, node });
  const data = pattern(pages, seed);
  p.write(addr, data);
  return { addr, data, addrs: Array.from({ length: pages }, (_, i) => addr + i * PG) };
}

const nodeOf = (p: Process, addr: number) => p.pageInfo(addr)?.node;

const COUNTERS = ['pgmigrate_success', 'pgmigrate_fail'] as const satisfies readonly VmstatName[];
function counters(m: Machine) {
  const v = m.vmstat();
  return Object.fromEntries(COUNTERS.map((n) => [n, v[n]]));
}

describe('LTP move_pages', () => {
  it('01: query mode reports the node of every page (status = node, nothing moves)', async () => {
    const m = await machine();
    const p = m.spawn();
    const pages = [0, 1, 0, 1].map((node, i) => allocPage(p, node, i + 1));
    const before = counters(m);
    const r = await p.movePages(
      0,
      pages.map((x) => x.addr),
      null,
      0,
    );
    expect(r.ret).toBeGreaterThanOrEqual(0);
    expect(r).toEqual({ ret: 0, status: [0, 1, 0, 1] });
    // get_mempolicy(MPOL_F_NODE|MPOL_F_ADDR) agrees.
    expect(pages.map((x) => nodeOf(p, x.addr))).toEqual([0, 1, 0, 1]);
    expect(counters(m)).toEqual(before);
  });

  it('02: two private pages move to the other node (status = node, data intact, then writable)', async () => {
    const m = await machine();
    const p = m.spawn();
    const pages = [allocPage(p, 0, 1), allocPage(p, 0, 2)];
    const before = counters(m);
    const r = await p.movePages(
      0,
      pages.map((x) => x.addr),
      [1, 1],
      MPOL_MF_MOVE,
    );
    expect(r).toEqual({ ret: 0, status: [1, 1] });
    expect(pages.map((x) => nodeOf(p, x.addr))).toEqual([1, 1]);
    for (const x of pages) expect(sameBytes(p.read(x.addr, PG), x.data)).toBe(true);
    expect(counters(m)).toEqual({
      pgmigrate_success: before.pgmigrate_success! + 2,
      pgmigrate_fail: before.pgmigrate_fail,
    });
    // The pages are then written (LTP writes after the move).
    for (const x of pages) p.write(x.addr, new Uint8Array([7, 7, 7]));
    expect([...p.read(pages[1]!.addr, 3)]).toEqual([7, 7, 7]);
    expect(pages.map((x) => nodeOf(p, x.addr))).toEqual([1, 1]);
  });

  it('03: shared pages a forked child touched move with MPOL_MF_MOVE_ALL as root', async () => {
    const m = await machine();
    const p = m.spawn({ uid: 0, privileged: true });
    const sh = allocShared(p, 2, 0, 3);
    const child = p.fork();
    child.touch(sh.addr, 2 * PG, 'read');
    const head = p.pageInfo(sh.addr)!.headPfn;
    expect(m.kernel.pages.mapcount[head]).toBe(2);
    const r = await p.movePages(0, sh.addrs, [1, 1], MPOL_MF_MOVE_ALL);
    expect(r).toEqual({ ret: 0, status: [1, 1] });
    for (const proc of [p, child]) {
      expect(sh.addrs.map((a) => nodeOf(proc, a))).toEqual([1, 1]);
      expect(sameBytes(proc.read(sh.addr, 2 * PG), sh.data)).toBe(true);
    }
  });

  it('04: never touched → -ENOENT, zero page → -EFAULT, unmapped → -EFAULT', async () => {
    const m = await machine();
    const p = m.spawn();
    const touched = allocPage(p, 0, 4);
    const untouched = p.mmap(PG, { node: 0 });
    const readOnly = p.mmap(PG, { node: 0 });
    p.read(readOnly, 1);
    expect(p.pageInfo(readOnly)!.zeroPage).toBe(true);
    const freed = p.mmap(PG, { node: 0 });
    p.write(freed, new Uint8Array([1]));
    p.munmap(freed, PG);
    const r = await p.movePages(0, [touched.addr, untouched, readOnly, freed], [1, 1, 1, 1], MPOL_MF_MOVE);
    expect(r.ret).not.toBe(-1);
    expect(r.status[1]).toBe(-ENOENT);
    expect(r.status[2]).toBe(-EFAULT);
    expect(r.status[3]).toBe(-EFAULT);
    expect(r).toEqual({ ret: 0, status: [1, -ENOENT, -EFAULT, -EFAULT] });
    expect(nodeOf(p, touched.addr)).toBe(1);
    expect(sameBytes(p.read(touched.addr, PG), touched.data)).toBe(true);
    expect(p.pageInfo(untouched)).toBeNull();
  });

  it('05: a shared page without MPOL_MF_MOVE_ALL → -EACCES; the private page moves', async () => {
    const m = await machine();
    const p = m.spawn();
    const sh = allocShared(p, 1, 0, 5);
    // A private page faulted before fork is mapped copy-on-write by both processes: shared too.
    const cow = allocPage(p, 0, 7);
    const child = p.fork();
    child.touch(sh.addr, PG, 'write');
    const priv = allocPage(p, 0, 6);
    const r = await p.movePages(0, [sh.addr, priv.addr, cow.addr], [1, 1, 1], MPOL_MF_MOVE);
    expect(r.ret).not.toBe(-1);
    expect(r.status[0]).toBe(-EACCES);
    expect(r).toEqual({ ret: 0, status: [-EACCES, 1, -EACCES] });
    expect(nodeOf(p, sh.addr)).toBe(0);
    expect(nodeOf(child, sh.addr)).toBe(0);
    expect(nodeOf(p, cow.addr)).toBe(0);
    expect(nodeOf(p, priv.addr)).toBe(1);
    expect(sameBytes(p.read(priv.addr, PG), priv.data)).toBe(true);
    // Once the child is gone the pages are no longer shared and move.
    child.exit();
    expect(await p.movePages(0, [sh.addr, cow.addr], [1, 1], MPOL_MF_MOVE)).toEqual({
      ret: 0,
      status: [1, 1],
    });
    expect(sameBytes(p.read(cow.addr, PG), cow.data)).toBe(true);
    expect(sameBytes(p.read(sh.addr, PG), sh.data)).toBe(true);
  });

  it('06: node = numa_max_node() + 1 → -1, ENODEV', async () => {
    const m = await machine();
    const p = m.spawn();
    const pages = [allocPage(p, 0, 1), allocPage(p, 0, 2)];
    const r = await p.movePages(
      0,
      pages.map((x) => x.addr),
      [2, 2],
      MPOL_MF_MOVE,
    );
    expect(r).toEqual({ ret: -1, errno: ENODEV, status: [UNTOUCHED, UNTOUCHED] });
    expect(pages.map((x) => nodeOf(p, x.addr))).toEqual([0, 0]);
  });

  it('07: an unused pid → -1, ESRCH', async () => {
    const m = await machine();
    const p = m.spawn();
    const pages = [allocPage(p, 0, 1), allocPage(p, 0, 2)];
    const addrs = pages.map((x) => x.addr);
    expect(await p.movePages(4242, addrs, [1, 1], MPOL_MF_MOVE)).toMatchObject({ ret: -1, errno: ESRCH });
    // A pid that has exited is unused too; so is a negative one.
    const gone = m.spawn();
    gone.exit();
    expect(await p.movePages(gone.pid, addrs, [1, 1], MPOL_MF_MOVE)).toMatchObject({ ret: -1, errno: ESRCH });
    expect(await p.movePages(-1, addrs, null, 0)).toMatchObject({ ret: -1, errno: ESRCH });
    expect(pages.map((x) => nodeOf(p, x.addr))).toEqual([0, 0]);
  });

  it('09: pages already on the target node: status = node, nothing migrates', async () => {
    const m = await machine();
    const p = m.spawn();
    const pages = [allocPage(p, 0, 1), allocPage(p, 0, 2)];
    const pfns = pages.map((x) => p.pageInfo(x.addr)!.pfn);
    const before = counters(m);
    m.trace.clear();
    const r = await p.movePages(
      0,
      pages.map((x) => x.addr),
      [0, 0],
      MPOL_MF_MOVE,
    );
    expect(r.ret).toBeGreaterThanOrEqual(0);
    expect(r).toEqual({ ret: 0, status: [0, 0] });
    expect(counters(m)).toEqual(before);
    expect(m.trace.events('migrate')).toEqual([]);
    expect(pages.map((x) => p.pageInfo(x.addr)!.pfn)).toEqual(pfns);
  });

  it('10: flags MPOL_MF_STRICT → -1, EINVAL (so is MPOL_MF_LAZY)', async () => {
    const m = await machine();
    const p = m.spawn();
    const pages = [allocPage(p, 0, 1), allocPage(p, 0, 2)];
    const addrs = pages.map((x) => x.addr);
    for (const flags of [MPOL_MF_STRICT, MPOL_MF_LAZY, MPOL_MF_MOVE | MPOL_MF_STRICT, 1 << 5]) {
      expect(await p.movePages(0, addrs, [1, 1], flags)).toEqual({
        ret: -1,
        errno: EINVAL,
        status: [UNTOUCHED, UNTOUCHED],
      });
    }
    expect(pages.map((x) => nodeOf(p, x.addr))).toEqual([0, 0]);
  });

  it('11: MPOL_MF_MOVE_ALL without CAP_SYS_NICE → EPERM, checked before the pid lookup', async () => {
    const m = await machine();
    const root = m.spawn({ uid: 0, privileged: true });
    const sh = allocShared(root, 2, 0, 1);
    const child = root.fork();
    child.touch(sh.addr, 2 * PG, 'read');
    // seteuid(nobody): an unprivileged caller.
    const nobody = m.spawn({ uid: 65534 });
    expect(await nobody.movePages(root.pid, sh.addrs, [1, 1], MPOL_MF_MOVE_ALL)).toMatchObject({
      ret: -1,
      errno: EPERM,
    });
    // EPERM, not ESRCH: the privilege check comes first.
    expect(await nobody.movePages(4242, sh.addrs, [1, 1], MPOL_MF_MOVE_ALL)).toMatchObject({
      ret: -1,
      errno: EPERM,
    });
    // ...but after the flags check.
    expect(await nobody.movePages(4242, sh.addrs, [1, 1], MPOL_MF_MOVE_ALL | MPOL_MF_STRICT)).toMatchObject({
      ret: -1,
      errno: EINVAL,
    });
    expect(sh.addrs.map((a) => nodeOf(root, a))).toEqual([0, 0]);
  });
});

describe('move_pages beyond LTP', () => {
  it('count 0 returns 0 (move and query)', async () => {
    const m = await machine();
    const p = m.spawn();
    expect(await p.movePages(0, [], [], MPOL_MF_MOVE)).toEqual({ ret: 0, status: [] });
    expect(await p.movePages(0, [], null, 0)).toEqual({ ret: 0, status: [] });
  });

  it('query mode: untouched → -ENOENT, zero page and unmapped → -EFAULT, non-migratable VMA → its node', async () => {
    const m = await machine();
    const p = m.spawn();
    const a = p.mmap(4 * PG, { node: 1 });
    p.write(a, new Uint8Array([1]));
    p.read(a + PG, 1);
    const io = p.mmap(PG, { node: 1, migratable: false });
    p.write(io, new Uint8Array([1]));
    const r = await p.movePages(0, [a, a + PG, a + 2 * PG, a + 64 * PG, io], null, 0);
    expect(r).toEqual({ ret: 0, status: [1, -EFAULT, -ENOENT, -EFAULT, 1] });
    // Moving the non-migratable page is refused per page (-EFAULT), like an unmapped address.
    const mv = await p.movePages(0, [io, a], [0, 0], MPOL_MF_MOVE);
    expect(mv).toEqual({ ret: 0, status: [-EFAULT, 0] });
    expect(nodeOf(p, io)).toBe(1);
  });

  it('the huge zero page is -EFAULT in query and move mode', async () => {
    const m = await machine();
    const p = m.spawn();
    const a = p.mmap(THP, { thp: 'always', node: 0 });
    p.read(a + 5 * PG, 1);
    expect(p.pageInfo(a)).toMatchObject({ zeroPage: true, huge: true });
    expect(await p.movePages(0, [a, a + 5 * PG], null, 0)).toEqual({ ret: 0, status: [-EFAULT, -EFAULT] });
    expect(await p.movePages(0, [a], [1], MPOL_MF_MOVE)).toEqual({ ret: 0, status: [-EFAULT] });
    expect(m.vmstat().pgmigrate_success).toBe(0);
  });

  it('flushes what was queued, then fails: entries 0-1 move, entry 2 has node 5 → -1 ENODEV', async () => {
    const m = await machine();
    const p = m.spawn();
    const pages = [allocPage(p, 0, 1), allocPage(p, 0, 2), allocPage(p, 0, 3), allocPage(p, 0, 4)];
    const addrs = pages.map((x) => x.addr);
    const r = await p.movePages(0, addrs, [1, 1, 5, 1], MPOL_MF_MOVE);
    expect(r).toEqual({ ret: -1, errno: ENODEV, status: [1, 1, UNTOUCHED, UNTOUCHED] });
    expect(pages.map((x) => nodeOf(p, x.addr))).toEqual([1, 1, 0, 0]);
    for (const x of pages) expect(sameBytes(p.read(x.addr, PG), x.data)).toBe(true);
    // The same for a negative node and a node >= MAX_NUMNODES.
    for (const bad of [-1, MAX_NUMNODES]) {
      const r2 = await p.movePages(0, addrs.slice(2), [1, bad], MPOL_MF_MOVE);
      expect(r2).toEqual({ ret: -1, errno: ENODEV, status: [1, UNTOUCHED] });
      await p.movePages(0, [addrs[2]!], [0], MPOL_MF_MOVE);
    }
  });

  it("a node outside the target's mems_allowed → -1 EACCES (after flushing the queue)", async () => {
    const m = await machine();
    const root = m.spawn({ uid: 0, privileged: true });
    const target = m.spawn({ memsAllowed: [0] });
    const pages = [allocPage(target, 0, 1), allocPage(target, 0, 2)];
    const addrs = pages.map((x) => x.addr);
    expect(await root.movePages(target.pid, addrs, [1, 1], MPOL_MF_MOVE)).toEqual({
      ret: -1,
      errno: EACCES,
      status: [UNTOUCHED, UNTOUCHED],
    });
    expect(pages.map((x) => nodeOf(target, x.addr))).toEqual([0, 0]);
    // The target's own cpuset is what counts, not the caller's.
    const wide = m.spawn({ memsAllowed: [0, 1] });
    const q = allocPage(wide, 0, 3);
    const narrowCaller = m.spawn({ uid: 1000, memsAllowed: [0] });
    expect(await narrowCaller.movePages(wide.pid, [q.addr], [1], MPOL_MF_MOVE)).toEqual({
      ret: 0,
      status: [1],
    });
  });

  it("another user's pid needs privilege (EPERM); the same uid or CAP_SYS_NICE may", async () => {
    const m = await machine();
    const owner = m.spawn({ uid: 1000 });
    const pg = allocPage(owner, 0, 1);
    const stranger = m.spawn({ uid: 2000 });
    expect(await stranger.movePages(owner.pid, [pg.addr], [1], MPOL_MF_MOVE)).toMatchObject({
      ret: -1,
      errno: EPERM,
    });
    expect(await stranger.movePages(owner.pid, [pg.addr], null, 0)).toMatchObject({ ret: -1, errno: EPERM });
    expect(nodeOf(owner, pg.addr)).toBe(0);
    const sibling = m.spawn({ uid: 1000 });
    expect(await sibling.movePages(owner.pid, [pg.addr], [1], MPOL_MF_MOVE)).toEqual({ ret: 0, status: [1] });
    const admin = m.spawn({ uid: 0, privileged: true });
    expect(await admin.movePages(owner.pid, [pg.addr], [0], MPOL_MF_MOVE)).toEqual({ ret: 0, status: [0] });
    expect(sameBytes(owner.read(pg.addr, PG), pg.data)).toBe(true);
  });

  it('a positive return counts the pages not migrated plus the entries never attempted', async () => {
    const m = await machine();
    const p = m.spawn();
    const pages = [allocPage(p, 0, 1), allocPage(p, 0, 2), allocPage(p, 1, 3), allocPage(p, 1, 4)];
    const addrs = pages.map((x) => x.addr);
    const held = p.pageInfo(addrs[1]!)!.pfn;
    m.folioGet(held);
    const before = counters(m);
    const r = await p.movePages(0, addrs, [1, 1, 0, 0], MPOL_MF_MOVE);
    // 1 failed in the first batch + entries 2 and 3, never attempted.
    expect(r).toEqual({ ret: 3, status: [UNTOUCHED, UNTOUCHED, UNTOUCHED, UNTOUCHED] });
    expect(counters(m)).toEqual({
      pgmigrate_success: before.pgmigrate_success! + 1,
      pgmigrate_fail: before.pgmigrate_fail! + 1,
    });
    // Page 0 did move (its status is simply not written); 1 failed; 2 and 3 were not attempted.
    expect(addrs.map((a) => nodeOf(p, a))).toEqual([1, 0, 1, 1]);
    for (const x of pages) expect(sameBytes(p.read(x.addr, PG), x.data)).toBe(true);

    // A batch flushed by an immediate result: entry 2 is already on node 1 (status written), which
    // flushes {page 1} → it fails; the count is 1 + the never-attempted entry 3, page 2 being
    // accounted for already ("err--" in do_pages_move).
    const st = [9, 9, 9, 9];
    const r2 = await p.movePages(0, addrs, [0, 1, 1, 1], MPOL_MF_MOVE, st);
    expect(r2.status).toBe(st);
    expect(r2).toEqual({ ret: 2, status: [0, 9, 1, 9] });
    expect(addrs.map((a) => nodeOf(p, a))).toEqual([0, 0, 1, 1]);
    m.folioPut(held);
    expect(await p.movePages(0, addrs, [0, 0, 0, 0], MPOL_MF_MOVE)).toEqual({ ret: 0, status: [0, 0, 0, 0] });
    expect(addrs.map((a) => nodeOf(p, a))).toEqual([0, 0, 0, 0]);
    for (const x of pages) expect(sameBytes(p.read(x.addr, PG), x.data)).toBe(true);
  });

  it('overlapping syscalls of two processes each label their own trace events', async () => {
    const m = await machine();
    const a = m.spawn({ comm: 'mover-a' });
    const b = m.spawn({ comm: 'mover-b' });
    const pa = [allocPage(a, 0, 1), allocPage(a, 0, 2)];
    const pb = [allocPage(b, 0, 3), allocPage(b, 0, 4), allocPage(b, 0, 5)];
    m.trace.clear();
    // Both run at once: their awaits interleave, and each event must still name its caller.
    const [ra, rb] = await Promise.all([
      a.movePages(
        0,
        pa.map((x) => x.addr),
        [1, 1],
        MPOL_MF_MOVE,
      ),
      b.movePages(
        0,
        pb.map((x) => x.addr),
        [1, 1, 1],
        MPOL_MF_MOVE,
      ),
    ]);
    expect(ra).toEqual({ ret: 0, status: [1, 1] });
    expect(rb).toEqual({ ret: 0, status: [1, 1, 1] });
    const ends = m.trace.events('migrate:mm_migrate_pages');
    const byCaller = (pid: number) =>
      ends.filter((e) => e.pid === pid).map((e) => [e.comm, e.fields.succeeded]);
    expect(byCaller(a.pid)).toEqual([['mover-a', 2]]);
    expect(byCaller(b.pid)).toEqual([['mover-b', 3]]);
    // A longer name is cut to TASK_COMM_LEN - 1 = 15 characters, as the kernel's comm is.
    expect(m.spawn({ comm: 'a-very-long-process-name' }).comm).toBe('a-very-long-pro');
    for (const x of pa) expect(sameBytes(a.read(x.addr, PG), x.data)).toBe(true);
    for (const x of pb) expect(sameBytes(b.read(x.addr, PG), x.data)).toBe(true);
  });

  it('consecutive entries with the same node form one batch: [1,1,0,0] is two migrate_pages calls', async () => {
    const m = await machine();
    const p = m.spawn({ comm: 'mover' });
    const pages = [allocPage(p, 0, 1), allocPage(p, 0, 2), allocPage(p, 1, 3), allocPage(p, 1, 4)];
    m.trace.clear();
    const r = await p.movePages(
      0,
      pages.map((x) => x.addr),
      [1, 1, 0, 0],
      MPOL_MF_MOVE,
    );
    expect(r).toEqual({ ret: 0, status: [1, 1, 0, 0] });
    const starts = m.trace.events('migrate:mm_migrate_pages_start');
    expect(starts.map((e) => e.text)).toEqual([
      'mode=MIGRATE_SYNC reason=syscall_or_cpuset',
      'mode=MIGRATE_SYNC reason=syscall_or_cpuset',
    ]);
    expect(m.trace.events('migrate:mm_migrate_pages').map((e) => e.text)).toEqual([
      'nr_succeeded=2 nr_failed=0 nr_thp_succeeded=0 nr_thp_failed=0 nr_thp_split=0 nr_split=0 mode=MIGRATE_SYNC reason=syscall_or_cpuset',
      'nr_succeeded=2 nr_failed=0 nr_thp_succeeded=0 nr_thp_failed=0 nr_thp_split=0 nr_split=0 mode=MIGRATE_SYNC reason=syscall_or_cpuset',
    ]);
    // The events are the caller's (current = the process issuing the syscall).
    expect(starts.every((e) => e.pid === p.pid && e.comm === 'mover')).toBe(true);
    expect(pages.map((x) => nodeOf(p, x.addr))).toEqual([1, 1, 0, 0]);
    for (const x of pages) expect(sameBytes(p.read(x.addr, PG), x.data)).toBe(true);

    // Alternating nodes: each change of node flushes; pages already there only get their status.
    m.trace.clear();
    const alt = await p.movePages(
      0,
      pages.map((x) => x.addr),
      [0, 1, 0, 1],
      MPOL_MF_MOVE,
    );
    expect(alt).toEqual({ ret: 0, status: [0, 1, 0, 1] });
    expect(m.trace.events('migrate:mm_migrate_pages').map((e) => e.fields.succeeded)).toEqual([1, 1]);
    expect(pages.map((x) => nodeOf(p, x.addr))).toEqual([0, 1, 0, 1]);
  });

  it('several addresses of one THP: the second finds it isolated (-EBUSY), the rest see it moved', async () => {
    const m = await machine();
    const p = m.spawn();
    const a = p.mmap(THP, { thp: 'always', node: 0 });
    const data = pattern(512, 7);
    p.write(a, data);
    expect(p.pageInfo(a)!.order).toBe(9);
    const before = m.vmstat();
    m.trace.clear();
    const r = await p.movePages(0, [a, a + PG, a + 2 * PG, a + 511 * PG], [1, 1, 1, 1], MPOL_MF_MOVE);
    expect(r).toEqual({ ret: 0, status: [1, -EBUSY, 1, 1] });
    expect(m.vmstat().pgmigrate_success - before.pgmigrate_success).toBe(512);
    expect(m.vmstat().thp_migration_success - before.thp_migration_success).toBe(1);
    expect(m.trace.events('migrate:mm_migrate_pages')).toHaveLength(1);
    expect(p.pageInfo(a)).toMatchObject({ node: 1, order: 9, huge: true });
    expect(sameBytes(p.read(a, THP), data)).toBe(true);
  });

  it('a THP moved to a node with no order-9 block is split, moved, and reported as moved', async () => {
    const m = await machine();
    const p = m.spawn();
    const a = p.mmap(THP, { thp: 'always', node: 0 });
    const data = pattern(512, 8);
    p.write(a, data);
    // Fragment node 1: keep one page of every 2 MiB there, free the rest.
    const filler = m.spawn({ memsAllowed: [1] });
    const n = m.freePages(1) - 300;
    const f = filler.mmap(n * PG, { node: 1 });
    filler.touch(f, n * PG);
    for (let i = 0; i * 512 + 1 < n; i++)
      filler.munmap(f + (i * 512 + 1) * PG, Math.min(511, n - i * 512 - 1) * PG);
    const zone = m.kernel.nodes[1]!.zones[0]!;
    expect(m.kernel.nrFreeBlocks(zone, 9) + m.kernel.nrFreeBlocks(zone, 10)).toBe(0);
    const before = m.vmstat();
    const r = await p.movePages(0, [a], [1], MPOL_MF_MOVE);
    // migrate_pages() returns 0 when all pieces of the split THP moved, so status is written.
    expect(r).toEqual({ ret: 0, status: [1] });
    expect(m.vmstat().thp_migration_split - before.thp_migration_split).toBe(1);
    expect(m.vmstat().pgmigrate_success - before.pgmigrate_success).toBe(512);
    for (let i = 0; i < 512; i += 37) expect(p.pageInfo(a + i * PG)).toMatchObject({ node: 1, order: 0 });
    expect(sameBytes(p.read(a, THP), data)).toBe(true);
  });

  it('no memory on the target node → -1 ENOMEM; the pages are put back and their status untouched', async () => {
    const m = await machine();
    const p = m.spawn();
    const pages = [allocPage(p, 0, 1), allocPage(p, 0, 2)];
    const filler = m.spawn({ memsAllowed: [1] });
    const n = m.freePages(1);
    const f = filler.mmap(n * PG, { node: 1 });
    expect(() => filler.touch(f, n * PG)).toThrow(/ENOMEM/);
    const r = await p.movePages(
      0,
      pages.map((x) => x.addr),
      [1, 1],
      MPOL_MF_MOVE,
    );
    expect(r).toEqual({ ret: -1, errno: ENOMEM, status: [UNTOUCHED, UNTOUCHED] });
    expect(pages.map((x) => nodeOf(p, x.addr))).toEqual([0, 0]);
    for (const x of pages) expect(sameBytes(p.read(x.addr, PG), x.data)).toBe(true);
  });

  it('a pages array longer than status is EFAULT; nodes shorter than pages is EFAULT', async () => {
    const m = await machine();
    const p = m.spawn();
    const x = allocPage(p, 0, 1);
    expect(await p.movePages(0, [x.addr, x.addr], [1, 1], MPOL_MF_MOVE, [0])).toMatchObject({
      ret: -1,
      errno: EFAULT,
    });
    expect(await p.movePages(0, [x.addr, x.addr], [1], MPOL_MF_MOVE)).toMatchObject({
      ret: -1,
      errno: EFAULT,
    });
    expect(nodeOf(p, x.addr)).toBe(0);
  });
});
