// SDXI offload benchmark (issue 6): PTDMA's table, with sdxi beside it in the same run. A region
// (256 MiB by default) is migrated between two nodes in 4 KiB, 64 KiB and 2 MiB folios with sdxi
// on 1, 2 and 4 contexts and ptdma on 1, 2 and 4 engines, next to cpu-serial and this run's raw
// copy of the same bytes in the same pieces; at the engine's default batch (512 base pages) and at
// one batch per migration. Besides throughput it reports the engine thread's CPU time per GiB for
// the whole migration, and for the copy phase alone: the engine CPU of the same migration minus
// that of a "mark-only" migrator which marks every row without copying (the engine's work outside
// the copy). Bytes are verified after the last migration of every case.
//
// Thread CPU comes from /proc/thread-self/schedstat, which the kernel only brings up to date when
// the thread is switched out or at a tick; every reading first sleeps 100 µs (Atomics.wait) to
// force a switch, so spans of milliseconds are exact to a few tens of microseconds.
//
//   pnpm --filter @pagemig/migrator-sdxi bench        (node --expose-gc bench/run.mjs)
//   PAGEMIG_BENCH_REGION_MIB=256 region size, PAGEMIG_BENCH_REPS=5 timed migrations per round (each
//   after one untimed warm-up) and PAGEMIG_BENCH_ROUNDS=3 rounds: within a case the migrators take
//   turns round by round, so a change in the machine's load hits them alike; a figure is the median
//   over rounds of each round's median.

import { createMachine } from '@pagemig/core';
import { createMigrator as cpuSerial } from '@pagemig/migrator-cpu-serial';
import { createMigrator as ptdma } from '@pagemig/migrator-ptdma';
import {
  markOnlyMigrator as markOnly,
  median,
  medianOf,
  printTable,
  rawCopy,
  threadCpuSeconds as threadCpu,
  writeResults,
} from '@pagemig-tools/bench';
import { createMigrator as sdxi } from '../dist/index.js';

const REGION = Number(process.env.PAGEMIG_BENCH_REGION_MIB ?? 256) << 20;
const GiB = 2 ** 30;
const REPS = Number(process.env.PAGEMIG_BENCH_REPS ?? 5);
const ROUNDS = Number(process.env.PAGEMIG_BENCH_ROUNDS ?? 3);
const DEFAULT_BATCH = 512;
const LARGE_BATCH = REGION / 4096; // one batch per migration
const NODE_MEMORY = `${Math.max(4 * (REGION >> 20), 256)}MiB`;
const folios = [
  { folio: '4KiB', thp: 'never', bytes: 4 << 10 },
  { folio: '64KiB', thp: '64KiB', bytes: 64 << 10 },
  { folio: '2MiB', thp: 'always', bytes: 2 << 20 },
];

/** Seconds the emulated devices of a migrator spent moving bytes. */
function deviceSeconds(mig) {
  if (mig.function !== undefined) return mig.function?.deviceCounters().copySeconds ?? 0;
  return mig.devices?.reduce((s, d) => s + d.deviceCounters().copySeconds, 0) ?? 0;
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
async function measure(m, migrator, c) {
  await m.offload.register(migrator, 'all');
  const p = m.spawn({ comm: 'bench' });
  const a = p.mmap(REGION, { thp: c.thp, node: 0 });
  const data = fillRegion(c.bytes);
  p.write(a, data);
  const wall = [];
  const cpu = [];
  const deviceBusy = [];
  let node = 0;
  let offload = null;
  for (let rep = 0; rep <= REPS; rep++) {
    const pfns = [];
    for (let off = 0; off < REGION; off += c.bytes) pfns.push(p.pageInfo(a + off).headPfn);
    node ^= 1;
    globalThis.gc?.();
    const dev0 = deviceSeconds(migrator);
    const c0 = threadCpu();
    const r = await m.migrateFolios(pfns, { node, mode: 'MIGRATE_SYNC', reason: 'syscall_or_cpuset' });
    const c1 = threadCpu();
    if (r.ret !== 0) throw new Error(`migration failed: ret ${r.ret}`);
    const dev1 = deviceSeconds(migrator);
    if (rep === 0) continue; // warm-up
    wall.push(r.wallSeconds);
    cpu.push(c1 - c0);
    deviceBusy.push(dev1 - dev0);
    offload = r.offload;
  }
  if (migrator.name !== 'mark-only' && Buffer.compare(p.read(a, REGION), data) !== 0)
    throw new Error(`${migrator.name}: bytes differ after migration`);
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
    deviceBusyMs: median(deviceBusy) * 1000,
  };
}

const raw = Object.fromEntries(folios.map((c) => [c.folio, rawCopy({ bytes: REGION, chunk: c.bytes })]));
const migrators = [
  { label: 'cpu-serial', make: () => cpuSerial() },
  ...[1, 2, 4].map((n) => ({ label: `sdxi ${n}cxt`, make: () => sdxi({ channels: n }) })),
  ...[1, 2, 4].map((n) => ({ label: `ptdma ${n}ch`, make: () => ptdma({ channels: n }) })),
];

const rows = [];
const baseline = {};
for (const batchPages of [DEFAULT_BATCH, LARGE_BATCH]) {
  const m = await createMachine({
    nodes: [{ memory: NODE_MEMORY }, { memory: NODE_MEMORY }],
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
      rows.push({
        batchPages,
        migrator: mg.label,
        folio: c.folio,
        ...medianOf(runs.get(mg.label)),
        rawGbps: raw[c.folio].bytesPerSec / 1e9,
      });
    }
  }
  await m.close();
}
const serialOf = (r) =>
  rows.find((x) => x.batchPages === r.batchPages && x.folio === r.folio && x.migrator === 'cpu-serial');
for (const r of rows) {
  r.markOnlyCpuMsPerGiB = baseline[`${r.batchPages}/${r.folio}`];
  r.copyCpuMsPerGiB = Math.max(0, r.engineCpuMsPerGiB - r.markOnlyCpuMsPerGiB);
}
for (const r of rows) r.copyCpuVsSerial = r.copyCpuMsPerGiB / serialOf(r).copyCpuMsPerGiB;

printTable(
  `sdxi and ptdma vs CPU copy, ${REGION >> 20} MiB node 0 <-> node 1, MIGRATE_SYNC, ${ROUNDS} rounds x ${REPS} runs (median of medians); batch = migrationBatchPages`,
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
    r.migrator === 'cpu-serial' ? '' : r.deviceBusyMs.toFixed(1),
  ]),
);
console.log(
  `results: ${writeResults('migrator-sdxi', { region: REGION, reps: REPS, rounds: ROUNDS, markOnlyCpuMsPerGiB: baseline, rows })}`,
);
