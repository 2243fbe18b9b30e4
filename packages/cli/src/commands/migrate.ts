import { formatSize as exactSize, type MachineConfig, type MigrationPhases } from '@pagemig/core';
import type { Command } from 'commander';
import { loadConfig } from '../config.js';
import { type CommandContext, examples, machineCommandOptions } from '../context.js';
import { cpuClockResolution, cpuMs, cpuStepMs } from '../cpu_clock.js';
import { usageError } from '../exit_codes.js';
import { emitJson } from '../io.js';
import {
  describeMachine,
  intFlag,
  machineConfig,
  migratorChoice,
  openMachine,
  sizeFlag,
  wireMigrators,
} from '../machine.js';
import {
  addMachineFlags,
  addMigratorFlags,
  type MachineOpts,
  machineFlags,
  modeFlag,
  reasonFlag,
} from '../machine_flags.js';
import { createProgress } from '../progress.js';
import { runCommand } from '../run_command.js';
import { checkFolioSize, runMigration } from '../scenarios/migration.js';
import { formatSize, gbps, pct, renderTable } from '../table.js';
import { addTimelineFlag, checkTimelineFlag, timelineLine, withTimeline } from '../timeline.js';

interface MigrateOpts extends MachineOpts {
  total: string;
  folio: string;
  from: string;
  to: string;
  reason: string;
  mode: string;
  json?: boolean;
  config?: string;
  timeline?: string;
}

const THP = 2 << 20;

export function registerMigrateCommand(program: Command, ctx: CommandContext): void {
  const cmd = program
    .command('migrate')
    .description(
      "migrate a process's memory between nodes once; verify every byte; print throughput, phases, CPU time",
    )
    .option('--total <size>', 'bytes to migrate', '64MiB')
    .option('--folio <size>', 'folio size: 4KiB, 16KiB .. 1MiB (mTHP) or 2MiB (THP)', '2MiB')
    .option('--from <nid>', 'source node', '0')
    .option('--to <nid>', 'target node', '1')
    .option(
      '--reason <name>',
      "migrate reason (routes the copy; see the kernel's MR_* names)",
      'syscall_or_cpuset',
    )
    .option(
      '--mode <mode>',
      'MIGRATE_ASYNC, MIGRATE_SYNC_LIGHT or MIGRATE_SYNC (or async, sync-light, sync)',
      'MIGRATE_SYNC',
    );
  addMachineFlags(cmd);
  addMigratorFlags(cmd);
  addTimelineFlag(cmd);
  machineCommandOptions(cmd);
  examples(cmd, [
    'pagemig migrate',
    'pagemig migrate --folio 4KiB --migrator ptdma -o channels=2 --timeline run.json',
    'pagemig migrate --total 256MiB --folio 4KiB --migrator ptdma -o channels=2',
    'pagemig migrate --migrator cpu-multithreaded -o threads=2 --reason numa_misplaced --mode async --json',
  ]);
  cmd.action(async (o: MigrateOpts) => {
    ctx.exit(await runCommand(ctx.io, 'migrate', !!o.json, () => migrate(ctx, o)));
  });
}

/**
 * Both nodes must hold the run: its folios, their page tables (one 4KiB page per 512 base pages)
 * and the allocator's watermarks, rounded up to whole 2MiB pageblocks. Checked before anything
 * runs, so a machine too small is a usage error rather than an ENOMEM halfway through.
 */
export function nodeMemoryNeeded(total: number): number {
  return Math.ceil((total + total / 512 + 1) / THP) * THP;
}

function checkRoom(
  mc: MachineConfig,
  r: { total: number; from: number; to: number; nodeMemoryFlag?: string; configName?: string },
): void {
  const need = nodeMemoryNeeded(r.total);
  for (const nid of [r.from, r.to]) {
    const have = sizeFlag('--node-memory', mc.nodes[nid]!.memory);
    if (have >= need) continue;
    const source =
      r.nodeMemoryFlag !== undefined
        ? `--node-memory ${r.nodeMemoryFlag}`
        : r.configName !== undefined
          ? `node ${nid} of ${r.configName} (${exactSize(have)})`
          : `node ${nid} (${exactSize(have)})`;
    throw usageError(
      `--total ${exactSize(r.total)} does not fit ${source}: nodes ${r.from} and ${r.to} need at least ${exactSize(need)} each (the folios, their page tables and the watermarks); raise --node-memory or lower --total`,
    );
  }
}

/** Every phase of migrate_pages() as ms and share of the wall time; `other` is the rest, so the shares add up. */
export function phaseTable(p: MigrationPhases, wallSeconds: number): string {
  const measured = p.unmap + p.flush + p.batchCopy + p.fallbackCopy + p.move;
  const rows: [string, number][] = [
    ['unmap (allocate, unmap)', p.unmap],
    ['TLB flush', p.flush],
    ['batch copy (migrator)', p.batchCopy],
    ['CPU copy', p.fallbackCopy],
    ['move', p.move],
    ['other (batching, retries, putback, tracing)', Math.max(0, wallSeconds - measured)],
  ];
  return renderTable(
    ['phase', { header: 'ms', align: 'right' }, { header: 'share', align: 'right' }],
    [
      ...rows.map(([name, s]) => [name, (s * 1000).toFixed(2), pct(s, wallSeconds)]),
      ['wall time', (wallSeconds * 1000).toFixed(2), '100%'],
    ],
  );
}

async function migrate(ctx: CommandContext, o: MigrateOpts): Promise<void> {
  const { io } = ctx;
  const json = !!o.json;
  const total = sizeFlag('--total', o.total);
  const folio = checkFolioSize(sizeFlag('--folio', o.folio));
  if (total === 0 || total % folio !== 0)
    throw usageError(`--total ${o.total} must be a positive multiple of the folio size ${formatSize(folio)}`);
  const from = intFlag('--from', o.from, 0, 63);
  const to = intFlag('--to', o.to, 0, 63);
  if (from === to) throw usageError(`--from and --to are both node ${from}; migrate between two nodes`);
  const spec = {
    total,
    folio,
    from,
    to,
    mode: modeFlag(o.mode),
    reason: reasonFlag(o.reason),
    seed: Date.now(),
  };
  checkTimelineFlag(o.timeline, io.cwd);
  const { config, file, name } = await loadConfig(io.cwd, o.config);
  const flags = machineFlags(o);
  const choice = migratorChoice(config, o);
  const mc = machineConfig(config, flags, {
    nodes: 2,
    // 16 MiB of headroom, and never less than checkRoom asks (page tables grow with --total).
    nodeMemory: Math.ceil(Math.max(total + (16 << 20), nodeMemoryNeeded(total)) / THP) * THP,
  });
  if (flags.batchPages !== undefined) mc.migrationBatchPages = flags.batchPages;
  for (const [flag, nid] of [
    ['--from', from],
    ['--to', to],
  ] as const)
    if (nid >= mc.nodes.length)
      throw usageError(
        `${flag} ${nid}: node ${nid} does not exist: the machine has ${mc.nodes.length} node(s)`,
      );
  checkRoom(mc, { total, from, to, nodeMemoryFlag: o.nodeMemory, configName: name });

  const bar = createProgress(io, json, 2, 'migrate');
  const m = await openMachine(mc, { configName: name, flags });
  try {
    const wired = await wireMigrators(m, ctx.drivers(), config, choice, name);
    // One untimed run first, so the figures are the warm JIT's and the migrator's steady state.
    await runMigration(m, { ...spec, total: Math.min(total, 4 << 20), seed: spec.seed + 1 });
    bar.tick('migrating');
    const { value: r, timeline } = await withTimeline(m, o.timeline, io.cwd, () => runMigration(m, spec));
    bar.tick('done');
    bar.stop();
    const res = r.result;
    const machine = describeMachine(mc);
    if (json) {
      emitJson(io, 'migrate', {
        ok: true,
        config: file,
        machine: machine.json,
        migrator: { id: choice.id, options: choice.options, routes: wired.routes },
        request: { total, folio, from, to, mode: spec.mode, reason: spec.reason },
        folios: r.folios,
        verified: r.verified,
        bytesPerSec: r.bytesPerSec,
        basePagesPerSec: total / 4096 / res.wallSeconds,
        rawBytesPerSec: r.rawBytesPerSec,
        ratio: r.ratio,
        wallSeconds: res.wallSeconds,
        cpuSeconds: res.cpuSeconds,
        cpuClockResolutionSeconds: cpuClockResolution(),
        phases: res.phases,
        offload: res.offload,
        nrSucceeded: res.nrSucceeded,
        nrFailed: res.nrFailed,
        ...(timeline ? { timeline } : {}),
      });
      return;
    }
    const who =
      choice.id === 'none'
        ? 'none (kernel CPU copy)'
        : `${choice.id}${Object.keys(choice.options).length ? ` ${JSON.stringify(choice.options)}` : ''}`;
    io.stdout.write(
      `machine: ${machine.text}${file ? ` (config ${file})` : ''}; migrator: ${who}; ${spec.reason}, ${spec.mode}\n`,
    );
    io.stdout.write(
      `migrated ${formatSize(total)} = ${r.folios} folios of ${formatSize(folio)} from node ${from} to node ${to}: every byte and the invariants verified\n`,
    );
    const step = cpuClockResolution();
    io.stdout.write(
      renderTable(
        [
          'GB/s',
          'base pages/s',
          'raw copy GB/s',
          'x raw',
          'wall ms',
          `engine CPU ms (±${cpuStepMs(step)})`,
          'offloaded',
        ].map((h) => ({ header: h, align: 'right' as const })),
        [
          [
            gbps(r.bytesPerSec),
            `${(total / 4096 / res.wallSeconds / 1e6).toFixed(2)}M`,
            gbps(r.rawBytesPerSec),
            r.ratio.toFixed(2),
            (res.wallSeconds * 1000).toFixed(2),
            cpuMs(res.cpuSeconds, step),
            `${res.offload.foliosCopied}/${r.folios}`,
          ],
        ],
      ),
    );
    io.stdout.write(phaseTable(res.phases, res.wallSeconds));
    if (timeline) io.stdout.write(timelineLine(timeline));
    io.stdout.write(
      `engine CPU: the engine thread's schedstat, which moves in steps of about ${cpuStepMs(step)} ms here (scheduler ticks)\n` +
        `CPU copy: the move phase's copy loop: folios no migrator copied are copied on the CPU, and every folio's copied mark is checked${res.offload.foliosCopied === r.folios ? ' (all were offloaded: this is the checking)' : ''}\n`,
    );
  } finally {
    bar.stop();
    await m.close();
  }
}
