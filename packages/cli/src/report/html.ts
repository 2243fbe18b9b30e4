import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { z } from 'zod';
import type { BenchDocument } from '../bench/schema.js';
import { BENCH_SCHEMA_VERSION } from '../bench/schema.js';
import { CliError, ExitCode } from '../exit_codes.js';
import { chartSpecs } from './chart_data.js';

let chartJs: string | undefined;
/** chart.js's UMD bundle, inlined so the page needs no network. */
function chartJsSource(): string {
  if (chartJs === undefined) {
    const main = createRequire(import.meta.url).resolve('chart.js');
    chartJs = readFileSync(path.join(path.dirname(main), 'chart.umd.min.js'), 'utf8');
  }
  return chartJs;
}

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
/** Keeps `</script>` and `<!--` inside inlined code from ending the script element. */
const inlineScript = (s: string) => s.replace(/<\/(script)/gi, '<\\/$1').replace(/<!--/g, '<\\!--');

const docShape = z
  .object({
    schemaVersion: z.literal(BENCH_SCHEMA_VERSION),
    command: z.literal('bench'),
    environment: z.object({ cpuModel: z.string(), node: z.string(), date: z.string() }).loose(),
    folioSweep: z.array(z.unknown()),
    sizeSweep: z.array(z.unknown()),
    copyShare: z.array(z.unknown()),
    compaction: z.array(z.unknown()),
    notes: z.array(z.string()),
  })
  .loose();

/** Checks that `input` is a `pagemig bench --json` document this version can render. */
export function parseBenchDocument(input: unknown, file: string): BenchDocument {
  const r = docShape.safeParse(input);
  if (!r.success) {
    const issue = r.error.issues[0]!;
    throw new CliError(
      `${file} is not a pagemig bench result (schemaVersion ${BENCH_SCHEMA_VERSION}): ${issue.path.join('.') || '(top level)'}: ${issue.message}`,
      ExitCode.USAGE,
      'ERR_BENCH_DOCUMENT',
    );
  }
  return r.data as unknown as BenchDocument;
}

/** One self-contained HTML page: the charts (chart.js, inlined), the zone maps (SVG) and notes. */
export function renderReport(doc: BenchDocument): { html: string; charts: string[] } {
  const specs = chartSpecs(doc);
  const e = doc.environment;
  const sections = specs
    .map(
      (s) =>
        `<section><h2>${esc(s.title)}</h2><canvas id="chart-${s.id}" width="900" height="380"></canvas></section>`,
    )
    .join('\n');
  const maps = doc.compaction
    .map(
      (r) =>
        `<figure>${r.mapSvg}<figcaption>${esc(r.label)}: ${r.pagesMigrated} pages migrated, status ${esc(r.status)}</figcaption></figure>`,
    )
    .join('\n');
  const notes = doc.notes.map((n) => `<li>${esc(n)}</li>`).join('');
  const data = JSON.stringify(specs.map((s) => ({ id: s.id, config: s.config })));
  const html = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:">
<title>pagemig bench report</title>
<style>
body { font: 14px/1.4 system-ui, sans-serif; margin: 2rem; color: #222; }
section, figure { margin: 2rem 0; }
figcaption { color: #555; }
</style>
</head>
<body>
<h1>pagemig bench report</h1>
<p>${esc(doc.preset)} preset, real clock; ${esc(e.cpuModel)}, ${e.availableParallelism} CPUs, Node ${esc(e.node)}; ${esc(e.date)}. Every throughput is shown beside the same run's raw copy of the same bytes.</p>
${sections}
${maps ? `<section><h2>Compaction zone map, before and after</h2>${maps}</section>` : ''}
<section><h2>Notes</h2><ul>${notes}</ul></section>
<script>${inlineScript(chartJsSource())}</script>
<script>
for (const spec of ${inlineScript(data)}) new Chart(document.getElementById('chart-' + spec.id), spec.config);
</script>
</body>
</html>
`;
  return { html, charts: specs.map((s) => s.id) };
}
