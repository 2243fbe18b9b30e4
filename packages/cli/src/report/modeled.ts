import { type CellComparison, publishedData } from '@pagemig/core/timing';
import type { ModeledBenchDocument, ModeledLanePoint } from '../modeled/document.js';
import { findingsRows } from '../modeled/findings.js';
import { type ChartSpec, chartSectionHtml, type DataTable, esc, pageHtml, tableHtml } from './markup.js';
import {
  copierColour,
  measuredBar,
  measuredLine,
  modeledBar,
  modeledLine,
  PUBLISHED_COLOUR,
} from './palette.js';

interface Dataset {
  label: string;
  data: (number | null)[];
  [style: string]: unknown;
}

const KiB = 1024;
const size = (b: number) => (b >= 1024 * KiB ? `${b / (1024 * KiB)}M` : `${b / KiB}K`);
const f2 = (x: number | null | undefined) => (x === null || x === undefined ? '' : x.toFixed(2));
const pct = (x: number) => `${x >= 0 ? '+' : ''}${(100 * x).toFixed(0)}%`;
const uniq = <T>(xs: readonly T[]) => [...new Set(xs)];

/** The series' copier behind each published table row, as a migrator id (for its colour). */
const COPIER_MIGRATOR: Record<string, string> = { kernel: 'none', threads: 'cpu-multithreaded' };
const colourOf = (copier: string) => copierColour(COPIER_MIGRATOR[copier] ?? copier);
const copierName = (copier: string) =>
  copier === 'kernel'
    ? 'kernel (baseline)'
    : copier === 'threads'
      ? 'mtcopy threads'
      : `dcbm, ${copier} channels`;

function axes(x: string, y: string, legend = true) {
  return {
    animation: false,
    responsive: false,
    plugins: { legend: { display: legend, position: 'bottom', labels: { usePointStyle: true } } },
    scales: {
      x: { title: { display: true, text: x } },
      y: { title: { display: true, text: y }, beginAtZero: true },
    },
  };
}

/** The published cell of a copier at N lanes and one folio column (kernel: the baseline row). */
function publishedAt(cells: readonly CellComparison[], copier: string, n: number, folioBytes: number) {
  const col = size(folioBytes);
  if (copier === 'kernel') return cells.find((c) => c.table === '7.4a' && c.column === col);
  if (copier === 'threads')
    return cells.find((c) => c.table === '7.4b' && c.row === String(n) && c.column === col);
  return cells.find(
    (c) =>
      c.table === '7.4c' &&
      c.row === String(n) &&
      c.column === col &&
      c.case.copier.kind === 'dma' &&
      c.case.copier.engine === copier,
  );
}

/** Rows of published, modeled and error per copier, the held-out errors marked. */
function comparisonTable(
  first: string,
  xLabels: readonly string[],
  series: { name: string; published: (CellComparison | undefined)[]; modeled: (number | null)[] }[],
): DataTable {
  const rows: string[][] = [];
  const marked: string[] = [];
  for (const s of series) {
    const anyPublished = s.published.some(Boolean);
    if (anyPublished) rows.push([`${s.name}: published`, ...s.published.map((c) => f2(c?.GBps))]);
    rows.push([`${s.name}: modeled`, ...s.modeled.map(f2)]);
    if (anyPublished) {
      const i = rows.length;
      rows.push([
        `${s.name}: error`,
        ...s.published.map((c, j) => {
          if (!c) return '';
          if (c.heldOut) marked.push(`${i},${j + 1}`);
          return `${pct(c.error)}${c.heldOut ? '*' : ''}`;
        }),
      ]);
    }
  }
  return { head: [first, ...xLabels], rows, marked };
}

function lanesChart(doc: ModeledBenchDocument, folioBytes: number): ChartSpec {
  const points = doc.lanes.filter((l) => l.folioBytes === folioBytes);
  const lanes = doc.settings.lanes;
  const xLabels = lanes.map(String);
  const copiers = uniq(points.map((l) => l.copier));
  const datasets: Dataset[] = [];
  const series: Parameters<typeof comparisonTable>[2] = [];
  for (const copier of copiers) {
    const at = (n: number): ModeledLanePoint | undefined =>
      points.find((l) => l.copier === copier && (copier === 'kernel' || l.lanes === n));
    const published = lanes.map((n) => publishedAt(doc.cells, copier, n, folioBytes));
    const modeled = lanes.map((n) => {
      const l = at(n);
      return l ? Number(l.GBps.toFixed(3)) : null;
    });
    const colour = colourOf(copier);
    const name = copierName(copier);
    if (published.some(Boolean))
      datasets.push({
        label: `${name}, published`,
        ...measuredLine(colour),
        ...(copier === 'kernel' ? { pointRadius: 0 } : {}),
        data: published.map((c) => c?.GBps ?? null),
      });
    datasets.push({
      label: `${name}, modeled`,
      ...modeledLine(colour),
      ...(copier === 'kernel' ? { pointRadius: 0 } : {}),
      data: modeled,
    });
    series.push({ name, published, modeled });
  }
  const batch = points.find((l) => l.copier !== 'kernel')?.batchPages;
  return {
    id: `lanes-${size(folioBytes)}`,
    title: `Throughput vs channels/threads, ${size(folioBytes)} folios: published and modeled`,
    caption: `1 GiB moved node 0 to node 1 by move_pages(), as the series ran it: the kernel copy with the vanilla batch (512 base pages, drawn flat), copy threads and DMA channels with the raised batch (${batch ?? '-'} base pages). Solid: published; dashed with hollow triangles: modeled by profile ${doc.profile}. Held-out cells (never fitted) are marked * in the table.`,
    config: {
      type: 'line',
      data: { labels: xLabels, datasets },
      options: axes('threads / channels', 'GB/s'),
    },
    table: comparisonTable('GB/s at N threads/channels', xLabels, series),
  };
}

/** Baseline, 1 thread and 1 channel across the folio sizes kept. */
function folioChart(doc: ModeledBenchDocument): ChartSpec | null {
  const rows: [string, string, string][] = [
    ['kernel', '7.4a', 'baseline'],
    ['threads', '7.4b', '1'],
  ];
  for (const engine of uniq(doc.lanes.map((l) => l.copier)).filter((c) => c !== 'kernel' && c !== 'threads'))
    rows.push([engine, '7.4c', '1']);
  const cols = doc.settings.folioSizes.map(size);
  const datasets: Dataset[] = [];
  const series: Parameters<typeof comparisonTable>[2] = [];
  for (const [copier, table, row] of rows) {
    const published = cols.map((col) =>
      doc.cells.find(
        (c) =>
          c.table === table &&
          c.row === row &&
          c.column === col &&
          (c.case.copier.kind !== 'dma' || c.case.copier.engine === copier),
      ),
    );
    if (!published.some(Boolean)) continue;
    const modeled = published.map((c) => (c ? Number(c.predictedGBps.toFixed(3)) : null));
    const name =
      copier === 'kernel'
        ? copierName(copier)
        : copier === 'threads'
          ? 'mtcopy, 1 thread'
          : `dcbm, 1 ${copier} channel`;
    datasets.push(
      {
        label: `${name}, published`,
        ...measuredLine(colourOf(copier)),
        data: published.map((c) => c?.GBps ?? null),
      },
      { label: `${name}, modeled`, ...modeledLine(colourOf(copier)), data: modeled },
    );
    series.push({ name, published, modeled });
  }
  if (!datasets.length) return null;
  return {
    id: 'folio',
    title: 'Throughput vs folio size, one thread/channel: published and modeled',
    caption:
      'RFC V3 tables a-c, N = 1 rows (fitted by the calibration). The N > 1 rows are held out: see the channel/thread charts.',
    config: { type: 'line', data: { labels: cols, datasets }, options: axes('folio size', 'GB/s') },
    table: comparisonTable('GB/s', cols, series),
  };
}

function sizeChart(doc: ModeledBenchDocument): ChartSpec | null {
  const cells = doc.cells.filter((c) => c.table === '7.4d');
  if (!cells.length) return null;
  const counts = uniq(cells.map((c) => c.case.folios)).sort((a, b) => a - b);
  const xLabels = counts.map(String);
  const datasets: Dataset[] = [];
  const series: Parameters<typeof comparisonTable>[2] = [];
  for (const column of uniq(cells.map((c) => c.column))) {
    const published = counts.map((n) => cells.find((c) => c.column === column && c.case.folios === n));
    const k = published.find(Boolean)!.case.copier;
    const colour = colourOf(k.kind === 'dma' ? k.engine : k.kind);
    const modeled = published.map((c) => (c ? Number(c.predictedGBps.toFixed(3)) : null));
    datasets.push(
      { label: `${column}, published`, ...measuredLine(colour), data: published.map((c) => c?.GBps ?? null) },
      { label: `${column}, modeled`, ...modeledLine(colour), data: modeled },
    );
    series.push({ name: column, published, modeled });
  }
  return {
    id: 'size',
    title: 'Throughput vs number of 2MiB folios (1 thread / 1 channel): published and modeled',
    caption: 'RFC V3 table d (fitted by the calibration).',
    config: { type: 'line', data: { labels: xLabels, datasets }, options: axes('folios', 'GB/s') },
    table: comparisonTable('GB/s', xLabels, series),
  };
}

function shareChart(doc: ModeledBenchDocument): ChartSpec | null {
  if (!doc.copyShare.length) return null;
  const xLabels = doc.copyShare.map((c) => `${c.folios} x ${size(c.folioBytes)}`);
  const datasets: Dataset[] = [];
  if (doc.copyShare.some((c) => c.published !== null))
    datasets.push({
      label: 'published: kernel, Zen 3 EPYC (RFC V3)',
      ...measuredBar(PUBLISHED_COLOUR),
      data: doc.copyShare.map((c) => (c.published === null ? null : 100 * c.published)),
    });
  datasets.push({
    label: `kernel, modeled (${doc.profile})`,
    ...modeledBar(copierColour('none')),
    data: doc.copyShare.map((c) => Number((100 * c.modeled).toFixed(2))),
  });
  const table: DataTable = {
    head: ['copy share of move_pages()', ...xLabels],
    rows: [
      ...(doc.copyShare.some((c) => c.printed !== null)
        ? [['published', ...doc.copyShare.map((c) => c.printed ?? '')]]
        : []),
      ['modeled', ...doc.copyShare.map((c) => `${(100 * c.modeled).toFixed(c.modeled < 0.01 ? 2 : 0)}%`)],
    ],
  };
  return {
    id: 'share',
    title: 'Copy share of migrate_pages(): published and modeled',
    caption:
      'The copy phase over the whole call of the vanilla kernel (batch 512), call overhead included. The published table is held out of the calibration. <1% is drawn at 1%.',
    config: {
      type: 'bar',
      data: { labels: xLabels, datasets },
      options: axes('folios x folio size', '% of the migration time'),
    },
    table,
  };
}

/** Published-vs-modeled table of one published table, the error per cell, held-out cells marked. */
function publishedTableHtml(doc: ModeledBenchDocument, t: ModeledBenchDocument['tables'][number]): string {
  const cells = doc.cells.filter((c) => c.table === t.id);
  if (!cells.length) return '';
  const columns = uniq(cells.map((c) => c.column));
  const rows = uniq(cells.map((c) => c.row));
  const out: string[][] = [];
  const marked: string[] = [];
  for (const row of rows) {
    const of = (col: string) => cells.find((c) => c.row === row && c.column === col);
    const held = cells.some((c) => c.row === row && c.heldOut);
    out.push([`${row}: published`, ...columns.map((col) => f2(of(col)?.GBps))]);
    out.push([
      `${row}: modeled (${held ? 'held out' : 'fitted'})`,
      ...columns.map((col) => f2(of(col)?.predictedGBps)),
    ]);
    const i = out.length;
    out.push([
      `${row}: error`,
      ...columns.map((col, j) => {
        const c = of(col);
        if (!c) return '';
        if (c.heldOut) marked.push(`${i},${j + 1}`);
        return `${pct(c.error)}${c.heldOut ? '*' : ''}`;
      }),
    ]);
  }
  return `<section id="section-${esc(t.id)}"><h2>${esc(`${t.id} ${t.title}`)} (GB/s)</h2><p class="caption">${esc(t.source)}; error = modeled / published - 1; * and shading: held out (never fitted, predicted).</p>
${tableHtml(t.id, { head: ['', ...columns], rows: out, marked })}</section>`;
}

/** The modeled bench as one offline page: published beside predicted, error per cell, held-out marked. */
export function renderModeledReport(doc: ModeledBenchDocument): { html: string; charts: string[] } {
  const specs: ChartSpec[] = [];
  const sizes = uniq(doc.lanes.map((l) => l.folioBytes));
  for (const s of sizes) specs.push(lanesChart(doc, s));
  for (const spec of [folioChart(doc), sizeChart(doc), shareChart(doc)]) if (spec) specs.push(spec);
  const held = doc.cells.filter((c) => c.heldOut).length;
  const summary = doc.cells.length
    ? `<p id="summary">${held} held-out cells (never fitted, predicted): median |error| ${((doc.heldOutMedianAbsError ?? 0) * 100).toFixed(0)}%; ${doc.cells.length - held} fitted cells: median |error| ${((doc.fittedMedianAbsError ?? 0) * 100).toFixed(0)}%.</p>`
    : '';
  const data = publishedData[doc.profile];
  const findings =
    doc.findings && data
      ? `<section id="section-findings"><h2>Published findings, recomputed by the model</h2>${tableHtml(
          'findings',
          {
            head: ['finding', 'published', 'modeled'],
            rows: findingsRows(doc.findings, data.measurements, doc.experiments),
          },
        )}</section>`
      : '';
  const swatch = (c: string, label: string) =>
    `<span class="key"><span class="swatch" style="background:${c}"></span>${esc(label)}</span>`;
  const copiers = uniq(doc.lanes.map((l) => l.copier));
  const key = `<p class="legend">${copiers.map((c) => swatch(colourOf(c), copierName(c))).join(' ')} ${swatch(PUBLISHED_COLOUR, 'published copy share')} <span class="key">solid: published; dashed, hollow triangles or light bars: modeled</span> <span class="key"><span class="swatch" style="background:#fff4ec;outline:1px solid #d55e00"></span>table cells: held out</span></p>`;
  const notes = doc.notes.map((n) => `<li>${esc(n)}</li>`).join('');
  const body = `<h1>pagemig bench report: MODELED</h1>
<p class="modeled-banner" id="modeled-banner">MODELED, not measured: every number marked modeled is the prediction of the timing model with hardware profile ${esc(doc.profile)} (${esc(doc.description)}). Published numbers are the series' own, from the benchmark tables of its RFC V2 and RFC V3 cover letters (<a href="https://lore.kernel.org/all/20250319192211.10092-1-shivankg@amd.com/">https://lore.kernel.org/all/20250319192211.10092-1-shivankg@amd.com/</a>, <a href="https://lore.kernel.org/all/20250923174752.35701-1-shivankg@amd.com/">https://lore.kernel.org/all/20250923174752.35701-1-shivankg@amd.com/</a>).</p>
<p>${esc(doc.preset)} preset; experiments: ${esc(doc.experiments.join(', '))}; ${esc(doc.date)}.</p>
${summary}
${key}
${specs.map(chartSectionHtml).join('\n')}
${doc.tables.map((t) => publishedTableHtml(doc, t)).join('\n')}
${findings}
${notes ? `<section><h2>Notes</h2><ul>${notes}</ul></section>` : ''}`;
  return {
    html: pageHtml(`pagemig bench report (modeled, ${doc.profile})`, body, specs),
    charts: specs.map((s) => s.id),
  };
}
