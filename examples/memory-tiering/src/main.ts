/**
 * Memory tiering, the kernel's own loop: DRAM on node 0 (the CPUs), a slower CXL memory expander
 * on node 1 (a CPU-less memory node, the next memory tier). A process writes a region larger than
 * DRAM; kswapd keeps DRAM above its watermarks by demoting the coldest pages to CXL (reason
 * demotion, counted as pgdemote_kswapd, or pgdemote_direct when an allocation had to wait). Then
 * its thread reads a hot set that moves; NUMA balancing in mode 2 (NUMA_BALANCING_MEMORY_TIERING)
 * promotes the hot CXL pages it faults on back to DRAM (reason numa_misplaced, counted as
 * pgpromote_success). Both directions are copied by an emulated PTDMA engine with two channels,
 * loaded through the registry and routed for exactly those two reasons.
 */
import { pathToFileURL } from 'node:url';
import { type AccessResult, createMachine, PAGE_SIZE, type Process } from '@pagemig/core';
import { attachKswapd } from '@pagemig/kswapd';
import { attachNumaBalancing } from '@pagemig/numa-balancing';
import { createRegistry } from '@pagemig/registry';

const COUNTERS = [
  'pgdemote_kswapd',
  'pgdemote_direct',
  'pgpromote_candidate',
  'pgpromote_success',
  'numa_pages_migrated',
  'pgmigrate_success',
  'pgmigrate_fail',
] as const;
type Counter = (typeof COUNTERS)[number];

export interface MemoryTieringResult {
  pages: number;
  /** Pages of the region on [DRAM, CXL] after the first touch, and after the workload. */
  placement: { afterFill: [number, number]; afterWorkload: [number, number] };
  /** The hot set's moves, and its last place: pages, and how many of them ended on DRAM. */
  hotSet: { moves: number; pages: number; onDram: number };
  /** Every byte of the region is what the process wrote. */
  verified: boolean;
  counters: Record<Counter, number>;
  /** What the PTDMA migrator reports: batches, folios and the bytes each engine (channel) copied. */
  dma: {
    name: string;
    batches: number;
    foliosCopied: number;
    failures: number;
    channels: { name: string; bytes: number }[];
  };
}

/** The node of each page of `[addr, addr + pages * 4096)`, asked with move_pages(2) and nodes = NULL. */
async function nodesOf(p: Process, addr: number, pages: number): Promise<number[]> {
  const addrs = Array.from({ length: pages }, (_, i) => addr + i * PAGE_SIZE);
  return (await p.movePages(0, addrs, null, 0)).status;
}

const perTier = (nodes: number[]): [number, number] => [
  nodes.filter((n) => n === 0).length,
  nodes.filter((n) => n === 1).length,
];

export async function runMemoryTiering(): Promise<MemoryTieringResult> {
  const m = await createMachine({
    nodes: [{ memory: '16MiB' }, { memory: '64MiB', tier: 'cxl', cpus: 0 }],
  });
  // The DMA engine takes the copies of both tiering directions; other migrations stay on the CPU.
  const reg = createRegistry({ root: new URL('..', import.meta.url) });
  const dma = await reg.load('ptdma', { channels: 2 });
  await m.offload.register(dma, 'demotion,numa_misplaced');
  const ks = attachKswapd(m, { demotion: true });
  // A demonstration's pace: scan at once and every 50 ms (the kernel: after 1 s, every 1-60 s).
  const nb = attachNumaBalancing(m, { scanDelayMs: 0, scanPeriodMs: 50 });
  const v0 = m.vmstat();

  // 24 MiB of 4 KiB pages, more than the DRAM node holds: kswapd demotes while they are written.
  const pages = 6144;
  const p = m.spawn({ comm: 'app', node: 0 });
  const a = p.mmap(pages * PAGE_SIZE, { thp: 'never' });
  const data = new Uint8Array(pages * PAGE_SIZE).map((_, i) => (i * 97 + (i >>> 12)) & 255);
  p.write(a, data);
  await ks.settled();
  const afterFill = perTier(await nodesOf(p, a, pages));

  // The thread reads a 2 MiB hot set that moves every 400 ms; mode 2 promotes what it faults on.
  m.sysctl.write('kernel.numa_balancing', '2');
  const workload = {
    kind: 'access' as const,
    pattern: 'hotset' as const,
    addr: a,
    bytes: pages * PAGE_SIZE,
    hotBytes: 2 << 20,
    moveEveryMs: 400,
    durationMs: 2000,
  };
  const t = p.spawnThread<AccessResult>({ workload, node: 0 });
  const r = await t.join();
  await nb.settled();
  await ks.settled();
  const nodes = await nodesOf(p, a, pages);
  const last = r.hotRanges.at(-1)!;
  const first = (last.addr - a) / PAGE_SIZE;
  const hot = Array.from({ length: last.bytes / PAGE_SIZE }, (_, i) => nodes[(first + i) % pages]);

  const v1 = m.vmstat();
  const status = m.offload.status().find((s) => s.name === dma.name)!;
  // The dcbm migrator's own stats (typed loosely here: the registry returns the generic contract).
  const dmaStats = status.stats as { channels: { name: string; bytes: number }[] };
  const result: MemoryTieringResult = {
    pages,
    placement: { afterFill, afterWorkload: perTier(nodes) },
    hotSet: { moves: r.hotRanges.length - 1, pages: hot.length, onDram: hot.filter((n) => n === 0).length },
    verified: r.errors === 0 && Buffer.compare(p.read(a, data.length), data) === 0,
    counters: Object.fromEntries(COUNTERS.map((c) => [c, v1[c] - v0[c]])) as Record<Counter, number>,
    dma: {
      name: status.name,
      batches: status.batches,
      foliosCopied: status.foliosCopied,
      failures: status.failures,
      channels: dmaStats.channels.map((c) => ({ name: c.name, bytes: c.bytes })),
    },
  };
  await nb.stop();
  await ks.stop();
  m.checkInvariants();
  await m.close(); // disposes the migrator: the device threads end
  return result;
}

async function main(): Promise<void> {
  const r = await runMemoryTiering();
  const [fillDram, fillCxl] = r.placement.afterFill;
  const [endDram, endCxl] = r.placement.afterWorkload;
  console.log(`node 0: DRAM 16 MiB, node 1: CXL 64 MiB (no CPUs); the process writes ${r.pages} pages`);
  console.log(
    `after the writes:   ${fillDram} pages in DRAM, ${fillCxl} on CXL (kswapd demoted the coldest)`,
  );
  console.log(`after the workload: ${endDram} pages in DRAM, ${endCxl} on CXL`);
  console.log(
    `the hot set moved ${r.hotSet.moves} times; ${r.hotSet.onDram} of its last ${r.hotSet.pages} pages are in DRAM`,
  );
  console.log(`bytes ${r.verified ? 'verified' : 'WRONG'}; vmstat deltas:`, r.counters);
  const { channels, ...dma } = r.dma;
  console.log('DMA migrator:', dma);
  for (const c of channels) console.log(`  ${c.name} copied ${(c.bytes / 2 ** 20).toFixed(1)} MiB`);
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) await main();
