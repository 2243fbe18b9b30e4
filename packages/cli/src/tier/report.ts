import { type ChartSpec, chartSectionHtml, esc, pageHtml } from '../report/markup.js';
import { copierColour, measuredBar, measuredLine, translucent } from '../report/palette.js';
import { formatSize } from '../table.js';
import type { TierRun } from './run.js';
import type { TierSample } from './sampler.js';
import { laterMoves, type TierDocument } from './text.js';

/** At most this many points per line: samples are read on a common time grid. */
const GRID_POINTS = 40;

const axes = (x: string, y: string) => ({
  animation: false,
  responsive: false,
  plugins: { legend: { position: 'bottom', labels: { usePointStyle: true } } },
  scales: {
    x: { title: { display: true, text: x } },
    y: { title: { display: true, text: y }, beginAtZero: true },
  },
});

const colourOf = (r: TierRun) => copierColour(r.migrator.label);

/** The grid (ms since the workload started) every run's samples are read at. */
function grid(doc: TierDocument): number[] {
  const end = Math.max(...doc.runs.map((r) => r.samples.at(-1)?.tMs ?? 0));
  const step = Math.max(doc.sampling.everyMs, Math.ceil(end / GRID_POINTS / 10) * 10);
  const out: number[] = [];
  for (let t = 0; t <= end + step - 1; t += step) out.push(t);
  return out;
}

/** The last sample at or before `t` (the first one before that). */
function at(samples: readonly TierSample[], t: number): TierSample | null {
  let found: TierSample | null = null;
  for (const s of samples) {
    if (s.tMs > t) break;
    found = s;
  }
  return found ?? samples[0] ?? null;
}

const seconds = (ms: number) => (ms / 1000).toFixed(2);
const cell = (v: number | null) => (v === null ? '' : String(Math.round(v)));

function pagesPerTier(doc: TierDocument, times: number[]): ChartSpec {
  const datasets = doc.runs.flatMap((r) => {
    const c = colourOf(r);
    return [
      {
        label: `${r.migrator.label}: DRAM`,
        ...measuredLine(c),
        data: times.map((t) => at(r.samples, t)?.dram ?? null),
      },
      {
        label: `${r.migrator.label}: CXL`,
        ...measuredLine(c),
        backgroundColor: translucent(c, 0.2),
        pointStyle: 'rect',
        borderWidth: 1,
        data: times.map((t) => at(r.samples, t)?.cxl ?? null),
      },
    ];
  });
  const labels = times.map(seconds);
  return {
    id: 'pages-per-tier',
    title: 'Pages of the region per tier over time',
    caption:
      'Region pages on the DRAM node (circles) and on the CXL node (squares), from move_pages(2) with nodes = NULL; time in seconds since the workload started.',
    config: { type: 'line', data: { labels, datasets }, options: axes('seconds', 'pages') },
    table: { head: ['pages', ...labels], rows: datasets.map((d) => [d.label, ...d.data.map(cell)]) },
  };
}

function migrationRates(doc: TierDocument, times: number[]): ChartSpec {
  const rate = (r: TierRun, key: 'promoted' | 'demoted') =>
    times.map((t, i) => {
      if (i === 0) return null;
      const a = at(r.samples, times[i - 1]!);
      const b = at(r.samples, t);
      if (!a || !b || b.tMs <= a.tMs) return 0;
      return ((b[key] - a[key]) * 1000) / (t - times[i - 1]!);
    });
  const datasets = doc.runs.flatMap((r) => {
    const c = colourOf(r);
    return [
      { label: `${r.migrator.label}: promoted/s`, ...measuredLine(c), data: rate(r, 'promoted') },
      {
        label: `${r.migrator.label}: demoted/s`,
        ...measuredLine(c),
        backgroundColor: translucent(c, 0.2),
        pointStyle: 'rect',
        borderWidth: 1,
        data: rate(r, 'demoted'),
      },
    ];
  });
  const labels = times.map(seconds);
  return {
    id: 'migration-rates',
    title: 'Promotions and demotions per second',
    caption:
      'Pages per second between two grid points: pgpromote_success (circles) and pgdemote_kswapd + pgdemote_direct (squares), from /proc/vmstat.',
    config: { type: 'line', data: { labels, datasets }, options: axes('seconds', 'pages per second') },
    table: { head: ['pages/s', ...labels], rows: datasets.map((d) => [d.label, ...d.data.map(cell)]) },
  };
}

function workloadTime(doc: TierDocument): ChartSpec {
  const labels = doc.runs.map((r) => r.migrator.label);
  const modeled = doc.runs.map((r) => r.modeled.totalNs / 1e6);
  const wall = doc.runs.map((r) => r.wallMs);
  const colours = doc.runs.map(colourOf);
  const datasets = [
    {
      label: 'modeled workload time (ms)',
      backgroundColor: colours.map((c) => translucent(c, 0.35)),
      borderColor: colours,
      borderWidth: 2,
      data: modeled,
    },
    { label: 'wall time (ms)', ...measuredBar('#9a9a9a'), data: wall },
  ];
  return {
    id: 'workload-time',
    title: 'Modeled workload time per migrator, wall time beside it',
    caption:
      "Modeled: the thread's accesses x the load latency of the tier they hit (timing profile dram-cxl) plus the time it waited on migration entries. Wall: the workload's run on this host.",
    config: { type: 'bar', data: { labels, datasets }, options: axes('migrator', 'ms') },
    table: {
      head: ['ms', ...labels],
      rows: datasets.map((d) => [d.label, ...d.data.map((v) => v.toFixed(1))]),
    },
  };
}

function arrivals(doc: TierDocument): ChartSpec | null {
  const n = Math.max(...doc.runs.map((r) => laterMoves(r).length));
  if (n === 0) return null;
  const labels = Array.from({ length: n }, (_, i) => `move ${i + 1}`);
  const datasets = doc.runs.map((r) => ({
    label: r.migrator.label,
    ...measuredBar(colourOf(r)),
    data: labels.map((_, i) => laterMoves(r)[i]?.arrivedMs ?? null),
  }));
  return {
    id: 'hot-set-arrival',
    title: 'Time for a moved hot set to reach DRAM',
    caption: `Milliseconds from each move of the hot set until a sample saw ${doc.sampling.arrivedShare * 100}% of its pages on DRAM (sampled every ${doc.sampling.everyMs} ms: the resolution); no bar: it had not arrived by the next move.`,
    config: { type: 'bar', data: { labels, datasets }, options: axes('hot-set move', 'ms') },
    table: { head: ['ms', ...labels], rows: datasets.map((d) => [d.label, ...d.data.map(cell)]) },
  };
}

/** The offline report of a `pagemig tier` result: its charts (chart.js inlined) with their numbers. */
export function renderTierReport(doc: TierDocument): { html: string; charts: string[] } {
  const times = grid(doc);
  const specs = [
    pagesPerTier(doc, times),
    migrationRates(doc, times),
    workloadTime(doc),
    arrivals(doc),
  ].filter((s): s is ChartSpec => s !== null);
  const w = doc.workload;
  const [dram, cxl] = doc.machine.nodes;
  const rows = doc.runs
    .map(
      (r) =>
        `<li>${esc(r.migrator.label)}: ${r.pagesPromoted} pages promoted, ${r.pagesDemoted} demoted; engine CPU per promoted page ${
          r.promotion.cpuPerPageSeconds === null
            ? '-'
            : `${(r.promotion.cpuPerPageSeconds * 1e6).toFixed(1)} µs`
        }${r.promotion.cpuPerPageVsRawCopy === null ? '' : ` (${r.promotion.cpuPerPageVsRawCopy.toFixed(1)}x a raw 4 KiB copy here)`}; every byte verified</li>`,
    )
    .join('');
  const body = `<h1>pagemig tier report</h1>
<p>Node 0: DRAM ${formatSize(dram!.memory)} with the CPUs; node 1: CXL ${formatSize(cxl!.memory)}, no CPUs. kswapd demotes cold pages to CXL, NUMA balancing in mode 2 (NUMA_BALANCING_MEMORY_TIERING) promotes hot ones. Workload: ${esc(
    w.kind === 'replay' ? `replay of ${String(w.file)}` : String(w.pattern),
  )} over ${formatSize(w.bytes)} for ${w.durationMs} ms, seed ${w.seed}.</p>
<ul>${rows}</ul>
${specs.map(chartSectionHtml).join('\n')}`;
  return { html: pageHtml('pagemig tier report', body, specs), charts: specs.map((s) => s.id) };
}
