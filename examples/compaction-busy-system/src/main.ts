/**
 * Compaction on a busy system: a user thread keeps reading and writing its memory, spread over a
 * fragmented node, while kcompactd compacts that node and migrates the very pages it touches. The
 * same scenario runs twice, with the copies done on the engine's own thread (cpu-serial) and
 * offloaded to an emulated PTDMA engine, to see how much of the engine thread's CPU the offload
 * gives back.
 */
import { pathToFileURL } from 'node:url';
import { createMachine } from '@pagemig/core';
import { attachKcompactd, runBusyScenario } from '@pagemig/kcompactd';
import { createRegistry } from '@pagemig/registry';

export interface BusyRun {
  migrator: string;
  pagesMigrated: number;
  foliosCopiedByMigrator: number;
  /** The engine thread's CPU time for the whole compaction run (scanners and migration). */
  engineCpuMs: number;
  engineCpuUsPerPage: number;
  /** How long the copies waited on the migrator. */
  copyWaitMs: number;
  /** Workload speed during compaction / alone (the user thread shares 2 cores with everything). */
  workloadRatio: number;
  lostWrites: number;
  pagesVerified: number;
}

export interface CompactionBusyResult {
  runs: BusyRun[];
  /** Engine CPU the offload saved over cpu-serial for the same number of pages (negative: it cost more). */
  freedMs: number;
  freedShare: number;
}

async function busyRun(id: 'cpu-serial' | 'ptdma'): Promise<BusyRun> {
  const m = await createMachine({ nodes: [{ memory: '128MiB' }] });
  const reg = createRegistry({ root: new URL('..', import.meta.url) });
  await m.offload.register(await reg.load(id), 'compaction');
  // Proactiveness 0 until the scenario sets it, so no pass starts before the workload runs.
  // Larger isolation batches (the kernel's COMPACT_CLUSTER_MAX is 32) give the copy engine
  // whole batches to work on.
  const kd = attachKcompactd(m, { proactiveness: 0, clusterMax: 512 });
  try {
    const r = await runBusyScenario(m, kd, { threads: 1, baselineMs: 200 });
    const c = r.compaction;
    m.checkInvariants();
    return {
      migrator: c.offload.migrator ?? 'none',
      pagesMigrated: c.pagesMigrated,
      foliosCopiedByMigrator: c.offload.foliosCopied,
      engineCpuMs: c.cpuSeconds * 1e3,
      engineCpuUsPerPage: (c.cpuSeconds * 1e6) / c.pagesMigrated,
      copyWaitMs: c.batchCopySeconds * 1e3,
      workloadRatio: r.ratio,
      lostWrites: r.workload.reduce((s, w) => s + w.errors, 0),
      pagesVerified: r.pagesVerified,
    };
  } finally {
    await kd.stop();
    await m.close();
  }
}

export async function runCompactionBusySystem(): Promise<CompactionBusyResult> {
  const serial = await busyRun('cpu-serial');
  const dma = await busyRun('ptdma');
  const freedMs = ((serial.engineCpuUsPerPage - dma.engineCpuUsPerPage) * dma.pagesMigrated) / 1e3;
  return {
    runs: [serial, dma],
    freedMs,
    freedShare: freedMs / (serial.engineCpuUsPerPage * dma.pagesMigrated * 1e-3),
  };
}

async function main(): Promise<void> {
  const r = await runCompactionBusySystem();
  console.log('kcompactd compacting a 128 MiB node while a user thread works on it (MIGRATE_SYNC_LIGHT)');
  console.log(
    'migrator     pages  by migrator  engine CPU ms  µs/page  copy wait ms  workload speed  lost writes',
  );
  for (const x of r.runs) {
    console.log(
      `${x.migrator.padEnd(11)}${String(x.pagesMigrated).padStart(7)}${String(x.foliosCopiedByMigrator).padStart(13)}` +
        `${x.engineCpuMs.toFixed(1).padStart(15)}${x.engineCpuUsPerPage.toFixed(2).padStart(9)}` +
        `${x.copyWaitMs.toFixed(1).padStart(14)}${`${(x.workloadRatio * 100).toFixed(0)}%`.padStart(16)}` +
        `${String(x.lostWrites).padStart(13)}`,
    );
  }
  const verb = r.freedMs >= 0 ? 'freed' : 'cost';
  console.log(
    `engine CPU time ${verb} by the offload: ${Math.abs(r.freedMs).toFixed(1)} ms ` +
      `(${Math.abs(r.freedShare * 100).toFixed(0)}% of cpu-serial's for the same pages); every page verified`,
  );
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) await main();
