import { z } from 'zod';
import type { BenchDocument } from '../bench/schema.js';
import { BENCH_SCHEMA_VERSION } from '../bench/schema.js';
import { CliError, ExitCode } from '../exit_codes.js';
import type { ModeledBenchDocument } from '../modeled/document.js';
import { timelinesHtml } from '../timeline.js';
import { chartSpecs, migratorsOf } from './chart_data.js';
import { chartSectionHtml, esc, pageHtml } from './markup.js';
import { renderModeledReport } from './modeled.js';
import { colourKeyHtml } from './palette.js';

const realShape = z
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

const modeledShape = z
  .object({
    schemaVersion: z.literal(BENCH_SCHEMA_VERSION),
    command: z.literal('bench'),
    clock: z.literal('modeled'),
    profile: z.string(),
    cells: z.array(z.unknown()),
    lanes: z.array(z.unknown()),
    copyShare: z.array(z.unknown()),
    notes: z.array(z.string()),
  })
  .loose();

/**
 * Checks that `input` is a `pagemig bench` results document this version can render: measured
 * (`clock: 'real'`) or modeled (`--clock modeled`).
 */
export function parseBenchDocument(input: unknown, file: string): BenchDocument | ModeledBenchDocument {
  const modeled = (input as { clock?: unknown } | null)?.clock === 'modeled';
  const r = (modeled ? modeledShape : realShape).safeParse(input);
  if (!r.success) {
    const issue = r.error.issues[0]!;
    throw new CliError(
      `${file} is not a pagemig bench result (schemaVersion ${BENCH_SCHEMA_VERSION}): ${issue.path.join('.') || '(top level)'}: ${issue.message}`,
      ExitCode.USAGE,
      'ERR_BENCH_DOCUMENT',
    );
  }
  return r.data as unknown as BenchDocument | ModeledBenchDocument;
}

/** The caveat every measured report carries: what "channels" and "threads" are on this host. */
export function sharedCoresCaveat(cores: number): string {
  return (
    `This host has ${cores} core${cores === 1 ? '' : 's'} (os.availableParallelism() = ${cores}), and everything shares them: ` +
    'the migrating thread, cpu-multithreaded’s worker threads, and the emulated DMA engines (ptdma runs one worker thread per channel, ' +
    'sdxi one worker thread for all its contexts). More threads or channels than cores cannot scale here, and an emulated engine’s copy ' +
    'costs host CPU time that a real engine’s would not. The series measured real PTDMA hardware on a 2-socket Zen 3 EPYC.'
  );
}

function renderMeasuredReport(doc: BenchDocument): { html: string; charts: string[] } {
  const specs = chartSpecs(doc);
  const e = doc.environment;
  const maps = doc.compaction
    .map(
      (r) =>
        `<figure>${r.mapSvg}<figcaption>${esc(r.label)}: ${r.pagesMigrated} pages migrated, status ${esc(r.status)}</figcaption></figure>`,
    )
    .join('\n');
  const notes = doc.notes.map((n) => `<li>${esc(n)}</li>`).join('');
  const body = `<h1>pagemig bench report</h1>
<p>${esc(doc.preset)} preset, real clock; ${esc(e.cpuModel)}, ${e.availableParallelism} CPUs, Node ${esc(e.node)}; ${esc(e.date)}; batches of ${doc.settings.migrationBatchPages} base pages, medians of ${doc.settings.reps} run(s). Every throughput is shown beside the same run's raw copy of the same bytes.</p>
<p class="caveat" id="caveat">${esc(sharedCoresCaveat(e.availableParallelism))}</p>
${colourKeyHtml(migratorsOf(doc), doc.modeled ? ` <span class="key">dashed, hollow triangles: modeled (profile ${esc(doc.modeled.profile)}), not measured</span>` : '')}
${specs.map(chartSectionHtml).join('\n')}
${maps ? `<section><h2>Compaction zone map, before and after</h2>${maps}</section>` : ''}
${timelinesHtml(doc.timelines)}
<section><h2>Notes</h2><ul>${notes}</ul></section>`;
  return { html: pageHtml('pagemig bench report', body, specs), charts: specs.map((s) => s.id) };
}

/** One self-contained HTML page: the charts (chart.js, inlined) with their numbers, the zone maps (SVG) and notes. */
export function renderReport(doc: BenchDocument | ModeledBenchDocument): { html: string; charts: string[] } {
  return doc.clock === 'modeled' ? renderModeledReport(doc) : renderMeasuredReport(doc);
}
