// Issue 16's cases (src/offload-cases.mjs), on the built packages of this repository, or on two
// builds side by side: PAGEMIG_BEFORE=<packages/ of another built checkout> adds it as "before",
// measured in turns with this one repetition by repetition.
//
//   pnpm --filter @pagemig-tools/bench bench           (node --expose-gc bench/offload-cases.mjs)
//   PAGEMIG_BENCH_REGION_MIB=64 move_pages region, PAGEMIG_BENCH_REPS=7 repetitions,
//   PAGEMIG_BENCH_ZONE=256MiB compaction zone, PAGEMIG_BENCH_CREPS=5 compaction repetitions,
//   PAGEMIG_BENCH_BUSY_REPS=3 busy-system repetitions, ONLY=move|busy-core|compaction|busy-system
import { fileURLToPath } from 'node:url';
import { writeResults } from '../src/index.mjs';
import {
  busySystemCase,
  compactionCase,
  fmt,
  loadBuild,
  machineLoad,
  movePagesCase,
  printTable,
} from '../src/offload-cases.mjs';

const env = process.env;
const only = env.ONLY?.split(',');
const want = (c) => !only || only.includes(c);
const here = fileURLToPath(new URL('../../../packages', import.meta.url));
const builds = [
  ...(env.PAGEMIG_BEFORE ? [await loadBuild('before', env.PAGEMIG_BEFORE)] : []),
  await loadBuild(env.PAGEMIG_BEFORE ? 'after' : 'this', env.PAGEMIG_AFTER ?? here),
];
const bytes = Number(env.PAGEMIG_BENCH_REGION_MIB ?? 64) * 2 ** 20;
const reps = Number(env.PAGEMIG_BENCH_REPS ?? 7);
const load = [await machineLoad()];
const results = { builds: builds.map((b) => b.label), regionBytes: bytes, reps };
const movers = ['cpu-serial', 'cpu-multithreaded', 'ptdma 2ch', 'sdxi 2ctx', 'mark-only'];

const moveColumns = [
  'build',
  'migrator',
  { header: 'GB/s', align: 'right' },
  { header: 'x raw copy', align: 'right' },
  { header: 'x 2-thread ceiling', align: 'right' },
  { header: 'x 2-thread batch ceiling', align: 'right' },
  { header: 'x cpu-serial', align: 'right' },
  { header: 'x cpu-multithreaded', align: 'right' },
  { header: 'engine CPU ms/GiB', align: 'right' },
  { header: 'copy-phase CPU vs cpu-serial', align: 'right' },
];
const moveRow = (r) => [
  r.build,
  r.migrator,
  r.gbps.toFixed(2),
  fmt.x(r.xRaw),
  fmt.x(r.xCeiling),
  fmt.x(r.xBatchCeiling),
  fmt.x(r.xCpuSerial),
  fmt.x(r.xCpuMultithreaded),
  r.engineCpuMsPerGiB.toFixed(1),
  fmt.pct(r.copyCpuVsSerial),
];

if (want('move')) {
  console.error('move_pages, 2 MiB folios, default batch ...');
  const r = await movePagesCase(builds, { bytes, reps, names: movers });
  results.movePages = r;
  printTable(
    `move_pages(2), ${bytes >> 20} MiB of 2 MiB folios node 0 <-> 1, default batch (512 pages); raw copy ${r.raw.gbps1.toFixed(2)} GB/s on one thread, ${r.raw.gbps2.toFixed(2)} GB/s on two (ceiling ${r.raw.ceiling.toFixed(2)}x), ${r.raw.gbps2Batched.toFixed(2)} GB/s on two splitting one 2 MiB batch at a time (batch ceiling ${r.raw.batchCeiling.toFixed(2)}x); target cpu-multithreaded >= 0.8x the 2-thread ceiling, ptdma/sdxi >= 0.8x cpu-multithreaded with copy-phase CPU <= 10%; median of ${reps}`,
    moveColumns,
    r.rows.map(moveRow),
  );
  load.push(await machineLoad());
}

if (want('busy-core')) {
  console.error('move_pages with a busy loop on the other core ...');
  const r = await movePagesCase(builds, { bytes, reps, names: movers, busy: true });
  results.movePagesOtherCoreBusy = r;
  printTable(
    `the same with a busy loop on the other core (a user's job): target cpu-multithreaded >= 0.95x cpu-serial; median of ${reps}`,
    moveColumns,
    r.rows.map(moveRow),
  );
  load.push(await machineLoad());
}

const compactNames = [
  'cpu-serial',
  'ptdma 2ch',
  'sdxi 2ctx',
  'ptdma 2ch, minBatchPages 64',
  'sdxi 2ctx, minBatchPages 64',
  'cpu-multithreaded',
  'mark-only',
];
if (want('compaction')) {
  const zone = env.PAGEMIG_BENCH_ZONE ?? '256MiB';
  const creps = Number(env.PAGEMIG_BENCH_CREPS ?? 5);
  results.compaction = [];
  for (const clusterMax of [32, 512]) {
    console.error(`compaction, cluster ${clusterMax} ...`);
    const r = await compactionCase(builds, { zone, reps: creps, names: compactNames, clusterMax });
    results.compaction.push(r);
    printTable(
      `compaction of a ${zone} zone, every other 64 KiB area unmapped at random, clusterMax ${clusterMax} folios per migrate_pages() call (the kernel's COMPACT_CLUSTER_MAX is 32); engine thread CPU per migrated page (target ptdma/sdxi <= 0.8x cpu-serial; mark-only = the engine without any copy, the floor); median of ${creps}`,
      [
        'build',
        'migrator',
        { header: 'engine CPU µs/page', align: 'right' },
        { header: 'x cpu-serial', align: 'right' },
        { header: 'pages/s', align: 'right' },
        { header: 'pages', align: 'right' },
        { header: 'copied by migrator', align: 'right' },
      ],
      r.rows.map((x) => [
        x.build,
        x.migrator,
        x.cpuUsPerPage.toFixed(2),
        fmt.x(x.cpuVsSerial),
        Math.round(x.pagesPerSec),
        x.pages,
        x.foliosCopiedByMigrator,
      ]),
    );
  }
  load.push(await machineLoad());
}

if (want('busy-system')) {
  console.error('busy system ...');
  const breps = Number(env.PAGEMIG_BENCH_BUSY_REPS ?? 3);
  const r = await busySystemCase(builds, {
    reps: breps,
    names: ['cpu-serial', 'ptdma 2ch', 'sdxi 2ctx', 'ptdma 2ch, minBatchPages 64'],
  });
  results.busySystem = r;
  printTable(
    `busy system: a user thread works on a 128 MiB node while kcompactd compacts it (proactive pass, COMPACT_CLUSTER_MAX 32); median of ${breps}. "emulated hardware" is the CPU the emulated devices' own threads used: on a real machine the DMA engine does that work, not a host core`,
    [
      'build',
      'migrator',
      { header: 'workload speed (during/alone)', align: 'right' },
      { header: 'user thread CPU share', align: 'right' },
      { header: 'engine CPU µs/page', align: 'right' },
      { header: 'engine thread CPU share', align: 'right' },
      { header: 'emulated hardware CPU µs/page', align: 'right' },
      { header: 'pages', align: 'right' },
    ],
    r.rows.map((x) => [
      x.build,
      x.migrator,
      fmt.pct(x.workloadRatio),
      fmt.pct(x.userThreadCpuShare),
      x.engineCpuUsPerPage.toFixed(2),
      fmt.pct(x.engineThreadCpuShare),
      x.emulatedHardwareCpuUsPerPage.toFixed(2),
      x.pagesMigrated,
    ]),
  );
  load.push(await machineLoad());
}

results.machineLoad = load;
console.log(
  `machine load (1-min load average, busy share) over the run: ${load.map((l) => `${l.loadAverage[0].toFixed(2)}/${fmt.pct(l.busy)}`).join(' -> ')}`,
);
console.log(`results: ${writeResults('offload-cases', results)}`);
