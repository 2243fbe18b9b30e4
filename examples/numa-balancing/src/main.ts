/**
 * NUMA balancing: a process runs on node 0, but most of its memory landed on node 1 because node 0
 * was full when it faulted it in. Once node 0 has room again, the kernel's NUMA balancing
 * (@pagemig/numa-balancing) scans the process: its pages become PROT_NONE, the thread that keeps
 * writing some of them takes NUMA hinting faults, and the folios it touches on node 1 migrate to
 * node 0 (migrate_misplaced_folio: MIGRATE_ASYNC, reason numa_misplaced). Pages it does not touch
 * stay where they are.
 */
import { pathToFileURL } from 'node:url';
import { createMachine, PAGE_SIZE, type PatternResult, verifyPattern } from '@pagemig/core';
import { attachNumaBalancing } from '@pagemig/numa-balancing';

const COUNTERS = [
  'numa_pte_updates',
  'numa_hint_faults',
  'numa_hint_faults_local',
  'numa_pages_migrated',
  'pgmigrate_success',
  'pgmigrate_fail',
  'pgpromote_success',
] as const;
type Counter = (typeof COUNTERS)[number];

/** Pages of each kind on the process's node (local) and elsewhere (remote). */
export interface Placement {
  hot: [local: number, remote: number];
  cold: [local: number, remote: number];
}

export interface NumaBalancingResult {
  pages: number;
  hotPages: number;
  before: Placement;
  after: Placement;
  numaMapsBefore: string;
  numaMapsAfter: string;
  convergeMs: number;
  scans: number;
  verified: boolean;
  counters: Record<Counter, number>;
  traceLine: string | undefined;
}

/** The thread writes one word of every HOT_EVERY-th page: its hot set. */
const HOT_EVERY = 8;

export async function runNumaBalancing(): Promise<NumaBalancingResult> {
  const m = await createMachine({ nodes: [{ memory: '64MiB' }, { memory: '64MiB' }] });
  // One pass covers the process (16 MB); the next comes 200 ms later. The kernel's defaults (a
  // first pass a second after the process started, 256 MB every 1 to 60 s) fit a longer run.
  const nb = attachNumaBalancing(m, { scanDelayMs: 0, scanPeriodMs: 200, scanSizeMb: 16 });

  // Another process fills node 0, so the allocations of the next one fall back to node 1.
  const hog = m.spawn({ comm: 'hog', memsAllowed: [0] });
  const hogLen = 60 << 20;
  hog.touch(hog.mmap(hogLen, { thp: 'never' }), hogLen, 'write');

  const p = m.spawn({ comm: 'app', node: 0 }); // runs on node 0, may allocate on both nodes
  const pages = 4096; // 16 MiB of 4 KiB pages
  const a = p.mmap(pages * PAGE_SIZE, { thp: 'never' }); // default policy: local node first
  const data = new Uint8Array(pages * PAGE_SIZE).map((_, i) => ((i * 131 + (i >>> 12)) & 255) | 1);
  // The words the thread will write start at 0 (it checks every word it finds).
  const written = (byte: number) => (byte >>> 2) % (HOT_EVERY * (PAGE_SIZE / 4)) === 0;
  for (let i = 0; i < data.length; i += HOT_EVERY * PAGE_SIZE) data.fill(0, i, i + 4);
  p.write(a, data);
  hog.exit(); // node 0 has room again

  // The thread (on node 0, as its process) writes one word of every 8th page, again and again.
  const workload = {
    kind: 'pattern' as const,
    addr: a,
    bytes: pages * PAGE_SIZE,
    lanes: 1,
    lane: 0,
    strideWords: HOT_EVERY * (PAGE_SIZE / 4),
  };
  const isHot = (page: number) => page % HOT_EVERY === 0;
  const nodeOf = (page: number) => p.pageInfo(a + page * PAGE_SIZE)?.node ?? -1;
  const placement = (): Placement => {
    const pl: Placement = { hot: [0, 0], cold: [0, 0] };
    for (let i = 0; i < pages; i++) pl[isHot(i) ? 'hot' : 'cold'][nodeOf(i) === p.node ? 0 : 1]++;
    return pl;
  };

  const before = placement();
  const numaMapsBefore = m.procfs.numaMaps(p.pid);
  const thread = p.spawnThread<PatternResult>({ workload });
  const v0 = m.vmstat();
  const t0 = performance.now();
  m.sysctl.write('kernel.numa_balancing', '1');
  while (placement().hot[1] > 0) {
    if (performance.now() - t0 > 60_000) throw new Error('the hot pages did not reach node 0 in 60 s');
    await new Promise((r) => setTimeout(r, 10));
  }
  await nb.settled();
  const convergeMs = performance.now() - t0;
  const scans = nb.stats().scans;
  // Detaching gives back the PROT_NONE entries left on the cold pages.
  await nb.stop();
  const v1 = m.vmstat();
  const after = placement();
  const numaMapsAfter = m.procfs.numaMaps(p.pid);

  thread.stop();
  const r = await thread.join();
  const writes = verifyPattern((x, n) => p.read(x, n), workload, [r]);
  // The thread's words hold its last writes; every other byte is as written before.
  const now = p.read(a, data.length);
  let same = true;
  for (let i = 0; i < now.length && same; i++) if (!written(i) && now[i] !== data[i]) same = false;
  const counters = Object.fromEntries(COUNTERS.map((c) => [c, v1[c] - v0[c]])) as Record<Counter, number>;
  const result: NumaBalancingResult = {
    pages,
    hotPages: pages / HOT_EVERY,
    before,
    after,
    numaMapsBefore,
    numaMapsAfter,
    convergeMs,
    scans,
    verified: r.errors === 0 && writes.mismatches === 0 && writes.checked > 0 && same,
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
  console.log(
    `app runs on node 0; ${r.pages} pages, its thread writes ${r.hotPages} of them (every ${HOT_EVERY}th)`,
  );
  console.log(`numa_maps before:\n  ${r.numaMapsBefore.trim()}`);
  for (const [title, pl] of [
    ['before', r.before],
    ['after', r.after],
  ] as const) {
    console.log(`${title}:${' '.repeat(7 - title.length)}     local   remote`);
    console.log(row('hot pages', pl.hot));
    console.log(row('cold pages', pl.cold));
  }
  console.log(`numa_maps after:\n  ${r.numaMapsAfter.trim()}`);
  console.log(
    `converged in ${r.convergeMs.toFixed(0)} ms (${r.scans} scan passes); bytes ${r.verified ? 'verified' : 'WRONG'}`,
  );
  // pgpromote_success counts promotions out of a lower memory tier only: both nodes are DRAM here.
  console.log('vmstat deltas:', r.counters);
  console.log('trace:', r.traceLine?.trim());
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) await main();
