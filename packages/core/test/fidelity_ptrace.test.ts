/**
 * Who may act on another process (issue 17, item 1): find_mm_struct() and kernel_migrate_pages()
 * call ptrace_may_access(PTRACE_MODE_READ_REALCREDS). __ptrace_may_access (kernel/ptrace.c)
 * wants the same uid and gid or CAP_SYS_PTRACE; cap_ptrace_access_check (security/commoncap.c)
 * then wants the target's permitted capabilities inside the caller's, or CAP_SYS_PTRACE.
 * CAP_SYS_NICE is what MPOL_MF_MOVE_ALL needs (kernel_move_pages, do_migrate_pages), not an
 * override. The EPERM cases follow LTP migrate_pages01 (test_invalid_perm) and move_pages11.
 */
import { describe, expect, it } from 'vitest';
import { CAP_FULL_SET, CAP_SYS_NICE, CAP_SYS_PTRACE, CAPABILITIES } from '../src/capability.js';
import { EINVAL, EPERM } from '../src/errno.js';
import { MPOL_MF_MOVE, MPOL_MF_MOVE_ALL } from '../src/mempolicy.js';
import { PAGE_SIZE } from '../src/mmzone.js';
import type { Process, SpawnOptions } from '../src/process.js';
import { expectErrno, machinesCheckedAfterEach, pattern, sameBytes } from './helpers.js';

const machine = machinesCheckedAfterEach();
const UNTOUCHED = -123;

/** A process holding one written private page on node 0. */
function owner(m: Awaited<ReturnType<typeof machine>>, opts: SpawnOptions, seed: number) {
  const p = m.spawn(opts);
  const addr = p.mmap(PAGE_SIZE, { thp: 'never' });
  const data = pattern(1, seed);
  p.write(addr, data);
  return { p, addr, data };
}

const nodeOf = (p: Process, addr: number) => p.pageInfo(addr)!.node;

describe('ptrace_may_access: the same uid is not enough (cap_ptrace_access_check)', () => {
  it('a target holding a capability the caller lacks → EPERM for move_pages and migrate_pages', async () => {
    const m = await machine();
    const t = owner(m, { uid: 1000, capabilities: [CAP_SYS_NICE] }, 1);
    const peer = m.spawn({ uid: 1000 });
    expect(await peer.movePages(t.p.pid, [t.addr], [1], MPOL_MF_MOVE)).toEqual({
      ret: -1,
      errno: EPERM,
      status: [UNTOUCHED],
    });
    // Query mode opens the target the same way.
    expect(await peer.movePages(t.p.pid, [t.addr], null, 0)).toEqual({
      ret: -1,
      errno: EPERM,
      status: [UNTOUCHED],
    });
    expect(await peer.migratePages(t.p.pid, [0], [1])).toEqual({ ret: -1, errno: EPERM });
    expect(nodeOf(t.p, t.addr)).toBe(0);
    expect(sameBytes(t.p.read(t.addr, PAGE_SIZE), t.data)).toBe(true);
  });

  it('a caller whose set covers the target’s, or one with CAP_SYS_PTRACE, may', async () => {
    const m = await machine();
    const t = owner(m, { uid: 1000, capabilities: [CAP_SYS_NICE] }, 2);
    const same = m.spawn({ uid: 1000, capabilities: [CAP_SYS_NICE] });
    expect(await same.movePages(t.p.pid, [t.addr], [1], MPOL_MF_MOVE)).toEqual({ ret: 0, status: [1] });
    const tracer = m.spawn({ uid: 1000, capabilities: [CAP_SYS_PTRACE] });
    expect(await tracer.migratePages(t.p.pid, [1], [0])).toEqual({ ret: 0 });
    expect(nodeOf(t.p, t.addr)).toBe(0);
    expect(sameBytes(t.p.read(t.addr, PAGE_SIZE), t.data)).toBe(true);
  });

  it('the same uid in another group → EPERM (__ptrace_may_access compares the gids too)', async () => {
    const m = await machine();
    const t = owner(m, { uid: 1000, gid: 1000 }, 3);
    const other = m.spawn({ uid: 1000, gid: 100 });
    expect(await other.movePages(t.p.pid, [t.addr], [1], MPOL_MF_MOVE)).toMatchObject({
      ret: -1,
      errno: EPERM,
    });
    expect(await other.migratePages(t.p.pid, [0], [1])).toEqual({ ret: -1, errno: EPERM });
    expect(nodeOf(t.p, t.addr)).toBe(0);
  });
});

describe('CAP_SYS_PTRACE is the override, CAP_SYS_NICE is not', () => {
  it('CAP_SYS_NICE alone: another user’s process → EPERM; MPOL_MF_MOVE_ALL on itself is allowed', async () => {
    const m = await machine();
    const t = owner(m, { uid: 2000 }, 4);
    const nice = owner(m, { uid: 1000, capabilities: [CAP_SYS_NICE] }, 5);
    expect(await nice.p.movePages(t.p.pid, [t.addr], [1], MPOL_MF_MOVE)).toMatchObject({
      ret: -1,
      errno: EPERM,
    });
    expect(await nice.p.migratePages(t.p.pid, [0], [1])).toEqual({ ret: -1, errno: EPERM });
    expect(nodeOf(t.p, t.addr)).toBe(0);
    // A page shared with a child moves only with MPOL_MF_MOVE_ALL, which CAP_SYS_NICE grants.
    const shared = nice.p.mmap(PAGE_SIZE, { shared: true });
    nice.p.write(shared, pattern(1, 6));
    const child = nice.p.fork();
    child.touch(shared, PAGE_SIZE, 'read');
    expect(await nice.p.movePages(0, [nice.addr, shared], [1, 1], MPOL_MF_MOVE_ALL)).toEqual({
      ret: 0,
      status: [1, 1],
    });
    expect(nodeOf(child, shared)).toBe(1);
    expect(sameBytes(child.read(shared, PAGE_SIZE), pattern(1, 6))).toBe(true);
    expect(sameBytes(nice.p.read(nice.addr, PAGE_SIZE), nice.data)).toBe(true);
  });

  it('CAP_SYS_PTRACE alone: another user’s process may be moved, but MPOL_MF_MOVE_ALL → EPERM', async () => {
    const m = await machine();
    const t = owner(m, { uid: 2000 }, 7);
    const tracer = m.spawn({ uid: 1000, capabilities: [CAP_SYS_PTRACE] });
    expect(await tracer.movePages(t.p.pid, [t.addr], [1], MPOL_MF_MOVE)).toEqual({ ret: 0, status: [1] });
    expect(await tracer.movePages(t.p.pid, [t.addr], [0], MPOL_MF_MOVE_ALL)).toMatchObject({
      ret: -1,
      errno: EPERM,
    });
    expect(nodeOf(t.p, t.addr)).toBe(1);
    // migrate_pages(2) moves the target's private pages without CAP_SYS_NICE (MPOL_MF_MOVE).
    expect(await tracer.migratePages(t.p.pid, [1], [0])).toEqual({ ret: 0 });
    expect(nodeOf(t.p, t.addr)).toBe(0);
    expect(sameBytes(t.p.read(t.addr, PAGE_SIZE), t.data)).toBe(true);
  });
});

describe('uid 0 is not special to the check, only to the capabilities execve gives', () => {
  it('root (full set by default) may act on anyone; LTP migrate_pages01: nobody on root → EPERM', async () => {
    const m = await machine();
    const root = owner(m, { uid: 0 }, 8);
    expect(root.p.capabilities).toEqual(CAP_FULL_SET);
    const user = owner(m, { uid: 1000 }, 9);
    expect(await root.p.movePages(user.p.pid, [user.addr], [1], MPOL_MF_MOVE)).toEqual({
      ret: 0,
      status: [1],
    });
    // setuid(nobody) clears the capabilities: the child may not touch its root parent.
    const nobody = m.spawn({ uid: 65534 });
    expect(nobody.capabilities.size).toBe(0);
    expect(await nobody.migratePages(root.p.pid, [0], [1])).toEqual({ ret: -1, errno: EPERM });
    expect(nodeOf(root.p, root.addr)).toBe(0);
  });

  it('root without capabilities: another uid → EPERM, and a root target with capabilities → EPERM', async () => {
    const m = await machine();
    const bare = m.spawn({ uid: 0, capabilities: [] });
    const user = owner(m, { uid: 1000 }, 10);
    const root = owner(m, { uid: 0 }, 11);
    expect(await bare.movePages(user.p.pid, [user.addr], [1], MPOL_MF_MOVE)).toMatchObject({
      ret: -1,
      errno: EPERM,
    });
    expect(await bare.migratePages(root.p.pid, [0], [1])).toEqual({ ret: -1, errno: EPERM });
    // Itself it may always move (pid 0 or its own pid).
    const own = bare.mmap(PAGE_SIZE);
    bare.write(own, pattern(1, 12));
    expect(await bare.movePages(bare.pid, [own], [1], MPOL_MF_MOVE)).toEqual({ ret: 0, status: [1] });
    expect(nodeOf(user.p, user.addr)).toBe(0);
    expect(nodeOf(root.p, root.addr)).toBe(0);
    expect(sameBytes(bare.read(own, PAGE_SIZE), pattern(1, 12))).toBe(true);
  });
});

describe('spawn: capabilities, gid and privileged', () => {
  it('privileged is shorthand for the full set or none; fork keeps uid, gid and capabilities', async () => {
    const m = await machine();
    const admin = m.spawn({ uid: 1000, privileged: true });
    expect([...admin.capabilities]).toEqual([...CAPABILITIES]);
    expect(admin.capable(CAP_SYS_PTRACE) && admin.privileged).toBe(true);
    const plain = m.spawn({ uid: 0, privileged: false });
    expect(plain.capabilities.size).toBe(0);
    expect(plain.privileged).toBe(false);
    const p = m.spawn({ uid: 1000, gid: 50, capabilities: [CAP_SYS_NICE, CAP_SYS_NICE] });
    const child = p.fork();
    expect([child.uid, child.gid, [...child.capabilities]]).toEqual([1000, 50, [CAP_SYS_NICE]]);
    expect(child.privileged).toBe(true);
    expect(m.spawn({ uid: 7 }).gid).toBe(7);
  });

  it('refuses an unknown capability (naming it, with a suggestion), a bad gid, and both forms at once', async () => {
    const m = await machine();
    const e = expectErrno(() => m.spawn({ capabilities: ['CAP_SYS_NCE' as never] }), EINVAL, 'EINVAL');
    expect(e.message).toMatch(/"CAP_SYS_NCE" is not a capability; did you mean "CAP_SYS_NICE"\?/);
    expectErrno(() => m.spawn({ capabilities: 'CAP_SYS_NICE' as never }), EINVAL);
    expectErrno(() => m.spawn({ gid: -1 }), EINVAL);
    const both = expectErrno(() => m.spawn({ privileged: true, capabilities: [CAP_SYS_NICE] }), EINVAL);
    expect(both.message).toMatch(/either capabilities or privileged/);
  });
});
