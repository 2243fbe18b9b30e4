// Engine throughput with cpu-multithreaded (issue 4's benchmark): 256 MiB migrated between two
// nodes for 4 KiB .. 2 MiB folios, at the engine's default batch (512 base pages) and at a large
// batch (HPAGE_PUD_NR = 262144 base pages, as the series' own test patch did), with cpu-serial (and
// a second cpu-serial as a control for the noise), cpu-multithreaded at 1..cores threads, and the
// caller plus one worker (`callerCopies`), all in the same run.
//
// Every migrator stays initialised for the whole run: each one is routed its own migrate reason,
// and the repetitions interleave the migrators in an order rotated every time, so a noisy
// neighbour on this shared machine hits them all alike; each case first waits for the machine to
// be idle. "x cpu-serial" is the median of the per-repetition ratios (wall time of the whole
// migration, and of the batch-copy phase alone); "x raw copy" compares with the raw copy of the
// same bytes in the same pieces (TypedArray.set on one thread) timed in the same repetition. The
// row "raw copy, N threads (ceiling)" is that raw copy cut into N contiguous runs copied at once by
// N threads already running: its "x raw copy" is the most a parallel copy can gain on this
// machine's memory, wake-ups excluded. Bytes and the model's invariants are verified after each
// case.
//
//   node bench/run.mjs
//   PAGEMIG_BENCH_REPS=15 PAGEMIG_BENCH_BATCHES=512,262144 PAGEMIG_BENCH_FOLIOS=4KiB,2MiB \
//     PAGEMIG_BENCH_EXTRA='{"threads":1,"callerCopies":true}' node bench/run.mjs

import { readFileSync } from 'node:fs';
import os from 'node:os';
import { createMachine } from '@pagemig/core';
import { createMigrator as createSerial } from '@pagemig/migrator-cpu-serial';
import { median, parallelRawCopier, printTable, writeResults } from '@pagemig-tools/bench';
import { createMigrator } from '../dist/index.js';

const REGION = 256 << 20;
const REPS = Number(process.env.PAGEMIG_BENCH_REPS ?? 11);
const CORES = os.availableParallelism();
const BATCHES = (process.env.PAGEMIG_BENCH_BATCHES ?? '512,262144').split(',').map(Number);
const ALL_FOLIOS = [
  { folio: '4KiB', thp: 'never', bytes: 4 << 10 },
  { folio: '16KiB', thp: '16KiB', bytes: 16 << 10 },
  { folio: '64KiB', thp: '64KiB', bytes: 64 << 10 },
  { folio: '256KiB', thp: '256KiB', bytes: 256 << 10 },
  { folio: '1MiB', thp: '1MiB', bytes: 1 << 20 },
  { folio: '2MiB', thp: 'always', bytes: 2 << 20 },
];
const wanted = process.env.PAGEMIG_BENCH_FOLIOS?.split(',');
const FOLIOS = wanted ? ALL_FOLIOS.filter((c) => wanted.includes(c.folio)) : ALL_FOLIOS;
/** Extra cpu-multithreaded configurations (default: the caller plus one worker); '' for none. */
const EXTRA_TEXT = process.env.PAGEMIG_BENCH_EXTRA ?? '{"threads":1,"callerCopies":true}';
const EXTRA = EXTRA_TEXT ? JSON.parse(`[${EXTRA_TEXT}]`) : [];

// One migrate reason per migrator (the engine treats these alike apart from their vmstat counters).
const REASONS = [
  'syscall_or_cpuset',
  'compaction',
  'mempolicy_mbind',
  'memory_hotplug',
  'contig_range',
  'damon',
];

/** CPU busy fraction of the whole machine over `ms` (from /proc/stat); null where unavailable. */
async function busyFraction(ms) {
  const read = () => {
    try {
      const f = readFileSync('/proc/stat', 'latin1').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
      return { idle: f[3] + f[4], total: f.reduce((a, b) => a + b, 0) };
    } catch {
      return null;
    }
  };
  const a = read();
  await new Promise((r) => setTimeout(r, ms));
  const b = read();
  if (!a || !b || b.total === a.total) return null;
  return 1 - (b.idle - a.idle) / (b.total - a.total);
}

/**
 * This machine is shared: before each case, wait (up to PAGEMIG_BENCH_QUIET_WAIT seconds, default
 * 120) until other processes leave the CPUs idle (< 20% busy over half a second). Returns what was
 * seen last, so the JSON says how quiet the machine was.
 */
async function waitForQuiet() {
  const deadline = Date.now() + Number(process.env.PAGEMIG_BENCH_QUIET_WAIT ?? 120) * 1000;
  let busy = await busyFraction(500);
  while (busy !== null && busy > 0.2 && Date.now() < deadline) busy = await busyFraction(500);
  return busy;
}

function candidates() {
  // The control is a second cpu-serial: its "x cpu-serial" shows this run's noise floor.
  const list = [
    { label: 'cpu-serial', make: () => createSerial() },
    { label: 'cpu-serial (control)', make: () => createSerial() },
  ];
  for (let t = 1; t <= CORES; t++)
    list.push({ label: `cpu-multithreaded t=${t}`, threads: t, make: () => createMigrator({ threads: t }) });
  for (const opts of EXTRA) {
    list.push({
      label: `cpu-multithreaded ${JSON.stringify(opts).replace(/["{}]/g, '').replace(/:/g, '=')}`,
      threads: opts.threads,
      make: () => createMigrator(opts),
    });
  }
  if (list.length > REASONS.length) throw new Error(`at most ${REASONS.length} migrators per run`);
  return list;
}

const load0 = os.loadavg()[0];
const rows = [];
// The same run's raw copies of the same bytes in the same pieces, on one thread and on every core
// at once (threads already running: no wake-up). Their ratio is what the memory of this machine
// allows a parallel copy at best, timed in every repetition beside the migrations.
const raw = await parallelRawCopier(REGION, CORES);

for (const batchPages of BATCHES) {
  const m = await createMachine({
    nodes: [{ memory: '1GiB' }, { memory: '1GiB' }],
    migrationBatchPages: batchPages,
  });
  const migs = candidates();
  for (let i = 0; i < migs.length; i++) {
    // The host keys migrators by name: each configuration gets its own (the methods close over
    // their state, so a renamed copy is the same migrator).
    migs[i].migrator = { ...migs[i].make(), name: migs[i].label.replace(/[ =:,]+/g, '-') };
    migs[i].reason = REASONS[i];
    await m.offload.route(REASONS[i], migs[i].migrator);
  }
  for (const c of FOLIOS) {
    const busyBefore = await waitForQuiet();
    const p = m.spawn({ comm: 'bench' });
    const a = p.mmap(REGION, { thp: c.thp, node: 0 });
    const data = new Uint8Array(REGION);
    const words = new Uint32Array(data.buffer);
    for (let i = 0; i < words.length; i++) words[i] = Math.imul(i + 1, 2654435761 + c.bytes);
    p.write(a, data);
    const secs = migs.map(() => []);
    const cpu = migs.map(() => []);
    const copy = migs.map(() => []);
    const before = migs.map((x) => x.migrator.stats?.());
    const raw1 = [];
    const rawN = [];
    let node = 0;
    // Repetition 0 warms the JIT (engine and workers) and is not counted.
    for (let rep = 0; rep <= REPS; rep++) {
      // Rotate the order every repetition, so no migrator always follows the same one or always
      // migrates in the same direction.
      for (let jj = 0; jj < migs.length; jj++) {
        const j = (jj + rep) % migs.length;
        const pfns = [];
        for (let off = 0; off < REGION; off += c.bytes) pfns.push(p.pageInfo(a + off).headPfn);
        node ^= 1;
        // No forced gc() here: V8 finishes sweeping a forced full GC lazily on this thread, which
        // put up to 10 ms of main-thread work into every few migrations (seen as 19 vs 30 ms).
        const r = await m.migrateFolios(pfns, { node, mode: 'MIGRATE_SYNC', reason: migs[j].reason });
        if (r.ret !== 0) throw new Error(`${migs[j].label}: migration failed: ret ${r.ret}`);
        if (r.offload.foliosCopied !== pfns.length)
          throw new Error(`${migs[j].label}: copied ${r.offload.foliosCopied} of ${pfns.length} folios`);
        if (rep > 0) {
          secs[j].push(r.wallSeconds);
          cpu[j].push(r.cpuSeconds);
          copy[j].push(r.phases.batchCopy);
        }
      }
      if (rep > 0) {
        raw1.push(raw.pass(c.bytes, 1));
        rawN.push(raw.pass(c.bytes, CORES));
      }
    }
    if (Buffer.compare(p.read(a, REGION), data) !== 0) throw new Error('bytes differ after migration');
    m.checkInvariants();
    p.exit();
    const rawSeconds = median(raw1);
    for (let j = 0; j < migs.length; j++) {
      const s = median(secs[j]);
      const vsSerial = median(secs[j].map((x, i) => secs[0][i] / x));
      const copyVsSerial = median(copy[j].map((x, i) => copy[0][i] / x));
      const st = migs[j].migrator.stats?.();
      const b = before[j];
      rows.push({
        migrator: migs[j].label,
        threads: migs[j].threads ?? 1,
        batchPages,
        folio: c.folio,
        seconds: s,
        gbps: REGION / s / 1e9,
        basePagesPerSec: REGION / 4096 / s,
        rawGbps: REGION / rawSeconds / 1e9,
        ratioToRawCopy: median(secs[j].map((x, i) => raw1[i] / x)),
        ratioToCpuSerial: vsSerial,
        copyPhaseSeconds: median(copy[j]),
        copyPhaseRatioToCpuSerial: copyVsSerial,
        engineCpuSeconds: median(cpu[j]),
        ...(st?.pooledBatches !== undefined
          ? {
              pooledBatches: st.pooledBatches - b.pooledBatches,
              inlineBatches: st.inlineBatches - b.inlineBatches,
            }
          : {}),
        reps: REPS,
        machineBusyBefore: busyBefore,
        samples: secs[j],
      });
    }
    // The ceiling row: "x raw copy" is the CORES-thread raw copy against the one-thread one.
    rows.push({
      migrator: `raw copy, ${CORES} threads (ceiling)`,
      threads: CORES,
      batchPages,
      folio: c.folio,
      seconds: median(rawN),
      gbps: REGION / median(rawN) / 1e9,
      rawGbps: REGION / rawSeconds / 1e9,
      ratioToRawCopy: median(rawN.map((x, i) => raw1[i] / x)),
      reps: REPS,
      samples: rawN,
      rawSamples: raw1,
    });
  }
  await m.close();
}
await raw.close();

printTable(
  `Engine throughput, ${REGION >> 20} MiB node 0 <-> node 1, MIGRATE_SYNC, median of ${REPS} (${CORES} cores, load average ${load0.toFixed(2)} -> ${os.loadavg()[0].toFixed(2)})`,
  [
    'batch',
    'folio',
    'migrator',
    { header: 'GB/s', align: 'right' },
    { header: 'x raw copy', align: 'right' },
    { header: 'x cpu-serial', align: 'right' },
    { header: 'copy phase x cpu-serial', align: 'right' },
    { header: 'engine CPU ms', align: 'right' },
    { header: 'pooled/inline', align: 'right' },
  ],
  rows.map((r) => [
    r.batchPages,
    r.folio,
    r.migrator,
    r.gbps.toFixed(2),
    r.ratioToRawCopy.toFixed(2),
    r.ratioToCpuSerial?.toFixed(2) ?? '',
    r.copyPhaseRatioToCpuSerial?.toFixed(2) ?? '',
    r.engineCpuSeconds === undefined ? '' : (r.engineCpuSeconds * 1000).toFixed(1),
    r.pooledBatches === undefined ? '' : `${r.pooledBatches}/${r.inlineBatches}`,
  ]),
);
console.log(
  `results: ${writeResults('engine-cpu-multithreaded', {
    region: REGION,
    cores: CORES,
    batches: BATCHES,
    loadAverage: [load0, os.loadavg()[0]],
    rows,
  })}`,
);
