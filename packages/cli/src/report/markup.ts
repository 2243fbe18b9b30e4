import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';

/** A chart.js configuration (type, data, options), serialisable into the page. */
export interface ChartConfig {
  type: 'line' | 'bar';
  data: unknown;
  options: unknown;
}

/** The numbers of a chart, printed under it. */
export interface DataTable {
  head: string[];
  rows: string[][];
  /** Cells to mark (e.g. held-out predictions): `row,col` keys, 0-based, head excluded. */
  marked?: string[];
}

/** One section of a report: a chart, what it shows, and its numbers. */
export interface ChartSpec {
  id: string;
  title: string;
  /** One or two sentences under the title (plain text). */
  caption?: string;
  config: ChartConfig;
  table: DataTable;
}

let chartJs: string | undefined;
/** chart.js's UMD bundle, inlined so the page needs no network. */
function chartJsSource(): string {
  if (chartJs === undefined) {
    const main = createRequire(import.meta.url).resolve('chart.js');
    chartJs = readFileSync(path.join(path.dirname(main), 'chart.umd.min.js'), 'utf8');
  }
  return chartJs;
}

export const esc = (s: string) =>
  s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
/** Keeps `</script>` and `<!--` inside inlined code from ending the script element. */
const inlineScript = (s: string) => s.replace(/<\/(script)/gi, '<\\/$1').replace(/<!--/g, '<\\!--');

export function tableHtml(id: string, t: DataTable): string {
  const marked = new Set(t.marked ?? []);
  const head = t.head.map((h, i) => `<th${i ? ' class="num"' : ''}>${esc(h)}</th>`).join('');
  const body = t.rows
    .map(
      (r, i) =>
        `<tr>${r
          .map((c, j) =>
            j === 0
              ? `<th scope="row">${esc(c)}</th>`
              : `<td class="num${marked.has(`${i},${j}`) ? ' held' : ''}">${esc(c)}</td>`,
          )
          .join('')}</tr>`,
    )
    .join('\n');
  return `<table class="data" id="table-${esc(id)}"><thead><tr>${head}</tr></thead><tbody>\n${body}\n</tbody></table>`;
}

export function chartSectionHtml(s: ChartSpec): string {
  return `<section id="section-${esc(s.id)}"><h2>${esc(s.title)}</h2>${s.caption ? `<p class="caption">${esc(s.caption)}</p>` : ''}
<canvas id="chart-${esc(s.id)}" width="960" height="420"></canvas>
${tableHtml(s.id, s.table)}</section>`;
}

const STYLE = `body { font: 14px/1.4 system-ui, sans-serif; margin: 2rem; color: #222; max-width: 1000px; }
section, figure { margin: 2.5rem 0; }
figcaption, .caption { color: #555; }
.caveat { border-left: 4px solid #d55e00; background: #fff4ec; padding: 0.5rem 0.8rem; }
.modeled-banner { border-left: 4px solid #555; background: #f2f2f2; padding: 0.5rem 0.8rem; font-weight: 600; }
.legend .key { margin-right: 1rem; white-space: nowrap; }
.swatch { display: inline-block; width: 0.9rem; height: 0.9rem; margin-right: 0.3rem; vertical-align: -0.1rem; }
table.data { border-collapse: collapse; margin-top: 0.8rem; font-size: 13px; }
table.data th, table.data td { border: 1px solid #ddd; padding: 0.15rem 0.5rem; }
table.data thead th { background: #f5f5f5; }
table.data th[scope=row] { text-align: left; font-weight: normal; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
td.held { background: #fff4ec; }`;

/** One self-contained page: the sections, then chart.js inlined and the charts drawn. */
export function pageHtml(title: string, body: string, specs: readonly ChartSpec[]): string {
  const data = JSON.stringify(specs.map((s) => ({ id: s.id, config: s.config })));
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:">
<title>${esc(title)}</title>
<style>
${STYLE}
</style>
</head>
<body>
${body}
<script>${inlineScript(chartJsSource())}</script>
<script>
for (const spec of ${inlineScript(data)}) new Chart(document.getElementById('chart-' + spec.id), spec.config);
</script>
</body>
</html>
`;
}
