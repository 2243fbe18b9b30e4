import { afterEach, describe, expect, it } from 'vitest';
import { EBUSY, ENOMEM } from '../src/errno.js';
import { createMachine, type Machine } from '../src/machine.js';
import { MPOL_MF_MOVE, MPOL_MF_MOVE_ALL } from '../src/mempolicy.js';
import { defineMigrator, type MigrationBatch, type MigratorContext } from '../src/migrator.js';
import { PAGE_SIZE } from '../src/mmzone.js';
import type { Process } from '../src/process.js';
import { machinesCheckedAfterEach, pattern, sameBytes } from './helpers.js';
import {
  expectPattern,
  expectSettled,
  pingPong,
  SOAK,
  startPattern,
  stopAndCheck,
  untilRunning,
} from './live.js';

// Migration of hugetlb folios (mm/migrate.c migrate_hugetlbs / unmap_and_move_huge_page, and the
// target allocation of mm/hugetlb.c alloc_hugetlb_folio_nodemask): one folio at a time, never
// batched or split, the target from the target node's free pool, else a temporary page from its
// buddy allocator, else -ENOMEM; counted as 512 base pages.

const HP = 2 << 20;
const NODE = (nid: number) => `/sys/devices/system/node/node${nid}/hugepages/hugepages-2048kB`;
/** numactl's "impossible value" that move_pages pre-fills status with. */
const UNTOUCHED = -123;

const machine = machinesCheckedAfterEach();

/** A node's nr_hugepages, free_hugepages and surplus_hugepages. */
function nodePool(m: Machine, nid: number): [number, number, number] {
  const read = (f: string) => Number(m.sysfs.read(`${NODE(nid)}/${f}`));
  return [read('nr_hugepages'), read('free_hugepages'), read('surplus_hugepages')];
}

/** Sets node `nid`'s pool to `n` pages (its sysfs nr_hugepages), expecting it got them. */
function nodePoolSize(m: Machine, nid: number, n: number): void {
  expect(m.sysfs.write(`${NODE(nid)}/nr_hugepages`, String(n))).toBe(0);
  expect(nodePool(m, nid)[0]).toBe(n);
}

/** One huge page of `p` on `node`, filled with a pattern. */
function hugePage(p: Process, node: number, seed: number, shared = false) {
  const addr = p.mmap(HP, { hugetlb: true, node, shared });
  const data = pattern(512, seed);
  p.write(addr, data);
  return { addr, data };
}

const counters = (m: Machine) => {
  const v = m.vmstat();
  return {
    pgmigrate_success: v.pgmigrate_success,
    pgmigrate_fail: v.pgmigrate_fail,
    thp_migration_success: v.thp_migration_success,
    thp_migration_fail: v.thp_migration_fail,
    thp_migration_split: v.thp_migration_split,
    htlb_buddy_alloc_success: v.htlb_buddy_alloc_success,
    htlb_buddy_alloc_fail: v.htlb_buddy_alloc_fail,
  };
};

describe('move_pages(2) of hugetlb pages', () => {
  it("takes a free page of the target node's pool; the source returns to its pool; 512 pages counted", async () => {
    const m = await machine();
    nodePoolSize(m, 0, 1);
    nodePoolSize(m, 1, 1);
    const p = m.spawn();
    const { addr, data } = hugePage(p, 0, 1);
    const before = counters(m);
    m.trace.clear();
    const r = await p.movePages(0, [addr], [1], MPOL_MF_MOVE);
    expect(r).toEqual({ ret: 0, status: [1] });
    expect(p.pageInfo(addr)).toMatchObject({ node: 1, order: 9, huge: true, writable: true });
    expect(sameBytes(p.read(addr, HP), data)).toBe(true);
    expect(nodePool(m, 0)).toEqual([1, 1, 0]);
    expect(nodePool(m, 1)).toEqual([1, 0, 0]);
    // migrate_pages: pgmigrate_* count folio_nr_pages; hugetlb folios are no THP.
    expect(counters(m)).toEqual({ ...before, pgmigrate_success: before.pgmigrate_success + 512 });
    expect(m.trace.events('mm_migrate_pages').map((e) => e.text)).toEqual([
      'nr_succeeded=512 nr_failed=0 nr_thp_succeeded=0 nr_thp_failed=0 nr_thp_split=0 nr_split=0 mode=MIGRATE_SYNC reason=syscall_or_cpuset',
    ]);
    // The page is writable in place on its new node (the migration entry kept the write bit).
    p.write(addr + 5, new Uint8Array([0]));
    expect(p.pageInfo(addr)!.node).toBe(1);
  });

  it('with no free page in the target pool, a temporary page from its buddy allocator takes it: the pool follows the page', async () => {
    const m = await machine();
    nodePoolSize(m, 0, 1);
    const p = m.spawn();
    const { addr, data } = hugePage(p, 0, 2);
    const before = counters(m);
    const r = await p.movePages(0, [addr], [1], MPOL_MF_MOVE);
    expect(r).toEqual({ ret: 0, status: [1] });
    expect(sameBytes(p.read(addr, HP), data)).toBe(true);
    // alloc_migrate_hugetlb_folio + move_hugetlb_state: the temporary target stays, the source
    // (now temporary) goes back to the buddy allocator; nothing is surplus.
    expect(nodePool(m, 0)).toEqual([0, 0, 0]);
    expect(nodePool(m, 1)).toEqual([1, 0, 0]);
    expect(m.sysctl.read('vm.nr_hugepages')).toBe('1\n');
    expect(counters(m)).toEqual({
      ...before,
      pgmigrate_success: before.pgmigrate_success + 512,
      htlb_buddy_alloc_success: before.htlb_buddy_alloc_success + 1,
    });
  });

  it('-ENOMEM when the target node has neither a free pool page nor an order-9 block: no split, nothing moves', async () => {
    const m = await machine();
    nodePoolSize(m, 0, 1);
    // Node 1 gives every order-9 block it can to its pool, and another task uses all of them.
    expect(m.sysfs.write(`${NODE(1)}/nr_hugepages`, '1000')).toBe(0);
    const [n1] = nodePool(m, 1);
    const other = m.spawn();
    other.mmap(n1 * HP, { hugetlb: true, node: 1, mlock: true });
    expect(nodePool(m, 1)).toEqual([n1, 0, 0]);
    const p = m.spawn();
    const { addr, data } = hugePage(p, 0, 3);
    const before = counters(m);
    const status = [UNTOUCHED];
    m.trace.clear();
    const r = await p.movePages(0, [addr], [1], MPOL_MF_MOVE, status);
    expect(r).toEqual({ ret: -1, errno: ENOMEM, status: [UNTOUCHED] });
    expect(p.pageInfo(addr)).toMatchObject({ node: 0, order: 9 });
    expect(sameBytes(p.read(addr, HP), data)).toBe(true);
    expect(counters(m)).toEqual({
      ...before,
      pgmigrate_fail: before.pgmigrate_fail + 512,
      htlb_buddy_alloc_fail: before.htlb_buddy_alloc_fail + 1,
    });
    expect(m.trace.events('mm_migrate_pages').map((e) => e.text)).toEqual([
      'nr_succeeded=0 nr_failed=512 nr_thp_succeeded=0 nr_thp_failed=0 nr_thp_split=0 nr_split=0 mode=MIGRATE_SYNC reason=syscall_or_cpuset',
    ]);
    expect(nodePool(m, 0)).toEqual([1, 0, 0]);
  });

  it('every 4 KiB address of two huge pages (as move_pages12 passes them): the second of each is -EBUSY', async () => {
    const m = await machine();
    nodePoolSize(m, 0, 2);
    nodePoolSize(m, 1, 2);
    const p = m.spawn();
    const addr = p.mmap(2 * HP, { hugetlb: true, node: 0 });
    const data = pattern(1024, 4);
    p.write(addr, data);
    const addrs = Array.from({ length: 1024 }, (_, i) => addr + i * PAGE_SIZE);
    const r = await p.movePages(0, addrs, new Array(1024).fill(1), MPOL_MF_MOVE);
    // add_folio_for_migration: the folio of page 1 is already isolated (queued with page 0);
    // the batch is flushed there, and the pages after it find the folio on node 1.
    const page = [1, -EBUSY, ...new Array<number>(510).fill(1)];
    expect(r).toEqual({ ret: 0, status: [...page, ...page] });
    expect(sameBytes(p.read(addr, 2 * HP), data)).toBe(true);
    expect(m.vmstat().pgmigrate_success).toBe(1024);
    // Query mode reports the node of every page of a huge page.
    expect((await p.movePages(0, addrs.slice(510, 514), null, 0)).status).toEqual([1, 1, 1, 1]);
  });

  it('a pinned hugetlb page stays mapped; after NR_MAX_MIGRATE_PAGES_RETRY passes it counts as failed', async () => {
    const m = await machine();
    nodePoolSize(m, 0, 1);
    nodePoolSize(m, 1, 1);
    const p = m.spawn();
    const { addr, data } = hugePage(p, 0, 5);
    const unpin = m.pinFolio(p.pageInfo(addr)!.pfn);
    const before = counters(m);
    const r = await p.movePages(0, [addr], [1], MPOL_MF_MOVE);
    expect(r).toEqual({ ret: 1, status: [UNTOUCHED] });
    expect(p.pageInfo(addr)).toMatchObject({ node: 0, writable: true });
    expect(counters(m)).toEqual({ ...before, pgmigrate_fail: before.pgmigrate_fail + 512 });
    // Each pass took a target from the pool and gave it back.
    expect(nodePool(m, 1)).toEqual([1, 1, 0]);
    unpin();
    expect(await p.movePages(0, [addr], [1], MPOL_MF_MOVE)).toEqual({ ret: 0, status: [1] });
    expect(sameBytes(p.read(addr, HP), data)).toBe(true);
  });

  it('a MAP_SHARED hugetlb page moves with its page cache: parent and child map the new page', async () => {
    const m = await machine();
    nodePoolSize(m, 0, 1);
    nodePoolSize(m, 1, 1);
    const parent = m.spawn({ privileged: true });
    const { addr, data } = hugePage(parent, 0, 6, true);
    const child = parent.fork();
    child.touch(addr, 1, 'read');
    // Mapped by two processes: only MPOL_MF_MOVE_ALL moves it.
    expect(await parent.movePages(0, [addr], [1], MPOL_MF_MOVE)).toMatchObject({ ret: 0, status: [-13] });
    expect(await parent.movePages(0, [addr], [1], MPOL_MF_MOVE_ALL)).toEqual({ ret: 0, status: [1] });
    expect(child.pageInfo(addr)!.pfn).toBe(parent.pageInfo(addr)!.pfn);
    expect(parent.pageInfo(addr)!.node).toBe(1);
    expect(sameBytes(child.read(addr, HP), data)).toBe(true);
    child.write(addr, new Uint8Array([9]));
    expect([...parent.read(addr, 1)]).toEqual([9]);
  });
});

describe('migrate_pages(2) and the in-kernel migrate_pages() of hugetlb folios', () => {
  it('migrate_pages(2) queues hugetlb pages (queue_folios_hugetlb) with the others', async () => {
    const m = await machine();
    nodePoolSize(m, 0, 2);
    nodePoolSize(m, 1, 2);
    const p = m.spawn();
    const huge = hugePage(p, 0, 7);
    const small = p.mmap(PAGE_SIZE, { node: 0 });
    p.write(small, pattern(1, 8));
    const r = await p.migratePages(0, [0], [1]);
    expect(r).toEqual({ ret: 0 });
    expect(p.pageInfo(huge.addr)!.node).toBe(1);
    expect(p.pageInfo(small)!.node).toBe(1);
    expect(sameBytes(p.read(huge.addr, HP), huge.data)).toBe(true);
    expect(sameBytes(p.read(small, PAGE_SIZE), pattern(1, 8))).toBe(true);
    expect(m.vmstat().pgmigrate_success).toBe(513);
  });

  it('m.migrateFolios migrates the hugetlb folio first and alone, copied on the CPU: the migrator gets only the rest', async () => {
    const m = await machine();
    // A migrator that records the rows it is offered and copies them.
    const rows: number[] = [];
    let ram: Uint8Array[] = [];
    let shift = 0;
    const bytes = (pfn: number, nr: number) => {
      const off = (pfn & ((1 << shift) - 1)) * PAGE_SIZE;
      return ram[pfn >>> shift]!.subarray(off, off + nr * PAGE_SIZE);
    };
    const recorder = defineMigrator({
      apiVersion: 'pagemig.migrator/v1' as const,
      name: 'recorder',
      version: '1.0.0',
      engines: { core: '^0.1.0' },
      capabilities: { offloadsCpu: true, channels: 1, maxInFlightBatches: 1, needsSharedMemory: true },
      init(ctx: MigratorContext) {
        ram = ctx.sections.map((sec) => new Uint8Array(sec));
        shift = ctx.sectionPfnShift;
      },
      copyBatch(batch: MigrationBatch) {
        for (let i = 0; i < batch.rows; i++) {
          rows.push(batch.nrPages(i));
          bytes(batch.dst(i), batch.nrPages(i)).set(bytes(batch.src(i), batch.nrPages(i)));
          batch.markCopied(i);
        }
      },
      dispose() {},
    });
    await m.offload.register(recorder, 'all');
    nodePoolSize(m, 1, 1);
    const p = m.spawn();
    const small = p.mmap(PAGE_SIZE, { node: 0 });
    p.write(small, pattern(1, 8));
    nodePoolSize(m, 0, 1);
    const huge = hugePage(p, 0, 9);
    const pfns = [p.pageInfo(small)!.pfn, p.pageInfo(huge.addr + 5 * PAGE_SIZE)!.pfn];
    const r = await m.migrateFolios(pfns, { node: 1 });
    expect(r).toMatchObject({ ret: 0, nrSucceeded: 513, nrFailed: 0, nrThpSucceeded: 0, notIsolated: 0 });
    // The batch copy never takes hugetlb folios (folio_mc_copy on the CPU, as the series leaves them).
    expect(rows).toEqual([1]);
    expect(r.offload).toMatchObject({ migrator: 'recorder', batches: 1, foliosOffered: 1, foliosCopied: 1 });
    expect(p.pageInfo(huge.addr)!.node).toBe(1);
    expect(sameBytes(p.read(huge.addr, HP), huge.data)).toBe(true);
    expect(sameBytes(p.read(small, PAGE_SIZE), pattern(1, 8))).toBe(true);
  });
});

// Test 1 of move_pages12; its tests 2.x race move_pages with MADV_SOFT_OFFLINE, which the model
// does not have (LTP reports TCONF when madvise refuses it).
describe('LTP move_pages12 (testcases/kernel/syscalls/move_pages/move_pages12.c)', () => {
  /**
   * setup(): each node's pool grows by 4 (nodeN/hugepages/hugepages-2048kB/nr_hugepages), then
   * alloc_free_huge_on_node: 4 huge pages mapped, bound to the node, mlocked (populated), unmapped.
   */
  function setup(m: Machine, p: Process): void {
    for (const nid of [0, 1]) {
      const [orig] = nodePool(m, nid);
      nodePoolSize(m, nid, orig + 4);
      const mem = p.mmap(4 * HP, { hugetlb: true, node: nid, mlock: true });
      expect(p.pageInfo(mem + 3 * HP)!.node).toBe(nid);
      p.munmap(mem, 4 * HP);
    }
  }

  it('test 1: a child moves every 4 KiB page of two huge pages to alternating nodes while the parent maps, fills and unmaps them', async () => {
    const m = await machine();
    const parent = m.spawn({ privileged: true });
    setup(m, parent);
    const tpgs = 2;
    const addr = parent.mmap(tpgs * HP, { hugetlb: true });
    parent.munmap(addr, tpgs * HP);
    const child = parent.fork();
    const pages = Array.from({ length: (tpgs * HP) / PAGE_SIZE }, (_, i) => addr + i * PAGE_SIZE);
    const outcome = { calls: 0, unexpected: [] as string[] };
    // The race, one round per LOOPS iteration: the parent maps and fills the pages, the child's
    // move_pages(ppid, every page, node1/node2 alternating, MPOL_MF_MOVE_ALL) starts, and the
    // parent unmaps after a number of microtask steps that varies per round, so the munmap lands
    // before, during and after the isolation, target allocation and move of the huge pages.
    // ENOMEM is retried (tolerated); any other failure is a FAIL.
    // LTP's memset writes zeros; a value per round here makes a lost or stale copy show.
    const loops = SOAK ? 10_000 : 150;
    for (let i = 0; i < loops; i++) {
      const ptr = parent.mmap(tpgs * HP, { hugetlb: true });
      expect(ptr).toBe(addr);
      const fill = new Uint8Array(tpgs * HP).fill((i % 251) + 1);
      parent.write(ptr, fill);
      const nodes = new Array<number>(pages.length).fill(i % 2 === 0 ? 1 : 0);
      const status = new Array<number>(pages.length).fill(0);
      const call = child.movePages(parent.pid, pages, nodes, MPOL_MF_MOVE_ALL, status);
      for (let j = 0; j < i % 13; j++) await Promise.resolve();
      // Whatever moved so far holds the round's bytes.
      expect(sameBytes(parent.read(ptr, tpgs * HP), fill)).toBe(true);
      parent.munmap(ptr, tpgs * HP);
      const r = await call;
      outcome.calls++;
      if (r.ret < 0 && r.errno !== ENOMEM) outcome.unexpected.push(`errno ${r.errno}`);
    }
    expect(outcome.unexpected).toEqual([]);
    expect(outcome.calls).toBe(loops);
    // Huge pages did move between the nodes (512 base pages each).
    expect(m.vmstat().pgmigrate_success).toBeGreaterThan(0);
    expect(m.vmstat().pgmigrate_success % 512).toBe(0);
    // "Bug not reproduced": nothing leaked, no migration entry left, the pool whole again.
    expectSettled(m);
    const total = Number(m.sysctl.read('vm.nr_hugepages'));
    expect(m.sysfs.read('/sys/kernel/mm/hugepages/hugepages-2048kB/free_hugepages')).toBe(`${total}\n`);
    expect(m.sysfs.read('/sys/kernel/mm/hugepages/hugepages-2048kB/resv_hugepages')).toBe('0\n');
    expect(nodePool(m, 0)[0] + nodePool(m, 1)[0]).toBe(total);
  }, 60_000);
});

// tools/testing/selftests/mm/migration.c, the hugetlb variants: one default-size hugetlb page,
// threads (or a forked child) accessing it while move_pages ping-pongs it between two nodes.
describe('migration selftest hugetlb variants with live threads', () => {
  const RUNTIME_MS = SOAK ? 20_000 : 1_200;
  const ITERATIONS = SOAK ? Number.POSITIVE_INFINITY : 200;
  const TIMEOUT = SOAK ? 120_000 : 30_000;
  let live: Machine | undefined;
  afterEach(async () => {
    await live?.close();
    live = undefined;
  });

  async function liveMachine(): Promise<Machine> {
    live = await createMachine({ nodes: [{ memory: '32MiB' }, { memory: '32MiB' }], prefault: false });
    nodePoolSize(live, 0, 1);
    nodePoolSize(live, 1, 1);
    return live;
  }

  it(
    'private_anon_htlb: writers and a reader on the huge page while it bounces',
    async () => {
      const m = await liveMachine();
      const p = m.spawn({ privileged: true });
      const a = p.mmap(HP, { hugetlb: true, node: 0 });
      p.write(a, new Uint8Array(HP).fill(0xde));
      p.write(a, new Uint8Array(PAGE_SIZE));
      const w = { addr: a, bytes: PAGE_SIZE, lanes: 3 };
      const threads = startPattern(p, w, { readers: 1 });
      await untilRunning(threads);
      const pp = await pingPong(p, a, { iterations: ITERATIONS, ms: RUNTIME_MS });
      const results = await stopAndCheck(threads);
      expect(pp.moved).toBeGreaterThan(0);
      expect(pp.maxConsecutive).toBeLessThanOrEqual(100);
      expect(p.pageInfo(a)).toMatchObject({ node: pp.node, order: 9, huge: true });
      expect(m.tlb.shootdowns).toBeGreaterThanOrEqual(pp.moved);
      expect(m.vmstat().pgmigrate_success).toBe(512 * pp.moved);
      expect(m.vmstat().thp_migration_success).toBe(0);
      expectPattern(p, w, results);
      expect(p.read(a + PAGE_SIZE, 16).every((b) => b === 0xde)).toBe(true);
      // The pool is intact: one page in use, one free, on either node.
      expect(nodePool(m, 0)[0] + nodePool(m, 1)[0]).toBe(2);
      expectSettled(m);
    },
    TIMEOUT,
  );

  it(
    'shared_anon_htlb: writers in the parent and in a forked child on the shared huge page',
    async () => {
      const m = await liveMachine();
      const parent = m.spawn({ privileged: true });
      const a = parent.mmap(HP, { hugetlb: true, shared: true, node: 0 });
      parent.touch(a, HP, 'write');
      const child = parent.fork();
      const w = { addr: a, bytes: PAGE_SIZE, lanes: 3 };
      const threads = [
        ...startPattern(parent, w, { writers: [0, 1] }),
        ...startPattern(child, w, { writers: [2], readers: 1 }),
      ];
      await untilRunning(threads);
      const pp = await pingPong(parent, a, { iterations: ITERATIONS, ms: RUNTIME_MS });
      const results = await stopAndCheck(threads);
      expect(pp.moved).toBeGreaterThan(0);
      expect(parent.pageInfo(a)!.pfn).toBe(child.pageInfo(a)!.pfn);
      expect(parent.pageInfo(a)).toMatchObject({ node: pp.node, order: 9 });
      expectPattern(parent, w, results);
      expectPattern(child, w, results);
      expectSettled(m);
    },
    TIMEOUT,
  );
});
