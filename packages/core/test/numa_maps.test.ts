import { describe, expect, it } from 'vitest';
import { ENOENT } from '../src/errno.js';
import {
  MPOL_BIND,
  MPOL_F_NUMA_BALANCING,
  MPOL_F_RELATIVE_NODES,
  MPOL_F_STATIC_NODES,
  MPOL_INTERLEAVE,
  MPOL_LOCAL,
  MPOL_MF_MOVE,
  MPOL_PREFERRED,
  MPOL_PREFERRED_MANY,
  MPOL_WEIGHTED_INTERLEAVE,
} from '../src/mempolicy.js';
import { PAGE_SIZE } from '../src/mmzone.js';
import { expectErrno, machinesCheckedAfterEach } from './helpers.js';

/**
 * /proc/PID/numa_maps against fs/proc/task_mmu.c show_numa_map: "%08lx <mpol_to_str>", the file
 * of shared memory, then (only where pages are mapped) anon=, dirty=, mapped=, mapmax=, active=,
 * N<node>= and kernelpagesize_kB=, each only when the kernel prints it.
 */

const PG = PAGE_SIZE;
const newMachine = machinesCheckedAfterEach();
const hex = (a: number) => a.toString(16);

describe('/proc/PID/numa_maps', () => {
  it('prints each area with its policy and its pages per node, as the kernel does', async () => {
    const m = await newMachine();
    const p = m.spawn({ node: 0 });
    const a = p.mmap(16 * PG);
    p.touch(a, 16 * PG, 'write');
    const untouched = p.mmap(4 * PG);
    const zero = p.mmap(4 * PG);
    p.touch(zero, 4 * PG, 'read');
    const il = p.mmap(8 * PG);
    await p.mbind(il, 8 * PG, MPOL_INTERLEAVE, [0, 1]);
    p.touch(il, 8 * PG);
    const shm = p.mmap(4 * PG, { shared: true });
    p.touch(shm, 4 * PG, 'read');
    const thp = p.mmap(2 << 20, { thp: 'always' });
    p.touch(thp, PG, 'write');
    const locked = p.mmap(4 * PG, { mlock: true });
    const want: [number, string][] = [
      [a, 'default anon=16 dirty=16 active=0 N0=16 kernelpagesize_kB=4'],
      // Nothing mapped, or only the zero page: the policy alone.
      [untouched, 'default'],
      [zero, 'default'],
      [il, 'interleave:0-1 anon=8 dirty=8 active=0 N0=4 N1=4 kernelpagesize_kB=4'],
      // Shared anonymous memory: its shmem file; read-faulted pages are neither anon nor dirty.
      [shm, 'default file=/dev/zero\\040(deleted) mapped=4 active=0 N0=4 kernelpagesize_kB=4'],
      [thp, 'default anon=512 dirty=512 active=0 N0=512 kernelpagesize_kB=4'],
      // Unevictable (mlocked) pages count as active: no active=.
      [locked, 'default anon=4 dirty=4 N0=4 kernelpagesize_kB=4'],
    ];
    // One line per area in address order (the first one at the bottom of the user window).
    expect(a).toBe(0x7f0000000000);
    expect(m.procfs.numaMaps(p.pid)).toBe(
      want
        .sort((x, y) => x[0] - y[0])
        .map(([addr, text]) => `${hex(addr)} ${text}\n`)
        .join(''),
    );
  });

  it('shows the area policies with their flags, a split by mbind, the task policy and mapmax after fork', async () => {
    const m = await newMachine({ nodes: [{ memory: '16MiB' }, { memory: '16MiB' }, { memory: '16MiB' }] });
    const p = m.spawn({ node: 0 });
    const areas: [number, number, number[]][] = [
      [MPOL_PREFERRED, 0, [1]],
      [MPOL_PREFERRED_MANY, 0, [0, 1]],
      [MPOL_WEIGHTED_INTERLEAVE, 0, [0, 1, 2]],
      [MPOL_LOCAL, 0, []],
      [MPOL_BIND, MPOL_F_STATIC_NODES, [1]],
      [MPOL_INTERLEAVE, MPOL_F_RELATIVE_NODES, [0, 1]],
      [MPOL_BIND, MPOL_F_NUMA_BALANCING, [0, 2]],
      [MPOL_PREFERRED_MANY, MPOL_F_STATIC_NODES | MPOL_F_NUMA_BALANCING, [0, 1, 2]],
    ];
    const addrs: number[] = [];
    for (const [mode, flags, nodes] of areas) {
      const x = p.mmap(PG);
      expect(await p.mbind(x, PG, mode | flags, nodes)).toEqual({ ret: 0 });
      addrs.push(x);
    }
    const a = p.mmap(12 * PG);
    p.touch(a, 12 * PG, 'write');
    expect(await p.mbind(a + 4 * PG, 4 * PG, MPOL_BIND, [2], MPOL_MF_MOVE)).toEqual({ ret: 0 });
    const policies = [
      'prefer:1',
      'prefer (many):0-1',
      'weighted interleave:0-2',
      'local',
      'bind=static:1',
      'interleave=relative:0-1',
      'bind=balancing:0,2',
      'prefer (many)=static|balancing:0-2',
    ];
    const split = [
      `${hex(a)} default anon=4 dirty=4 active=0 N0=4 kernelpagesize_kB=4`,
      `${hex(a + 4 * PG)} bind:2 anon=4 dirty=4 active=0 N2=4 kernelpagesize_kB=4`,
      `${hex(a + 8 * PG)} default anon=4 dirty=4 active=0 N0=4 kernelpagesize_kB=4`,
    ];
    expect(m.procfs.numaMaps(p.pid)).toBe(
      `${[...addrs.map((x, i) => `${hex(x)} ${policies[i]}`), ...split].join('\n')}\n`,
    );
    // An area without a policy of its own shows the task's.
    expect(p.setMempolicy(MPOL_INTERLEAVE, [0, 2])).toEqual({ ret: 0 });
    // A forked child maps the same pages: a page mapped twice gives mapmax=2.
    const child = p.fork();
    const lines = m.procfs.numaMaps(child.pid).split('\n');
    expect(lines.slice(-4)).toEqual([
      `${hex(a)} interleave:0,2 anon=4 dirty=4 mapmax=2 active=0 N0=4 kernelpagesize_kB=4`,
      `${hex(a + 4 * PG)} bind:2 anon=4 dirty=4 mapmax=2 active=0 N2=4 kernelpagesize_kB=4`,
      `${hex(a + 8 * PG)} interleave:0,2 anon=4 dirty=4 mapmax=2 active=0 N0=4 kernelpagesize_kB=4`,
      '',
    ]);
  });

  it('counts a page by its own mapcount in a large folio (folio_precise_page_mapcount)', async () => {
    const m = await newMachine();
    const p = m.spawn({ node: 0 });
    const a = p.mmap(4 * PG, { thp: '16KiB' });
    p.touch(a, 4 * PG, 'write');
    expect(p.pageInfo(a)).toMatchObject({ order: 2 });
    const child = p.fork();
    // The child unmaps three of the four pages: only the first is mapped twice.
    child.munmap(a + PG, 3 * PG);
    expect(m.procfs.numaMaps(p.pid)).toBe(
      `${hex(a)} default anon=4 dirty=4 mapmax=2 active=0 N0=4 kernelpagesize_kB=4\n`,
    );
    child.munmap(a, PG);
    expect(m.procfs.numaMaps(p.pid)).toBe(
      `${hex(a)} default anon=4 dirty=4 active=0 N0=4 kernelpagesize_kB=4\n`,
    );
  });

  it('marks MAP_HUGETLB areas huge, counts each huge page once, with the huge page size', async () => {
    const m = await newMachine();
    expect(m.sysctl.write('vm.nr_hugepages', '4')).toBe(0);
    const p = m.spawn({ node: 0 });
    const a = p.mmap(4 << 20, { hugetlb: true });
    p.touch(a, PG, 'write');
    const b = p.mmap(4 << 20, { hugetlb: true, shared: true });
    expect(await p.mbind(b + (2 << 20), 2 << 20, MPOL_BIND, [1])).toEqual({ ret: 0 });
    p.touch(b, 4 << 20, 'write');
    const file = 'file=/anon_hugepage\\040(deleted) huge';
    expect(m.procfs.numaMaps(p.pid)).toBe(
      [
        `${hex(a)} default ${file} anon=1 dirty=1 N0=1 kernelpagesize_kB=2048`,
        `${hex(b)} default ${file} dirty=1 N0=1 kernelpagesize_kB=2048`,
        `${hex(b + (2 << 20))} bind:1 ${file} dirty=1 N1=1 kernelpagesize_kB=2048`,
        '',
      ].join('\n'),
    );
  });

  it('is ENOENT for a pid that is not a live process', async () => {
    const m = await newMachine();
    const p = m.spawn();
    expect(m.procfs.numaMaps(p.pid)).toBe('');
    p.exit();
    expectErrno(() => m.procfs.numaMaps(p.pid), ENOENT, 'ENOENT');
    expectErrno(() => m.procfs.numaMaps(31337), ENOENT);
    expectErrno(() => m.procfs.numaMaps('1' as never), ENOENT);
  });
});
