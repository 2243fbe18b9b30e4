/**
 * Memory tiering: DRAM on node 0, a slower CXL memory expander on node 1 (a memory-only node with
 * a larger distance). Pages the process has not used lately are demoted to CXL (reason demotion,
 * as kswapd's demote_folio_list() does); pages on CXL that become hot are promoted back to DRAM
 * (reason numa_misplaced). Both copies run on an emulated PTDMA engine loaded through the registry.
 */
import { pathToFileURL } from 'node:url';
import { createMachine, type MigrationResult, PAGE_SIZE } from '@pagemig/core';
import { createRegistry } from '@pagemig/registry';

const COUNTERS = [
  'pgdemote_kswapd',
  'pgpromote_success',
  'numa_pages_migrated',
  'pgmigrate_success',
] as const;
type Counter = (typeof COUNTERS)[number];

export interface Step {
  step: 'demote' | 'promote';
  pages: number;
  copiedBy: string | null;
  foliosCopied: number;
  /** Pages of the region on [DRAM, CXL] after the step. */
  placement: [dram: number, cxl: number];
}

export interface MemoryTieringResult {
  pages: number;
  steps: Step[];
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

export async function runMemoryTiering(): Promise<MemoryTieringResult> {
  const m = await createMachine({
    nodes: [{ memory: '64MiB' }, { memory: '128MiB', tier: 'cxl' }],
    distances: [
      [10, 24],
      [24, 10],
    ],
  });
  // The DMA engine takes the copies of both tiering directions; other migrations stay on the CPU.
  const reg = createRegistry({ root: new URL('..', import.meta.url) });
  const dma = await reg.load('ptdma', { channels: 2 });
  await m.offload.register(dma, 'demotion,numa_misplaced');

  const p = m.spawn({ comm: 'app', node: 0 });
  const pages = 4096; // 16 MiB of 4 KiB pages, all first touched in DRAM
  const a = p.mmap(pages * PAGE_SIZE, { thp: 'never' });
  const data = new Uint8Array(pages * PAGE_SIZE).map((_, i) => (i * 97 + (i >>> 12)) & 255);
  p.write(a, data);

  // An access sampler stands in for the kernel's page-age tracking and hinting faults: it counts
  // the accesses of one period per page.
  const sample = (hot: (page: number) => boolean) => {
    const hits = new Uint32Array(pages);
    for (let i = 0; i < pages; i++) {
      if (!hot(i)) continue;
      p.touch(a + i * PAGE_SIZE, PAGE_SIZE, 'read');
      hits[i]!++;
    }
    return hits;
  };
  const pageOf = (i: number) => p.pageInfo(a + i * PAGE_SIZE)!;
  const placement = (): [number, number] => {
    let dram = 0;
    for (let i = 0; i < pages; i++) if (pageOf(i).node === 0) dram++;
    return [dram, pages - dram];
  };
  const steps: Step[] = [];
  const record = (step: Step['step'], r: MigrationResult) =>
    steps.push({
      step,
      pages: r.nrSucceeded,
      copiedBy: r.offload.migrator,
      foliosCopied: r.offload.foliosCopied,
      placement: placement(),
    });
  const v0 = m.vmstat();

  // Period 1: the process works on the first quarter of its memory. Reclaim demotes the rest.
  let hits = sample((i) => i < pages / 4);
  const cold: number[] = [];
  for (let i = 0; i < pages; i++) if (hits[i] === 0 && pageOf(i).node === 0) cold.push(pageOf(i).headPfn);
  record(
    'demote',
    await m.migrateFolios(cold, {
      node: 1,
      mode: 'MIGRATE_ASYNC',
      reason: 'demotion',
      demoteOrigin: 'kswapd',
    }),
  );

  // Period 2: its working set moves to the last quarter, now on CXL: promote what it touches.
  hits = sample((i) => i >= (3 * pages) / 4);
  const hot: number[] = [];
  for (let i = 0; i < pages; i++) if (hits[i]! > 0 && pageOf(i).node === 1) hot.push(pageOf(i).headPfn);
  record('promote', await m.migrateFolios(hot, { node: 0, mode: 'MIGRATE_ASYNC', reason: 'numa_misplaced' }));

  const v1 = m.vmstat();
  const status = m.offload.status().find((s) => s.name === dma.name)!;
  // The dcbm migrator's own stats (typed loosely here: the registry returns the generic contract).
  const dmaStats = status.stats as { channels: { name: string; bytes: number }[] };
  const result: MemoryTieringResult = {
    pages,
    steps,
    verified: Buffer.compare(p.read(a, data.length), data) === 0,
    counters: Object.fromEntries(COUNTERS.map((c) => [c, v1[c] - v0[c]])) as Record<Counter, number>,
    dma: {
      name: status.name,
      batches: status.batches,
      foliosCopied: status.foliosCopied,
      failures: status.failures,
      channels: dmaStats.channels.map((c) => ({ name: c.name, bytes: c.bytes })),
    },
  };
  m.checkInvariants();
  await m.close(); // disposes the migrator: the device threads end
  return result;
}

async function main(): Promise<void> {
  const r = await runMemoryTiering();
  console.log(`node 0: DRAM 64 MiB, node 1: CXL 128 MiB; the process has ${r.pages} pages, all in DRAM`);
  for (const s of r.steps) {
    console.log(
      `${s.step.padEnd(8)} ${String(s.pages).padStart(5)} pages, ${s.foliosCopied} folios copied by ` +
        `${s.copiedBy ?? 'the CPU'}; now ${s.placement[0]} pages in DRAM, ${s.placement[1]} on CXL`,
    );
  }
  console.log(`bytes ${r.verified ? 'verified' : 'WRONG'}; vmstat deltas:`, r.counters);
  const { channels, ...dma } = r.dma;
  console.log('DMA migrator:', dma);
  for (const c of channels) console.log(`  ${c.name} copied ${(c.bytes / 2 ** 20).toFixed(1)} MiB`);
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) await main();
