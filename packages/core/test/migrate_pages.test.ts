import { describe, expect, it } from 'vitest';
import { EINVAL, EPERM, ESRCH } from '../src/errno.js';
import { MAX_NUMNODES, PAGE_SIZE } from '../src/mmzone.js';
import type { MmapOptions, Process } from '../src/process.js';
import { machinesCheckedAfterEach, pattern, sameBytes } from './helpers.js';

const PG = PAGE_SIZE;

const newMachine = machinesCheckedAfterEach();
const machine = (nodes = 2) =>
  newMachine({ nodes: Array.from({ length: nodes }, () => ({ memory: '32MiB' })) });

interface Region {
  p: Process;
  a: number;
  bytes: number;
  data: Uint8Array;
}

function region(p: Process, pages: number, node: number, seed: number, opts: MmapOptions = {}): Region {
  const bytes = pages * PG;
  const a = p.mmap(bytes, { node, ...opts });
  const data = pattern(pages, seed);
  p.write(a, data);
  return { p, a, bytes, data };
}

/** The node of every page of the region (as seen by `p`). */
function nodes(r: Region, p: Process = r.p): number[] {
  const out: number[] = [];
  for (let off = 0; off < r.bytes; off += PG) out.push(p.pageInfo(r.a + off)?.node ?? -1);
  return out;
}
const all = (n: number, node: number) => new Array<number>(n).fill(node);
const intact = (r: Region, p: Process = r.p) => sameBytes(p.read(r.a, r.bytes), r.data);

describe('LTP migrate_pages01: errors', () => {
  it('the same node in old and new (pid 0) returns 0 and moves nothing', async () => {
    const m = await machine();
    const p = m.spawn({ uid: 0, privileged: true });
    const r = region(p, 2, 0, 1);
    m.trace.clear();
    expect(await p.migratePages(0, [0], [0])).toEqual({ ret: 0 });
    expect(await p.migratePages(0, [0, 1], [0, 1])).toEqual({ ret: 0 });
    expect(m.trace.events('migrate')).toEqual([]);
    expect(nodes(r)).toEqual([0, 0]);
  });

  it('pid -1 and an unused pid → ESRCH', async () => {
    const m = await machine();
    const p = m.spawn({ uid: 0, privileged: true });
    region(p, 1, 0, 1);
    expect(await p.migratePages(-1, [0], [1])).toEqual({ ret: -1, errno: ESRCH });
    expect(await p.migratePages(31337, [0], [1])).toEqual({ ret: -1, errno: ESRCH });
    const gone = m.spawn();
    gone.exit();
    expect(await p.migratePages(gone.pid, [0], [1])).toEqual({ ret: -1, errno: ESRCH });
  });

  it('node ids < 0 or >= MAX_NUMNODES in either mask → EINVAL, checked before the pid', async () => {
    const m = await machine();
    const p = m.spawn({ uid: 0, privileged: true });
    const r = region(p, 1, 0, 1);
    for (const [oldN, newN] of [
      [[-1], [1]],
      [[0], [-1]],
      [[MAX_NUMNODES], [1]],
      [[0], [MAX_NUMNODES]],
      [[0.5], [1]],
    ] as [number[], number[]][]) {
      expect(await p.migratePages(0, oldN, newN)).toEqual({ ret: -1, errno: EINVAL });
      expect(await p.migratePages(31337, oldN, newN)).toEqual({ ret: -1, errno: EINVAL });
    }
    expect(nodes(r)).toEqual([0]);
  });

  it('new_nodes that the caller may not use → EINVAL (nothing left after the cpuset intersection)', async () => {
    const m = await machine();
    // A node id that is not a memory node (root may name it: the EPERM check passes).
    const root = m.spawn({ uid: 0, privileged: true });
    const r = region(root, 1, 0, 1);
    expect(await root.migratePages(0, [0], [5])).toEqual({ ret: -1, errno: EINVAL });
    expect(nodes(r)).toEqual([0]);
    // A node outside the caller's own cpuset, though inside the target's.
    const target = m.spawn({ uid: 1000, memsAllowed: [0, 1] });
    const t = region(target, 1, 0, 2);
    const confined = m.spawn({ uid: 1000, memsAllowed: [0] });
    expect(await confined.migratePages(target.pid, [0], [1])).toEqual({ ret: -1, errno: EINVAL });
    const confinedRoot = m.spawn({ uid: 0, privileged: true, memsAllowed: [0] });
    expect(await confinedRoot.migratePages(target.pid, [0], [1])).toEqual({ ret: -1, errno: EINVAL });
    expect(nodes(t)).toEqual([0]);
  });

  it("unprivileged, new_nodes outside the target's cpuset → EPERM; CAP_SYS_NICE may", async () => {
    const m = await machine();
    const target = m.spawn({ uid: 1000, memsAllowed: [0] });
    const t = region(target, 2, 0, 1);
    const peer = m.spawn({ uid: 1000 });
    expect(await peer.migratePages(target.pid, [0], [1])).toEqual({ ret: -1, errno: EPERM });
    expect(await target.migratePages(0, [0], [1])).toEqual({ ret: -1, errno: EPERM });
    expect(nodes(t)).toEqual([0, 0]);
    const root = m.spawn({ uid: 0, privileged: true });
    expect(await root.migratePages(target.pid, [0], [1])).toEqual({ ret: 0 });
    expect(nodes(t)).toEqual([1, 1]);
    expect(intact(t)).toBe(true);
  });

  it('a process of another uid (child after setuid(nobody)) migrating its root parent → EPERM', async () => {
    const m = await machine();
    const parent = m.spawn({ uid: 0, privileged: true });
    const r = region(parent, 1, 0, 1);
    const nobody = m.spawn({ uid: 65534 });
    expect(await nobody.migratePages(parent.pid, [0], [1])).toEqual({ ret: -1, errno: EPERM });
    expect(nodes(r)).toEqual([0]);
  });
});

describe('LTP migrate_pages02', () => {
  it('(a) a touched private page follows the process to node 1 and back', async () => {
    const m = await machine();
    const p = m.spawn();
    const r = region(p, 3, 0, 1);
    const before = m.vmstat().pgmigrate_success;
    expect(await p.migratePages(0, [0], [1])).toEqual({ ret: 0 });
    expect(nodes(r)).toEqual(all(3, 1));
    expect(intact(r)).toBe(true);
    expect(await p.migratePages(0, [1], [0])).toEqual({ ret: 0 });
    expect(nodes(r)).toEqual(all(3, 0));
    expect(intact(r)).toBe(true);
    expect(m.vmstat().pgmigrate_success - before).toBe(6);
    // The reason and mode are those of the syscall.
    expect(m.trace.events('migrate:mm_migrate_pages_start').at(-1)!.text).toBe(
      'mode=MIGRATE_SYNC reason=syscall_or_cpuset',
    );
  });

  it.each([true, false])(
    '(b) privileged=%s: a shared page moves only with CAP_SYS_NICE; the private page moves either way',
    async (privileged) => {
      const m = await machine();
      const parent = m.spawn({ uid: privileged ? 0 : 65534, privileged });
      const shared = region(parent, 1, 0, 1, { shared: true });
      // The parent moves itself (shared page included: nobody else maps it yet) to node 1.
      expect(await parent.migratePages(0, [0], [1])).toEqual({ ret: 0 });
      expect(nodes(shared)).toEqual([1]);
      const child = parent.fork();
      child.touch(shared.a, PG, 'read');
      const priv = region(child, 2, 1, 2);
      // The child migrates itself back to node 0.
      expect(await child.migratePages(0, [1], [0])).toEqual({ ret: 0 });
      expect(nodes(priv, child)).toEqual([0, 0]);
      expect(intact(priv, child)).toBe(true);
      const want = privileged ? 0 : 1;
      expect(nodes(shared, child)).toEqual([want]);
      expect(nodes(shared, parent)).toEqual([want]);
      expect(intact(shared, parent) && intact(shared, child)).toBe(true);
    },
  );

  it("(c) another process of the same uid, or a privileged one, can migrate a child's private page", async () => {
    const m = await machine();
    const parent = m.spawn({ uid: 1000 });
    const child = parent.fork();
    const r = region(child, 2, 0, 1);
    const sameUid = m.spawn({ uid: 1000 });
    expect(await sameUid.migratePages(child.pid, [0], [1])).toEqual({ ret: 0 });
    expect(nodes(r)).toEqual([1, 1]);
    const root = m.spawn({ uid: 0, privileged: true });
    expect(await root.migratePages(child.pid, [1], [0])).toEqual({ ret: 0 });
    expect(nodes(r)).toEqual([0, 0]);
    const other = m.spawn({ uid: 2000 });
    expect(await other.migratePages(child.pid, [0], [1])).toEqual({ ret: -1, errno: EPERM });
    expect(nodes(r)).toEqual([0, 0]);
    expect(intact(r)).toBe(true);
  });
});

describe('migrate_pages: what moves, and the return value', () => {
  it('returns the number of pages that could not be moved', async () => {
    const m = await machine();
    const p = m.spawn();
    const r = region(p, 4, 0, 1);
    const held = p.pageInfo(r.a + 2 * PG)!.pfn;
    m.folioGet(held);
    const before = m.vmstat();
    expect(await p.migratePages(0, [0], [1])).toEqual({ ret: 1 });
    expect(nodes(r)).toEqual([1, 1, 0, 1]);
    expect(m.vmstat().pgmigrate_fail - before.pgmigrate_fail).toBe(1);
    expect(intact(r)).toBe(true);
    m.folioPut(held);
    expect(await p.migratePages(0, [0], [1])).toEqual({ ret: 0 });
    expect(nodes(r)).toEqual(all(4, 1));
    expect(intact(r)).toBe(true);
  });

  it('moves only pages on the old nodes; THPs move whole; zero pages and non-migratable areas stay', async () => {
    const m = await machine(3);
    const p = m.spawn();
    const on0 = region(p, 4, 0, 1);
    const on2 = region(p, 3, 2, 2);
    const thp = region(p, 512, 0, 3, { thp: 'always' });
    const io = region(p, 1, 0, 4, { migratable: false });
    const zero = p.mmap(PG, { node: 0 });
    p.read(zero, 1);
    const before = m.vmstat();
    expect(await p.migratePages(0, [0], [1])).toEqual({ ret: 0 });
    expect(nodes(on0)).toEqual(all(4, 1));
    expect(nodes(on2)).toEqual(all(3, 2));
    expect(p.pageInfo(thp.a)).toMatchObject({ node: 1, order: 9, huge: true });
    expect(nodes(io)).toEqual([0]);
    expect(p.pageInfo(zero)!.zeroPage).toBe(true);
    const after = m.vmstat();
    expect(after.pgmigrate_success - before.pgmigrate_success).toBe(4 + 512);
    expect(after.thp_migration_success - before.thp_migration_success).toBe(1);
    expect([on0, on2, thp, io].every((r) => intact(r))).toBe(true);
  });

  it('relative placement with 3 nodes: {0,1} → {1,2} moves node-0 pages to 1 and node-1 pages to 2', async () => {
    const m = await machine(3);
    const p = m.spawn();
    const a = region(p, 3, 0, 1);
    const b = region(p, 5, 1, 2);
    m.trace.clear();
    expect(await p.migratePages(0, [0, 1], [1, 2])).toEqual({ ret: 0 });
    expect(nodes(a)).toEqual(all(3, 1));
    expect(nodes(b)).toEqual(all(5, 2));
    expect(intact(a) && intact(b)).toBe(true);
    // do_migrate_pages picks a pair whose destination is not itself a pending source first:
    // node 1 → 2 (5 pages), then node 0 → 1 (3 pages).
    expect(m.trace.events('migrate:mm_migrate_pages').map((e) => e.fields.succeeded)).toEqual([5, 3]);
  });

  it('node masks are sets: [0, 1] → [1, 0] is {0,1} → {0,1}, and nothing moves', async () => {
    const m = await machine();
    const p = m.spawn();
    const a = region(p, 3, 0, 1);
    const b = region(p, 5, 1, 2);
    m.trace.clear();
    expect(await p.migratePages(0, [0, 1], [1, 0])).toEqual({ ret: 0 });
    expect(m.trace.events('migrate')).toEqual([]);
    expect(nodes(a)).toEqual(all(3, 0));
    expect(nodes(b)).toEqual(all(5, 1));
  });

  it('{1,2} → {0,1} on 3 nodes: 1 → 0 first (0 is free), then 2 → 1', async () => {
    const m = await machine(3);
    const p = m.spawn();
    const a = region(p, 3, 1, 1);
    const b = region(p, 5, 2, 2);
    m.trace.clear();
    expect(await p.migratePages(0, [1, 2], [0, 1])).toEqual({ ret: 0 });
    expect(m.trace.events('migrate:mm_migrate_pages').map((e) => e.fields.succeeded)).toEqual([3, 5]);
    expect(nodes(a)).toEqual(all(3, 0));
    expect(nodes(b)).toEqual(all(5, 1));
    expect(intact(a) && intact(b)).toBe(true);
  });

  it('unequal mask weights: sources that are also destinations stay ([0,1,2] → [1,2] moves only node 0)', async () => {
    const m = await machine(3);
    const p = m.spawn();
    const r0 = region(p, 2, 0, 1);
    const r1 = region(p, 2, 1, 2);
    const r2 = region(p, 2, 2, 3);
    expect(await p.migratePages(0, [0, 1, 2], [1, 2])).toEqual({ ret: 0 });
    expect([nodes(r0), nodes(r1), nodes(r2)]).toEqual([
      [1, 1],
      [1, 1],
      [2, 2],
    ]);
    // [0] → [1, 2]: one source, remapped to the first destination.
    expect(await p.migratePages(0, [1], [0, 2])).toEqual({ ret: 0 });
    expect([nodes(r0), nodes(r1), nodes(r2)]).toEqual([
      [0, 0],
      [0, 0],
      [2, 2],
    ]);
    expect([r0, r1, r2].every((r) => intact(r))).toBe(true);
  });

  it('shared memory (shmem) only the target maps moves without privilege', async () => {
    const m = await machine();
    const p = m.spawn();
    const sh = region(p, 2 * 512, 0, 1, { shared: true, thp: 'always' });
    expect(p.pageInfo(sh.a)!.order).toBe(9);
    expect(await p.migratePages(0, [0], [1])).toEqual({ ret: 0 });
    expect(nodes(sh)).toEqual(all(1024, 1));
    expect(intact(sh)).toBe(true);
  });
});
