import { zen3CopyShare } from '@pagemig/core/timing';
import type { BenchDocument, CompactionRow, SweepRow } from '../bench/schema.js';
import { formatSize } from '../table.js';
import type { ChartSpec, DataTable } from './markup.js';
import {
  copierColour,
  measuredBar,
  measuredLine,
  modeledLine,
  PHASE_COLOURS,
  PUBLISHED_COLOUR,
  rawLine,
} from './palette.js';

export type { ChartSpec } from './markup.js';

const PHASES = [
  ['unmap', 'unmap'],
  ['flush', 'TLB flush'],
  ['batchCopy', 'batch copy (migrator)'],
  ['fallbackCopy', 'CPU copy'],
  ['move', 'move'],
] as const;
const THP = 2 << 20;

const gb = (x: number) => Number((x / 1e9).toFixed(3));
const f2 = (x: number | null | undefined) => (x === null || x === undefined ? '' : x.toFixed(2));
const uniq = <T>(xs: readonly T[]) => [...new Set(xs)];
const labels = (rows: readonly SweepRow[]) => uniq(rows.map((r) => r.label));
/** Migrators that ran with more than one thread or channel count. */
const parallel = (rows: readonly SweepRow[]) =>
  uniq(rows.filter((r) => r.lanes > 1).map((r) => r.migrator)).filter((m) => m !== 'none');
const nameOf = (migrator: string) => (migrator === 'none' ? 'kernel' : migrator);

interface Dataset {
  label: string;
  data: (number | null)[];
  [style: string]: unknown;
}

function axes(x: string, y: string, o: { stacked?: boolean; legend?: boolean } = {}) {
  return {
    animation: false,
    responsive: false,
    plugins: { legend: { display: o.legend ?? true, position: 'bottom', labels: { usePointStyle: true } } },
    scales: {
      x: { title: { display: true, text: x }, stacked: o.stacked ?? false },
      y: { title: { display: true, text: y }, beginAtZero: true, stacked: o.stacked ?? false },
    },
  };
}

/** The y axis up to `max` (100%: the workload alone). */
function withMax(o: ReturnType<typeof axes>, max: number) {
  return { ...o, scales: { ...o.scales, y: { ...o.scales.y, max } } };
}

/** The numbers of a chart: one row per dataset, one column per x label. */
function datasetTable(
  first: string,
  xLabels: readonly string[],
  datasets: readonly Dataset[],
  cell: (v: number | null) => string = f2,
): DataTable {
  return { head: [first, ...xLabels], rows: datasets.map((d) => [d.label, ...d.data.map(cell)]) };
}

/** Throughput per variant along `key` (folio size, folio count), with the same runs' raw copy. */
function throughputLines(
  rows: readonly SweepRow[],
  key: (r: SweepRow) => number,
  xLabel: (k: number) => string,
): { xLabels: string[]; datasets: Dataset[] } {
  const keys = uniq(rows.map(key)).sort((a, b) => a - b);
  const datasets: Dataset[] = labels(rows).map((label) => {
    const migrator = rows.find((r) => r.label === label)!.migrator;
    return {
      label,
      ...measuredLine(copierColour(migrator)),
      data: keys.map((k) => {
        const r = rows.find((row) => row.label === label && key(row) === k);
        return r ? gb(r.bytesPerSec) : null;
      }),
    };
  });
  // The raw copy of the same bytes, measured beside the kernel's runs.
  datasets.push({
    label: 'raw copy (same run)',
    ...rawLine(),
    data: keys.map((k) => {
      const r =
        rows.find((row) => row.migrator === 'none' && key(row) === k) ?? rows.find((row) => key(row) === k);
      return r ? gb(r.rawBytesPerSec) : null;
    }),
  });
  return { xLabels: keys.map(xLabel), datasets };
}

/** Throughput against threads/channels at one folio size: measured here and, with a profile, modeled. */
function lanesChart(doc: BenchDocument, folioBytes: number): ChartSpec {
  const rows = doc.folioSweep.filter((r) => r.folioBytes === folioBytes);
  const lanes = uniq(rows.map((r) => r.lanes)).sort((a, b) => a - b);
  const xLabels = lanes.map(String);
  const model = doc.modeled?.rows.filter((r) => r.folioBytes === folioBytes) ?? [];
  const datasets: Dataset[] = [];
  const flat = (r: { bytesPerSec: number }) => lanes.map(() => gb(r.bytesPerSec));
  // The copies on one thread: flat references across the axis.
  for (const m of ['none', 'cpu-serial']) {
    const r = rows.find((x) => x.migrator === m);
    if (r)
      datasets.push({
        label: `${r.label} (one thread)`,
        ...measuredLine(copierColour(m)),
        pointRadius: 0,
        data: flat(r),
      });
  }
  for (const m of parallel(rows)) {
    datasets.push({
      label: nameOf(m),
      ...measuredLine(copierColour(m)),
      data: lanes.map((n) => {
        const r = rows.find((x) => x.migrator === m && x.lanes === n);
        return r ? gb(r.bytesPerSec) : null;
      }),
    });
  }
  const kernel = rows.find((r) => r.migrator === 'none');
  if (kernel)
    datasets.push({
      label: 'raw copy (same run)',
      ...rawLine(),
      data: flat({ bytesPerSec: kernel.rawBytesPerSec }),
    });
  if (doc.modeled) {
    const p = doc.modeled.profile;
    const mk = model.find((r) => r.migrator === 'none');
    if (mk)
      datasets.push({
        label: `kernel, modeled (${p})`,
        ...modeledLine(copierColour('none')),
        pointRadius: 0,
        data: flat(mk),
      });
    for (const m of parallel(rows)) {
      if (!model.some((r) => r.migrator === m)) continue;
      datasets.push({
        label: `${nameOf(m)}, modeled (${p})`,
        ...modeledLine(copierColour(m)),
        data: lanes.map((n) => {
          const r = model.find((x) => x.migrator === m && x.lanes === n);
          return r ? gb(r.bytesPerSec) : null;
        }),
      });
    }
  }
  const size = formatSize(folioBytes);
  const bytes = rows[0] ? formatSize(rows[0].bytes) : '';
  return {
    id: `lanes-${size}`,
    title: `Throughput vs threads/channels, ${size} folios`,
    caption:
      `${bytes} of ${size} folios per run, batches of ${doc.settings.migrationBatchPages} base pages. ` +
      `cpu-multithreaded adds copy threads, ptdma and sdxi add DMA channels; the kernel and cpu-serial copy on one thread and are drawn flat.` +
      (doc.modeled
        ? ` Dashed: what profile ${doc.modeled.profile} predicts for the same runs (folios, batch, copier) on its hardware - modeled, not measured.` +
          (doc.modeled.skipped.length ? ` Not modeled: ${doc.modeled.skipped.join('; ')}.` : '')
        : ' Run `pagemig bench --profile zen3-epyc-ptdma` to draw the timing model beside.'),
    config: {
      type: 'line',
      data: { labels: xLabels, datasets },
      options: axes('threads / channels', 'GB/s'),
    },
    table: datasetTable('GB/s at N threads/channels', xLabels, datasets),
  };
}

/** The series' copy-share points; the last is lowered to the run cap here. */
function sharePoint(r: { folios: number; folioBytes: number }): number {
  if (r.folioBytes === 4096) return r.folios === 1 ? 0 : 1;
  return r.folios === 1 ? 2 : 3;
}

function shareChart(doc: BenchDocument): ChartSpec {
  const big = doc.copyShare.find((r) => r.folioBytes === THP && r.folios > 1)?.folios;
  const xLabels = [
    '1 x 4KiB',
    '512 x 4KiB',
    '1 x 2MiB',
    `512 x 2MiB${big !== undefined && big !== 512 ? ` (here: ${big})` : ''}`,
  ];
  const lane1 = labels(doc.copyShare);
  const datasets: Dataset[] = [
    {
      label: 'published: kernel, Zen 3 EPYC (RFC V3)',
      ...measuredBar(PUBLISHED_COLOUR),
      data: zen3CopyShare.map((c) => 100 * c.share),
    },
    ...lane1.map((label) => {
      const migrator = doc.copyShare.find((r) => r.label === label)!.migrator;
      const data: (number | null)[] = [null, null, null, null];
      for (const r of doc.copyShare.filter((x) => x.label === label))
        data[sharePoint(r)] = Number((100 * r.copyShare).toFixed(2));
      return { label: `${label} (here)`, ...measuredBar(copierColour(migrator)), data };
    }),
  ];
  const table = datasetTable('copy share of migrate_pages()', xLabels, datasets, (v) =>
    v === null ? '' : `${v.toFixed(v < 1 ? 2 : 0)}%`,
  );
  table.rows[0] = [datasets[0]!.label, ...zen3CopyShare.map((c) => c.printed)];
  return {
    id: 'share',
    title: 'Copy share of migrate_pages(), here and published',
    caption:
      '(batch copy + CPU copy) / wall time of one migrate_pages() call. Black: the series’ table (RFC V3 cover, vanilla kernel, move_pages() on a 2-socket Zen 3 EPYC: <1%, ~35%, ~66%, ~97%; <1% is drawn at 1%). Colours: the migrators on this machine.',
    config: {
      type: 'bar',
      data: { labels: xLabels, datasets },
      options: axes('folios x folio size', '% of wall time'),
    },
    table,
  };
}

function compactionCharts(rows: readonly CompactionRow[]): ChartSpec[] {
  const xLabels = rows.map((r) => r.label);
  const colours = rows.map((r) => copierColour(r.migrator));
  const perPageUs = (r: CompactionRow) => (r.pagesMigrated > 0 ? (1e6 * r.cpuSeconds) / r.pagesMigrated : 0);
  const n0 = (x: number) => Math.round(x).toLocaleString('en-US');
  return [
    {
      id: 'compaction-workload',
      title: 'Compaction on a busy system: the workload’s speed while kcompactd compacts',
      caption:
        'A user thread visits pages spread over a fragmented node; its page visits per second during a proactive compaction pass, as a share of the same thread running alone. The migrator is the one routed for compaction.',
      config: {
        type: 'bar',
        data: {
          labels: xLabels,
          datasets: [
            {
              label: 'workload during compaction / alone',
              backgroundColor: colours,
              borderColor: colours,
              data: rows.map((r) => Number((100 * r.workloadRatio).toFixed(1))),
            },
          ],
        },
        options: withMax(
          axes('migrator routed for compaction', '% of its speed alone', { legend: false }),
          100,
        ),
      },
      table: {
        head: ['migrator', 'alone (page visits/s)', 'during compaction (page visits/s)', 'during / alone'],
        rows: rows.map((r) => [
          r.label,
          n0(r.baselinePagesPerSec),
          n0(r.duringPagesPerSec),
          `${(100 * r.workloadRatio).toFixed(0)}%`,
        ]),
      },
    },
    {
      id: 'compaction-cpu',
      title: 'Compaction on a busy system: engine CPU time per migrated page',
      caption:
        'The compacting thread’s own CPU time (scanners, isolation, unmap, copy, remap) over the pages it migrated: what offloading the copy frees, per page, so runs that migrated different counts compare.',
      config: {
        type: 'bar',
        data: {
          labels: xLabels,
          datasets: [
            {
              label: 'engine CPU µs per migrated page',
              backgroundColor: colours,
              borderColor: colours,
              data: rows.map((r) => Number(perPageUs(r).toFixed(3))),
            },
          ],
        },
        options: axes('migrator routed for compaction', 'engine CPU µs per page', { legend: false }),
      },
      table: {
        head: [
          'migrator',
          'pages migrated',
          'engine CPU µs/page',
          'engine CPU ms',
          'wall ms',
          'copy wait ms',
          'status',
        ],
        rows: rows.map((r) => [
          r.label,
          String(r.pagesMigrated),
          perPageUs(r).toFixed(2),
          (1000 * r.cpuSeconds).toFixed(1),
          (1000 * r.wallSeconds).toFixed(1),
          (1000 * r.batchCopySeconds).toFixed(1),
          r.status,
        ]),
      },
    },
  ];
}

/** The charts the report draws (each with its numbers), for the experiments present in `doc`. */
export function chartSpecs(doc: BenchDocument): ChartSpec[] {
  const out: ChartSpec[] = [];
  if (doc.folioSweep.length) {
    // One thread/channel per migrator here; the thread and channel counts get charts of their own.
    const one = doc.folioSweep.filter((r) => r.lanes === 1);
    const { xLabels, datasets } = throughputLines(one, (r) => r.folioBytes, formatSize);
    out.push({
      id: 'throughput',
      title: 'Throughput vs folio size (one thread/channel)',
      caption: `${formatSize(doc.folioSweep[0]!.bytes)} per run, node 0 to node 1, every byte verified; the grey line is a TypedArray.set copy of the same bytes in folio-sized pieces, measured right after.`,
      config: { type: 'line', data: { labels: xLabels, datasets }, options: axes('folio size', 'GB/s') },
      table: datasetTable('GB/s', xLabels, datasets),
    });
    const sizes = doc.folioSweep.map((r) => r.folioBytes);
    const ends = uniq([Math.min(...sizes), Math.max(...sizes)]);
    if (parallel(doc.folioSweep).length) for (const size of ends) out.push(lanesChart(doc, size));
    // Smallest and largest folio of each variant: where the time goes.
    const rows = doc.folioSweep.filter((r) => ends.includes(r.folioBytes));
    const xl = rows.map((r) => `${r.label} ${formatSize(r.folioBytes)}`);
    const phaseSets: Dataset[] = PHASES.map(([k, label]) => ({
      label,
      backgroundColor: PHASE_COLOURS[k],
      data: rows.map((r) => Number(((100 * r.phases[k]) / r.wallSeconds).toFixed(2))),
    }));
    const table: DataTable = {
      head: ['variant, folio', ...PHASES.map(([, l]) => l), 'wall ms'],
      rows: rows.map((r, i) => [
        xl[i]!,
        ...phaseSets.map((d) => `${(d.data[i] ?? 0).toFixed(0)}%`),
        (1000 * r.wallSeconds).toFixed(2),
      ]),
    };
    out.push({
      id: 'phases',
      title: 'Phase breakdown of migrate_pages() (share of wall time)',
      caption:
        'At the smallest and the largest folio size. The phases have colours of their own (purples, move in brown); the rest of the wall time falls outside these phases.',
      config: {
        type: 'bar',
        data: { labels: xl, datasets: phaseSets },
        options: axes('migrator, folio size', '% of wall time', { stacked: true }),
      },
      table,
    });
  }
  if (doc.sizeSweep.length) {
    const { xLabels, datasets } = throughputLines(doc.sizeSweep, (r) => r.folios, String);
    out.push({
      id: 'size',
      title: 'Throughput vs number of 2MiB folios (one thread/channel)',
      caption: 'The series’ total-size sweep (RFC V3 table d), up to the run cap noted below.',
      config: { type: 'line', data: { labels: xLabels, datasets }, options: axes('folios', 'GB/s') },
      table: datasetTable('GB/s', xLabels, datasets),
    });
  }
  if (doc.copyShare.length) out.push(shareChart(doc));
  if (doc.compaction.length) out.push(...compactionCharts(doc.compaction));
  return out;
}

/** The migrators the charts of `doc` colour, for the key. */
export function migratorsOf(doc: BenchDocument): { id: string; label: string }[] {
  const ids = uniq(
    [...doc.folioSweep, ...doc.sizeSweep, ...doc.copyShare, ...doc.compaction].map((r) => r.migrator),
  );
  return ids.map((id) => ({ id, label: nameOf(id) }));
}
