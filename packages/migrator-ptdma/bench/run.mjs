// PTDMA offload benchmark (issue 5): 256 MiB migrated between two nodes in 4 KiB, 64 KiB and 2 MiB
// folios with ptdma on 1, 2 and 4 channels, next to cpu-serial, cpu-multithreaded and this run's
// raw copy of the same bytes in the same pieces; at the engine's default batch (512 base pages)
// and at one batch per migration (the series raised the batch for its 2 MiB numbers). Besides
// throughput it reports the engine thread's CPU time per GiB for the whole migration, and for the
// copy phase alone: the engine CPU of the same migration minus that of a "mark-only" migrator
// which marks every row without copying (the engine's work outside the copy). Then a spin sweep:
// how long an idle device thread spins before it sleeps, and the driver on the engine thread.
// Bytes are verified after the last migration of every case (not for the mark-only calibration).
//
// Thread CPU comes from /proc/thread-self/schedstat, which the kernel only brings up to date when
// the thread is switched out or at a tick; every reading here first sleeps 100 µs (Atomics.wait)
// to force a switch, so spans of milliseconds are exact to a few tens of microseconds. (The
// engine's own MigrationResult.cpuSeconds reads without that and can lag by a scheduler tick.)
//
//   pnpm --filter @pagemig/migrator-ptdma bench        (node --expose-gc bench/run.mjs)
//   PAGEMIG_BENCH_REPS=5 timed migrations per round (each after one untimed warm-up) and
//   PAGEMIG_BENCH_ROUNDS=3 rounds: within a case the migrators take turns round by round, so a
//   change in the machine's load hits them alike; a figure is the median over rounds of each
//   round's median.

import { createMachine } from '@pagemig/core';
import { createMigrator as cpuSerial } from '@pagemig/migrator-cpu-serial';
import {
  markOnlyMigrator as markOnly,
  median,
  medianOf,
  printTable,
  rawCopy,
  threadCpuSeconds as threadCpu,
  writeResults,
} from '@pagemig-tools/bench';
import { createMigrator as ptdma } from '../dist/index.js';

const REGION = 256 << 20;
const GiB = 2 ** 30;
const REPS = Number(process.env.PAGEMIG_BENCH_REPS ?? 5);
const ROUNDS = Number(process.env.PAGEMIG_BENCH_ROUNDS ?? 3);
const DEFAULT_BATCH = 512;
const LARGE_BATCH = REGION / 4096; // one batch per migration
const folios = [
  { folio: '4KiB', thp: 'never', bytes: 4 << 10 },
  { folio: '64KiB', thp: '64KiB', bytes: 64 << 10 },
  { folio: '2MiB', thp: 'always', bytes: 2 << 20 },
];

// cpu-multithreaded is built alongside; compare against it when it is there.
let cpuMultithreaded = null;
try {
  cpuMultithreaded = (await import('@pagemig/migrator-cpu-multithreaded')).createMigrator;
} catch (e) {
  console.log(
    `cpu-multithreaded is not available (${e.message}); comparing with cpu-serial and raw copy only`,
  );
}

const regions = new Map();
function fillRegion(seed) {
  let data = regions.get(seed);
  if (data) return data;
  data = new Uint8Array(REGION);
  const words = new Uint32Array(data.buffer);
  for (let i = 0; i < words.length; i++) words[i] = Math.imul(i + 1, 2654435761 + seed);
  regions.set(seed, data);
  return data;
}

/** Migrates the region back and forth REPS + 1 times; returns medians of the timed runs. */
async function measure(m, migrator, c, reps = REPS) {
  await m.offload.register(migrator, 'all');
  const p = m.spawn({ comm: 'bench' });
  const a = p.mmap(REGION, { thp: c.thp, node: 0 });
  const data = fillRegion(c.bytes);
  p.write(a, data);
  const wall = [];
  const cpu = [];
  const engineCpu = [];
  const batchCopy = [];
  const deviceBusy = [];
  let node = 0;
  let offload = null;
  for (let rep = 0; rep <= reps; rep++) {
    const pfns = [];
    for (let off = 0; off < REGION; off += c.bytes) pfns.push(p.pageInfo(a + off).headPfn);
    node ^= 1;
    globalThis.gc?.();
    const dev0 = migrator.devices?.reduce((s, d) => s + d.deviceCounters().copySeconds, 0) ?? 0;
    const c0 = threadCpu();
    const r = await m.migrateFolios(pfns, { node, mode: 'MIGRATE_SYNC', reason: 'syscall_or_cpuset' });
    const c1 = threadCpu();
    if (r.ret !== 0) throw new Error(`migration failed: ret ${r.ret}`);
    const dev1 = migrator.devices?.reduce((s, d) => s + d.deviceCounters().copySeconds, 0) ?? 0;
    if (rep === 0) continue; // warm-up
    wall.push(r.wallSeconds);
    cpu.push(c1 - c0);
    engineCpu.push(r.cpuSeconds);
    batchCopy.push(r.phases.batchCopy);
    deviceBusy.push(dev1 - dev0);
    offload = r.offload;
  }
  if (migrator.name !== 'mark-only' && Buffer.compare(p.read(a, REGION), data) !== 0)
    throw new Error('bytes differ after migration');
  m.checkInvariants();
  p.exit();
  if (offload && offload.foliosCopied !== offload.foliosOffered)
    console.log(
      `note: ${migrator.name} copied ${offload.foliosCopied} of ${offload.foliosOffered} folios offered`,
    );
  await m.offload.unregister(migrator);
  const s = median(wall);
  return {
    seconds: s,
    gbps: REGION / s / 1e9,
    engineCpuMsPerGiB: (median(cpu) * 1000 * GiB) / REGION,
    /** The engine's own cpuSeconds (schedstat without the forced update: tick-granular). */
    engineCpuSecondsReported: median(engineCpu),
    batchCopyMs: median(batchCopy) * 1000,
    deviceBusyMs: median(deviceBusy) * 1000,
    foliosOffered: offload?.foliosOffered ?? 0,
    foliosCopied: offload?.foliosCopied ?? 0,
  };
}

const raw = Object.fromEntries(folios.map((c) => [c.folio, rawCopy({ bytes: REGION, chunk: c.bytes })]));
const migrators = [
  { label: 'cpu-serial', make: () => cpuSerial() },
  ...(cpuMultithreaded ? [{ label: 'cpu-multithreaded', make: () => cpuMultithreaded() }] : []),
  { label: 'ptdma 1ch', make: () => ptdma({ channels: 1 }) },
  { label: 'ptdma 2ch', make: () => ptdma({ channels: 2 }) },
  { label: 'ptdma 4ch', make: () => ptdma({ channels: 4 }) },
];

const rows = [];
const baseline = {};
for (const batchPages of [DEFAULT_BATCH, LARGE_BATCH]) {
  const m = await createMachine({
    nodes: [{ memory: '1GiB' }, { memory: '1GiB' }],
    migrationBatchPages: batchPages,
  });
  for (const c of folios) {
    const runs = new Map([['mark-only', []], ...migrators.map((mg) => [mg.label, []])]);
    for (let round = 0; round < ROUNDS; round++) {
      runs.get('mark-only').push(await measure(m, markOnly(), c));
      for (const mg of migrators) runs.get(mg.label).push(await measure(m, mg.make(), c));
    }
    baseline[`${batchPages}/${c.folio}`] = medianOf(runs.get('mark-only')).engineCpuMsPerGiB;
    for (const mg of migrators) {
      const r = medianOf(runs.get(mg.label));
      rows.push({
        batchPages,
        migrator: mg.label,
        folio: c.folio,
        ...r,
        rawGbps: raw[c.folio].bytesPerSec / 1e9,
      });
    }
  }
  await m.close();
}
const copyCpu = (r) => Math.max(0, r.engineCpuMsPerGiB - baseline[`${r.batchPages}/${r.folio}`]);
const serialOf = (r) =>
  rows.find((x) => x.batchPages === r.batchPages && x.folio === r.folio && x.migrator === 'cpu-serial');
for (const r of rows) {
  r.markOnlyCpuMsPerGiB = baseline[`${r.batchPages}/${r.folio}`];
  r.copyCpuMsPerGiB = copyCpu(r);
}
for (const r of rows) r.copyCpuVsSerial = r.copyCpuMsPerGiB / serialOf(r).copyCpuMsPerGiB;

printTable(
  `ptdma vs CPU copy, ${REGION >> 20} MiB node 0 <-> node 1, MIGRATE_SYNC, ${ROUNDS} rounds x ${REPS} runs (median of medians); batch = migrationBatchPages`,
  [
    'batch',
    'migrator',
    'folio',
    { header: 'GB/s', align: 'right' },
    { header: 'raw copy GB/s', align: 'right' },
    { header: 'x raw', align: 'right' },
    { header: 'engine CPU ms/GiB', align: 'right' },
    { header: 'copy-phase CPU ms/GiB', align: 'right' },
    { header: 'copy CPU vs serial', align: 'right' },
    { header: 'device busy ms', align: 'right' },
  ],
  rows.map((r) => [
    r.batchPages,
    r.migrator,
    r.folio,
    r.gbps.toFixed(2),
    r.rawGbps.toFixed(2),
    (r.gbps / r.rawGbps).toFixed(2),
    r.engineCpuMsPerGiB.toFixed(1),
    r.copyCpuMsPerGiB.toFixed(1),
    `${(r.copyCpuVsSerial * 100).toFixed(0)}%`,
    r.migrator.startsWith('ptdma') ? r.deviceBusyMs.toFixed(1) : '',
  ]),
);

// Device spin: an idle device thread spins on its doorbell this long before it sleeps. Spinning
// answers the next doorbell in well under a microsecond instead of a thread wake-up, but on 2 cores
// two spinning devices take CPU from the engine thread between batches.
const spinRows = [];
{
  const m = await createMachine({ nodes: [{ memory: '1GiB' }, { memory: '1GiB' }] });
  const settings = [
    [0, 0],
    [20, 0],
    [50, 0],
    [200, 0],
    [50, 200],
  ];
  for (const c of [folios[0], folios[2]]) {
    const base = [];
    const runs = settings.map(() => []);
    for (let round = 0; round < ROUNDS; round++) {
      base.push((await measure(m, markOnly(), c)).engineCpuMsPerGiB);
      for (const [i, [deviceSpinUs, driverSpinUs]] of settings.entries())
        runs[i].push(await measure(m, ptdma({ channels: 2, deviceSpinUs, driverSpinUs }), c));
    }
    for (const [i, [deviceSpinUs, driverSpinUs]] of settings.entries()) {
      const r = medianOf(runs[i]);
      spinRows.push({
        folio: c.folio,
        deviceSpinUs,
        driverSpinUs,
        ...r,
        copyCpuMsPerGiB: Math.max(0, r.engineCpuMsPerGiB - median(base)),
      });
    }
  }
  await m.close();
}
printTable(
  `ptdma 2ch: idle spin of the device threads and of the driver (engine thread), batch ${DEFAULT_BATCH} pages, ${ROUNDS} rounds x ${REPS} runs`,
  [
    'folio',
    { header: 'device spin µs', align: 'right' },
    { header: 'driver spin µs', align: 'right' },
    { header: 'GB/s', align: 'right' },
    { header: 'engine CPU ms/GiB', align: 'right' },
    { header: 'copy-phase CPU ms/GiB', align: 'right' },
  ],
  spinRows.map((r) => [
    r.folio,
    r.deviceSpinUs,
    r.driverSpinUs,
    r.gbps.toFixed(2),
    r.engineCpuMsPerGiB.toFixed(1),
    r.copyCpuMsPerGiB.toFixed(1),
  ]),
);

// The targets, from this run.
const pick = (batch, mig, folio) =>
  rows.find((r) => r.batchPages === batch && r.migrator === mig && r.folio === folio);
const targets = [];
for (const batch of [DEFAULT_BATCH, LARGE_BATCH]) {
  const ref = pick(batch, cpuMultithreaded ? 'cpu-multithreaded' : 'cpu-serial', '2MiB');
  const two = pick(batch, 'ptdma 2ch', '2MiB');
  targets.push({
    batchPages: batch,
    throughputVs: ref.migrator,
    throughputRatio: two.gbps / ref.gbps,
    throughputMet: two.gbps >= 0.8 * ref.gbps,
    copyCpuVsSerial: two.copyCpuVsSerial,
    copyCpuMet: two.copyCpuVsSerial <= 0.1,
  });
}
for (const t of targets) {
  console.log(
    `batch ${t.batchPages}: ptdma 2ch 2MiB = ${t.throughputRatio.toFixed(2)}x ${t.throughputVs} (target >= 0.8: ${t.throughputMet ? 'met' : 'not met'}); ` +
      `copy-phase engine CPU = ${(t.copyCpuVsSerial * 100).toFixed(1)}% of cpu-serial (target <= 10%: ${t.copyCpuMet ? 'met' : 'not met'})`,
  );
}
console.log(
  `results: ${writeResults('migrator-ptdma', { region: REGION, reps: REPS, rounds: ROUNDS, markOnlyCpuMsPerGiB: baseline, rows, spinRows, targets })}`,
);
