/**
 * NUMA balancing: a process runs on node 0, but most of its memory landed on node 1 because node 0
 * was full when it faulted it in. Once node 0 has room again, the pages the process uses often
 * are found remote and promoted to its local node with reason numa_misplaced in MIGRATE_ASYNC
 * mode, as migrate_misplaced_folio() does; cold pages stay where they are.
 */
import { pathToFileURL } from 'node:url';
import { createMachine, PAGE_SIZE } from '@pagemig/core';

const COUNTERS = ['numa_pages_migrated', 'pgmigrate_success', 'pgmigrate_fail', 'pgpromote_success'] as const;
type Counter = (typeof COUNTERS)[number];

export interface Placement {
  hot: [local: number, remote: number];
  cold: [local: number, remote: number];
}

export interface NumaBalancingResult {
  pages: number;
  hotPages: number;
  before: Placement;
  after: Placement;
  migrated: number;
  verified: boolean;
  counters: Record<Counter, number>;
  traceLine: string | undefined;
}

export async function runNumaBalancing(): Promise<NumaBalancingResult> {
  const m = await createMachine({ nodes: [{ memory: '64MiB' }, { memory: '64MiB' }] });

  // Another process fills node 0, so the allocations of the next one fall back to node 1.
  const hog = m.spawn({ comm: 'hog', memsAllowed: [0] });
  const hogLen = 60 << 20;
  hog.touch(hog.mmap(hogLen, { thp: 'never' }), hogLen, 'write');

  const p = m.spawn({ comm: 'app', node: 0 }); // runs on node 0, may allocate on both nodes
  const pages = 4096; // 16 MiB of 4 KiB pages
  const a = p.mmap(pages * PAGE_SIZE, { thp: 'never' }); // default policy: local node first
  const data = new Uint8Array(pages * PAGE_SIZE).map((_, i) => (i * 131 + (i >>> 12)) & 255);
  p.write(a, data);
  hog.exit(); // node 0 has room again

  // pagemig has no NUMA hinting faults (task_numa_work); an access sampler stands in for them and
  // counts the process's accesses per page during one scan period. The workload touches every
  // page once and every 8th page (its hot set) again and again.
  const hits = new Uint32Array(pages);
  const access = (page: number) => {
    p.touch(a + page * PAGE_SIZE, PAGE_SIZE, 'read');
    hits[page]!++;
  };
  for (let i = 0; i < pages; i++) access(i);
  for (let round = 0; round < 4; round++) for (let i = 0; i < pages; i += 8) access(i);

  // The kernel's two-stage filter migrates a page on its second fault from the same node.
  const isHot = (page: number) => hits[page]! >= 2;
  const nodeOf = (page: number) => p.pageInfo(a + page * PAGE_SIZE)!.node;
  const placement = (): Placement => {
    const pl: Placement = { hot: [0, 0], cold: [0, 0] };
    for (let i = 0; i < pages; i++) pl[isHot(i) ? 'hot' : 'cold'][nodeOf(i) === p.node ? 0 : 1]++;
    return pl;
  };

  const before = placement();
  const v0 = m.vmstat();
  const misplaced: number[] = [];
  for (let i = 0; i < pages; i++) {
    if (isHot(i) && nodeOf(i) !== p.node) misplaced.push(p.pageInfo(a + i * PAGE_SIZE)!.headPfn);
  }
  const r = await m.migrateFolios(misplaced, {
    node: p.node,
    mode: 'MIGRATE_ASYNC',
    reason: 'numa_misplaced',
  });
  const v1 = m.vmstat();

  const counters = Object.fromEntries(COUNTERS.map((c) => [c, v1[c] - v0[c]])) as Record<Counter, number>;
  const result: NumaBalancingResult = {
    pages,
    hotPages: hits.filter((h) => h >= 2).length,
    before,
    after: placement(),
    migrated: r.nrSucceeded,
    verified: r.ret === 0 && Buffer.compare(p.read(a, data.length), data) === 0,
    counters,
    traceLine: m.trace.lines('migrate:mm_migrate_pages').at(-1),
  };
  m.checkInvariants();
  await m.close();
  return result;
}

async function main(): Promise<void> {
  const r = await runNumaBalancing();
  const row = (name: string, [local, remote]: [number, number]) =>
    `  ${name.padEnd(11)}${String(local).padStart(8)}${String(remote).padStart(9)}`;
  console.log(`app runs on node 0; ${r.pages} pages, ${r.hotPages} of them hot`);
  for (const [title, pl] of [
    ['before', r.before],
    ['after', r.after],
  ] as const) {
    console.log(`${title}:${' '.repeat(7 - title.length)}     local   remote`);
    console.log(row('hot pages', pl.hot));
    console.log(row('cold pages', pl.cold));
  }
  console.log(
    `migrated ${r.migrated} pages (MIGRATE_ASYNC, numa_misplaced); bytes ${r.verified ? 'verified' : 'WRONG'}`,
  );
  // pgpromote_success counts promotions out of a lower memory tier only: both nodes are DRAM here.
  console.log('vmstat deltas:', r.counters);
  console.log('trace:', r.traceLine?.trim());
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) await main();
