import { describe, expect, it } from 'vitest';
import { EFAULT, EINVAL, EIO, ENOMEM, EPERM, ESRCH, PagemigError } from '../src/errno.js';
import * as core from '../src/index.js';
import {
  MPOL_BIND,
  MPOL_DEFAULT,
  MPOL_F_ADDR,
  MPOL_F_MEMS_ALLOWED,
  MPOL_F_NODE,
  MPOL_F_NUMA_BALANCING,
  MPOL_F_RELATIVE_NODES,
  MPOL_F_STATIC_NODES,
  MPOL_INTERLEAVE,
  MPOL_LOCAL,
  MPOL_MF_LAZY,
  MPOL_MF_MOVE,
  MPOL_MF_MOVE_ALL,
  MPOL_MF_STRICT,
  MPOL_PREFERRED,
  MPOL_PREFERRED_MANY,
  MPOL_WEIGHTED_INTERLEAVE,
} from '../src/mempolicy.js';
import { MAX_NUMNODES, PAGE_SIZE } from '../src/mmzone.js';
import type { Process } from '../src/process.js';
import { expectErrno, machinesCheckedAfterEach, pattern, sameBytes } from './helpers.js';

/**
 * mbind(2), set_mempolicy(2) and get_mempolicy(2): the kernel's return values and errno for each
 * path of kernel_mbind/do_mbind, kernel_set_mempolicy and kernel_get_mempolicy (mm/mempolicy.c),
 * with LTP's testcases/kernel/syscalls/{mbind,set_mempolicy,get_mempolicy} ported.
 */

const PG = PAGE_SIZE;
const newMachine = machinesCheckedAfterEach();
const machine = (nodes = 2, memory = '16MiB') =>
  newMachine({ nodes: Array.from({ length: nodes }, () => ({ memory })) });

/** The node of each page of [a, a + pages * PG) (-1 where nothing is mapped). */
function nodesOf(p: Process, a: number, pages: number): number[] {
  return Array.from({ length: pages }, (_, i) => p.pageInfo(a + i * PG)?.node ?? -1);
}
const count = (xs: number[], x: number) => xs.filter((v) => v === x).length;

/** A private area of `pages` 4 KiB pages with distinct bytes written (faulted on the local node). */
function filledArea(p: Process, pages: number, seed = 1) {
  const a = p.mmap(pages * PG, { thp: 'never' });
  const data = pattern(pages, seed);
  p.write(a, data);
  return { a, data, intact: () => sameBytes(p.read(a, pages * PG), data) };
}

describe('constants of include/uapi/linux/mempolicy.h, exported by name', () => {
  it('has the kernel values', () => {
    expect([
      core.MPOL_DEFAULT,
      core.MPOL_PREFERRED,
      core.MPOL_BIND,
      core.MPOL_INTERLEAVE,
      core.MPOL_LOCAL,
      core.MPOL_PREFERRED_MANY,
      core.MPOL_WEIGHTED_INTERLEAVE,
      core.MPOL_MAX,
    ]).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    expect([core.MPOL_F_STATIC_NODES, core.MPOL_F_RELATIVE_NODES, core.MPOL_F_NUMA_BALANCING]).toEqual([
      0x8000, 0x4000, 0x2000,
    ]);
    expect(core.MPOL_MODE_FLAGS).toBe(0xe000);
    expect([core.MPOL_F_NODE, core.MPOL_F_ADDR, core.MPOL_F_MEMS_ALLOWED]).toEqual([1, 2, 4]);
    expect([
      core.MPOL_MF_STRICT,
      core.MPOL_MF_MOVE,
      core.MPOL_MF_MOVE_ALL,
      core.MPOL_MF_LAZY,
      core.MPOL_MF_INTERNAL,
      core.MPOL_MF_VALID,
    ]).toEqual([1, 2, 4, 8, 16, 7]);
    expect([core.MPOL_F_SHARED, core.MPOL_F_LOCAL, core.MPOL_F_MOF, core.MPOL_F_MORON]).toEqual([
      1, 2, 8, 16,
    ]);
  });
});

describe('LTP mbind01: modes and node masks', () => {
  const MEM = 1024 * PG;
  // [description, mode, nodes, flags, errno (0: success), get_mempolicy(MPOL_F_ADDR) after it]
  const cases: [string, number, 'none' | 'node' | 'bad', number, number, number?, number[]?][] = [
    ['MPOL_DEFAULT', MPOL_DEFAULT, 'none', 0, 0, MPOL_DEFAULT, []],
    ['MPOL_DEFAULT (target exists)', MPOL_DEFAULT, 'node', 0, EINVAL],
    ['MPOL_BIND (no target)', MPOL_BIND, 'none', 0, EINVAL],
    ['MPOL_BIND', MPOL_BIND, 'node', 0, 0, MPOL_BIND, [1]],
    ['MPOL_INTERLEAVE (no target)', MPOL_INTERLEAVE, 'none', 0, EINVAL],
    ['MPOL_INTERLEAVE', MPOL_INTERLEAVE, 'node', 0, 0, MPOL_INTERLEAVE, [1]],
    // mpol_new: MPOL_PREFERRED without nodes is local allocation (5.14+ reports MPOL_LOCAL).
    ['MPOL_PREFERRED (no target)', MPOL_PREFERRED, 'none', 0, 0, MPOL_LOCAL, []],
    ['MPOL_PREFERRED', MPOL_PREFERRED, 'node', 0, 0, MPOL_PREFERRED, [1]],
    ['MPOL_LOCAL', MPOL_LOCAL, 'none', 0, 0, MPOL_LOCAL, []],
    ['MPOL_LOCAL (target exists)', MPOL_LOCAL, 'node', 0, EINVAL],
    ['UNKNOWN_POLICY', -1, 'none', 0, EINVAL],
    ['MPOL_DEFAULT (invalid flags)', MPOL_DEFAULT, 'none', -1, EINVAL],
    // A node mask the kernel cannot read: EFAULT from get_nodes.
    ['MPOL_PREFERRED (invalid nodemask)', MPOL_PREFERRED, 'bad', 0, EFAULT],
  ];
  it.each(cases)('%s', async (_d, mode, target, flags, errno, getMode, getNodes) => {
    const m = await machine();
    const p = m.spawn();
    const a = p.mmap(MEM);
    const nodes = target === 'none' ? null : target === 'node' ? [1] : ('1' as never);
    const r = await p.mbind(a, MEM, mode, nodes, flags);
    expect(r).toEqual(errno ? { ret: -1, errno } : { ret: 0 });
    if (!errno)
      expect(p.getMempolicy({ addr: a, flags: MPOL_F_ADDR })).toEqual({
        ret: 0,
        mode: getMode,
        nodes: getNodes,
      });
  });
});

describe('LTP mbind02: MPOL_MF_STRICT without MOVE on a misplaced page', () => {
  it.each([MPOL_PREFERRED, MPOL_BIND, MPOL_INTERLEAVE])('mode %i → EIO, nothing changes', async (mode) => {
    const m = await machine();
    const p = m.spawn({ node: 0 });
    const { a, intact } = filledArea(p, 1);
    expect(await p.mbind(a, PG, mode, [1], MPOL_MF_STRICT)).toEqual({ ret: -1, errno: EIO });
    // queue_pages_range failed before mbind_range: the area keeps no policy, the page stays.
    expect(p.getMempolicy({ addr: a, flags: MPOL_F_ADDR })).toEqual({
      ret: 0,
      mode: MPOL_DEFAULT,
      nodes: [],
    });
    expect(nodesOf(p, a, 1)).toEqual([0]);
    expect(intact()).toBe(true);
  });

  it('a page already on a node of the mask passes MPOL_MF_STRICT', async () => {
    const m = await machine();
    const p = m.spawn({ node: 0 });
    const { a } = filledArea(p, 1);
    expect(await p.mbind(a, PG, MPOL_BIND, [0, 1], MPOL_MF_STRICT)).toEqual({ ret: 0 });
  });
});

describe('LTP mbind03: MPOL_MF_MOVE and MPOL_MF_MOVE_ALL move a faulted page', () => {
  it.each([MPOL_PREFERRED, MPOL_BIND, MPOL_INTERLEAVE])('mode %i', async (mode) => {
    const m = await machine();
    const root = m.spawn({ uid: 0, node: 0 });
    for (const flag of [MPOL_MF_MOVE, MPOL_MF_MOVE_ALL]) {
      const { a, intact } = filledArea(root, 1, flag);
      m.trace.clear();
      expect(await root.mbind(a, PG, mode, [1], flag)).toEqual({ ret: 0 });
      expect(nodesOf(root, a, 1)).toEqual([1]);
      expect(intact()).toBe(true);
      // migrate_pages() ran with reason mempolicy_mbind (MR_MEMPOLICY_MBIND).
      expect(m.trace.events('mm_migrate_pages').map((e) => e.text)).toEqual([
        expect.stringMatching(/^nr_succeeded=1 nr_failed=0 .* mode=MIGRATE_SYNC reason=mempolicy_mbind$/),
      ]);
    }
  });

  it('MPOL_MF_MOVE_ALL without CAP_SYS_NICE → EPERM, checked after the flags', async () => {
    const m = await machine();
    const p = m.spawn({ uid: 1000, node: 0 });
    const { a } = filledArea(p, 1);
    expect(await p.mbind(a, PG, MPOL_BIND, [1], MPOL_MF_MOVE_ALL)).toEqual({ ret: -1, errno: EPERM });
    expect(await p.mbind(a, PG, MPOL_BIND, [1], MPOL_MF_MOVE_ALL | MPOL_MF_LAZY)).toEqual({
      ret: -1,
      errno: EINVAL,
    });
    // The mode is checked before anything (sanitize_mpol_flags in kernel_mbind).
    expect(await p.mbind(a, PG, 9, [1], MPOL_MF_MOVE_ALL)).toEqual({ ret: -1, errno: EINVAL });
    expect(nodesOf(p, a, 1)).toEqual([0]);
  });
});

describe('LTP mbind04: the policy of an area holds in a forked child too', () => {
  it.each([MPOL_PREFERRED, MPOL_BIND, MPOL_INTERLEAVE])(
    'mode %i, flags 0 and MPOL_MF_STRICT',
    async (mode) => {
      const m = await machine();
      const p = m.spawn({ node: 0 });
      for (const node of [0, 1]) {
        for (const flags of [0, MPOL_MF_STRICT]) {
          const a = p.mmap(16 * PG, { thp: 'never' });
          expect(await p.mbind(a, 16 * PG, mode, [node], flags)).toEqual({ ret: 0 });
          const child = p.fork();
          for (const who of [child, p]) {
            who.touch(a, 16 * PG, 'write');
            expect(count(nodesOf(who, a, 16), node)).toBe(16);
          }
          child.exit();
          p.munmap(a, 16 * PG);
        }
      }
    },
  );
});

describe('LTP set_mempolicy01-02: the task policy places new pages, parent and child', () => {
  it.each([MPOL_BIND, MPOL_PREFERRED])('mode %i on each node: 16 pages there', async (mode) => {
    const m = await machine();
    const p = m.spawn({ node: 0 });
    for (const node of [0, 1]) {
      expect(p.setMempolicy(mode, [node])).toEqual({ ret: 0 });
      const child = p.fork();
      for (const who of [child, p]) {
        const a = who.mmap(16 * PG, { thp: 'never' });
        who.touch(a, 16 * PG, 'write');
        expect(count(nodesOf(who, a, 16), node)).toBe(16);
        who.munmap(a, 16 * PG);
      }
      child.exit();
    }
  });

  it('MPOL_INTERLEAVE over 3 nodes: 2 pages each; over 2 of them: 8 each', async () => {
    const m = await machine(3, '8MiB');
    const p = m.spawn({ node: 0 });
    for (const [nodes, per] of [
      [[0, 1, 2], 2],
      [[0, 1], 8],
    ] as const) {
      expect(p.setMempolicy(MPOL_INTERLEAVE, nodes)).toEqual({ ret: 0 });
      const child = p.fork();
      for (const who of [child, p]) {
        const n = nodes.length * per;
        const a = who.mmap(n * PG, { thp: 'never' });
        who.touch(a, n * PG, 'write');
        const got = nodesOf(who, a, n);
        expect([0, 1, 2].map((x) => count(got, x))).toEqual(
          [0, 1, 2].map((x) => (nodes.includes(x as never) ? per : 0)),
        );
        who.munmap(a, n * PG);
      }
      child.exit();
    }
  });
});

describe('LTP set_mempolicy03 (on shared anonymous memory): the page cache follows the task policy', () => {
  it.each([MPOL_BIND, MPOL_PREFERRED])('mode %i on each node: 16 shmem pages there', async (mode) => {
    const m = await machine();
    const p = m.spawn({ node: 0 });
    for (const node of [0, 1]) {
      expect(p.setMempolicy(mode, [node])).toEqual({ ret: 0 });
      const a = p.mmap(16 * PG, { shared: true, thp: 'never' });
      p.touch(a, 16 * PG, 'write');
      expect(count(nodesOf(p, a, 16), node)).toBe(16);
      p.munmap(a, 16 * PG);
    }
  });
});

describe('LTP set_mempolicy04 (on shared anonymous memory): interleaving many objects', () => {
  it('spreads their pages evenly over the nodes (within 5% of the total each)', async () => {
    const m = await machine(2, '16MiB');
    const p = m.spawn({ node: 0 });
    expect(p.setMempolicy(MPOL_INTERLEAVE, [0, 1])).toEqual({ ret: 0 });
    const per = [0, 0];
    let total = 0;
    for (let i = 1; i <= 10; i++) {
      for (let j = 1; j <= 2; j++) {
        const size = 10 * i + (j % 10);
        const a = p.mmap(size * PG, { shared: true, thp: 'never' });
        p.touch(a, size * PG, 'write');
        for (const n of nodesOf(p, a, size)) per[n]!++;
        total += size;
        p.munmap(a, size * PG);
      }
    }
    expect(per[0]! + per[1]!).toBe(total);
    for (const n of per) expect(Math.abs(n - total / 2)).toBeLessThan(total / 60);
  });
});

describe('LTP get_mempolicy01-02', () => {
  it('reports the task policy and an area policy (MPOL_F_ADDR: the area alone, MPOL_DEFAULT without one)', async () => {
    const m = await machine();
    const p = m.spawn({ node: 0 });
    expect(p.getMempolicy()).toEqual({ ret: 0, mode: MPOL_DEFAULT, nodes: [] });
    for (const [mode, nodes, want] of [
      [MPOL_BIND, [1], [1]],
      [MPOL_INTERLEAVE, [0, 1], [0, 1]],
      [MPOL_PREFERRED, [1], [1]],
      [MPOL_PREFERRED, null, []],
      [MPOL_DEFAULT, null, []],
    ] as const) {
      expect(p.setMempolicy(mode, nodes)).toEqual({ ret: 0 });
      const got = mode === MPOL_PREFERRED && nodes === null ? MPOL_LOCAL : mode;
      expect(p.getMempolicy()).toEqual({ ret: 0, mode: got, nodes: want });
    }
    p.setMempolicy(MPOL_INTERLEAVE, [0, 1]);
    const a = p.mmap(1024 * PG);
    // An area without its own policy is MPOL_DEFAULT for MPOL_F_ADDR, whatever the task's.
    expect(p.getMempolicy({ addr: a, flags: MPOL_F_ADDR })).toEqual({
      ret: 0,
      mode: MPOL_DEFAULT,
      nodes: [],
    });
    expect(await p.mbind(a, 1024 * PG, MPOL_BIND, [0], 0)).toEqual({ ret: 0 });
    expect(p.getMempolicy({ addr: a + 5 * PG + 7, flags: MPOL_F_ADDR })).toEqual({
      ret: 0,
      mode: MPOL_BIND,
      nodes: [0],
    });
  });

  it('MPOL_F_ADDR on an unmapped (NULL) address → EFAULT; flags -1 → EINVAL', async () => {
    const m = await machine();
    const p = m.spawn();
    expect(p.getMempolicy({ addr: 0, flags: MPOL_F_ADDR })).toEqual({
      ret: -1,
      errno: EFAULT,
      mode: -1,
      nodes: [],
    });
    expect(p.getMempolicy({ flags: -1 })).toEqual({ ret: -1, errno: EINVAL, mode: -1, nodes: [] });
  });
});

describe('mbind(2): the paths of do_mbind', () => {
  it('refuses an unaligned start, a wrapping length and bad flags with EINVAL; len 0 is a no-op', async () => {
    const m = await machine();
    const p = m.spawn();
    const a = p.mmap(4 * PG);
    expect(await p.mbind(a + 1, PG, MPOL_BIND, [1])).toEqual({ ret: -1, errno: EINVAL });
    expect(await p.mbind(a, 2 ** 64 - PG, MPOL_BIND, [1])).toEqual({ ret: -1, errno: EINVAL });
    expect(await p.mbind(a, -PG, MPOL_BIND, [1])).toEqual({ ret: -1, errno: EINVAL });
    expect(await p.mbind(a, PG, MPOL_BIND, [1], MPOL_MF_LAZY)).toEqual({ ret: -1, errno: EINVAL });
    expect(await p.mbind(a, PG, MPOL_BIND, [1], 1.5)).toEqual({ ret: -1, errno: EINVAL });
    // len 0 (and a length PAGE_ALIGN wraps to 0) returns before the policy is even made.
    expect(await p.mbind(a, 0, MPOL_BIND, [])).toEqual({ ret: 0 });
    expect(await p.mbind(a, 2 ** 64 - 2048, MPOL_BIND, [])).toEqual({ ret: 0 });
    // An unaligned length is rounded up to whole pages.
    expect(await p.mbind(a, 1, MPOL_BIND, [1])).toEqual({ ret: 0 });
    expect(p.maps().map((v) => [(v.end - v.start) / PG, v.policy.mode])).toEqual([
      [1, 'bind'],
      [3, 'default'],
    ]);
  });

  it('checks the mode flags (sanitize_mpol_flags) and the node list (get_nodes)', async () => {
    const m = await machine();
    const p = m.spawn();
    const a = p.mmap(PG);
    const r = (mode: number, nodes: unknown) => p.mbind(a, PG, mode, nodes as number[]);
    expect(await r(7, [0])).toEqual({ ret: -1, errno: EINVAL });
    expect(await r(MPOL_BIND | MPOL_F_STATIC_NODES | MPOL_F_RELATIVE_NODES, [0])).toEqual({
      ret: -1,
      errno: EINVAL,
    });
    // MPOL_F_NUMA_BALANCING only with MPOL_BIND and MPOL_PREFERRED_MANY.
    expect(await r(MPOL_INTERLEAVE | MPOL_F_NUMA_BALANCING, [0])).toEqual({ ret: -1, errno: EINVAL });
    expect(await r(MPOL_PREFERRED_MANY | MPOL_F_NUMA_BALANCING, [0])).toEqual({ ret: 0 });
    expect(await r(MPOL_BIND | MPOL_F_NUMA_BALANCING, [0])).toEqual({ ret: 0 });
    expect(await r(MPOL_BIND, [MAX_NUMNODES])).toEqual({ ret: -1, errno: EINVAL });
    expect(await r(MPOL_BIND, [-1])).toEqual({ ret: -1, errno: EINVAL });
    expect(await r(MPOL_BIND, {})).toEqual({ ret: -1, errno: EFAULT });
    // MPOL_PREFERRED without nodes cannot take MPOL_F_STATIC_NODES/RELATIVE_NODES (mpol_new).
    expect(await r(MPOL_PREFERRED | MPOL_F_STATIC_NODES, [])).toEqual({ ret: -1, errno: EINVAL });
    expect(await r(MPOL_LOCAL | MPOL_F_RELATIVE_NODES, [])).toEqual({ ret: -1, errno: EINVAL });
  });

  it("takes the mask within the cpuset's nodes with memory; nothing left is EINVAL", async () => {
    const m = await machine(3, '8MiB');
    const p = m.spawn({ memsAllowed: [0, 1], node: 0 });
    const a = p.mmap(PG);
    expect(await p.mbind(a, PG, MPOL_BIND, [2])).toEqual({ ret: -1, errno: EINVAL });
    // A node that does not exist is simply not in the cpuset.
    expect(await p.mbind(a, PG, MPOL_BIND, [1, 2, 5])).toEqual({ ret: 0 });
    expect(p.getMempolicy({ addr: a, flags: MPOL_F_ADDR })).toEqual({ ret: 0, mode: MPOL_BIND, nodes: [1] });
    // With a mode flag the caller's own mask is kept and reported.
    expect(await p.mbind(a, PG, MPOL_INTERLEAVE | MPOL_F_STATIC_NODES, [1, 2])).toEqual({ ret: 0 });
    expect(p.getMempolicy({ addr: a, flags: MPOL_F_ADDR })).toEqual({
      ret: 0,
      mode: MPOL_INTERLEAVE | MPOL_F_STATIC_NODES,
      nodes: [1, 2],
    });
    // MPOL_F_RELATIVE_NODES: node i of the mask is the i-th allowed node (folded onto them).
    const q = m.spawn({ memsAllowed: [1, 2], node: 1 });
    const b = q.mmap(4 * PG, { thp: 'never' });
    expect(await q.mbind(b, 4 * PG, MPOL_BIND | MPOL_F_RELATIVE_NODES, [0])).toEqual({ ret: 0 });
    q.touch(b, 4 * PG);
    expect(nodesOf(q, b, 4)).toEqual([1, 1, 1, 1]);
    expect(await q.mbind(b, 4 * PG, MPOL_BIND | MPOL_F_RELATIVE_NODES, [3], MPOL_MF_MOVE)).toEqual({
      ret: 0,
    });
    expect(nodesOf(q, b, 4)).toEqual([2, 2, 2, 2]);
  });

  it('a hole at the head, in the middle or at the tail of the range is EFAULT, unless MPOL_DEFAULT', async () => {
    const m = await machine();
    const p = m.spawn();
    const a = p.mmap(8 * PG);
    p.munmap(a + 3 * PG, PG);
    const whole = [a, 8 * PG] as const;
    expect(await p.mbind(...whole, MPOL_BIND, [1])).toEqual({ ret: -1, errno: EFAULT });
    expect(await p.mbind(a - PG, 2 * PG, MPOL_BIND, [1])).toEqual({ ret: -1, errno: EFAULT });
    expect(await p.mbind(a + 4 * PG, 8 * PG, MPOL_BIND, [1])).toEqual({ ret: -1, errno: EFAULT });
    // Refused before any area changed.
    expect(p.maps().map((v) => v.policy.mode)).toEqual(['default', 'default']);
    // The default policy may span holes, not a range that is all hole.
    expect(await p.mbind(...whole, MPOL_DEFAULT, null)).toEqual({ ret: 0 });
    expect(await p.mbind(a + 3 * PG, PG, MPOL_DEFAULT, null)).toEqual({ ret: -1, errno: EFAULT });
    expect(await p.mbind(0, PG, MPOL_DEFAULT, null)).toEqual({ ret: -1, errno: EFAULT });
  });

  it('splits the area it covers part of, and merges the pieces back when they match again', async () => {
    const m = await machine();
    const p = m.spawn();
    const a = p.mmap(16 * PG);
    const areas = () =>
      p.maps().map((v) => [(v.start - a) / PG, (v.end - a) / PG, v.policy.mode, v.policy.nodes]);
    expect(await p.mbind(a + 4 * PG, 8 * PG, MPOL_BIND, [1])).toEqual({ ret: 0 });
    expect(areas()).toEqual([
      [0, 4, 'default', []],
      [4, 12, 'bind', [1]],
      [12, 16, 'default', []],
    ]);
    // The head piece joins its neighbour with the same policy (vma_merge).
    expect(await p.mbind(a, 4 * PG, MPOL_BIND, [1])).toEqual({ ret: 0 });
    expect(areas()).toEqual([
      [0, 12, 'bind', [1]],
      [12, 16, 'default', []],
    ]);
    expect(await p.mbind(a, 16 * PG, MPOL_DEFAULT, [])).toEqual({ ret: 0 });
    expect(areas()).toEqual([[0, 16, 'default', []]]);
    // Separate mappings never merge.
    const b = p.mmap(4 * PG);
    expect(await p.mbind(b, 4 * PG, MPOL_BIND, [1])).toEqual({ ret: 0 });
    expect(p.maps()).toHaveLength(2);
  });

  it('refuses a split past vm.max_map_count with ENOMEM, changing nothing', async () => {
    const m = await machine();
    const p = m.spawn();
    const a = p.mmap(16 * PG);
    const b = p.mmap(16 * PG);
    expect(m.sysctl.write('vm.max_map_count', 3)).toBe(0);
    // Two splits from 2 areas: the second would make a 4th area... refused at 3 (map_count >= max).
    expect(await p.mbind(a + PG, 2 * PG, MPOL_BIND, [1])).toEqual({ ret: -1, errno: ENOMEM });
    expect(p.maps().map((v) => v.policy.mode)).toEqual(['default', 'default']);
    // One split is allowed (2 < 3); one that merges needs none.
    expect(await p.mbind(b, PG, MPOL_BIND, [1])).toEqual({ ret: 0 });
    expect(await p.mbind(b + PG, 15 * PG, MPOL_BIND, [1])).toEqual({ ret: 0 });
    expect(p.maps().map((v) => v.policy.mode)).toEqual(['default', 'bind']);
  });

  it('splits a MAP_HUGETLB area only at huge page boundaries (hugetlb_vm_op_split): EINVAL', async () => {
    const m = await machine();
    expect(m.sysctl.write('vm.nr_hugepages', '2')).toBe(0);
    const p = m.spawn();
    const a = p.mmap(4 << 20, { hugetlb: true });
    expect(await p.mbind(a, PG, MPOL_BIND, [1])).toEqual({ ret: -1, errno: EINVAL });
    expect(await p.mbind(a + PG, (4 << 20) - PG, MPOL_BIND, [1])).toEqual({ ret: -1, errno: EINVAL });
    expect(p.maps().map((v) => v.policy.mode)).toEqual(['default']);
    expect(await p.mbind(a, 2 << 20, MPOL_BIND, [1])).toEqual({ ret: 0 });
    expect(p.maps().map((v) => v.policy.mode)).toEqual(['bind', 'default']);
    // hugetlb areas never merge (they have a close op).
    expect(await p.mbind(a + (2 << 20), 2 << 20, MPOL_BIND, [1])).toEqual({ ret: 0 });
    expect(p.maps().map((v) => v.policy.mode)).toEqual(['bind', 'bind']);
  });

  it('MPOL_MF_MOVE moves the huge pages of a MAP_HUGETLB area (migrate_hugetlbs), bytes intact', async () => {
    const m = await machine();
    expect(m.sysctl.write('vm.nr_hugepages', '4')).toBe(0);
    const p = m.spawn({ node: 0 });
    const a = p.mmap(4 << 20, { hugetlb: true });
    const data = pattern(1024, 9);
    p.write(a, data);
    expect([p.pageInfo(a)!.node, p.pageInfo(a + (2 << 20))!.node]).toEqual([0, 0]);
    expect(await p.mbind(a, 4 << 20, MPOL_BIND, [1], MPOL_MF_MOVE | MPOL_MF_STRICT)).toEqual({ ret: 0 });
    expect([p.pageInfo(a)!.node, p.pageInfo(a + (2 << 20))!.node]).toEqual([1, 1]);
    expect(sameBytes(p.read(a, 4 << 20), data)).toBe(true);
  });

  it('MPOL_MF_MOVE migrates only the misplaced pages, bytes intact; an unpopulated range moves nothing', async () => {
    const m = await machine();
    const p = m.spawn({ node: 0 });
    const { a, intact } = filledArea(p, 32);
    // Half the pages on node 1 first.
    expect(await p.mbind(a + 16 * PG, 16 * PG, MPOL_BIND, [1], MPOL_MF_MOVE)).toEqual({ ret: 0 });
    expect(nodesOf(p, a, 32)).toEqual([...Array(16).fill(0), ...Array(16).fill(1)]);
    const before = m.vmstat().pgmigrate_success;
    expect(await p.mbind(a, 32 * PG, MPOL_BIND, [1], MPOL_MF_MOVE)).toEqual({ ret: 0 });
    expect(m.vmstat().pgmigrate_success - before).toBe(16);
    expect(nodesOf(p, a, 32)).toEqual(Array(32).fill(1));
    expect(intact()).toBe(true);
    const empty = p.mmap(8 * PG);
    expect(await p.mbind(empty, 8 * PG, MPOL_BIND, [1], MPOL_MF_MOVE | MPOL_MF_STRICT)).toEqual({ ret: 0 });
    expect(m.vmstat().pgmigrate_success - before).toBe(16);
  });

  it('MPOL_DEFAULT with MPOL_MF_MOVE sends every page to the task policy (local: node 0)', async () => {
    const m = await machine();
    const p = m.spawn({ node: 0 });
    const { a, intact } = filledArea(p, 8);
    await p.mbind(a, 8 * PG, MPOL_BIND, [1], MPOL_MF_MOVE);
    expect(await p.mbind(a, 8 * PG, MPOL_DEFAULT, null, MPOL_MF_MOVE | MPOL_MF_STRICT)).toEqual({ ret: 0 });
    expect(nodesOf(p, a, 8)).toEqual(Array(8).fill(0));
    expect(intact()).toBe(true);
  });

  it('MPOL_INTERLEAVE with MPOL_MF_MOVE places each page where its fault would have', async () => {
    const m = await machine(3, '8MiB');
    const p = m.spawn({ node: 0 });
    const { a, intact } = filledArea(p, 12);
    // Pages already on a node of the mask would stay: interleave over the two others.
    expect(await p.mbind(a, 12 * PG, MPOL_INTERLEAVE, [1, 2], MPOL_MF_MOVE)).toEqual({ ret: 0 });
    // The interleave index of a private page is its address's page number (vm_pgoff + offset).
    const byIndex = (addr: number, n: number) =>
      Array.from({ length: n }, (_, i) => 1 + ((addr / PG + i) % 2));
    expect(nodesOf(p, a, 12)).toEqual(byIndex(a, 12));
    // A fresh area with the same policy faults its pages by the same rule.
    const b = p.mmap(12 * PG, { thp: 'never' });
    expect(await p.mbind(b, 12 * PG, MPOL_INTERLEAVE, [1, 2])).toEqual({ ret: 0 });
    p.touch(b, 12 * PG);
    expect(nodesOf(p, b, 12)).toEqual(byIndex(b, 12));
    expect(intact()).toBe(true);
    // MPOL_MF_MOVE does not rebalance pages that are on a node of the mask already.
    expect(await p.mbind(a, 12 * PG, MPOL_INTERLEAVE, [0, 1, 2], MPOL_MF_MOVE)).toEqual({ ret: 0 });
    expect(nodesOf(p, a, 12)).toEqual(byIndex(a, 12));
  });

  it('shared pages stay without MPOL_MF_MOVE_ALL (not a failure, even under STRICT), move with it', async () => {
    const m = await machine();
    const p = m.spawn({ uid: 0, node: 0 });
    const { a, intact } = filledArea(p, 4);
    const child = p.fork();
    child.read(a, 4 * PG);
    expect(await p.mbind(a, 4 * PG, MPOL_BIND, [1], MPOL_MF_MOVE | MPOL_MF_STRICT)).toEqual({ ret: 0 });
    expect(nodesOf(p, a, 4)).toEqual([0, 0, 0, 0]);
    expect(await p.mbind(a, 4 * PG, MPOL_BIND, [1], MPOL_MF_MOVE_ALL)).toEqual({ ret: 0 });
    expect(nodesOf(p, a, 4)).toEqual([1, 1, 1, 1]);
    expect(nodesOf(child, a, 4)).toEqual([1, 1, 1, 1]);
    expect(intact()).toBe(true);
  });

  it('a page that cannot move fails MPOL_MF_STRICT with EIO after the others moved', async () => {
    const m = await machine();
    const p = m.spawn({ node: 0 });
    const { a, intact } = filledArea(p, 4);
    const unpin = m.pinFolio(p.pageInfo(a + PG)!.pfn);
    expect(await p.mbind(a, 4 * PG, MPOL_BIND, [1], MPOL_MF_MOVE)).toEqual({ ret: 0 });
    expect(nodesOf(p, a, 4)).toEqual([1, 0, 1, 1]);
    expect(await p.mbind(a, 4 * PG, MPOL_BIND, [1], MPOL_MF_MOVE | MPOL_MF_STRICT)).toEqual({
      ret: -1,
      errno: EIO,
    });
    // The policy was applied all the same.
    expect(p.getMempolicy({ addr: a + PG, flags: MPOL_F_ADDR }).mode).toBe(MPOL_BIND);
    unpin();
    expect(intact()).toBe(true);
  });

  it('a non-migratable area: skipped without STRICT, EIO with STRICT', async () => {
    const m = await machine();
    const p = m.spawn({ node: 0 });
    const a = p.mmap(2 * PG, { migratable: false });
    p.touch(a, 2 * PG);
    expect(await p.mbind(a, 2 * PG, MPOL_BIND, [1], MPOL_MF_MOVE)).toEqual({ ret: 0 });
    expect(await p.mbind(a, 2 * PG, MPOL_BIND, [1], MPOL_MF_MOVE | MPOL_MF_STRICT)).toEqual({
      ret: -1,
      errno: EIO,
    });
    expect(nodesOf(p, a, 2)).toEqual([0, 0]);
  });

  it('a THP moves whole (thp_migration_success) and a bound THP area faults on its node', async () => {
    const m = await machine();
    const p = m.spawn({ node: 0 });
    const a = p.mmap(2 << 20, { thp: 'always' });
    const data = pattern(512, 3);
    p.write(a, data);
    expect(p.pageInfo(a)).toMatchObject({ huge: true, node: 0 });
    const before = m.vmstat().thp_migration_success;
    expect(await p.mbind(a, 2 << 20, MPOL_BIND, [1], MPOL_MF_MOVE)).toEqual({ ret: 0 });
    expect(p.pageInfo(a)).toMatchObject({ huge: true, node: 1 });
    expect(m.vmstat().thp_migration_success - before).toBe(1);
    expect(sameBytes(p.read(a, 2 << 20), data)).toBe(true);
  });

  it('shared anonymous memory: the policy belongs to the object, so a child that maps it follows it', async () => {
    const m = await machine();
    const p = m.spawn({ node: 0 });
    const a = p.mmap(8 * PG, { shared: true, thp: 'never' });
    const child = p.fork();
    expect(await p.mbind(a, 8 * PG, MPOL_BIND, [1])).toEqual({ ret: 0 });
    // The child's own area kept no policy, but its faults use the object's, and so does MPOL_F_ADDR.
    expect(child.getMempolicy({ addr: a, flags: MPOL_F_ADDR })).toEqual({
      ret: 0,
      mode: MPOL_BIND,
      nodes: [1],
    });
    child.touch(a, 8 * PG, 'write');
    expect(nodesOf(child, a, 8)).toEqual(Array(8).fill(1));
    // The parent maps the same pages of the object.
    p.touch(a, 8 * PG, 'read');
    expect(nodesOf(p, a, 8)).toEqual(Array(8).fill(1));
    expect(await p.mbind(a, 8 * PG, MPOL_DEFAULT, null)).toEqual({ ret: 0 });
    expect(child.getMempolicy({ addr: a, flags: MPOL_F_ADDR }).mode).toBe(MPOL_DEFAULT);
  });

  it('an exited process refuses the calls', async () => {
    const m = await machine();
    const p = m.spawn();
    p.exit();
    await expect(p.mbind(0, PG, MPOL_DEFAULT, null)).rejects.toThrow(PagemigError);
    expect(() => p.setMempolicy(MPOL_DEFAULT, null)).toThrow(/exited/);
    expect(() => p.getMempolicy()).toThrow(/exited/);
    // No such process: the errno a syscall naming its pid would get.
    expect(() => p.mmap(PG)).toThrow(expect.objectContaining({ code: 'ERR_PROCESS_EXITED', errno: ESRCH }));
  });
});

describe('set_mempolicy(2): the paths of kernel_set_mempolicy', () => {
  it('refuses bad modes, flags and masks with EINVAL (EFAULT for an unreadable mask)', async () => {
    const m = await machine();
    const p = m.spawn();
    for (const [mode, nodes, errno] of [
      [MPOL_DEFAULT, [0], EINVAL],
      [MPOL_BIND, [], EINVAL],
      [MPOL_INTERLEAVE, null, EINVAL],
      [MPOL_WEIGHTED_INTERLEAVE, [], EINVAL],
      [MPOL_PREFERRED_MANY, [], EINVAL],
      [MPOL_LOCAL, [0], EINVAL],
      [MPOL_PREFERRED | MPOL_F_RELATIVE_NODES, [], EINVAL],
      [MPOL_PREFERRED | MPOL_F_NUMA_BALANCING, [0], EINVAL],
      [MPOL_BIND | MPOL_F_STATIC_NODES | MPOL_F_RELATIVE_NODES, [0], EINVAL],
      [8, [0], EINVAL],
      [-1, [0], EINVAL],
      [Number.NaN, [0], EINVAL],
      [MPOL_BIND, [MAX_NUMNODES], EINVAL],
      [MPOL_BIND, 'x', EFAULT],
    ] as const) {
      expect(p.setMempolicy(mode, nodes as never), `mode ${mode} nodes ${String(nodes)}`).toEqual({
        ret: -1,
        errno,
      });
    }
    // Nothing was set by the failed calls.
    expect(p.getMempolicy()).toEqual({ ret: 0, mode: MPOL_DEFAULT, nodes: [] });
  });

  it('takes mode flags in the mode or as the third argument', async () => {
    const m = await machine();
    const p = m.spawn();
    expect(p.setMempolicy(MPOL_BIND, [0, 1], MPOL_F_NUMA_BALANCING)).toEqual({ ret: 0 });
    expect(p.getMempolicy()).toEqual({ ret: 0, mode: MPOL_BIND | MPOL_F_NUMA_BALANCING, nodes: [0, 1] });
    expect(p.setMempolicy(MPOL_INTERLEAVE | MPOL_F_STATIC_NODES, [1])).toEqual({ ret: 0 });
    expect(p.getMempolicy()).toEqual({ ret: 0, mode: MPOL_INTERLEAVE | MPOL_F_STATIC_NODES, nodes: [1] });
    expect(p.setMempolicy(MPOL_INTERLEAVE, [1], 1.5)).toEqual({ ret: -1, errno: EINVAL });
  });

  it('the cpuset bounds the default policy too: a confined task that fills its node is out of memory', async () => {
    const m = await machine(2, '8MiB');
    const p = m.spawn({ memsAllowed: [1], node: 1 });
    const n = 2560;
    const a = p.mmap(n * PG, { thp: 'never' });
    expectErrno(() => p.touch(a, n * PG), ENOMEM);
    const got = nodesOf(p, a, n).filter((x) => x >= 0);
    expect(count(got, 0)).toBe(0);
    expect(got.length).toBeGreaterThan(1000);
  });

  it('MPOL_PREFERRED_MANY tries its nodes first, then any', async () => {
    const m = await machine(3, '8MiB');
    const p = m.spawn({ node: 0 });
    expect(p.setMempolicy(MPOL_PREFERRED_MANY, [1, 2])).toEqual({ ret: 0 });
    const n = 5500;
    const a = p.mmap(n * PG, { thp: 'never' });
    p.touch(a, n * PG);
    const got = nodesOf(p, a, n);
    const first0 = got.indexOf(0);
    expect(first0).toBeGreaterThan(3000);
    expect(got.slice(0, first0).every((x) => x === 1 || x === 2)).toBe(true);
  });
});

describe('get_mempolicy(2): the paths of kernel_get_mempolicy', () => {
  it('MPOL_F_MEMS_ALLOWED gives the cpuset, alone only', async () => {
    const m = await machine(3, '8MiB');
    const p = m.spawn({ memsAllowed: [0, 2] });
    expect(p.getMempolicy({ flags: MPOL_F_MEMS_ALLOWED })).toEqual({ ret: 0, mode: 0, nodes: [0, 2] });
    for (const extra of [MPOL_F_NODE, MPOL_F_ADDR])
      expect(p.getMempolicy({ flags: MPOL_F_MEMS_ALLOWED | extra }).errno).toBe(EINVAL);
  });

  it('an address without MPOL_F_ADDR, or MPOL_F_NODE without an interleaving task → EINVAL', async () => {
    const m = await machine();
    const p = m.spawn();
    const a = p.mmap(PG);
    expect(p.getMempolicy({ addr: a }).errno).toBe(EINVAL);
    expect(p.getMempolicy({ flags: MPOL_F_NODE }).errno).toBe(EINVAL);
    p.setMempolicy(MPOL_BIND, [1]);
    expect(p.getMempolicy({ flags: MPOL_F_NODE }).errno).toBe(EINVAL);
    expect(() => p.getMempolicy(null as never)).toThrow(/getMempolicy options must be an object/);
  });

  it('MPOL_F_NODE alone: the next node of the task interleave (the first after set_mempolicy)', async () => {
    const m = await machine(3, '8MiB');
    const p = m.spawn();
    p.setMempolicy(MPOL_INTERLEAVE, [1, 2]);
    expect(p.getMempolicy({ flags: MPOL_F_NODE })).toEqual({ ret: 0, mode: 1, nodes: [1, 2] });
    p.setMempolicy(MPOL_WEIGHTED_INTERLEAVE, [0, 2]);
    expect(p.getMempolicy({ flags: MPOL_F_NODE })).toEqual({ ret: 0, mode: 0, nodes: [0, 2] });
  });

  it('MPOL_F_NODE|MPOL_F_ADDR: the node of the page, faulted in for reading if need be', async () => {
    const m = await machine();
    const p = m.spawn({ node: 0 });
    const a = p.mmap(2 * PG, { thp: 'never' });
    p.write(a, pattern(1));
    await p.mbind(a, PG, MPOL_BIND, [1], MPOL_MF_MOVE);
    expect(p.getMempolicy({ addr: a, flags: MPOL_F_NODE | MPOL_F_ADDR })).toEqual({
      ret: 0,
      mode: 1,
      nodes: [1],
    });
    // The untouched page is faulted in as the zero page (node 0 holds the kernel's zero page).
    expect(p.pageInfo(a + PG)).toBeNull();
    expect(p.getMempolicy({ addr: a + PG, flags: MPOL_F_NODE | MPOL_F_ADDR })).toEqual({
      ret: 0,
      mode: 0,
      nodes: [],
    });
    expect(p.pageInfo(a + PG)).toMatchObject({ zeroPage: true });
    const io = p.mmap(PG, { migratable: false });
    expect(p.getMempolicy({ addr: io, flags: MPOL_F_NODE | MPOL_F_ADDR }).errno).toBe(EFAULT);
  });
});

describe('weighted interleave (/sys/kernel/mm/mempolicy/weighted_interleave/nodeN)', () => {
  const wi = (n: number) => `/sys/kernel/mm/mempolicy/weighted_interleave/node${n}`;

  it('weights default to 1 and take 1..255', async () => {
    const m = await machine();
    expect(m.sysfs.read(wi(1))).toBe('1\n');
    for (const bad of ['0', '256', '', '-1', ' 3', 'x', '1.5'])
      expect(m.sysfs.write(wi(1), bad), bad).toBe(EINVAL);
    expect(m.sysfs.write(wi(1), '3\n')).toBe(0);
    expect(m.sysfs.write(wi(0), '0x2')).toBe(0);
    expect([m.sysfs.read(wi(0)), m.sysfs.read(wi(1))]).toEqual(['2\n', '3\n']);
  });

  it('pages go to the nodes in proportion to their weights', async () => {
    const m = await machine();
    m.sysfs.write(wi(1), '3');
    const p = m.spawn({ node: 0 });
    expect(p.setMempolicy(MPOL_WEIGHTED_INTERLEAVE, [0, 1])).toEqual({ ret: 0 });
    const a = p.mmap(400 * PG, { thp: 'never' });
    p.touch(a, 400 * PG);
    const got = nodesOf(p, a, 400);
    expect([count(got, 0), count(got, 1)]).toEqual([100, 300]);
    // Every window of 4 consecutive pages holds one page of node 0 and three of node 1.
    for (let i = 0; i + 4 <= 400; i += 4) expect(count(got.slice(i, i + 4), 0)).toBe(1);
  });
});

describe('counters', () => {
  it('numa_interleave counts interleaved pages that landed on their node', async () => {
    const m = await machine();
    const p = m.spawn({ node: 0 });
    const before = m.vmstat().numa_interleave;
    p.setMempolicy(MPOL_INTERLEAVE, [0, 1]);
    const a = p.mmap(64 * PG, { thp: 'never' });
    p.touch(a, 64 * PG);
    expect(m.vmstat().numa_interleave - before).toBe(64);
  });
});

describe('mbind inside a PMD-mapped THP (vma_adjust_trans_huge)', () => {
  for (const [what, flags] of [
    ['policy only', 0],
    ['with MPOL_MF_MOVE', MPOL_MF_MOVE],
  ] as const) {
    it(`${what}: the huge PMD is split at the cuts, so no entry maps pages of two areas`, async () => {
      const m = await machine(2, '32MiB');
      const p = m.spawn();
      const len = 2 * 2 ** 20;
      const a = p.mmap(len, { thp: 'always', node: 0 });
      const data = pattern(len / PG, 5);
      p.write(a, data);
      expect(p.pageInfo(a)).toMatchObject({ huge: true, order: 9 });
      expect(await p.mbind(a + 100 * PG, 4 * PG, MPOL_BIND, [1], flags)).toEqual({ ret: 0 });
      // Before, the one PMD went on mapping all 512 pages across three areas (invariants broke).
      m.checkInvariants();
      expect(p.maps().map((v) => (v.end - v.start) / PG)).toEqual([100, 4, 408]);
      expect(p.pageInfo(a)!.huge).toBe(false);
      expect(sameBytes(p.read(a, len), data)).toBe(true);
      // queue_folios_pmd queues the whole THP, which moves by the new policy (one folio, now
      // mapped by PTEs).
      expect(count(nodesOf(p, a, 512), flags ? 1 : 0)).toBe(512);
      expect(p.pageInfo(a + 511 * PG)).toMatchObject({ order: 9, huge: false });
    });
  }
});
