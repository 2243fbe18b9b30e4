import type { Command } from 'commander';
import { loadConfig } from '../config.js';
import { type CommandContext, examples, machineCommandOptions } from '../context.js';
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

interface MigrateOpts extends MachineOpts {
  total: string;
  folio: string;
  from: string;
  to: string;
  reason: string;
  mode: string;
  json?: boolean;
  config?: string;
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
  machineCommandOptions(cmd);
  examples(cmd, [
    'pagemig migrate',
    'pagemig migrate --total 256MiB --folio 4KiB --migrator ptdma -o channels=2',
    'pagemig migrate --migrator cpu-multithreaded -o threads=2 --reason numa_misplaced --mode async --json',
  ]);
  cmd.action(async (o: MigrateOpts) => {
    ctx.exit(await runCommand(ctx.io, 'migrate', !!o.json, () => migrate(ctx, o)));
  });
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
  const { config, file } = await loadConfig(io.cwd, o.config);
  const flags = machineFlags(o);
  const choice = migratorChoice(config, o);
  const mc = machineConfig(config, flags, {
    nodes: 2,
    nodeMemory: Math.ceil((total + (16 << 20)) / THP) * THP,
  });
  if (flags.batchPages !== undefined) mc.migrationBatchPages = flags.batchPages;
  if (Math.max(from, to) >= mc.nodes.length)
    throw usageError(`node ${Math.max(from, to)} does not exist: the machine has ${mc.nodes.length} node(s)`);

  const bar = createProgress(io, json, 2, 'migrate');
  const m = await openMachine(mc);
  try {
    const wired = await wireMigrators(m, ctx.drivers(), config, choice);
    // One untimed run first, so the figures are the warm JIT's and the migrator's steady state.
    await runMigration(m, { ...spec, total: Math.min(total, 4 << 20), seed: spec.seed + 1 });
    bar.tick('migrating');
    const r = await runMigration(m, spec);
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
        phases: res.phases,
        offload: res.offload,
        nrSucceeded: res.nrSucceeded,
        nrFailed: res.nrFailed,
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
    io.stdout.write(
      renderTable(
        ['GB/s', 'base pages/s', 'raw copy GB/s', 'x raw', 'wall ms', 'engine CPU ms', 'offloaded'].map(
          (h) => ({ header: h, align: 'right' as const }),
        ),
        [
          [
            gbps(r.bytesPerSec),
            `${(total / 4096 / res.wallSeconds / 1e6).toFixed(2)}M`,
            gbps(r.rawBytesPerSec),
            r.ratio.toFixed(2),
            (res.wallSeconds * 1000).toFixed(2),
            (res.cpuSeconds * 1000).toFixed(2),
            `${res.offload.foliosCopied}/${r.folios}`,
          ],
        ],
      ),
    );
    const p = res.phases;
    io.stdout.write(
      renderTable(
        ['phase', { header: 'ms', align: 'right' }, { header: 'share', align: 'right' }],
        (
          [
            ['unmap', p.unmap],
            ['TLB flush', p.flush],
            ['batch copy (migrator)', p.batchCopy],
            ['CPU copy', p.fallbackCopy],
            ['move', p.move],
          ] as const
        ).map(([name, s]) => [name, (s * 1000).toFixed(2), pct(s, res.wallSeconds)]),
      ),
    );
  } finally {
    bar.stop();
    await m.close();
  }
}
