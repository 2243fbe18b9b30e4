import { writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { PRESETS } from '../bench/presets.js';
import { formatBench } from '../bench/print.js';
import { EXPERIMENTS, type Experiment, runSuite } from '../bench/suite.js';
import { loadConfig } from '../config.js';
import { type CommandContext, examples, machineCommandOptions } from '../context.js';
import { usageError } from '../exit_codes.js';
import { intFlag, sizeFlag } from '../machine.js';
import { runModeledBench } from '../modeled/index.js';
import { modelSweep, sweepProfile } from '../modeled/sweep.js';
import { checkWritable } from '../output_paths.js';
import { createProgress, type Progress } from '../progress.js';
import { renderReport } from '../report/html.js';
import { runCommand } from '../run_command.js';
import { addTimelineFlag, benchTimelinesWritten, recordBenchTimelines, timelineLine } from '../timeline.js';

interface BenchOpts {
  quick?: boolean;
  only?: string;
  maxTotal?: string;
  reps?: string;
  batchPages?: string;
  out: string;
  html?: string;
  clock: string;
  profile?: string;
  json?: boolean;
  config?: string;
  timeline?: string;
  timelineCase?: string;
}

function onlyFlag(value: string | undefined): Experiment[] {
  if (value === undefined) return [...EXPERIMENTS];
  const list = value.split(',').map((s) => s.trim());
  for (const x of list)
    if (!(EXPERIMENTS as readonly string[]).includes(x))
      throw usageError(
        `--only: unknown experiment ${JSON.stringify(x)}; use a list of ${EXPERIMENTS.join(', ')}`,
      );
  return list as Experiment[];
}

export function registerBenchCommand(program: Command, ctx: CommandContext): void {
  const cmd = program
    .command('bench')
    .description(
      "the series' experiments on this machine: folio-size sweep x migrators x threads/channels, total-size sweep, copy share, busy-system compaction; every figure beside the same run's raw copy",
    )
    .option(
      '--quick',
      'the quick preset (under a minute): 3 folio sizes, 16MiB runs, 1-2 lanes, one run per point',
    )
    .option('--only <list>', `experiments to run, comma-separated: ${EXPERIMENTS.join(',')}`)
    .option(
      '--max-total <size>',
      'cap on the bytes of one run (default 64MiB quick, 1GiB full; lowered to fit free RAM)',
    )
    .option('--reps <n>', 'runs per point, medians reported (default 1 quick, 3 full)')
    .option(
      '--batch-pages <n>',
      'NR_MAX_BATCHED_MIGRATION in base pages (default 262144: the series raised the limit for its runs)',
    )
    .option('--out <file>', 'results JSON file', 'pagemig-bench.json')
    .option('--html <file>', 'also render the HTML report to this file')
    .option('--clock <clock>', 'real (measure here) or modeled (predict with a hardware profile)', 'real')
    .option(
      '--profile <name>',
      'hardware profile: with --clock modeled the one to predict with (default zen3-epyc-ptdma); on the real clock the report draws its predictions for the same runs beside the measured ones',
    );
  addTimelineFlag(cmd, true);
  machineCommandOptions(cmd);
  examples(cmd, [
    'pagemig bench --quick',
    'pagemig bench --quick --only folio --timeline t.json --html report.html',
    'pagemig bench --quick --html report.html',
    'pagemig bench --only folio,share --reps 5 --out results.json',
    'pagemig bench --max-total 4GiB',
    'pagemig bench --clock modeled --profile zen3-epyc-ptdma',
  ]);
  cmd.action(async (o: BenchOpts) => {
    ctx.exit(await runCommand(ctx.io, 'bench', !!o.json, () => bench(ctx, o)));
  });
}

async function bench(ctx: CommandContext, o: BenchOpts): Promise<number> {
  // --clock modeled hands over to the timing model, which returns its own exit code.
  const { io } = ctx;
  const json = !!o.json;
  // Every output path is checked before the run, so a long run never ends in a write error.
  const out = checkWritable('--out', o.out, io.cwd);
  const html = o.html === undefined ? null : checkWritable('--html', o.html, io.cwd);
  if (o.clock === 'modeled')
    return runModeledBench(
      {
        profile: o.profile ?? 'zen3-epyc-ptdma',
        json,
        quick: !!o.quick,
        only: onlyFlag(o.only),
        out: o.out,
        html: o.html,
        cwd: io.cwd,
      },
      io,
    );
  if (o.clock !== 'real')
    throw usageError(`--clock: expected real or modeled, got ${JSON.stringify(o.clock)}`);
  const preset = PRESETS[o.quick ? 'quick' : 'full'];
  const only = onlyFlag(o.only);
  const profile = o.profile === undefined ? undefined : sweepProfile(o.profile);
  const maxTotal = o.maxTotal === undefined ? preset.maxTotal : sizeFlag('--max-total', o.maxTotal);
  // The sweep's smallest run is one 2 MiB folio: a smaller cap would be raised to it silently.
  if (maxTotal < 2 << 20)
    throw usageError(`--max-total: ${JSON.stringify(o.maxTotal)} is below one 2MiB folio, the smallest run`);
  const reps = o.reps === undefined ? preset.reps : intFlag('--reps', o.reps, 1, 100);
  const { config } = await loadConfig(io.cwd, o.config);
  const batchPages =
    o.batchPages !== undefined
      ? intFlag('--batch-pages', o.batchPages, 1, 1 << 20)
      : (config.machine?.migrationBatchPages ?? 1 << 18);

  if (o.timelineCase !== undefined && o.timeline === undefined)
    throw usageError('--timeline-case chooses the case --timeline records: give --timeline <file> too');
  // Set (or cleared) on every run: a failed run earlier in this process leaves nothing behind.
  recordBenchTimelines(
    o.timeline === undefined ? null : { file: o.timeline, only: o.timelineCase, cwd: io.cwd },
  );
  let bar: Progress = { tick() {}, stop() {} };
  const doc = await runSuite(
    ctx.drivers(),
    { preset, maxTotal, reps, batchPages, only },
    (steps) => {
      bar = createProgress(io, json, steps, `bench ${preset.name}`);
    },
    (label) => bar.tick(label),
  ).finally(() => bar.stop());
  if (o.timeline !== undefined) {
    // The report links the files relative to where it is written (the results file without one).
    doc.timelines = benchTimelinesWritten(path.dirname(html ?? out));
    recordBenchTimelines(null);
  }
  if (profile) doc.modeled = modelSweep(doc, profile);

  writeFileSync(out, `${JSON.stringify(doc, null, 2)}\n`);
  if (html) writeFileSync(html, renderReport(doc).html);
  if (json) {
    io.stdout.write(
      `${JSON.stringify({ ...doc, ok: true, files: { results: out, report: html } }, null, 2)}\n`,
    );
  } else {
    io.stdout.write(formatBench(doc));
    for (const t of doc.timelines ?? []) io.stdout.write(timelineLine(t));
    io.stdout.write(`results: ${out}${html ? `; report: ${html}` : ''}; ${doc.seconds.toFixed(1)} s\n`);
  }
  return 0;
}
