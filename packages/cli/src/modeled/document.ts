import {
  type BenchCase,
  type CellComparison,
  type Copier,
  compareToMeasurements,
  computeFindings,
  type Findings,
  type HardwareProfile,
  type PublishedTable,
  predictCase,
  publishedData,
  zen3CopyShare,
} from '@pagemig/core/timing';
import { PRESETS, type Preset } from '../bench/presets.js';
import { BENCH_SCHEMA_VERSION } from '../bench/schema.js';
import type { Experiment } from '../bench/suite.js';

/** Which experiment of `pagemig bench` each published table belongs to. */
const TABLE_EXPERIMENT: Record<string, Experiment> = {
  '7.4a': 'folio',
  '7.4b': 'folio',
  '7.4c': 'folio',
  '7.3d': 'folio',
  '7.4d': 'size',
};

const KiB = 1024;
const GiB = 1024 ** 3;
const THP = 2 * 1024 * KiB;
/** NR_MAX_BATCHED_MIGRATION of the vanilla kernel, and the series' raised limit (HPAGE_PUD_NR). */
export const VANILLA_BATCH = 512;
export const SERIES_BATCH = 262144;
/** Threads / channels of the modeled scaling charts (the series' rows). */
export const MODELED_LANES = [1, 2, 4, 8, 12, 16];

/** One point of the modeled throughput-vs-lanes charts: 1 GiB of one folio size, as the series ran. */
export interface ModeledLanePoint {
  folioBytes: number;
  /** 'kernel', 'threads' (spread across CCDs) or the DMA engine's name. */
  copier: string;
  lanes: number;
  batchPages: number;
  GBps: number;
}

export interface ModeledCopyShare {
  folios: number;
  folioBytes: number;
  /** Copy phase / whole modeled time of the vanilla kernel's migration. */
  modeled: number;
  /** The series' value and its printed text (only for the profile of the series' machine). */
  published: number | null;
  printed: string | null;
}

/** `pagemig bench --clock modeled --out`: the timing model's predictions beside the published tables. */
export interface ModeledBenchDocument {
  schemaVersion: typeof BENCH_SCHEMA_VERSION;
  command: 'bench';
  clock: 'modeled';
  preset: 'quick' | 'full';
  profile: string;
  description: string;
  note: string;
  experiments: Experiment[];
  /** Folio sizes and 2 MiB folio counts of the published cells kept (--quick keeps fewer). */
  settings: { folioSizes: number[]; sizeSweepFolios: number[]; lanes: number[] };
  tables: (PublishedTable & { experiment: Experiment })[];
  /** Every published cell kept, with the model's prediction and error (predicted / published - 1). */
  cells: CellComparison[];
  heldOutMedianAbsError: number | null;
  fittedMedianAbsError: number | null;
  lanes: ModeledLanePoint[];
  copyShare: ModeledCopyShare[];
  findings: Findings | null;
  notes: string[];
  date: string;
  seconds: number;
}

function median(xs: readonly number[]): number | null {
  if (!xs.length) return null;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** --quick keeps the quick preset's folio sizes and the total-size points up to its run cap. */
function keepCell(c: CellComparison, preset: Preset): boolean {
  if (preset.name === 'full') return true;
  if (!preset.folioSizes.includes(c.case.folioBytes)) return false;
  return c.table !== '7.4d' || c.case.folios * c.case.folioBytes <= preset.maxTotal;
}

/** The model's predictions for the series' experiments on profile `p`, filtered like a measured run. */
export function modeledBenchDocument(
  p: HardwareProfile,
  o: { quick: boolean; only: readonly Experiment[] },
): ModeledBenchDocument {
  const t0 = performance.now();
  const preset = PRESETS[o.quick ? 'quick' : 'full'];
  const data = publishedData[p.name];
  const notes: string[] = [];
  const tables = (data?.tables ?? [])
    .map((t) => ({ ...t, experiment: TABLE_EXPERIMENT[t.id] ?? ('folio' as Experiment) }))
    .filter((t) => o.only.includes(t.experiment));
  const ids = new Set(tables.map((t) => t.id));
  const cells = data
    ? compareToMeasurements(
        p,
        data.measurements.filter((m) => ids.has(m.table)),
      ).cells.filter((c) => keepCell(c, preset))
    : [];
  if (!data)
    notes.push(
      `no published measurements exist for profile ${p.name}: the charts show the model's predictions alone`,
    );
  const abs = (held: boolean) => cells.filter((c) => c.heldOut === held).map((c) => Math.abs(c.error));

  const sizes = o.quick ? preset.folioSizes : [4, 16, 64, 128, 256, 512, 1024, 2048].map((k) => k * KiB);
  const lanes: ModeledLanePoint[] = [];
  if (o.only.includes('folio')) {
    const point = (folioBytes: number, copier: Copier, name: string, n: number) => {
      const batchPages = copier.kind === 'kernel' ? VANILLA_BATCH : SERIES_BATCH;
      const c: BenchCase = { folioBytes, folios: GiB / folioBytes, batchPages, copier };
      lanes.push({ folioBytes, copier: name, lanes: n, batchPages, GBps: predictCase(p, c).GBps });
    };
    for (const folioBytes of [sizes[0]!, sizes.at(-1)!]) {
      point(folioBytes, { kind: 'kernel' }, 'kernel', 1);
      for (const n of MODELED_LANES)
        point(folioBytes, { kind: 'threads', threads: n, placement: 'spread' }, 'threads', n);
      for (const [engine, e] of Object.entries(p.dma))
        for (const n of MODELED_LANES.filter((k) => k <= e.maxChannels))
          point(folioBytes, { kind: 'dma', engine, channels: n }, engine, n);
    }
  }

  const copyShare: ModeledCopyShare[] = [];
  if (o.only.includes('share'))
    for (const s of zen3CopyShare) {
      const t = predictCase(p, {
        folioBytes: s.folioBytes,
        folios: s.folios,
        batchPages: VANILLA_BATCH,
        copier: { kind: 'kernel' },
      });
      copyShare.push({
        folios: s.folios,
        folioBytes: s.folioBytes,
        modeled: t.phases.fallbackCopy / t.totalSeconds,
        published: data ? s.share : null,
        printed: data ? s.printed : null,
      });
    }
  if (o.only.includes('compaction'))
    notes.push(
      'compaction is not modeled: the series published no compaction figures and the timing model has no compaction; `pagemig bench --only compaction` measures it on this machine',
    );
  if (o.quick)
    notes.push(
      `--quick: the quick preset's folio sizes (${preset.folioSizes.map((b) => (b >= THP ? `${b / (1024 * KiB)}M` : `${b / KiB}K`)).join(', ')}) and total-size points up to ${preset.maxTotal / THP} folios of 2MiB`,
    );
  return {
    schemaVersion: BENCH_SCHEMA_VERSION,
    command: 'bench',
    clock: 'modeled',
    preset: preset.name,
    profile: p.name,
    description: p.description,
    note: 'modeled time from a hardware profile, not measured on this machine',
    experiments: [...o.only],
    settings: {
      folioSizes: sizes,
      sizeSweepFolios: [...new Set(cells.filter((c) => c.table === '7.4d').map((c) => c.case.folios))],
      lanes: MODELED_LANES,
    },
    tables,
    cells,
    heldOutMedianAbsError: median(abs(true)),
    fittedMedianAbsError: median(abs(false)),
    lanes,
    copyShare,
    findings: data ? computeFindings(p) : null,
    notes,
    date: new Date().toISOString(),
    seconds: (performance.now() - t0) / 1000,
  };
}
