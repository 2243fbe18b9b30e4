// The cases of issue 16 (per-batch costs of the drivers, the devices and the thread pool), each
// next to the same run's raw copy of the same bytes:
//   - move_pages(2) of 2 MiB folios at the default batch (512 base pages): cpu-serial,
//     cpu-multithreaded, ptdma 2 channels, sdxi 2 contexts and a mark-only calibration; against the
//     one-thread raw copy and the two-thread raw copy of threads already running (the ceiling);
//   - the same with a busy loop on the other core (a user's job): does waiting for a core cost more
//     than it gives?
//   - compaction of a fragmented zone (every other 64 KiB area unmapped at random): the engine
//     thread's CPU time per migrated page with each migrator, the mark-only floor beside it;
//   - compaction on a busy system: a user thread works on the zone while kcompactd compacts it; its
//     wall-clock throughput, the share of a core its thread got, the engine thread's CPU per page,
//     and the CPU of the emulated devices' threads (which real hardware would not take from the host).
// Several builds (the packages/ folder of a built checkout each) are measured in one process, taking
// turns repetition by repetition, so a change in the machine's load hits them alike. A figure is
// the median over repetitions; ratios are taken per repetition, then their median.
import { readdirSync, readFileSync } from 'node:fs';
import os from 'node:os';
import { Worker } from 'node:worker_threads';
import { markOnlyMigrator, median, parallelRawCopier, printTable, threadCpuSeconds } from './index.mjs';

const MiB = 2 ** 20;
const PAGE = 4096;

/**
 * The packages of one build: `dir` is a packages/ folder whose core, kcompactd and migrators are built.
 * @param {string} label
 * @param {string} dir
 */
export async function loadBuild(label, dir) {
  const load = (p) => import(`${dir}/${p}/dist/index.js`);
  const [core, kcompactd, cpuSerial, cpuMt, ptdma, sdxi] = await Promise.all(
    [
      'core',
      'kcompactd',
      'migrator-cpu-serial',
      'migrator-cpu-multithreaded',
      'migrator-ptdma',
      'migrator-sdxi',
    ].map(load),
  );
  // Drivers that can decline small batches (minBatchPages) get a row that does so: compaction's
  // 32-folio clusters, declined at no cost, are copied on the CPU.
  const declines = (mod) => (mod.optionKeys.includes('minBatchPages') ? (o) => mod.createMigrator(o) : null);
  const ptdmaMin = declines(ptdma);
  const sdxiMin = declines(sdxi);
  return {
    label,
    core,
    kcompactd,
    migrators: {
      'cpu-serial': () => cpuSerial.createMigrator(),
      'cpu-multithreaded': () => cpuMt.createMigrator(),
      'ptdma 2ch': () => ptdma.createMigrator({ channels: 2 }),
      'sdxi 2ctx': () => sdxi.createMigrator({ channels: 2 }),
      'mark-only': () => markOnlyMigrator(),
      ...(ptdmaMin && { 'ptdma 2ch, minBatchPages 64': () => ptdmaMin({ channels: 2, minBatchPages: 64 }) }),
      ...(sdxiMin && { 'sdxi 2ctx, minBatchPages 64': () => sdxiMin({ channels: 2, minBatchPages: 64 }) }),
    },
  };
}

/** CPU seconds of every thread of this process (Linux /proc/self/task/<tid>/schedstat), by tid. */
export function taskCpu() {
  /** @type {Map<number, number>} */
  const out = new Map();
  for (const tid of readdirSync('/proc/self/task')) {
    try {
      out.set(
        Number(tid),
        Number(readFileSync(`/proc/self/task/${tid}/schedstat`, 'latin1').split(' ')[0]) / 1e9,
      );
    } catch {
      // The thread ended meanwhile.
    }
  }
  return out;
}

/** CPU seconds the threads `tids` spent between two taskCpu() snapshots. */
const cpuOf = (a, b, tids) => tids.reduce((s, t) => s + ((b.get(t) ?? a.get(t) ?? 0) - (a.get(t) ?? 0)), 0);

/**
 * A thread that keeps one core busy (a user's job on the other core) until `stop()`.
 * @returns {Promise<{ stop(): Promise<void> }>}
 */
export async function busyLoop() {
  const flag = new Int32Array(new SharedArrayBuffer(4));
  const w = new Worker(
    `const f = new Int32Array(require('node:worker_threads').workerData);
     Atomics.store(f, 0, 1);
     let x = 0; while (Atomics.load(f, 0) === 1) x = (x * 1103515245 + 12345) | 0;`,
    { eval: true, workerData: flag.buffer },
  );
  while (Atomics.load(flag, 0) === 0) await new Promise((r) => setTimeout(r, 1));
  return {
    async stop() {
      Atomics.store(flag, 0, 2);
      await new Promise((r) => w.once('exit', r));
    },
  };
}

/** A region of `bytes` in a new process, filled with a pattern; returns what verifies it. */
function region(m, bytes, thp, seed) {
  const p = m.spawn({ comm: 'bench' });
  const a = p.mmap(bytes, { thp, node: 0 });
  const data = new Uint8Array(bytes);
  const w = new Uint32Array(data.buffer);
  for (let i = 0; i < w.length; i++) w[i] = Math.imul(i + 1, 2654435761 + seed);
  p.write(a, data);
  return { p, a, data, node: 0 };
}

/**
 * move_pages(2) of a region of 2 MiB folios with one migrator, there and back once untimed, then
 * once timed: wall seconds and the engine thread's CPU seconds.
 */
async function movePagesOnce(build, m, r, name, bytes) {
  const mig = build.migrators[name]();
  await m.offload.register(mig, 'all');
  const addrs = [];
  for (let off = 0; off < bytes; off += 2 * MiB) addrs.push(r.a + off);
  let out = null;
  for (let rep = 0; rep < 2; rep++) {
    r.node ^= 1;
    const nodes = new Array(addrs.length).fill(r.node);
    const c0 = threadCpuSeconds();
    const t0 = performance.now();
    const res = await r.p.movePages(0, addrs, nodes, build.core.MPOL_MF_MOVE);
    const seconds = (performance.now() - t0) / 1000;
    const cpu = threadCpuSeconds() - c0;
    if (res.ret !== 0) throw new Error(`${build.label} ${name}: move_pages returned ${res.ret}`);
    if (rep === 1) out = { seconds, cpu, stats: mig.stats?.() };
  }
  await m.offload.unregister(mig);
  if (name !== 'mark-only' && Buffer.compare(r.p.read(r.a, bytes), r.data) !== 0)
    throw new Error(`${build.label} ${name}: bytes differ after move_pages`);
  if (name === 'mark-only') r.p.write(r.a, r.data); // it copied nothing: put the bytes back
  return out;
}

/**
 * move_pages of 2 MiB folios at the default batch, each build and migrator in turn per repetition,
 * with a raw copy on one and on two threads after each repetition. `busy`: a busy loop runs on the
 * other core throughout.
 */
export async function movePagesCase(builds, { bytes, reps, names, busy = false }) {
  const raw = await parallelRawCopier(bytes, 2);
  const setups = [];
  for (const b of builds) {
    const m = await b.core.createMachine({
      nodes: [{ memory: `${(bytes / MiB) * 2 + 64}MiB` }, { memory: `${(bytes / MiB) * 2 + 64}MiB` }],
    });
    setups.push({ b, m, r: region(m, bytes, 'always', 1) });
  }
  const hog = busy ? await busyLoop() : null;
  /** @type {Record<string, Record<string, { seconds: number, cpu: number }[]>>} */
  const runs = Object.fromEntries(
    builds.map((b) => [b.label, Object.fromEntries(names.map((n) => [n, []]))]),
  );
  const raw1 = [];
  const raw2 = [];
  const raw2b = [];
  try {
    for (let rep = 0; rep < reps; rep++) {
      for (const { b, m, r } of rep % 2 ? [...setups].reverse() : setups)
        for (const n of names) runs[b.label][n].push(await movePagesOnce(b, m, r, n, bytes));
      raw1.push(raw.pass(2 * MiB, 1));
      raw2.push(raw.pass(2 * MiB, 2));
      raw2b.push(raw.passBatched(2 * MiB, 2));
    }
  } finally {
    await hog?.stop();
    await raw.close();
    for (const { m } of setups) {
      m.checkInvariants();
      await m.close();
    }
  }
  const rows = [];
  for (const b of builds) {
    const mine = runs[b.label];
    const per = (n, f) => median(mine[n].map((x, i) => f(x, i)));
    for (const n of names) {
      if (n === 'mark-only') continue;
      const copyCpu = (x, i) => Math.max(0, x.cpu - mine['mark-only'][i].cpu);
      rows.push({
        build: b.label,
        migrator: n,
        otherCoreBusy: busy,
        gbps: bytes / per(n, (x) => x.seconds) / 1e9,
        xRaw: per(n, (x, i) => raw1[i] / x.seconds),
        xCeiling: per(n, (x, i) => raw2[i] / x.seconds),
        xBatchCeiling: per(n, (x, i) => raw2b[i] / x.seconds),
        xCpuSerial: per(n, (x, i) => mine['cpu-serial'][i].seconds / x.seconds),
        xCpuMultithreaded: per(n, (x, i) => mine['cpu-multithreaded'][i].seconds / x.seconds),
        engineCpuMsPerGiB: (per(n, (x) => x.cpu) * 1000 * 2 ** 30) / bytes,
        copyCpuVsSerial: per(n, (x, i) => copyCpu(x, i) / Math.max(1e-9, copyCpu(mine['cpu-serial'][i], i))),
        stats: mine[n].at(-1)?.stats,
      });
    }
  }
  return {
    rows,
    raw: {
      gbps1: bytes / median(raw1) / 1e9,
      gbps2: bytes / median(raw2) / 1e9,
      ceiling: median(raw1.map((x, i) => x / raw2[i])),
      gbps2Batched: bytes / median(raw2b) / 1e9,
      batchCeiling: median(raw1.map((x, i) => x / raw2b[i])),
    },
  };
}

/** Fills a zone with 64 KiB areas (one VMA each) and unmaps every other one at random (seeded). */
function fragment(m, seed) {
  const p = m.spawn({ comm: 'fragment', node: 0 });
  const chunk = 16 * PAGE;
  const areas = [];
  const target = m.freePages(0) - 4096;
  for (let c = 0; (c + 1) * 16 <= target; c++) {
    const a = p.mmap(chunk, { node: 0, thp: 'never' });
    p.write(a, new Uint8Array(chunk).fill((c * 7 + 1) & 255));
    areas.push([a, (c * 7 + 1) & 255]);
  }
  // Every area written first, then about half unmapped: the free memory is scattered.
  const kept = [];
  let x = seed;
  for (const area of areas) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    if (x & 0x10000) p.munmap(area[0], chunk);
    else kept.push(area);
  }
  return { p, kept };
}

/** Compacts a freshly fragmented zone with each migrator routed for `compaction`. */
export async function compactionCase(builds, { zone, reps, names, clusterMax }) {
  const setups = [];
  for (const b of builds) {
    const m = await b.core.createMachine({ nodes: [{ memory: zone }] });
    setups.push({
      b,
      m,
      kd: b.kcompactd.attachKcompactd(m, { proactiveness: 0, ...(clusterMax ? { clusterMax } : {}) }),
    });
  }
  const runs = Object.fromEntries(
    builds.map((b) => [b.label, Object.fromEntries(names.map((n) => [n, []]))]),
  );
  try {
    for (let rep = 0; rep < reps + 1; rep++) {
      for (const { b, m, kd } of rep % 2 ? [...setups].reverse() : setups) {
        for (const n of names) {
          if (!b.migrators[n]) continue;
          const mig = b.migrators[n]();
          await m.offload.register(mig, 'compaction');
          const f = fragment(m, rep + 1);
          globalThis.gc?.();
          const { zones } = await kd.compactNode(0);
          const z = zones[0];
          if (n !== 'mark-only') {
            for (const [a, v] of f.kept) {
              const got = f.p.read(a, 16 * PAGE);
              if (got[0] !== v || got[16 * PAGE - 1] !== v)
                throw new Error(`${b.label} ${n}: compaction lost bytes`);
            }
          }
          m.checkInvariants();
          f.p.exit();
          const st = mig.stats?.();
          await m.offload.unregister(mig);
          if (rep > 0)
            runs[b.label][n].push({
              cpuUsPerPage: (z.cpuSeconds / z.pagesMigrated) * 1e6,
              pagesPerSec: z.pagesMigrated / z.wallSeconds,
              pages: z.pagesMigrated,
              copied: z.offload.foliosCopied,
              stats: st,
            });
        }
      }
    }
  } finally {
    for (const { kd, m } of setups) {
      await kd.stop();
      await m.close();
    }
  }
  const rows = [];
  for (const b of builds) {
    const mine = runs[b.label];
    for (const n of names) {
      const xs = mine[n];
      if (!xs.length) continue;
      rows.push({
        build: b.label,
        migrator: n,
        clusterMax,
        cpuUsPerPage: median(xs.map((x) => x.cpuUsPerPage)),
        cpuVsSerial: median(xs.map((x, i) => x.cpuUsPerPage / mine['cpu-serial'][i].cpuUsPerPage)),
        pagesPerSec: median(xs.map((x) => x.pagesPerSec)),
        pages: median(xs.map((x) => x.pages)),
        foliosCopiedByMigrator: median(xs.map((x) => x.copied)),
        stats: xs.at(-1)?.stats,
      });
    }
  }
  return { rows };
}

/**
 * The busy system: a user thread works on a fragmented node while kcompactd compacts it, for each
 * migrator. Per-thread CPU comes from /proc/self/task: the engine thread (this one), the user
 * thread, and the threads the migrator started (its emulated devices or workers).
 */
export async function busySystemCase(builds, { reps, names }) {
  const out = [];
  for (let rep = 0; rep < reps; rep++) {
    for (const b of rep % 2 ? [...builds].reverse() : builds) {
      for (const n of names) {
        if (!b.migrators[n]) continue;
        const m = await b.core.createMachine({ nodes: [{ memory: '128MiB' }] });
        const kd = b.kcompactd.attachKcompactd(m, { proactiveness: 0, clusterMax: 32 });
        try {
          const before = new Set(taskCpu().keys());
          const mig = b.migrators[n]();
          await m.offload.register(mig, 'compaction');
          const mine = [...taskCpu().keys()].filter((t) => !before.has(t));
          const known = new Set([...before, ...mine]);
          let a = null;
          let t0 = 0;
          const off = m.trace.on('mm_compaction_begin', () => {
            if (a) return;
            a = taskCpu();
            t0 = performance.now();
          });
          let z = null;
          let window = 0;
          const offRun = kd.onRun((run) => {
            if (run.trigger !== 'proactive' || z) return;
            z = { b: taskCpu(), run };
            window = (performance.now() - t0) / 1000;
          });
          const r = await b.kcompactd.runBusyScenario(m, kd, { threads: 1, baselineMs: 200 });
          off();
          offRun();
          if (!a || !z) throw new Error(`${b.label} ${n}: the compaction pass was not seen`);
          const user = [...z.b.keys()].filter(
            (t) => !known.has(t) && (z.b.get(t) ?? 0) - (a.get(t) ?? 0) > 0,
          );
          const c = r.compaction;
          out.push({
            build: b.label,
            migrator: n,
            workloadRatio: r.ratio,
            userThreadCpuShare: cpuOf(a, z.b, user) / window,
            engineCpuUsPerPage: (c.cpuSeconds / c.pagesMigrated) * 1e6,
            engineThreadCpuShare: cpuOf(a, z.b, [process.pid]) / window,
            emulatedHardwareCpuMs: cpuOf(a, z.b, mine) * 1000,
            emulatedHardwareCpuUsPerPage: (cpuOf(a, z.b, mine) / c.pagesMigrated) * 1e6,
            pagesMigrated: c.pagesMigrated,
            windowMs: window * 1000,
          });
          await m.offload.unregister(mig);
        } finally {
          await kd.stop();
          await m.close();
        }
      }
    }
  }
  const rows = [];
  for (const b of builds) {
    for (const n of names) {
      const xs = out.filter((x) => x.build === b.label && x.migrator === n);
      if (!xs.length) continue;
      const med = (k) => median(xs.map((x) => x[k]));
      rows.push({
        build: b.label,
        migrator: n,
        workloadRatio: med('workloadRatio'),
        userThreadCpuShare: med('userThreadCpuShare'),
        engineCpuUsPerPage: med('engineCpuUsPerPage'),
        engineThreadCpuShare: med('engineThreadCpuShare'),
        emulatedHardwareCpuUsPerPage: med('emulatedHardwareCpuUsPerPage'),
        pagesMigrated: med('pagesMigrated'),
        windowMs: med('windowMs'),
      });
    }
  }
  return { rows };
}

/** Load average and the machine's busy share over `ms` (from /proc/stat), for the results. */
export async function machineLoad(ms = 500) {
  const read = () => {
    const f = readFileSync('/proc/stat', 'latin1').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
    return { idle: f[3] + f[4], total: f.reduce((x, y) => x + y, 0) };
  };
  const a = read();
  await new Promise((r) => setTimeout(r, ms));
  const b = read();
  return { loadAverage: os.loadavg(), busy: 1 - (b.idle - a.idle) / (b.total - a.total) };
}

export const fmt = {
  x: (v) => (v === undefined || Number.isNaN(v) ? '' : v.toFixed(2)),
  pct: (v) => `${(v * 100).toFixed(0)}%`,
};

export { printTable };
