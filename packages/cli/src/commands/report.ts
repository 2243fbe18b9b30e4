import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { type CommandContext, examples } from '../context.js';
import { CliError, ExitCode } from '../exit_codes.js';
import { emitJson } from '../io.js';
import { checkWritable } from '../output_paths.js';
import { parseBenchDocument, renderReport } from '../report/html.js';
import { runCommand } from '../run_command.js';

interface ReportOpts {
  output: string;
  json?: boolean;
}

/** Reads a bench JSON file, renders the report, writes it; returns where and which charts. */
export function writeReport(
  input: string,
  output: string,
): { output: string; bytes: number; charts: string[] } {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(input, 'utf8'));
  } catch (e) {
    throw new CliError(`cannot read ${input}: ${(e as Error).message}`, ExitCode.USAGE, 'ERR_BENCH_DOCUMENT');
  }
  const { html, charts } = renderReport(parseBenchDocument(raw, input));
  writeFileSync(output, html);
  return { output, bytes: Buffer.byteLength(html), charts };
}

export function registerReportCommand(program: Command, ctx: CommandContext): void {
  const cmd = program
    .command('report')
    .description('render the offline HTML report (charts inlined) from a `pagemig bench` JSON file')
    .argument('<bench.json>', 'results written by pagemig bench (--out)')
    .option('-o, --output <file>', 'HTML file to write', 'pagemig-report.html')
    .option('--json', 'print one JSON document (schemaVersion 1) on stdout instead of text');
  examples(cmd, ['pagemig report pagemig-bench.json', 'pagemig report results.json -o report.html --json']);
  cmd.action(async (file: string, o: ReportOpts) => {
    ctx.exit(
      await runCommand(ctx.io, 'report', !!o.json, async () => {
        const r = writeReport(
          path.resolve(ctx.io.cwd, file),
          checkWritable('--output', o.output, ctx.io.cwd),
        );
        if (o.json) emitJson(ctx.io, 'report', { ok: true, ...r });
        else
          ctx.io.stdout.write(
            `wrote ${r.output} (${r.charts.length} charts: ${r.charts.join(', ')}); it opens offline\n`,
          );
      }),
    );
  });
}
