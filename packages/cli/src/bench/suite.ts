import { environment } from '@pagemig-tools/bench';
import type { Drivers } from '../drivers.js';
import { busyCompaction } from './compaction.js';
import { capTotal, type Preset, SERIES_FOLIO_COUNTS, THP } from './presets.js';
import { BENCH_SCHEMA_VERSION, type BenchDocument } from './schema.js';
import { copyShare, folioSweep, type SweepContext, sizeSweep } from './sweeps.js';
import { sweepVariants } from './variants.js';

export const EXPERIMENTS = ['folio', 'size', 'share', 'compaction'] as const;
export type Experiment = (typeof EXPERIMENTS)[number];

export interface SuiteOptions {
  preset: Preset;
  /** Requested cap on one run's bytes (before the free-RAM check). */
  maxTotal: number;
  reps: number;
  batchPages: number;
  only: readonly Experiment[];
  /** Free RAM to plan with (os.freemem() unless a test pins it). */
  freeBytes?: number;
}

/** Progress steps the suite will report, for the bar's total. */
export function suiteSteps(
  o: SuiteOptions,
  variants: number,
  lane1: number,
  sizePoints: number,
  sharePoints: number,
): number {
  let n = 0;
  if (o.only.includes('folio')) n += variants * o.preset.folioSizes.length;
  if (o.only.includes('size')) n += lane1 * sizePoints;
  if (o.only.includes('share')) n += lane1 * sharePoints;
  if (o.only.includes('compaction')) n += lane1 - 1;
  return n;
}

/** Runs the chosen experiments with every installed migrator; every run verified. */
export async function runSuite(
  drivers: Drivers,
  o: SuiteOptions,
  onPlan: (steps: number) => void,
  step: (label: string) => void,
): Promise<BenchDocument> {
  const t0 = performance.now();
  const listing = await drivers.list();
  const variants = sweepVariants(listing, o.preset.lanes);
  const lane1 = variants.filter((v) => v.lanes === 1);
  const cap = capTotal(o.maxTotal, o.freeBytes);
  const counts = SERIES_FOLIO_COUNTS.filter((n) => n * THP <= cap.bytes);
  const sharePoints = cap.bytes >= 2 * THP ? 4 : 3;
  onPlan(suiteSteps(o, variants.length, lane1.length, counts.length, sharePoints));

  const notes = [cap.note];
  const missing = listing.filter((d) => !d.installed || !d.capabilities);
  for (const d of missing)
    notes.push(
      d.installed
        ? `${d.id} left out: ${d.error ?? 'no capabilities'}`
        : `${d.id} not installed (pnpm add ${d.package})`,
    );
  if (o.only.includes('compaction') && !lane1.some((v) => v.migrator === 'cpu-serial'))
    notes.push(
      'compaction left out: it compares cpu-serial with offload migrators, and cpu-serial is not installed',
    );

  const ctx: SweepContext = { drivers, variants, batchPages: o.batchPages, reps: o.reps, step };
  const doc: BenchDocument = {
    schemaVersion: BENCH_SCHEMA_VERSION,
    command: 'bench',
    preset: o.preset.name,
    clock: 'real',
    environment: environment(),
    settings: {
      folioSizes: o.preset.folioSizes,
      folioSweepBytes: o.preset.folioSweepBytes,
      sizeSweepFolios: counts,
      maxTotalBytes: cap.bytes,
      migrationBatchPages: o.batchPages,
      reps: o.reps,
    },
    migrators: {
      used: [...new Set(variants.map((v) => v.migrator))],
      missing: missing.map((d) => ({ id: d.id, package: d.package })),
    },
    folioSweep: [],
    sizeSweep: [],
    copyShare: [],
    compaction: [],
    notes,
    seconds: 0,
  };
  if (o.only.includes('folio'))
    doc.folioSweep = await folioSweep(
      ctx,
      o.preset.folioSizes,
      Math.min(o.preset.folioSweepBytes, cap.bytes),
    );
  if (o.only.includes('size')) doc.sizeSweep = await sizeSweep(ctx, counts);
  if (o.only.includes('share')) doc.copyShare = await copyShare(ctx, cap.bytes);
  const compactors = lane1.filter((v) => v.migrator !== 'none');
  if (o.only.includes('compaction') && compactors.some((v) => v.migrator === 'cpu-serial'))
    doc.compaction = await busyCompaction(
      drivers,
      compactors,
      o.preset.compactionNode,
      o.preset.baselineMs,
      step,
    );
  doc.seconds = (performance.now() - t0) / 1000;
  return doc;
}
