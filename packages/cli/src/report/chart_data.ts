import type { BenchDocument, SweepRow } from '../bench/schema.js';
import { formatSize } from '../table.js';

/** A chart.js configuration (type, data, options), serialisable into the page. */
export interface ChartSpec {
  id: string;
  title: string;
  config: { type: 'line' | 'bar'; data: unknown; options: unknown };
}

const PALETTE = ['#0072b2', '#d55e00', '#009e73', '#cc79a7', '#e69f00', '#56b4e9', '#f0e442', '#000000'];
const PHASES = [
  ['unmap', 'unmap'],
  ['flush', 'TLB flush'],
  ['batchCopy', 'batch copy (migrator)'],
  ['fallbackCopy', 'CPU copy'],
  ['move', 'move'],
] as const;

const gb = (x: number) => Number((x / 1e9).toFixed(3));

/**
 * One colour per migrator ("ptdma x2" belongs to "ptdma"), and per thread/channel count within it
 * a dash pattern and point shape: 13 series stay tellable apart with 8 colours.
 */
function seriesStyles(labels: readonly string[]) {
  const families = [...new Set(labels.map((l) => l.split(' ')[0]))];
  const seen = new Map<string, number>();
  const variant = new Map<string, number>();
  for (const l of labels) {
    const f = l.split(' ')[0]!;
    const n = seen.get(f) ?? 0;
    variant.set(l, n);
    seen.set(f, n + 1);
  }
  const dashes = [[], [8, 4], [2, 3], [12, 3, 2, 3]];
  const points = ['circle', 'rect', 'triangle', 'rectRot'];
  return (label: string) => {
    const colour = PALETTE[families.indexOf(label.split(' ')[0]!) % PALETTE.length];
    const v = variant.get(label) ?? 0;
    return {
      borderColor: colour,
      backgroundColor: colour,
      borderDash: dashes[v % dashes.length],
      pointStyle: points[v % points.length],
    };
  };
}
const byLabel = (rows: SweepRow[]) => [...new Set(rows.map((r) => r.label))];

function axes(x: string, y: string, stacked = false) {
  return {
    animation: false,
    responsive: false,
    plugins: { legend: { position: 'bottom' } },
    scales: {
      x: { title: { display: true, text: x }, stacked },
      y: { title: { display: true, text: y }, beginAtZero: true, stacked },
    },
  };
}

function lineChart(
  id: string,
  title: string,
  rows: SweepRow[],
  key: (r: SweepRow) => number,
  x: string,
  xLabel: (k: number) => string,
): ChartSpec {
  const keys = [...new Set(rows.map(key))].sort((a, b) => a - b);
  const style = seriesStyles(byLabel(rows));
  const datasets = byLabel(rows).map((label) => ({
    label,
    ...style(label),
    data: keys.map((k) => {
      const r = rows.find((row) => row.label === label && key(row) === k);
      return r ? gb(r.bytesPerSec) : null;
    }),
  }));
  // The raw copy of the same bytes, measured beside the kernel's runs.
  const raw = keys.map((k) => {
    const r =
      rows.find((row) => row.migrator === 'none' && key(row) === k) ?? rows.find((row) => key(row) === k);
    return r ? gb(r.rawBytesPerSec) : null;
  });
  datasets.push({
    label: 'raw copy (same run)',
    borderColor: '#999999',
    backgroundColor: '#999999',
    data: raw,
    borderDash: [6, 4],
  } as never);
  return {
    id,
    title,
    config: { type: 'line', data: { labels: keys.map(xLabel), datasets }, options: axes(x, 'GB/s') },
  };
}

/** The charts the report draws, for the experiments present in `doc`. */
export function chartSpecs(doc: BenchDocument): ChartSpec[] {
  const out: ChartSpec[] = [];
  if (doc.folioSweep.length) {
    out.push(
      lineChart(
        'throughput',
        'Throughput vs folio size',
        doc.folioSweep,
        (r) => r.folioBytes,
        'folio size',
        formatSize,
      ),
    );
    // Smallest and largest folio of each variant: where the time goes.
    const sizes = doc.folioSweep.map((r) => r.folioBytes);
    const ends = [Math.min(...sizes), Math.max(...sizes)];
    const rows = doc.folioSweep.filter((r) => ends.includes(r.folioBytes));
    out.push({
      id: 'phases',
      title: 'Phase breakdown of migrate_pages() (share of wall time)',
      config: {
        type: 'bar',
        data: {
          labels: rows.map((r) => `${r.label} ${formatSize(r.folioBytes)}`),
          datasets: PHASES.map(([k, label], i) => ({
            label,
            backgroundColor: PALETTE[i],
            data: rows.map((r) => Number(((100 * r.phases[k]) / r.wallSeconds).toFixed(2))),
          })),
        },
        options: axes('migrator, folio size', '% of wall time', true),
      },
    });
  }
  if (doc.sizeSweep.length)
    out.push(
      lineChart(
        'size',
        'Throughput vs number of 2MiB folios',
        doc.sizeSweep,
        (r) => r.folios,
        'folios',
        String,
      ),
    );
  if (doc.copyShare.length) {
    const points = [...new Set(doc.copyShare.map((r) => `${r.folios} x ${formatSize(r.folioBytes)}`))];
    out.push({
      id: 'share',
      title: 'Copy share of migrate_pages()',
      config: {
        type: 'bar',
        data: {
          labels: points,
          datasets: byLabel(doc.copyShare).map((label, i) => ({
            label,
            backgroundColor: PALETTE[i % PALETTE.length],
            data: points.map((p) => {
              const r = doc.copyShare.find(
                (row) => row.label === label && `${row.folios} x ${formatSize(row.folioBytes)}` === p,
              );
              return r ? Number((100 * r.copyShare).toFixed(2)) : null;
            }),
          })),
        },
        options: axes('folios', '% of wall time'),
      },
    });
  }
  if (doc.compaction.length) {
    out.push({
      id: 'compaction',
      title: 'Compaction on a busy system: engine CPU and wall time',
      config: {
        type: 'bar',
        data: {
          labels: doc.compaction.map((r) => r.label),
          datasets: [
            {
              label: 'wall ms',
              backgroundColor: PALETTE[0],
              data: doc.compaction.map((r) => Number((r.wallSeconds * 1000).toFixed(2))),
            },
            {
              label: 'engine CPU ms',
              backgroundColor: PALETTE[1],
              data: doc.compaction.map((r) => Number((r.cpuSeconds * 1000).toFixed(2))),
            },
          ],
        },
        options: axes('migrator routed for compaction', 'ms'),
      },
    });
  }
  return out;
}
