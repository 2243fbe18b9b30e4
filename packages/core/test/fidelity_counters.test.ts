/**
 * Counters and /proc text of issue 17: the NUMA allocation events (item 6: zone_statistics in
 * mm/page_alloc.c, NUMA_INTERLEAVE_HIT in alloc_pages_mpol of mm/mempolicy.c, vmstat_text's order
 * in mm/vmstat.c, node_read_numastat in drivers/base/node.c), thp_zero_page_alloc (item 7:
 * get_huge_zero_folio in mm/huge_memory.c) and zoneinfo's protection array (item 8:
 * zoneinfo_show_print prints lowmem_reserve[MAX_NR_ZONES]).
 */
import { describe, expect, it } from 'vitest';
import type { Machine } from '../src/machine.js';
import { MPOL_MF_MOVE } from '../src/mempolicy.js';
import { HPAGE_PMD_NR, PAGE_SIZE } from '../src/mmzone.js';
import type { Process } from '../src/process.js';
import { vmstatNumaEvents } from '../src/vmstat.js';
import { machinesCheckedAfterEach, pattern, sameBytes } from './helpers.js';

const machine = machinesCheckedAfterEach();

type Numa = Record<(typeof vmstatNumaEvents)[number], number>;
const numa = (m: Machine): Numa =>
  Object.fromEntries(vmstatNumaEvents.map((n) => [n, m.vmstat()[n]])) as Numa;
const delta = (a: Numa, b: Numa): Numa =>
  Object.fromEntries(vmstatNumaEvents.map((n) => [n, b[n] - a[n]])) as Numa;
const zero: Numa = {
  numa_hit: 0,
  numa_miss: 0,
  numa_foreign: 0,
  numa_interleave: 0,
  numa_local: 0,
  numa_other: 0,
};
/** nodeN/numastat parsed: its six names and values. */
const numastat = (m: Machine, nid: number) =>
  Object.fromEntries(
    m.sysfs
      .read(`/sys/devices/system/node/node${nid}/numastat`)
      .trimEnd()
      .split('\n')
      .map((l) => [l.split(' ')[0]!, Number(l.split(' ')[1])]),
  );

/** Maps `pages` pages with `opts` and writes them; returns the address and the bytes. */
function written(p: Process, pages: number, opts: Parameters<Process['mmap']>[1], seed: number) {
  const addr = p.mmap(pages * PAGE_SIZE, { thp: 'never', ...opts });
  const data = pattern(pages, seed);
  p.write(addr, data);
  return { addr, data };
}

describe('zone_statistics: numa_hit/miss/foreign/local/other, once per allocation', () => {
  it('local faults count hit+local; faults bound to the other node count hit+other there', async () => {
    const m = await machine();
    const p = m.spawn({ node: 0 });
    let before = numa(m);
    const local = written(p, 8, {}, 1);
    expect(delta(before, numa(m))).toEqual({ ...zero, numa_hit: 8, numa_local: 8 });
    before = numa(m);
    const remote = written(p, 4, { node: 1 }, 2);
    expect(delta(before, numa(m))).toEqual({ ...zero, numa_hit: 4, numa_other: 4 });
    // A 2 MiB THP is one allocation: it counts 1, not 512 (rmqueue passes nr_account 1).
    before = numa(m);
    const thp = p.mmap(2 << 20, { thp: 'always' });
    p.write(thp, new Uint8Array([7]));
    expect(p.pageInfo(thp)!.order).toBe(9);
    expect(delta(before, numa(m))).toEqual({ ...zero, numa_hit: 1, numa_local: 1 });
    expect(numastat(m, 1)).toEqual({
      numa_hit: 4,
      numa_miss: 0,
      numa_foreign: 0,
      interleave_hit: 0,
      local_node: 0,
      other_node: 4,
    });
    expect(sameBytes(p.read(local.addr, 8 * PAGE_SIZE), local.data)).toBe(true);
    expect(sameBytes(p.read(remote.addr, 4 * PAGE_SIZE), remote.data)).toBe(true);
  });

  it('migration targets count on the target node as the migrating task sees it (move_pages: hit+other)', async () => {
    const m = await machine();
    const p = m.spawn({ node: 0 });
    const r = written(p, 3, {}, 3);
    const before = numa(m);
    expect(await p.movePages(0, [r.addr, r.addr + PAGE_SIZE], [1, 1], MPOL_MF_MOVE)).toEqual({
      ret: 0,
      status: [1, 1],
    });
    expect(delta(before, numa(m))).toEqual({ ...zero, numa_hit: 2, numa_other: 2 });
    // The same move issued by a process running on node 1: local there.
    const mover = m.spawn({ node: 1, uid: p.uid });
    const b2 = numa(m);
    expect(await mover.movePages(p.pid, [r.addr + 2 * PAGE_SIZE], [1], MPOL_MF_MOVE)).toEqual({
      ret: 0,
      status: [1],
    });
    expect(delta(b2, numa(m))).toEqual({ ...zero, numa_hit: 1, numa_local: 1 });
    expect(sameBytes(p.read(r.addr, 3 * PAGE_SIZE), r.data)).toBe(true);
  });

  it('a preferred node that is full: numa_miss on the zone used, numa_foreign on the preferred one', async () => {
    const m = await machine({ nodes: [{ memory: '16MiB' }, { memory: '16MiB' }] });
    const k = m.kernel;
    // Fill node 1 (kernel allocations that never leave it), 2 MiB blocks first.
    const held: number[] = [];
    for (const order of [9, 0])
      for (let pfn = k.allocFolio({ order, nid: 1, thisNode: true }); pfn >= 0; ) {
        held.push(pfn);
        pfn = k.allocFolio({ order, nid: 1, thisNode: true });
      }
    const p = m.spawn({ node: 0 });
    const before = numa(m);
    const r = written(p, 2, { policy: { mode: 'preferred', nodes: [1] } }, 4);
    expect([p.pageInfo(r.addr)!.node, p.pageInfo(r.addr + PAGE_SIZE)!.node]).toEqual([0, 0]);
    expect(delta(before, numa(m))).toEqual({ ...zero, numa_miss: 2, numa_foreign: 2, numa_local: 2 });
    const [n0, n1] = [numastat(m, 0), numastat(m, 1)];
    expect([n0.numa_miss, n0.numa_foreign, n1.numa_miss, n1.numa_foreign]).toEqual([2, 0, 0, 2]);
    for (const pfn of held) k.folioPut(pfn);
    expect(sameBytes(p.read(r.addr, 2 * PAGE_SIZE), r.data)).toBe(true);
  });

  it('interleave: a folio on the node the policy chose counts numa_interleave on that node', async () => {
    const m = await machine();
    const p = m.spawn({ node: 1 });
    const before = numa(m);
    const r = written(p, 8, { policy: { mode: 'interleave', nodes: [0, 1] } }, 5);
    const onNode = [0, 1].map(
      (nid) =>
        Array.from({ length: 8 }, (_, i) => p.pageInfo(r.addr + i * PAGE_SIZE)!.node === nid).filter(Boolean)
          .length,
    );
    expect(onNode[0]! + onNode[1]!).toBe(8);
    expect(onNode[0]).toBeGreaterThan(0);
    expect(onNode[1]).toBeGreaterThan(0);
    expect(delta(before, numa(m))).toEqual({
      ...zero,
      numa_hit: 8,
      numa_interleave: 8,
      numa_local: onNode[1]!,
      numa_other: onNode[0]!,
    });
    expect(numastat(m, 0).interleave_hit).toBe(onNode[0]);
    expect(numastat(m, 1).interleave_hit).toBe(onNode[1]);
    expect(sameBytes(p.read(r.addr, 8 * PAGE_SIZE), r.data)).toBe(true);
  });

  it('/proc/vmstat prints them after the zone stats (nr_mlock) and before the node stats; numastat sums to them', async () => {
    const m = await machine();
    const p = m.spawn({ node: 0 });
    written(p, 5, {}, 6);
    written(p, 3, { node: 1 }, 7);
    const lines = m.procfs.vmstat().split('\n');
    const i = lines.indexOf('nr_mlock 0');
    const v = m.vmstat();
    expect(lines.slice(i + 1, i + 8)).toEqual([
      `numa_hit ${v.numa_hit}`,
      'numa_miss 0',
      'numa_foreign 0',
      'numa_interleave 0',
      `numa_local ${v.numa_local}`,
      `numa_other ${v.numa_other}`,
      `nr_inactive_anon ${v.nr_inactive_anon}`,
    ]);
    expect([v.numa_hit, v.numa_local, v.numa_other]).toEqual([8, 5, 3]);
    expect(m.sysfs.read('/sys/devices/system/node/node0/numastat')).toBe(
      'numa_hit 5\nnuma_miss 0\nnuma_foreign 0\ninterleave_hit 0\nlocal_node 5\nother_node 0\n',
    );
    expect(m.sysfs.read('/sys/devices/system/node/node1/numastat')).toBe(
      'numa_hit 3\nnuma_miss 0\nnuma_foreign 0\ninterleave_hit 0\nlocal_node 0\nother_node 3\n',
    );
  });
});

describe('thp_zero_page_alloc (get_huge_zero_folio)', () => {
  it('counts the first allocation of the huge zero folio only', async () => {
    const m = await machine();
    const p = m.spawn();
    const a = p.mmap(4 << 20, { thp: 'always' });
    expect(m.vmstat().thp_zero_page_alloc).toBe(0);
    expect(p.read(a, 16)).toEqual(new Uint8Array(16));
    expect(p.pageInfo(a)).toMatchObject({ zeroPage: true, huge: true });
    expect(m.vmstat().thp_zero_page_alloc).toBe(1);
    // Another huge zero PMD, and another process's: the folio exists, nothing is counted.
    p.read(a + (2 << 20), 1);
    const q = m.spawn();
    const b = q.mmap(2 << 20, { thp: 'always' });
    q.touch(b, HPAGE_PMD_NR * PAGE_SIZE, 'read');
    expect(q.pageInfo(b)).toMatchObject({ zeroPage: true, huge: true });
    expect(m.vmstat().thp_zero_page_alloc).toBe(1);
    expect(m.procfs.vmstat()).toMatch(/^thp_zero_page_alloc 1$/m);
  });
});

describe('/proc/zoneinfo protection: MAX_NR_ZONES entries for every zone', () => {
  it('prints (0, 0, 0, 0) for a node with one zone and for each zone of a three-zone node', async () => {
    const m = await machine({
      nodes: [
        { memory: '16MiB' },
        {
          memory: '16MiB',
          zones: [
            { type: 'DMA32', memory: '4MiB' },
            { type: 'Normal', memory: '8MiB' },
            { type: 'Movable', memory: '4MiB' },
          ],
        },
      ],
    });
    const text = m.procfs.zoneinfo();
    const protection = text.split('\n').filter((l) => l.includes('protection'));
    expect(protection).toEqual(new Array(4).fill('        protection: (0, 0, 0, 0)'));
    expect(text).toContain(
      '        cma      0\n        protection: (0, 0, 0, 0)\n  start_pfn:           4096\n',
    );
  });
});
