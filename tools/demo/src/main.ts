/**
 * The main job: build a two-node machine, fill 256 MiB of a process's memory with a verifiable
 * pattern, migrate it node 0 → node 1 for 4 KiB, 64 KiB and 2 MiB folios with the kernel's own
 * CPU copy and with every installed migrator, verify every byte and the model's invariants, and
 * report throughput and the phase breakdown next to this machine's raw copy of the same bytes.
 *
 * It runs twice: at the kernel's default batch (NR_MAX_BATCHED_MIGRATION = 512 base pages) and,
 * for the migrators that take the copy off the CPU, at the batch the series raised it to for its
 * numbers (HPAGE_PUD_NR = 262144). Every run also carries what the timing model predicts for the
 * same migration on the series' hardware (profile zen3-epyc-ptdma): modeled, never measured.
 */

import os from 'node:os';
import { createMachine, type Machine, type MigrationResult, type Migrator, PAGE_SIZE } from '@pagemig/core';
import { loadProfile, modeledRunTime, zen3Published } from '@pagemig/core/timing';
import { createRegistry } from '@pagemig/registry';
import { formatBytes, median, printTable, rawCopier, writeResults } from '@pagemig-tools/bench';

const REGION = 256 << 20;
/** Room for the region, its page tables and the watermarks; smaller nodes keep the invariant checks quick. */
const NODE = '512MiB';
const WARMUP = 32 << 20;
const FOLIOS = [
  { label: '4KiB', thp: 'never', bytes: 4 << 10 },
  { label: '64KiB', thp: '64KiB', bytes: 64 << 10 },
  { label: '2MiB', thp: 'always', bytes: 2 << 20 },
] as const;
/** NR_MAX_BATCHED_MIGRATION: HPAGE_PMD_NR by default; the series' test patch raised it to HPAGE_PUD_NR. */
const DEFAULT_BATCH = 512;
const SERIES_BATCH = 262144;
const PROFILE = 'zen3-epyc-ptdma';
const profile = loadProfile(PROFILE);

/**
 * A pattern no two runs share, so a copy that never happened cannot pass on stale frames: one
 * xorshift stream, XORed per run with a different odd key (every word of every run differs).
 */
const base = (() => {
  const words = new Uint32Array(REGION / 4);
  let x = 0x2545f491;
  for (let i = 0; i < words.length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    words[i] = x >>> 0;
  }
  return words;
})();
const scratch = new Uint32Array(REGION / 4);
function pattern(seed: number, bytes: number): Uint8Array {
  const key = (Math.imul(seed, 0x9e3779b1) | 1) >>> 0;
  const n = bytes / 4;
  for (let i = 0; i < n; i++) scratch[i] = base[i]! ^ key;
  return new Uint8Array(scratch.buffer, 0, bytes);
}

/**
 * Every byte of the process's memory at `a` against `data`, read back through its page tables in
 * 256 KiB pieces: one 256 MiB read would fault in a fresh buffer each run, seconds on a busy host.
 */
function sameBytes(p: ReturnType<Machine['spawn']>, a: number, data: Uint8Array): boolean {
  const piece = 256 << 10;
  for (let off = 0; off < data.length; off += piece) {
    const n = Math.min(piece, data.length - off);
    if (Buffer.compare(p.read(a + off, n), data.subarray(off, off + n)) !== 0) return false;
  }
  return true;
}

interface Row {
  migrator: string;
  batchPages: number;
  folio: string;
  gbps: number;
  pagesPerSec: number;
  rawGbps: number;
  ratio: number;
  phases: MigrationResult['phases'];
  wallSeconds: number;
  cpuSeconds: number;
  verified: boolean;
  offloadedFolios: number;
  /** The timing model's GB/s for the same migration on the series' machine (null: it has no such engine). */
  modeledGbps: number | null;
}

interface Candidate {
  name: string;
  id: string | null;
  migrator: Migrator | null;
}

/** Whether the profile can model a migrator (core's modeled clock refuses a DMA engine the profile lacks). */
function modelable(migrator: Migrator | null): boolean {
  const provider = (migrator?.capabilities.dmaengine as { provider?: string } | undefined)?.provider;
  return provider === undefined || profile.dma[provider] !== undefined;
}

async function runOne(
  m: Machine,
  c: Candidate,
  folio: (typeof FOLIOS)[number],
  seed: number,
  raw: ReturnType<typeof rawCopier> | null,
  batchPages: number,
  bytes = REGION,
): Promise<Row> {
  const p = m.spawn({ comm: 'demo' });
  const a = p.mmap(bytes, { thp: folio.thp, node: 0 });
  const data = pattern(seed, bytes);
  p.write(a, data);
  const pfns: number[] = [];
  for (let off = 0; off < bytes; off += folio.bytes) pfns.push(p.pageInfo(a + off)!.headPfn);
  const model = raw !== null && modelable(c.migrator);
  const r = await m.migrateFolios(pfns, {
    node: 1,
    mode: 'MIGRATE_SYNC',
    reason: 'syscall_or_cpuset',
    ...(model ? { clock: 'modeled', profile: PROFILE } : {}),
  });
  const onTarget = p.pageInfo(a)!.node === 1 && p.pageInfo(a + bytes - PAGE_SIZE)!.node === 1;
  const verified = r.ret === 0 && onTarget && sameBytes(p, a, data);
  m.checkInvariants();
  p.exit();
  if (!verified) throw new Error(`${c.name} ${folio.label}: migration did not verify (ret ${r.ret})`);
  // The raw copy of the same bytes in folio-sized pieces, on buffers faulted in once: median of 3.
  const rawSeconds = raw ? median([0, 1, 2].map(() => raw.pass(folio.bytes))) : Number.NaN;
  const gbps = bytes / r.wallSeconds / 1e9;
  const rawGbps = bytes / rawSeconds / 1e9;
  return {
    migrator: c.name,
    batchPages,
    folio: folio.label,
    gbps,
    pagesPerSec: bytes / PAGE_SIZE / r.wallSeconds,
    rawGbps,
    ratio: gbps / rawGbps,
    phases: r.phases,
    wallSeconds: r.wallSeconds,
    cpuSeconds: r.cpuSeconds,
    verified,
    offloadedFolios: r.offload.foliosCopied,
    modeledGbps: r.modeled ? r.modeled.GBps : null,
  };
}

/** Every candidate on a machine with `batchPages`; one untimed pass first warms the JIT. */
async function runAll(
  batchPages: number,
  ids: readonly (string | null)[],
  registry: ReturnType<typeof createRegistry>,
  raw: ReturnType<typeof rawCopier>,
  seed: { next: number },
  warmRuns: number,
): Promise<Row[]> {
  const m = await createMachine({
    nodes: [{ memory: NODE }, { memory: NODE }],
    migrationBatchPages: batchPages,
  });
  const rows: Row[] = [];
  try {
    // The engine's per-folio path takes a few full-size 4 KiB runs (65536 folios) to reach its
    // steady speed: `warmRuns` untimed, verified ones before any measured run.
    const kernel = { name: 'kernel (no migrator)', id: null, migrator: null };
    for (let i = 0; i < warmRuns; i++) await runOne(m, kernel, FOLIOS[0], seed.next++, null, batchPages);
    for (const id of ids) {
      const migrator = id === null ? null : await registry.load(id);
      const c = { name: id ?? 'kernel (no migrator)', id, migrator };
      if (migrator) await m.offload.register(migrator, 'all');
      for (const folio of FOLIOS) await runOne(m, c, folio, seed.next++, null, batchPages, WARMUP);
      for (const folio of FOLIOS) rows.push(await runOne(m, c, folio, seed.next++, raw, batchPages));
      if (migrator) await m.offload.unregister(migrator);
    }
  } finally {
    await m.close();
  }
  return rows;
}

const x = (v: number) => `${v.toFixed(2)}x`;
async function main(): Promise<void> {
  const t0 = performance.now();
  // Drivers resolve from the demo package, whose dependencies list every first-party migrator.
  const registry = createRegistry({ root: new URL('..', import.meta.url) });
  const installed = (await registry.list()).filter((d) => d.installed);
  for (const d of installed) if (!d.capabilities) throw new Error(d.error ?? `${d.id}: no capabilities`);
  const cores = os.availableParallelism();
  console.log(
    `machine: 2 nodes x ${NODE}; migrators installed: ${installed.map((d) => d.id).join(', ') || 'none'}; this host: ${cores} cores`,
  );
  const offloaders = installed.filter((d) => d.capabilities!.offloadsCpu).map((d) => d.id);
  const raw = rawCopier(REGION);
  const seed = { next: 1 };
  const rows = [
    ...(await runAll(DEFAULT_BATCH, [null, ...installed.map((d) => d.id)], registry, raw, seed, 2)),
    ...(await runAll(SERIES_BATCH, offloaders, registry, raw, seed, 0)),
  ];

  // "x kernel": against the kernel's own copy of the same folios at the default batch (the series'
  // baseline). Measured: this row's x raw over the kernel row's, so a load change on the shared
  // host between the two runs cancels in part (the raw copy is timed right after each run).
  // Modeled: modeled GB/s over the kernel's modeled GB/s.
  const kernel = (folio: string) =>
    rows.find((r) => r.batchPages === DEFAULT_BATCH && r.folio === folio && r.migrator.startsWith('kernel'))!;
  const xk = (r: Row) => r.ratio / kernel(r.folio).ratio;
  const xkModeled = (r: Row) =>
    r.modeledGbps !== null && kernel(r.folio).modeledGbps !== null
      ? r.modeledGbps / kernel(r.folio).modeledGbps!
      : null;

  const pct = (r: Row, s: number) => `${((100 * s) / r.wallSeconds).toFixed(0)}%`;
  printTable(
    `MEASURED on this machine: ${formatBytes(REGION)} node 0 → node 1 (MIGRATE_SYNC, syscall_or_cpuset), every byte verified`,
    [
      'migrator',
      'batch',
      'folio',
      'GB/s',
      'base pages/s',
      'raw copy GB/s',
      'x raw',
      'x kernel',
      'unmap',
      'flush',
      'batch copy',
      'cpu copy',
      'move',
      'engine CPU ms',
    ],
    rows.map((r) => [
      r.migrator,
      r.batchPages,
      r.folio,
      r.gbps.toFixed(2),
      `${(r.pagesPerSec / 1e6).toFixed(2)}M`,
      r.rawGbps.toFixed(2),
      r.ratio.toFixed(2),
      x(xk(r)),
      pct(r, r.phases.unmap),
      pct(r, r.phases.flush),
      pct(r, r.phases.batchCopy),
      pct(r, r.phases.fallbackCopy),
      pct(r, r.phases.move),
      (r.cpuSeconds * 1000).toFixed(0),
    ]),
  );
  const dma = installed.filter((d) => d.capabilities!.dmaengine).map((d) => d.id);
  const slower = (batch: number) => {
    const rs = rows.filter((r) => dma.includes(r.migrator) && r.batchPages === batch);
    const fast = rs.filter((r) => xk(r) >= 1).map((r) => `${r.migrator} ${r.folio}`);
    return fast.length ? `slower except ${fast.join(', ')}` : 'slower at every folio size';
  };
  console.log(
    `batch 512 = NR_MAX_BATCHED_MIGRATION, the kernel's default (HPAGE_PMD_NR: one 2 MiB folio per batch); 262144 = HPAGE_PUD_NR,\n` +
      `the series' test patch for its numbers. x kernel = x raw / the kernel row's x raw (same folio, batch 512).\n` +
      `Here the DMA engines are emulations on this host's ${cores} cores (ptdma: a worker thread per channel; sdxi: one), and each batch\n` +
      `pays a doorbell, a thread wake-up and a completion. DMA against the kernel copy, measured here:\n` +
      `  batch ${DEFAULT_BATCH}: ${slower(DEFAULT_BATCH)}\n  batch ${SERIES_BATCH}: ${slower(SERIES_BATCH)}`,
  );
  if (!dma.length) console.log('no DMA migrator is installed: pnpm add @pagemig/migrator-ptdma');

  console.log('');
  printTable(
    `MODELED, not measured: the same migrations on the series' 2-socket Zen 3 EPYC with PTDMA (timing model, profile ${PROFILE})`,
    ['migrator', 'batch', 'folio', 'here GB/s', 'here x kernel', 'modeled GB/s', 'modeled x kernel'],
    rows.map((r) => {
      const mk = xkModeled(r);
      return [
        r.migrator,
        r.batchPages,
        r.folio,
        r.gbps.toFixed(2),
        x(xk(r)),
        r.modeledGbps === null ? `no ${r.migrator} engine in the profile` : r.modeledGbps.toFixed(2),
        mk === null ? '-' : x(mk),
      ];
    }),
  );

  // The story in numbers: each DMA migrator against the kernel copy per folio size, here and modeled.
  const folios = FOLIOS.map((f) => f.label).join('/');
  for (const id of dma)
    for (const batch of [DEFAULT_BATCH, SERIES_BATCH]) {
      const rs = rows.filter((r) => r.migrator === id && r.batchPages === batch);
      const modeled = rs.map(xkModeled);
      console.log(
        `${id}, batch ${batch}, ${folios}: here ${rs.map((r) => x(xk(r))).join('/')} the kernel copy` +
          (modeled.every((v) => v !== null)
            ? `; modeled on the series' machine ${modeled.map((v) => x(v!)).join('/')}`
            : `; not modeled (profile ${PROFILE} has no ${id} engine)`),
      );
    }
  // The series' headline, from the model and from the published table (RFC V3, 1 GiB of 2 MiB folios).
  const thp = 2 << 20;
  const modeled = (copier: Parameters<typeof modeledRunTime>[1]['copier'], batchPages: number) =>
    modeledRunTime(profile, {
      folios: [{ pages: thp / PAGE_SIZE, count: 512, pmdMapped: true }],
      batchPages,
      from: 0,
      to: 1,
      copier,
    }).GBps;
  const m16 = modeled({ kind: 'dma', engine: 'ptdma', channels: 16 }, SERIES_BATCH);
  const m0 = modeled({ kind: 'kernel' }, DEFAULT_BATCH);
  const pub = (table: string, row: string) =>
    zen3Published.find((c) => c.table === table && c.row === row && c.column === '2M')!.GBps;
  const [p16, p0] = [pub('7.4c', '16'), pub('7.4a', 'baseline')];
  console.log(
    `the series' headline, 1 GiB of 2MiB folios on 16 PTDMA channels at batch ${SERIES_BATCH}: modeled ${m16.toFixed(1)} GB/s = ${x(m16 / m0)}\n` +
      `the kernel copy; published ${p16.toFixed(2)} GB/s = ${x(p16 / p0)} (RFC V3). Modeled numbers are predictions, not measurements.`,
  );

  const file = writeResults('demo', {
    region: REGION,
    cores,
    profile: PROFILE,
    rows,
    headline: { modeledGBps: m16, modeledKernelGBps: m0, publishedGBps: p16, publishedKernelGBps: p0 },
  });
  console.log(
    `every byte and the invariants verified in ${rows.length} runs; results: ${file}; ${((performance.now() - t0) / 1000).toFixed(1)} s`,
  );
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
