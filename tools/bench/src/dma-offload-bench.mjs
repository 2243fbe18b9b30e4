// The offload benchmark of the dmaengine drivers (ptdma, sdxi): a region (256 MiB by default) is
// migrated between two nodes in 4 KiB, 64 KiB and 2 MiB folios by cpu-serial (and cpu-multithreaded
// when it is there) and the driver's migrators, next to this run's raw copy of the same bytes in the
// same pieces; at the engine's default batch (512 base pages) and at one batch per migration (the
// ptdma series raised the batch for its 2 MiB numbers). Besides throughput it reports the engine
// thread's CPU time per GiB for the whole migration, and for the copy phase alone: the engine CPU of
// the same migration minus that of a "mark-only" migrator which marks every row without copying (the
// engine's work outside the copy). Bytes are verified after the last migration of every case (not
// for the mark-only calibration).
//
// Thread CPU comes from /proc/thread-self/schedstat, which the kernel only brings up to date when
// the thread is switched out or at a tick; every reading here first sleeps 100 µs (Atomics.wait)
// to force a switch, so spans of milliseconds are exact to a few tens of microseconds. (The
// engine's own MigrationResult.cpuSeconds reads without that and can lag by a scheduler tick.)
//
// PAGEMIG_BENCH_REGION_MIB=256 region size, PAGEMIG_BENCH_REPS=5 timed migrations per round (each
// after one untimed warm-up) and PAGEMIG_BENCH_ROUNDS=3 rounds: within a case the migrators take
// turns round by round, so a change in the machine's load hits them alike; a figure is the median
// over rounds of each round's median.
import {
  markOnlyMigrator as markOnly,
  median,
  medianOf,
  printTable,
  rawCopy,
  threadCpuSeconds as threadCpu,
  writeResults,
} from './index.mjs';

const GiB = 2 ** 30;
const DEFAULT_BATCH = 512;
const folios = [
  { folio: '4KiB', thp: 'never', bytes: 4 << 10 },
  { folio: '64KiB', thp: '64KiB', bytes: 64 << 10 },
  { folio: '2MiB', thp: 'always', bytes: 2 << 20 },
];
/** [deviceSpinUs, driverSpinUs] of the spin sweep. */
const spinSettings = [
  [0, 0],
  [20, 0],
  [50, 0],
  [200, 0],
  [50, 200],
];

/**
 * @typedef {object} DmaOffloadBenchOptions
 * @property {string} name   results go to bench-results/<name>.json
 * @property {string} title  what the table sets against CPU copy ('ptdma', 'sdxi and ptdma')
 * @property {(opts: object) => Promise<any>} createMachine  @pagemig/core's (the harness does not depend on core)
 * @property {() => object} cpuSerial  createMigrator of @pagemig/migrator-cpu-serial, the 'cpu-serial' row
 * @property {() => Promise<{ createMigrator: () => object }>} [cpuMultithreaded]  its import(): a row when it loads
 * @property {{ label: string, make: () => object }[]} offloads  the offloading migrators, in row order
 * @property {(migrator: any) => number} deviceSeconds  seconds a migrator's emulated devices spent moving bytes
 * @property {boolean} [engineDetail]  rows also get the engine's own cpuSeconds, its batch-copy phase and folio counts
 * @property {{ label: string, make: (deviceSpinUs: number, driverSpinUs: number) => object }} [spin]  then sweep its idle spins
 * @property {string} [target]  then check this offload at 2 MiB against the targets of its issue
 */

/**
 * Returns measure(m, migrator, c), which migrates the region back and forth reps + 1 times and
 * returns medians of the timed runs.
 * @param {{ region: number, reps: number, deviceSeconds: (migrator: any) => number, engineDetail?: boolean }} o
 */
function measurer({ region, reps, deviceSeconds, engineDetail }) {
  /** @type {Map<number, Uint8Array>} */
  const regions = new Map();
  /** @param {number} seed */
  const fillRegion = (seed) => {
    let data = regions.get(seed);
    if (data) return data;
    data = new Uint8Array(region);
    const words = new Uint32Array(data.buffer);
    for (let i = 0; i < words.length; i++) words[i] = Math.imul(i + 1, 2654435761 + seed);
    regions.set(seed, data);
    return data;
  };
  /**
   * @param {any} m
   * @param {any} migrator
   * @param {(typeof folios)[number]} c
   */
  return async (m, migrator, c) => {
    await m.offload.register(migrator, 'all');
    const p = m.spawn({ comm: 'bench' });
    const a = p.mmap(region, { thp: c.thp, node: 0 });
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
      for (let off = 0; off < region; off += c.bytes) pfns.push(p.pageInfo(a + off).headPfn);
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
      engineCpu.push(r.cpuSeconds);
      batchCopy.push(r.phases.batchCopy);
      deviceBusy.push(dev1 - dev0);
      offload = r.offload;
    }
    if (migrator.name !== 'mark-only' && Buffer.compare(p.read(a, region), data) !== 0)
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
      gbps: region / s / 1e9,
      engineCpuMsPerGiB: (median(cpu) * 1000 * GiB) / region,
      ...(engineDetail && {
        /** The engine's own cpuSeconds (schedstat without the forced update: tick-granular). */
        engineCpuSecondsReported: median(engineCpu),
        batchCopyMs: median(batchCopy) * 1000,
      }),
      deviceBusyMs: median(deviceBusy) * 1000,
      ...(engineDetail && {
        foliosOffered: offload?.foliosOffered ?? 0,
        foliosCopied: offload?.foliosCopied ?? 0,
      }),
    };
  };
}

/**
 * Runs the DMA offload benchmark: prints its tables and writes bench-results/<name>.json.
 * @param {DmaOffloadBenchOptions} o
 */
export async function dmaOffloadBench(o) {
  const { createMachine, offloads, spin, target } = o;
  const region = Number(process.env.PAGEMIG_BENCH_REGION_MIB ?? 256) << 20;
  const reps = Number(process.env.PAGEMIG_BENCH_REPS ?? 5);
  const rounds = Number(process.env.PAGEMIG_BENCH_ROUNDS ?? 3);
  const largeBatch = region / 4096; // one batch per migration
  const nodeMemory = `${Math.max(4 * (region >> 20), 256)}MiB`;
  const nodes = [{ memory: nodeMemory }, { memory: nodeMemory }];
  const measure = measurer({ region, reps, deviceSeconds: o.deviceSeconds, engineDetail: o.engineDetail });

  // cpu-multithreaded is built alongside; compare against it when it is there.
  let cpuMultithreaded = null;
  if (o.cpuMultithreaded) {
    try {
      cpuMultithreaded = (await o.cpuMultithreaded()).createMigrator;
    } catch (e) {
      console.log(
        `cpu-multithreaded is not available (${/** @type {Error} */ (e).message}); comparing with cpu-serial and raw copy only`,
      );
    }
  }

  const raw = Object.fromEntries(folios.map((c) => [c.folio, rawCopy({ bytes: region, chunk: c.bytes })]));
  const migrators = [
    { label: 'cpu-serial', make: o.cpuSerial },
    ...(cpuMultithreaded ? [{ label: 'cpu-multithreaded', make: cpuMultithreaded }] : []),
    ...offloads,
  ];

  /** @type {any[]} */
  const rows = [];
  /** @type {Record<string, number>} */
  const baseline = {};
  for (const batchPages of [DEFAULT_BATCH, largeBatch]) {
    const m = await createMachine({ nodes, migrationBatchPages: batchPages });
    for (const c of folios) {
      const runs = new Map([['mark-only', []], ...migrators.map((mg) => [mg.label, []])]);
      for (let round = 0; round < rounds; round++) {
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
  const serialOf = (/** @type {any} */ r) =>
    rows.find((x) => x.batchPages === r.batchPages && x.folio === r.folio && x.migrator === 'cpu-serial');
  for (const r of rows) {
    r.markOnlyCpuMsPerGiB = baseline[`${r.batchPages}/${r.folio}`];
    r.copyCpuMsPerGiB = Math.max(0, r.engineCpuMsPerGiB - r.markOnlyCpuMsPerGiB);
  }
  for (const r of rows) r.copyCpuVsSerial = r.copyCpuMsPerGiB / serialOf(r).copyCpuMsPerGiB;

  const offloaded = new Set(offloads.map((mg) => mg.label));
  printTable(
    `${o.title} vs CPU copy, ${region >> 20} MiB node 0 <-> node 1, MIGRATE_SYNC, ${rounds} rounds x ${reps} runs (median of medians); batch = migrationBatchPages`,
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
      offloaded.has(r.migrator) ? r.deviceBusyMs.toFixed(1) : '',
    ]),
  );

  // Device spin: an idle device thread spins on its doorbell this long before it sleeps. Spinning
  // answers the next doorbell in well under a microsecond instead of a thread wake-up, but on 2 cores
  // two spinning devices take CPU from the engine thread between batches.
  /** @type {any[]} */
  const spinRows = [];
  if (spin) {
    const m = await createMachine({ nodes });
    for (const c of [folios[0], folios[2]]) {
      const base = [];
      /** @type {any[][]} */
      const runs = spinSettings.map(() => []);
      for (let round = 0; round < rounds; round++) {
        base.push((await measure(m, markOnly(), c)).engineCpuMsPerGiB);
        for (const [i, [deviceSpinUs, driverSpinUs]] of spinSettings.entries())
          runs[i].push(await measure(m, spin.make(deviceSpinUs, driverSpinUs), c));
      }
      for (const [i, [deviceSpinUs, driverSpinUs]] of spinSettings.entries()) {
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
    printTable(
      `${spin.label}: idle spin of the device threads and of the driver (engine thread), batch ${DEFAULT_BATCH} pages, ${rounds} rounds x ${reps} runs`,
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
  }

  // The targets, from this run: at 2 MiB folios, at least 0.8x the throughput of the
  // fastest CPU migrator, and at most 10% of cpu-serial's copy-phase engine CPU.
  const pick = (/** @type {number} */ batch, /** @type {string} */ mig) =>
    rows.find((r) => r.batchPages === batch && r.migrator === mig && r.folio === '2MiB');
  const targets = (target ? [DEFAULT_BATCH, largeBatch] : []).map((batch) => {
    const ref = pick(batch, cpuMultithreaded ? 'cpu-multithreaded' : 'cpu-serial');
    const dma = pick(batch, target);
    return {
      batchPages: batch,
      throughputVs: ref.migrator,
      throughputRatio: dma.gbps / ref.gbps,
      throughputMet: dma.gbps >= 0.8 * ref.gbps,
      copyCpuVsSerial: dma.copyCpuVsSerial,
      copyCpuMet: dma.copyCpuVsSerial <= 0.1,
    };
  });
  for (const t of targets) {
    console.log(
      `batch ${t.batchPages}: ${target} 2MiB = ${t.throughputRatio.toFixed(2)}x ${t.throughputVs} (target >= 0.8: ${t.throughputMet ? 'met' : 'not met'}); ` +
        `copy-phase engine CPU = ${(t.copyCpuVsSerial * 100).toFixed(1)}% of cpu-serial (target <= 10%: ${t.copyCpuMet ? 'met' : 'not met'})`,
    );
  }
  const results = { region, reps, rounds, markOnlyCpuMsPerGiB: baseline, rows };
  console.log(
    `results: ${writeResults(o.name, { ...results, ...(spin && { spinRows }), ...(target && { targets }) })}`,
  );
}
