import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { publishedData } from '@pagemig/core/timing';
import { EXPERIMENTS, type Experiment } from '../bench/suite.js';
import { renderReport } from '../report/html.js';
import { renderTable } from '../table.js';
import { type ModeledBenchDocument, modeledBenchDocument } from './document.js';
import { findingsRows } from './findings.js';
import { defaultIo, emit, fixed2, type ModeledIo, pct, runModeled, share } from './output.js';
import { profileOption } from './predict.js';

const ACCEPTANCE = 0.2;

/** Rows of one published table: published, modeled and error lines per row label. */
function tableText(doc: ModeledBenchDocument, table: string, title: string): string {
  const cells = doc.cells.filter((c) => c.table === table);
  const columns = [...new Set(cells.map((c) => c.column))];
  const rows = [...new Set(cells.map((c) => c.row))];
  const lines: string[][] = [];
  for (const row of rows) {
    const of = (col: string) => cells.find((c) => c.row === row && c.column === col);
    const held = cells.some((c) => c.row === row && c.heldOut);
    lines.push([row, 'published', ...columns.map((col) => (of(col) ? fixed2(of(col)!.GBps) : ''))]);
    lines.push([
      '',
      held ? 'modeled (held out)' : 'modeled (fitted)',
      ...columns.map((col) => (of(col) ? fixed2(of(col)!.predictedGBps) : '')),
    ]);
    lines.push([
      '',
      'error',
      ...columns.map((col) => (of(col) ? `${pct(of(col)!.error)}${of(col)!.heldOut ? '*' : ''}` : '')),
    ]);
  }
  return `${table} ${title} (GB/s)\n${renderTable(['', '', ...columns.map((c) => ({ header: c, align: 'right' as const }))], lines)}`;
}

function documentText(doc: ModeledBenchDocument): string {
  let out = `pagemig bench (${doc.preset}), MODELED clock: profile ${doc.profile} - every GB/s below marked "modeled" is the timing model's prediction, not a measurement\n`;
  const data = publishedData[doc.profile];
  if (!data || !doc.findings)
    return `${out}No published measurements exist for profile ${doc.profile}; use \`pagemig predict --profile ${doc.profile}\`.\n`;
  out +=
    "published: the series' RFC V2 and RFC V3 cover letters (https://lore.kernel.org/all/20250319192211.10092-1-shivankg@amd.com/ , https://lore.kernel.org/all/20250923174752.35701-1-shivankg@amd.com/ ; tables 7.3x and 7.4x are their tables x); error = modeled / published - 1; * = held out (never fitted, predicted)\n\n";
  for (const t of doc.tables) out += `${tableText(doc, t.id, `${t.title}, ${t.source}`)}\n`;
  const rows = findingsRows(doc.findings, data.measurements, doc.experiments);
  if (rows.length)
    out += `Published findings, recomputed by the model\n${renderTable(['finding', 'published', 'modeled'], rows)}`;
  const held = doc.cells.filter((c) => c.heldOut).length;
  if (doc.cells.length) {
    out += `\nheld-out cells: ${held}, median |error| of the modeled values ${share(doc.heldOutMedianAbsError ?? 0)} (acceptance <= ${share(ACCEPTANCE)})\n`;
    out += `fitted cells: ${doc.cells.length - held}, median |error| ${share(doc.fittedMedianAbsError ?? 0)}\n`;
  }
  for (const n of doc.notes) out += `note: ${n}\n`;
  return out;
}

export interface ModeledBenchOptions {
  /** A shipped profile name or a profile .json file. */
  profile: string;
  json: boolean;
  /** The quick preset's folio sizes and total-size points (default: every published cell). */
  quick?: boolean;
  /** Experiments to keep (default all): folio (tables 7.4a-c, 7.3d), size (7.4d), share; compaction is not modeled. */
  only?: readonly Experiment[];
  /** Results JSON to write (none when absent). */
  out?: string;
  /** HTML report to write. */
  html?: string;
  /** Directory `out` and `html` are relative to (default: the process's). */
  cwd?: string;
}

/** `pagemig bench --clock modeled --profile P`: the model's predictions next to the published tables. */
export async function runModeledBench(
  opts: ModeledBenchOptions,
  io: ModeledIo = defaultIo(),
): Promise<number> {
  return runModeled(io, 'bench', opts.json, () => {
    const p = profileOption(opts.profile);
    const doc = modeledBenchDocument(p, { quick: !!opts.quick, only: opts.only ?? EXPERIMENTS });
    const cwd = opts.cwd ?? process.cwd();
    const results = opts.out === undefined ? null : path.resolve(cwd, opts.out);
    const report = opts.html === undefined ? null : path.resolve(cwd, opts.html);
    if (results) writeFileSync(results, `${JSON.stringify(doc, null, 2)}\n`);
    if (report) writeFileSync(report, renderReport(doc).html);
    if (opts.json) {
      emit(io, 'bench', { ...doc, ok: true, files: { results, report } } as unknown as Record<
        string,
        unknown
      >);
      return 0;
    }
    let out = documentText(doc);
    if (results || report)
      out += `${[results && `results: ${results}`, report && `report: ${report}`].filter(Boolean).join('; ')}\n`;
    io.stdout.write(out);
    return 0;
  });
}
