import { describe, expect, it } from 'vitest';
import { EACCES, EINVAL, ENODEV, ENOENT, EPERM } from '../src/errno.js';
import { createMachine } from '../src/machine.js';
import { MPOL_MF_MOVE } from '../src/mempolicy.js';
import { PAGE_SIZE } from '../src/mmzone.js';
import { catchPagemig, expectErrno, machinesCheckedAfterEach, pattern, sameBytes } from './helpers.js';

/**
 * Memory-less and CPU-less nodes (issue 17). node_states (include/linux/nodemask.h): N_MEMORY
 * holds the nodes with memory, N_CPU those with CPUs; drivers/base/node.c prints each mask as a
 * list ("0-1,3"). do_pages_move() refuses a target without memory with ENODEV
 * (!node_state(node, N_MEMORY)) after flushing the queued batch and without storing a status for
 * it (store_status is never reached); the cpuset's mems are nodes with memory only, so
 * migrate_pages(2) to a memory-less node is EPERM or EINVAL (kernel_migrate_pages). A memory-less
 * node's CPUs allocate from the nearest node with memory (build_zonelists skips it); no process
 * runs on a CPU-less node.
 */

const PG = PAGE_SIZE;
const machine = machinesCheckedAfterEach();
const NODE = '/sys/devices/system/node';

/** DRAM node 0, CXL memory without CPUs (node 1), a memory-less node with a CPU (node 2). */
const cxlConfig = {
  nodes: [{ memory: '16MiB' }, { memory: '32MiB', tier: 'cxl', cpus: 0 }, { memory: 0 }],
  // Node 2 is closest to node 1, so its CPU allocates there.
  distances: [
    [10, 20, 30],
    [20, 10, 15],
    [30, 15, 10],
  ],
};

describe('node_states and /sys/devices/system/node', () => {
  it('has_memory, has_cpu, has_normal_memory, online, possible in the kernel list format', async () => {
    const m = await machine(cxlConfig);
    const read = (f: string) => m.sysfs.read(`${NODE}/${f}`);
    expect(read('possible')).toBe('0-2\n');
    expect(read('online')).toBe('0-2\n');
    expect(read('has_memory')).toBe('0-1\n');
    expect(read('has_normal_memory')).toBe('0-1\n');
    expect(read('has_cpu')).toBe('0,2\n');
    expect(read('has_generic_initiator')).toBe('\n');
    expect(read('node0/cpulist')).toBe('0\n');
    expect(read('node1/cpulist')).toBe('\n');
    expect(read('node2/cpulist')).toBe('1\n');
    expect(read('node2/distance')).toBe('30 15 10\n');
    expect(m.nodes.map((n) => [n.memory, n.cpus, n.tier])).toEqual([
      [16 << 20, 1, 'dram'],
      [32 << 20, 0, 'cxl'],
      [0, 1, 'dram'],
    ]);
  });

  it('a Movable-only node has memory but no normal memory; a node with neither is possible, not online', async () => {
    const m = await machine({
      nodes: [
        { memory: '8MiB', cpus: 2 },
        { memory: '8MiB', cpus: 2 },
        { memory: 0, cpus: 0 },
        { memory: '8MiB', cpus: 0, zones: [{ type: 'Movable', memory: '8MiB' }] },
      ],
    });
    const read = (f: string) => m.sysfs.read(`${NODE}/${f}`);
    expect(read('possible')).toBe('0-3\n');
    expect(read('online')).toBe('0-1,3\n');
    expect(read('has_memory')).toBe('0-1,3\n');
    expect(read('has_normal_memory')).toBe('0-1\n');
    expect(read('has_cpu')).toBe('0-1\n');
    expect(read('node1/cpulist')).toBe('2-3\n');
    // node_read_distance lists the online nodes only; there is no node2 directory.
    expect(read('node3/distance')).toBe('20 20 10\n');
    expect(m.sysfs.list()).not.toContain(`${NODE}/node2/cpulist`);
    const e = expectErrno(() => m.sysfs.read(`${NODE}/has_memroy`), ENOENT);
    expect(e.message).toMatch(/did you mean \/sys\/devices\/system\/node\/has_memory\?/);
  });

  it('the config: cpus and memory 0 are checked, naming the field', async () => {
    const bad = async (nodes: unknown, field: RegExp) => {
      const err = await createMachine({ nodes } as never).catch((e: unknown) => e);
      expect(err).toMatchObject({ code: 'ERR_INVALID_CONFIG' });
      expect((err as Error).message).toMatch(field);
    };
    await bad([{ memory: '8MiB', cpus: -1 }], /nodes\.0\.cpus/);
    await bad([{ memory: '8MiB', cpus: 1.5 }], /nodes\.0\.cpus/);
    await bad([{ memory: 0 }], /at least one node needs memory/);
    await bad([{ memory: '8MiB', cpus: 0 }], /at least one node needs CPUs/);
    await bad([{ memory: '8MiB' }, { memory: 0, zones: [{ type: 'Normal', memory: 0 }] }], /nodes\.1\.zones/);
    await bad([{ memory: '8MiB' }, { memory: '1MiB' }], /nodes\.1\.memory.*or 0 for a memory-less node/);
  });
});

describe('/proc views of a machine with a memory-less node', () => {
  it('buddyinfo, pagetypeinfo and zoneinfo print nothing for it; vmstat and invariants cope', async () => {
    const m = await machine(cxlConfig);
    const buddy = m.procfs.buddyinfo().trimEnd().split('\n');
    expect(buddy.map((l) => l.slice(0, 21))).toEqual(['Node 0, zone   Normal', 'Node 1, zone   Normal']);
    expect(m.procfs.pagetypeinfo()).not.toMatch(/Node +2,/);
    expect(m.procfs.zoneinfo()).toMatch(/Node 1, zone {3}Normal/);
    expect(m.procfs.zoneinfo()).not.toMatch(/Node 2,/);
    expect(m.vmstat().nr_free_pages).toBe(m.freePages(0) + m.freePages(1));
    expect(m.freePages(2)).toBe(0);
    m.checkInvariants();
  });
});

describe('move_pages(2) and migrate_pages(2) to a node without memory', () => {
  it('move_pages: ENODEV (19) after the queued pages moved; that entry’s status is not written', async () => {
    const m = await machine(cxlConfig);
    const p = m.spawn({ node: 0 });
    const a = p.mmap(4 * PG, { node: 0 });
    const data = pattern(4, 1);
    p.write(a, data);
    const status = [-123, -123, -123, -123];
    const r = await p.movePages(0, [a, a + PG, a + 2 * PG, a + 3 * PG], [1, 1, 2, 1], MPOL_MF_MOVE, status);
    // do_pages_move: out_flush migrates entries 0 and 1 and stores their status, then fails.
    expect(r).toEqual({ ret: -1, errno: ENODEV, status: [1, 1, -123, -123] });
    expect(ENODEV).toBe(19);
    expect((await p.movePages(0, [a, a + PG, a + 2 * PG, a + 3 * PG], null, 0)).status).toEqual([1, 1, 0, 0]);
    expect(sameBytes(p.read(a, 4 * PG), data)).toBe(true);
    // A node id beyond the machine is ENODEV too; a CPU-less node with memory is a valid target.
    expect(await p.movePages(0, [a + 2 * PG], [3], MPOL_MF_MOVE)).toMatchObject({ ret: -1, errno: ENODEV });
    expect(await p.movePages(0, [a + 2 * PG], [1], MPOL_MF_MOVE)).toEqual({ ret: 0, status: [1] });
  });

  it('ENODEV comes before the cpuset check (EACCES) and before the page lookup', async () => {
    const m = await machine(cxlConfig);
    const p = m.spawn({ node: 0, memsAllowed: [0] });
    const a = p.mmap(PG, { node: 0 });
    p.write(a, pattern(1, 2));
    expect(await p.movePages(0, [a], [2], MPOL_MF_MOVE)).toMatchObject({ ret: -1, errno: ENODEV });
    expect(await p.movePages(0, [a], [1], MPOL_MF_MOVE)).toMatchObject({ ret: -1, errno: EACCES });
    expect(await p.movePages(0, [0xdead000], [2], MPOL_MF_MOVE)).toMatchObject({ ret: -1, errno: ENODEV });
  });

  it('migrate_pages: EPERM for an unprivileged caller, EINVAL with CAP_SYS_NICE (empty after the cpuset)', async () => {
    const m = await machine(cxlConfig);
    const p = m.spawn({ node: 0 });
    const a = p.mmap(PG, { node: 0 });
    p.write(a, pattern(1, 3));
    // The task's cpuset mems (N_MEMORY: 0-1) do not contain node 2.
    expect(await p.migratePages(0, [0], [2])).toEqual({ ret: -1, errno: EPERM });
    const admin = m.spawn({ node: 0, privileged: true });
    expect(await admin.migratePages(p.pid, [0], [2])).toEqual({ ret: -1, errno: EINVAL });
    expect(await admin.migratePages(p.pid, [0], [1, 2])).toEqual({ ret: 0 });
    expect(p.pageInfo(a)!.node).toBe(1);
  });
});

describe('processes on CPU-less and memory-less nodes', () => {
  it('spawn on a CPU-less node is EINVAL; cpuset mems take nodes with memory only', async () => {
    const m = await machine(cxlConfig);
    const e = expectErrno(() => m.spawn({ node: 1 }), EINVAL);
    expect(e.message).toMatch(/node 1 has no CPUs/);
    expect(catchPagemig(() => m.spawn({ memsAllowed: [0, 2] })).message).toMatch(/node 2 has no memory/);
    // By default the top cpuset: the nodes with memory, and the first of them with a CPU.
    const p = m.spawn({});
    expect([p.memsAllowed, p.node]).toEqual([[0, 1], 0]);
    // Only the CPU-less node allowed: the process runs on a node with CPUs and allocates from its cpuset.
    const q = m.spawn({ memsAllowed: [1] });
    expect([q.memsAllowed, q.node]).toEqual([[1], 0]);
  });

  it('a process on the memory-less node allocates from the nearest node with memory', async () => {
    const m = await machine(cxlConfig);
    const p = m.spawn({ node: 2 });
    expect([p.node, p.memsAllowed]).toEqual([2, [0, 1]]);
    const a = p.mmap(8 * PG);
    const data = pattern(8, 4);
    p.write(a, data);
    // Node 2's zonelist: node 1 (distance 15), then node 0 (30).
    expect((await p.movePages(0, [a, a + 7 * PG], null, 0)).status).toEqual([1, 1]);
    expect(sameBytes(p.read(a, 8 * PG), data)).toBe(true);
    // Its child runs there too.
    const c = p.fork();
    expect(c.node).toBe(2);
  });

  it('with equal distances the memory-less node falls back to the lowest node id with memory', async () => {
    const m = await machine({ nodes: [{ memory: 0 }, { memory: '8MiB', cpus: 0 }, { memory: '8MiB' }] });
    const p = m.spawn({ node: 0 });
    const a = p.mmap(PG);
    p.write(a, pattern(1, 5));
    expect(p.pageInfo(a)!.node).toBe(1);
    expect(m.kernel.nodes[0]!.fallbackOrder).toEqual([0, 1, 2]);
    expect(m.kernel.nodes[1]!.fallbackOrder).toEqual([1, 2]);
  });
});
