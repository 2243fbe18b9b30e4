import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import {
  type AccessTrace,
  formatSize as exactSize,
  PAGE_SIZE,
  PagemigError,
  parseAccessCsv,
  parseDamoRecord,
} from '@pagemig/core';
import type { Command } from 'commander';
import type { CommandContext } from '../context.js';
import { examples } from '../context.js';
import { CliError, ExitCode, usageError } from '../exit_codes.js';
import { emitJson } from '../io.js';
import { intFlag, sizeFlag } from '../machine.js';
import { checkWritable, makeOutputDir } from '../output_paths.js';
import { createProgress } from '../progress.js';
import { runCommand } from '../run_command.js';
import { Reference } from '../scenarios/migration.js';
import { formatSize } from '../table.js';
import { parseCompare, parseTierMigrators } from '../tier/migrators.js';
import { renderTierReport } from '../tier/report.js';
import { runTier, type TierRunSpec } from '../tier/run.js';
import { ARRIVED_SHARE } from '../tier/sampler.js';
import { printTier, type TierDocument } from '../tier/text.js';
import type { TierWorkloadSpec } from '../tier/workload.js';

interface TierOpts {
  dram: string;
  cxl: string;
  workload: string;
  bytes: string;
  hot?: string;
  moveEvery?: string;
  zipfS?: string;
  writeShare: string;
  duration: string;
  seed: string;
  trace?: string;
  traceFormat?: string;
  sampleMs: string;
  scanPeriodMs: string;
  scanSizeMb: string;
  migrator?: string;
  compare?: string;
  out: string;
  json?: boolean;
}

const PATTERNS = ['hotset', 'zipf', 'uniform', 'scan'] as const;
const TWO_MIB = 2 << 20;

export function registerTierCommand(program: Command, ctx: CommandContext): void {
  const cmd = program
    .command('tier')
    .description(
      "memory tiering, the kernel's loop: kswapd demotes cold pages from DRAM to a CPU-less CXL node, NUMA balancing mode 2 promotes hot ones back; a workload larger than DRAM runs while the placement is sampled; per migrator: time for a moved hot set to reach DRAM, pages promoted and demoted, engine CPU per promoted page, modeled workload time",
    )
    .option('--dram <size>', 'memory of the DRAM node (node 0, the CPUs), a multiple of 2MiB', '64MiB')
    .option('--cxl <size>', 'memory of the CXL node (node 1, no CPUs), a multiple of 2MiB', '256MiB')
    .option('--workload <pattern>', `access pattern: ${PATTERNS.join(', ')}`, 'hotset')
    .option('--bytes <size>', "the workload's region (default: twice the DRAM node)")
    .option(
      '--hot <size>',
      'hotset: the hot range (default an eighth of the region); zipf: the top ranks timed after a move (default a tenth)',
    )
    .option('--move-every <ms>', 'hotset, zipf: move the hot set every this many ms (default 1000; 0: never)')
    .option('--zipf-s <s>', 'zipf: the exponent (default 0.99)')
    .option('--write-share <share>', 'share of the accesses that write, 0..1', '0.25')
    .option('--duration <ms>', 'how long the workload runs', '5000')
    .option('--seed <n>', 'seed of the workload (the same for every migrator of --compare)', '1')
    .option('--trace <file>', 'replay a recorded access trace instead of a generator')
    .option(
      '--trace-format <format>',
      "the trace's format: damo (damo record) or csv (default: by extension)",
    )
    .option('--sample-ms <ms>', 'how often the placement is sampled with move_pages(2)', '50')
    .option('--scan-period-ms <ms>', 'NUMA balancing scan period (min = max) for the run', '100')
    .option('--scan-size-mb <mb>', 'kernel.numa_balancing_scan_size_mb for the run', '256')
    .option(
      '-m, --migrator <spec>',
      "migrator for demotions and promotions: an id (cpu-serial, cpu-multithreaded, ptdma, sdxi, none = the kernel's CPU copy) or reason=id pairs (demotion=ptdma,numa_misplaced=sdxi)",
      'none',
    )
    .option('--compare <ids>', 'run the same workload once per migrator id (a,b,c), side by side')
    .option('--out <dir>', 'directory for tier.json and the offline HTML report tier.html', 'pagemig-tier')
    .option('--json', 'print one JSON document (schemaVersion 1) on stdout instead of text');
  examples(cmd, [
    'pagemig tier',
    'pagemig tier --compare cpu-serial,cpu-multithreaded,ptdma,sdxi --duration 10000',
    'pagemig tier --migrator demotion=ptdma,numa_misplaced=sdxi --workload zipf --zipf-s 1.2',
    'pagemig tier --trace damon.data --migrator ptdma --json',
  ]);
  cmd.action(async (o: TierOpts) => {
    ctx.exit(await runCommand(ctx.io, 'tier', !!o.json, () => tier(ctx, o)));
  });
}

/** A size flag that is a positive multiple of `unit`. */
function sizeMultiple(flag: string, value: string, unit: number): number {
  const bytes = sizeFlag(flag, value);
  if (bytes <= 0 || bytes % unit)
    throw usageError(`${flag}: ${JSON.stringify(value)} is not a positive multiple of ${formatSize(unit)}`);
  return bytes;
}

/** A number flag in [min, max]. */
function numberFlag(flag: string, value: string, min: number, max: number): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n < min || n > max)
    throw usageError(`${flag}: expected a number from ${min} to ${max}, got ${JSON.stringify(value)}`);
  return n;
}

/** --zipf-s: Zipf's exponent, above 0 (0 would make every page equally popular) and up to 10. */
function zipfExponent(value: string): number {
  const n = numberFlag('--zipf-s', value, 0, 10);
  if (n === 0)
    throw usageError(`--zipf-s: expected a number above 0 and up to 10, got ${JSON.stringify(value)}`);
  return n;
}

/** Reads and parses `--trace`; a parse error names the file (and the parser's line and field). */
function readTrace(
  file: string,
  format: string | undefined,
  cwd: string,
): { trace: AccessTrace; format: 'damo' | 'csv' } {
  const fmt = format ?? (file.toLowerCase().endsWith('.csv') ? 'csv' : 'damo');
  if (fmt !== 'damo' && fmt !== 'csv')
    throw usageError(`--trace-format: expected damo or csv, got ${JSON.stringify(format)}`);
  let bytes: Buffer;
  try {
    bytes = readFileSync(path.resolve(cwd, file));
  } catch (e) {
    throw usageError(`--trace ${file}: ${(e as Error).message}`);
  }
  let trace: AccessTrace;
  try {
    trace = fmt === 'csv' ? parseAccessCsv(bytes.toString('utf8')) : parseDamoRecord(new Uint8Array(bytes));
  } catch (e) {
    if (PagemigError.isInstance(e))
      throw new CliError(`--trace ${file}: ${e.message}`, ExitCode.USAGE, 'ERR_TRACE');
    throw e;
  }
  // A run that replays nothing measures nothing: say so instead of reporting it as a result.
  if (!trace.records.length)
    throw new CliError(`--trace ${file}: the trace has no records`, ExitCode.USAGE, 'ERR_TRACE');
  if (!trace.records.some((r) => r.regions.some((g) => g.accesses > 0)))
    throw new CliError(
      `--trace ${file}: every region of its ${trace.records.length} record(s) has 0 accesses: there is nothing to replay`,
      ExitCode.USAGE,
      'ERR_TRACE',
    );
  return { trace, format: fmt };
}

function workloadSpec(o: TierOpts, cwd: string, dram: number): TierWorkloadSpec {
  const bytes = o.bytes === undefined ? 2 * dram : sizeMultiple('--bytes', o.bytes, PAGE_SIZE);
  const common = {
    bytes,
    seed: intFlag('--seed', o.seed, 1, 2 ** 31 - 1),
    durationMs: intFlag('--duration', o.duration, 1, 2 ** 31 - 1),
    writeShare: numberFlag('--write-share', o.writeShare, 0, 1),
  };
  if (o.trace !== undefined) {
    for (const [flag, v] of [
      ['--hot', o.hot],
      ['--move-every', o.moveEvery],
      ['--zipf-s', o.zipfS],
    ] as const)
      if (v !== undefined)
        throw usageError(`${flag} is for the generators; --trace replays the trace as recorded`);
    const { trace, format } = readTrace(o.trace, o.traceFormat, cwd);
    return { ...common, kind: 'replay', trace, file: o.trace, format };
  }
  if (o.traceFormat !== undefined) throw usageError('--trace-format needs --trace');
  const pattern = o.workload as (typeof PATTERNS)[number];
  if (!PATTERNS.includes(pattern))
    throw usageError(`--workload: expected one of ${PATTERNS.join(', ')}, got ${JSON.stringify(o.workload)}`);
  const moving = pattern === 'hotset' || pattern === 'zipf';
  if (!moving && (o.hot !== undefined || o.moveEvery !== undefined))
    throw usageError(`${o.hot !== undefined ? '--hot' : '--move-every'} is for --workload hotset or zipf`);
  if (pattern !== 'zipf' && o.zipfS !== undefined) throw usageError('--zipf-s is for --workload zipf');
  const hotBytes = o.hot === undefined ? undefined : sizeMultiple('--hot', o.hot, PAGE_SIZE);
  if (hotBytes !== undefined && hotBytes > bytes)
    throw usageError(`--hot ${o.hot} is larger than the region (--bytes ${formatSize(bytes)})`);
  const moveEveryMs = moving ? intFlag('--move-every', o.moveEvery ?? '1000', 0, 2 ** 31 - 1) : 0;
  if (pattern === 'zipf' && moveEveryMs === 0 && hotBytes !== undefined)
    throw usageError('--hot with --workload zipf names the hot ranks that move: give --move-every > 0');
  return {
    ...common,
    kind: 'access',
    pattern,
    ...(hotBytes !== undefined ? { hotBytes } : {}),
    ...(moveEveryMs > 0 ? { moveEveryMs } : {}),
    ...(o.zipfS !== undefined ? { zipfS: zipfExponent(o.zipfS) } : {}),
  };
}

/** Seconds to copy one 4 KiB page on this machine now (TypedArray.set between warm buffers). */
function rawPageSeconds(): number {
  return PAGE_SIZE / new Reference().pass(4 << 20, PAGE_SIZE);
}

async function tier(ctx: CommandContext, o: TierOpts): Promise<void> {
  const { io } = ctx;
  const dramBytes = sizeMultiple('--dram', o.dram, TWO_MIB);
  const cxlBytes = sizeMultiple('--cxl', o.cxl, TWO_MIB);
  if (o.compare !== undefined && o.migrator !== 'none' && o.migrator !== undefined)
    throw usageError('--compare and --migrator: give one of them');
  const runs =
    o.compare !== undefined
      ? parseCompare(o.compare)
      : [parseTierMigrators('--migrator', o.migrator ?? 'none')];
  const workload = workloadSpec(o, io.cwd, dramBytes);
  if (workload.bytes > dramBytes + cxlBytes - TWO_MIB * 2)
    throw usageError(
      // Exact sizes (1TiB, not "1020GiB"), and the default named as one: the user may not have given it.
      `--bytes ${o.bytes === undefined ? `${exactSize(workload.bytes)} (the default: twice --dram)` : exactSize(workload.bytes)} does not fit in DRAM + CXL (${exactSize(dramBytes)} + ${exactSize(cxlBytes)}, less their watermarks)`,
    );
  const spec: TierRunSpec = {
    dramBytes,
    cxlBytes,
    workload,
    sampleMs: intFlag('--sample-ms', o.sampleMs, 1, 60_000),
    scan: {
      scanDelayMs: 0,
      scanPeriodMs: intFlag('--scan-period-ms', o.scanPeriodMs, 1, 2 ** 31 - 1),
      scanSizeMb: intFlag('--scan-size-mb', o.scanSizeMb, 1, 2 ** 31 - 1),
    },
  };
  makeOutputDir('--out', o.out, io.cwd);
  const jsonFile = checkWritable('--out', path.join(o.out, 'tier.json'), io.cwd);
  const htmlFile = checkWritable('--out', path.join(o.out, 'tier.html'), io.cwd);

  const bar = createProgress(io, !!o.json, runs.length, 'tier');
  const results = [];
  try {
    for (const mig of runs) {
      bar.tick(mig.label);
      results.push(await runTier(ctx.drivers(), spec, mig));
    }
  } finally {
    bar.stop();
  }
  const rawPage = rawPageSeconds();
  const { trace: _trace, ...workloadJson } = workload as TierWorkloadSpec & { trace?: AccessTrace };
  const doc: TierDocument = {
    machine: {
      nodes: [
        { node: 0, tier: 'dram', memory: dramBytes, cpus: true },
        { node: 1, tier: 'cxl', memory: cxlBytes, cpus: false },
      ],
    },
    workload: {
      ...workloadJson,
      ...(workload.kind === 'replay' ? { records: workload.trace.records.length } : {}),
    },
    sampling: {
      everyMs: spec.sampleMs,
      how: 'move_pages(2) with nodes = NULL from the main thread',
      arrivedShare: ARRIVED_SHARE,
    },
    scan: spec.scan,
    rawCopy4KiBSeconds: rawPage,
    runs: results.map((r) => ({
      ...r,
      promotion: {
        ...r.promotion,
        cpuPerPageVsRawCopy:
          r.promotion.cpuPerPageSeconds === null ? null : r.promotion.cpuPerPageSeconds / rawPage,
      },
    })),
    files: { json: jsonFile, html: htmlFile },
  };
  writeFileSync(jsonFile, `${JSON.stringify({ schemaVersion: 1, command: 'tier', ...doc }, null, 2)}\n`);
  writeFileSync(htmlFile, renderTierReport(doc).html);
  if (o.json) emitJson(io, 'tier', { ok: true, ...doc });
  else printTier(io, doc);
}
