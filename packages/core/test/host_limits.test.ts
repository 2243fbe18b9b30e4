import { afterEach, describe, expect, it, vi } from 'vitest';
import { ENOMEM } from '../src/errno.js';
import { hostTasks } from '../src/kernel.js';
import type { Machine } from '../src/machine.js';
import { CTL_NR_SLOTS } from '../src/mmu.js';
import { PAGE_SIZE } from '../src/mmzone.js';
import { NR_PMDS, USER_BASE } from '../src/pagetable.js';
import type { Process } from '../src/process.js';
import type { AccessWorkload } from '../src/workload_access.js';
import { expectErrno, machinesCheckedAfterEach, pattern, sameBytes } from './helpers.js';

/**
 * Host limits surface as coded errors (ENOMEM) and leave nothing half-built. The host's refusal is
 * provoked without using memory: the allocation V8 would make throws its RangeError instead.
 */

const PG = PAGE_SIZE;
const HOST_REFUSAL = 'Array buffer allocation failed';

/** Runs `fn` while `new SharedArrayBuffer(len, opts)` fails when `refuse(len, opts)` holds. */
function withSabRefused<T>(
  refuse: (len: number, opts?: { maxByteLength?: number }) => boolean,
  fn: () => T,
): T {
  const Real = SharedArrayBuffer;
  vi.stubGlobal(
    'SharedArrayBuffer',
    new Proxy(Real, {
      construct(target, args) {
        if (refuse(args[0], args[1])) throw new RangeError(HOST_REFUSAL);
        return Reflect.construct(target, args);
      },
    }),
  );
  try {
    return fn();
  } finally {
    vi.unstubAllGlobals();
  }
}

/** The next SharedArrayBuffer grow (committing part of a growable buffer) fails. */
function refuseNextGrow(): void {
  vi.spyOn(SharedArrayBuffer.prototype, 'grow').mockImplementationOnce(() => {
    throw new RangeError(HOST_REFUSAL);
  });
}

afterEach(() => {
  vi.restoreAllMocks();
});

const machine = machinesCheckedAfterEach();
const freeTotal = (m: Machine) => m.nodes.reduce((s, n) => s + m.freePages(n.nid), 0);
const vpnOf = (addr: number) => (addr - USER_BASE) / PG;

/** A private area of `pages` pages written with a pattern. */
function region(p: Process, pages: number) {
  const a = p.mmap(pages * PG, { thp: 'never' });
  const data = pattern(pages);
  p.write(a, data);
  return { a, data };
}

describe('host limits are ENOMEM, never a bare RangeError', () => {
  const pageTableAllocs = [
    ['the PMD directory', (len: number) => len === NR_PMDS * 4],
    [
      'the PTE buffer reservation',
      (_len: number, opts?: { maxByteLength?: number }) => !!opts?.maxByteLength,
    ],
  ] as const;

  it.each(pageTableAllocs)(
    'spawn: a host that cannot give %s is ENOMEM and registers no process',
    async (_what, refuse) => {
      const m = await machine();
      m.spawn();
      const procs = m.kernel.processes.size;
      const tasks = hostTasks();
      const e = withSabRefused(refuse, () => expectErrno(() => m.spawn(), ENOMEM, 'ENOMEM'));
      expect(e.message).toMatch(
        /^ENOMEM: spawn: the new process's page tables \(256 MiB of host address space each\)/,
      );
      expect(e.cause).toBeInstanceOf(RangeError);
      expect(m.kernel.processes.size).toBe(procs);
      expect(hostTasks()).toBe(tasks);
      // The next spawn, which the host allows, works.
      const p = m.spawn();
      expect(m.process(p.pid)).toBe(p);
    },
  );

  it.each(pageTableAllocs)(
    'fork: a host that cannot give %s is ENOMEM and leaves no child',
    async (_what, refuse) => {
      const m = await machine();
      const parent = m.spawn();
      const r = region(parent, 8);
      const vma = parent.mm.findVma(vpnOf(r.a))!;
      const procs = m.kernel.processes.size;
      const free = freeTotal(m);
      const owners = vma.mapping.vmas.size;
      const mapcount = m.kernel.pages.mapcount[parent.pageInfo(r.a)!.pfn];
      const e = withSabRefused(refuse, () => expectErrno(() => parent.fork(), ENOMEM, 'ENOMEM'));
      expect(e.message).toMatch(/^ENOMEM: fork: the child's page tables/);
      expect(m.kernel.processes.size).toBe(procs);
      expect(vma.mapping.vmas.size).toBe(owners);
      expect(freeTotal(m)).toBe(free);
      expect(m.kernel.pages.mapcount[parent.pageInfo(r.a)!.pfn]).toBe(mapcount);
      m.checkInvariants();
      const child = parent.fork();
      expect(sameBytes(child.read(r.a, r.data.length), r.data)).toBe(true);
    },
  );

  it('a fault whose page table the host cannot commit is ENOMEM and maps nothing', async () => {
    const m = await machine();
    const p = m.spawn();
    const a = p.mmap(4 * PG, { thp: 'never' });
    const free = freeTotal(m);
    refuseNextGrow();
    const e = expectErrno(() => p.touch(a, PG), ENOMEM, 'ENOMEM');
    expect(e.message).toMatch(/page table/);
    expect(p.pageInfo(a)).toBeNull();
    expect(p.mm.pt.tablesInUse).toBe(0);
    expect(freeTotal(m)).toBe(free);
    // The retry gets the first table of the buffer: the failed one took no table index.
    p.touch(a, PG);
    expect(p.mm.pt.pteIndex(vpnOf(a))).toBe(vpnOf(a) & 511);
    expect(p.pageInfo(a)).toMatchObject({ huge: false, writable: true });
  });

  it('a PMD split whose page table the host cannot commit is ENOMEM and keeps the huge mapping', async () => {
    const m = await machine();
    const p = m.spawn();
    const len = 2 * 2 ** 20;
    const a = p.mmap(len, { thp: 'always' });
    const data = pattern(len / PG);
    p.write(a, data);
    const before = p.pageInfo(a)!;
    expect(before.huge).toBe(true);
    const mapcount = m.kernel.pages.mapcount[before.headPfn];
    refuseNextGrow();
    // munmap of one page splits the PMD first.
    expectErrno(() => p.munmap(a + 7 * PG, PG), ENOMEM, 'ENOMEM');
    expect(p.pageInfo(a)).toEqual(before);
    expect(m.kernel.pages.mapcount[before.headPfn]).toBe(mapcount);
    expect(p.mm.pt.tablesInUse).toBe(0);
    m.checkInvariants();
    expect(sameBytes(p.read(a, len), data)).toBe(true);
    p.munmap(a + 7 * PG, PG);
    expect(p.pageInfo(a + 7 * PG)).toBeNull();
    expect(p.pageInfo(a + 8 * PG)).toMatchObject({ huge: false, headPfn: before.headPfn });
  });

  it('timeline.start: a capacity the host cannot commit is ENOMEM and nothing records', async () => {
    const m = await machine();
    refuseNextGrow();
    const e = expectErrno(() => m.timeline.start({ capacity: 100_000 }), ENOMEM, 'ENOMEM');
    expect(e.message).toMatch(/^ENOMEM: timeline\.start: a buffer of 100000 records/);
    expect(m.timeline.recording).toBe(false);
    m.timeline.start({ capacity: 100_000 });
    expect(m.timeline.recording).toBe(true);
    m.timeline.stop();
  });

  it('spawnThread: a Zipf table the host cannot give is ENOMEM (not EINVAL) and starts no thread', async () => {
    const m = await machine();
    const p = m.spawn();
    const pages = 64;
    const a = p.mmap(pages * PG);
    const w: AccessWorkload = { kind: 'access', pattern: 'zipf', addr: a, bytes: pages * PG, ops: 10 };
    const e = withSabRefused(
      (len) => len === pages * 8,
      () => expectErrno(() => p.spawnThread({ workload: w }), ENOMEM, 'ENOMEM'),
    );
    expect(e.message).toMatch(/^ENOMEM: thread workload: the Zipf table of 64 pages/);
    expect(p.threads).toEqual([]);
    expect(Atomics.load(p.mm.pt.tlb!.ctl, CTL_NR_SLOTS)).toBe(0);
  });
});
