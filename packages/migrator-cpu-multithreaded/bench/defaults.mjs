// Measures where cpu-multithreaded's defaults come from: the time of one copyBatch call, outside
// the engine, for batches of 256 KiB .. 64 MiB (2 MiB folios, and 4 KiB folios), copied
//   inline            on the calling thread (what a batch below `inlineBelow` gets; cpu-serial's loop)
//   pool, 1 share     by one worker (what a batch below 2 x `minChunk` gets)
//   pool, 2 shares    by two workers, half each
//   caller + worker   the calling thread copies one half, a worker the other (`callerCopies`)
// Configurations are interleaved within every repetition; the table shows medians and each
// configuration's median ratio to inline. `inlineBelow` should sit where the pool starts to win,
// `minChunk` where two shares start to beat one.
//
//   node --expose-gc bench/defaults.mjs            (PAGEMIG_BENCH_REPS=31 by default)

import os from 'node:os';
import { createMachine, MigrateMode, MigrateReason, MigrationBatch } from '@pagemig/core';
import { median, printTable, writeResults } from '@pagemig-tools/bench';
import { createMigrator } from '../dist/index.js';

const REPS = Number(process.env.PAGEMIG_BENCH_REPS ?? 31);
const SIZES = (process.env.PAGEMIG_BENCH_SIZES ?? '0.25,0.5,1,2,4,8,16,32,64,128,256')
  .split(',')
  .map((mib) => Number(mib) * 2 ** 20);
const FOLIOS = [
  { folio: '2MiB', pages: 512 },
  { folio: '4KiB', pages: 1 },
];

const m = await createMachine({ nodes: [{ memory: '512MiB' }, { memory: '512MiB' }] });
const k = m.kernel;
const dstBase = m.nodes[1].startPfn;
const ctx = {
  sections: k.mem.sections,
  sectionPfnShift: k.mem.pagesPerSectionShift,
  pageSize: 4096,
  nrPages: k.nrPages,
  logger: { info() {}, warn() {}, error() {} },
  count() {},
  host: { coreVersion: '0.1.0', apiVersion: 'pagemig.migrator/v1' },
};
const configs = [
  { label: 'inline', mig: createMigrator({ threads: 1, inlineBelow: 2 ** 40 }) },
  { label: 'pool, 1 share', mig: createMigrator({ threads: 1, inlineBelow: 0, minChunk: 4096 }) },
  { label: 'pool, 2 shares', mig: createMigrator({ threads: 2, inlineBelow: 0, minChunk: 4096 }) },
  {
    label: 'caller + worker',
    mig: createMigrator({ threads: 1, callerCopies: true, inlineBelow: 0, minChunk: 4096 }),
  },
];
for (const c of configs) await c.mig.init(ctx);

const signal = new AbortController().signal;
const rows = [];
const load0 = os.loadavg()[0];
for (const f of FOLIOS) {
  for (const bytes of SIZES) {
    if (bytes < f.pages * 4096) continue;
    const nrows = bytes / 4096 / f.pages;
    const table = new Int32Array(new SharedArrayBuffer(nrows * 16));
    // Spread the batch over node 0 and copy it to node 1, moving the window every repetition.
    const span = (m.nodes[0].memory >> 12) - bytes / 4096;
    const fillTable = (rep) => {
      const base = ((rep * 7919 * 512) % Math.max(1, span)) & ~511;
      for (let i = 0; i < nrows; i++)
        table.set([base + i * f.pages, dstBase + base + i * f.pages, f.pages, 0], i * 4);
    };
    const t = configs.map(() => []);
    for (let rep = -2; rep < REPS; rep++) {
      for (let j = 0; j < configs.length; j++) {
        fillTable(rep + 2);
        const batch = new MigrationBatch(table, nrows, MigrateReason.MR_SYSCALL, MigrateMode.MIGRATE_SYNC);
        const t0 = performance.now();
        await configs[j].mig.copyBatch(batch, { signal });
        const dt = performance.now() - t0;
        for (let i = 0; i < nrows; i++)
          if (!batch.isCopied(i)) throw new Error(`${configs[j].label}: row ${i}`);
        if (rep >= 0) t[j].push(dt);
      }
    }
    for (let j = 0; j < configs.length; j++) {
      rows.push({
        folio: f.folio,
        batchBytes: bytes,
        config: configs[j].label,
        microseconds: median(t[j]) * 1000,
        gbps: bytes / median(t[j]) / 1e6,
        ratioToInline: median(t[j].map((x, i) => t[0][i] / x)),
        reps: REPS,
      });
    }
  }
}
for (const c of configs) await c.mig.dispose();
await m.close();

printTable(
  `copyBatch time by batch size, median of ${REPS} (load average ${load0.toFixed(2)} -> ${os.loadavg()[0].toFixed(2)})`,
  [
    'folio',
    { header: 'batch', align: 'right' },
    'copied by',
    { header: 'us', align: 'right' },
    { header: 'GB/s', align: 'right' },
    { header: 'x inline', align: 'right' },
  ],
  rows.map((r) => [
    r.folio,
    `${r.batchBytes >= 1 << 20 ? `${r.batchBytes >> 20} MiB` : `${r.batchBytes >> 10} KiB`}`,
    r.config,
    r.microseconds.toFixed(0),
    r.gbps.toFixed(2),
    r.ratioToInline.toFixed(2),
  ]),
);
// The crossovers: the smallest batch from which the pool (two shares) is at least as fast as inline
// at every larger size measured, and from which two shares beat one.
const from = (folio, better) => {
  const sizes = [...new Set(rows.filter((r) => r.folio === folio).map((r) => r.batchBytes))];
  let at = null;
  for (const size of sizes.reverse()) {
    const r = (config) => rows.find((x) => x.folio === folio && x.batchBytes === size && x.config === config);
    if (!better(r)) break;
    at = size;
  }
  return at === null ? 'never (in the sizes measured)' : `${at / 2 ** 20} MiB`;
};
const crossovers = {};
for (const f of FOLIOS) {
  crossovers[f.folio] = {
    poolBeatsInlineFrom: from(f.folio, (r) => r('pool, 2 shares').ratioToInline >= 1),
    twoSharesBeatOneFrom: from(
      f.folio,
      (r) => r('pool, 2 shares').microseconds < r('pool, 1 share').microseconds,
    ),
  };
  console.log(
    `${f.folio} folios: 2 shares >= inline from ${crossovers[f.folio].poolBeatsInlineFrom}; 2 shares < 1 share from ${crossovers[f.folio].twoSharesBeatOneFrom}`,
  );
}
console.log(
  `results: ${writeResults('cpu-multithreaded-defaults', { rows, crossovers, loadAverage: [load0, os.loadavg()[0]] })}`,
);
