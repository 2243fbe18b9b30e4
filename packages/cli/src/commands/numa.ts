import { PAGE_SIZE } from '@pagemig/core';
import { attachNumaBalancing, NUMA_COUNTERS } from '@pagemig/numa-balancing';
import type { Command } from 'commander';
import { loadConfig } from '../config.js';
import { type CommandContext, examples, machineCommandOptions } from '../context.js';
import { CliError, ExitCode, usageError } from '../exit_codes.js';
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
import { addMachineFlags, addMigratorFlags, type MachineOpts, machineFlags } from '../machine_flags.js';
import { createProgress } from '../progress.js';
import { runCommand } from '../run_command.js';
import { startRemoteHotSet } from '../scenarios/remote_hot_set.js';
import { pct, renderTable } from '../table.js';

interface NumaOpts extends MachineOpts {
  hot: string;
  cold: string;
  folio: string;
  scanDelayMs: string;
  scanPeriodMs: string;
  scanSizeMb: string;
  timeout: string;
  json?: boolean;
  config?: string;
}

const THP = 2 << 20;
/** How often convergence is checked (ms). */
const POLL_MS = 5;

export function registerNumaCommand(program: Command, ctx: CommandContext): void {
  const cmd = program
    .command('numa')
    .description(
      "NUMA balancing: a thread on node 1 writes memory on node 0; hinting faults move it over; report faults, pages migrated, time to converge and the migrator's share",
    )
    .option('--hot <size>', 'memory the thread on node 1 keeps writing', '4MiB')
    .option('--cold <size>', 'memory beside it nobody touches (it must stay on node 0)', '12MiB')
    .option(
      '--folio <size>',
      'folio size: 4KiB or 2MiB (THP; hot and cold are then multiples of 2MiB)',
      '4KiB',
    )
    .option('--scan-delay-ms <ms>', 'kernel.numa_balancing_scan_delay_ms for the run (the kernel: 1000)', '0')
    .option(
      '--scan-period-ms <ms>',
      'scan period min = max for the run (the kernel: 1000 to 60000, adapting)',
      '50',
    )
    .option('--scan-size-mb <mb>', 'kernel.numa_balancing_scan_size_mb for the run (the kernel: 256)', '4')
    .option('--timeout <ms>', 'give up (exit 1) when the hot memory has not moved after this long', '60000');
  addMachineFlags(cmd);
  addMigratorFlags(cmd, 'the copies of misplaced folios (registered for the numa_misplaced reason)');
  machineCommandOptions(cmd);
  examples(cmd, [
    'pagemig numa',
    'pagemig numa --migrator ptdma -o channels=2',
    'pagemig numa --migrator cpu-multithreaded --folio 2MiB --hot 8MiB --json',
  ]);
  cmd.action(async (o: NumaOpts) => {
    ctx.exit(await runCommand(ctx.io, 'numa', !!o.json, () => numa(ctx, o)));
  });
}

/** A size flag that is a positive multiple of `unit` bytes. */
function multipleOf(flag: string, value: string, unit: number, what: string): number {
  const bytes = sizeFlag(flag, value);
  if (bytes <= 0 || bytes % unit)
    throw usageError(`${flag}: ${JSON.stringify(value)} is not a positive multiple of ${what}`);
  return bytes;
}

async function numa(ctx: CommandContext, o: NumaOpts): Promise<void> {
  const { io } = ctx;
  const folio = sizeFlag('--folio', o.folio);
  if (folio !== PAGE_SIZE && folio !== THP)
    throw usageError(`--folio: expected 4KiB or 2MiB, got ${JSON.stringify(o.folio)}`);
  const unit = folio === THP ? '2MiB' : '4KiB';
  const hot = multipleOf('--hot', o.hot, folio, unit);
  const cold = multipleOf('--cold', o.cold, folio, unit);
  const knobs = {
    scanDelayMs: intFlag('--scan-delay-ms', o.scanDelayMs, 0, 2 ** 31 - 1),
    scanPeriodMs: intFlag('--scan-period-ms', o.scanPeriodMs, 0, 2 ** 31 - 1),
    scanSizeMb: intFlag('--scan-size-mb', o.scanSizeMb, 1, 2 ** 31 - 1),
  };
  const timeoutMs = intFlag('--timeout', o.timeout, 1, 2 ** 31 - 1);
  const { config, file, name } = await loadConfig(io.cwd, o.config);
  const choice = migratorChoice(config, o);
  const flags = machineFlags(o);
  const mc = machineConfig(config, flags, { nodes: 2, nodeMemory: 64 << 20 });
  if (flags.batchPages !== undefined) mc.migrationBatchPages = flags.batchPages;
  if (mc.nodes.length < 2)
    throw usageError(
      `the scenario needs two nodes (a process on node 0, its thread on node 1); --nodes ${mc.nodes.length}`,
    );

  const bar = createProgress(io, !!o.json, 3, 'numa');
  const m = await openMachine(mc, { configName: name, flags });
  const nb = attachNumaBalancing(m, knobs);
  try {
    const wired = await wireMigrators(
      m,
      ctx.drivers(),
      config,
      { ...choice, reasons: choice.reasons ?? 'numa_misplaced' },
      name,
    );
    const s = startRemoteHotSet(m, {
      hotPages: hot / PAGE_SIZE,
      coldPages: cold / PAGE_SIZE,
      folioPages: folio / PAGE_SIZE,
    });
    const before = s.placement();
    bar.tick('balancing');
    const v0 = m.vmstat();
    const t0 = performance.now();
    m.sysctl.write('kernel.numa_balancing', '1');
    while (s.placement().hot[1] < s.hotPages) {
      // A thread that died (its error is join's) would leave nothing to converge.
      if (s.thread.state === 'exited') {
        await s.thread.join();
        throw new CliError('the thread on node 1 ended before the hot memory moved', ExitCode.FAILURE);
      }
      if (performance.now() - t0 > timeoutMs) {
        const now = s.placement();
        throw new CliError(
          `the hot memory did not converge in ${timeoutMs} ms: ${now.hot[1]} of ${s.hotPages} hot pages on node 1`,
          ExitCode.FAILURE,
          'ERR_NOT_CONVERGED',
        );
      }
      await new Promise((r) => setTimeout(r, POLL_MS));
    }
    await nb.settled();
    const convergeMs = performance.now() - t0;
    // Nothing more to learn: the scanner stops (and gives back the PROT_NONE entries it left).
    await nb.stop();
    const after = s.placement();
    const v1 = m.vmstat();
    bar.tick('verifying');
    await s.stopAndVerify();
    m.checkInvariants();
    bar.tick();
    bar.stop();
    const st = nb.stats();
    const counters = Object.fromEntries(
      [...NUMA_COUNTERS, 'pgmigrate_success' as const, 'pgmigrate_fail' as const].map((c) => [
        c,
        v1[c] - v0[c],
      ]),
    );
    const ph = st.phases;
    const engineSeconds = ph.unmap + ph.flush + ph.batchCopy + ph.fallbackCopy + ph.move;
    const summary = {
      machine: describeMachine(mc).json,
      config: file,
      migrator: { id: choice.id, options: choice.options, routes: wired.routes },
      workload: {
        processNode: 0,
        threadNode: 1,
        folioBytes: folio,
        hotPages: s.hotPages,
        coldPages: s.coldPages,
      },
      knobs,
      placement: { before, after },
      convergeMs,
      scans: st.scans,
      counters,
      migrations: st.migrations,
      pagesMigrated: st.pagesMigrated,
      pagesFailed: st.pagesFailed,
      phases: ph,
      engineSeconds,
      migratorShare: {
        migrator: st.migrator,
        foliosOffered: st.foliosOffered,
        foliosCopied: st.foliosCopied,
        copySeconds: ph.batchCopy,
        copyShare: engineSeconds > 0 ? ph.batchCopy / engineSeconds : 0,
      },
      verified: true,
    };
    if (o.json) {
      emitJson(io, 'numa', { ok: true, ...summary });
      return;
    }
    io.stdout.write(
      `app runs on node 0 and its thread on node 1: ${s.hotPages} hot pages the thread writes, ${s.coldPages} cold pages (folios of ${folio / 1024}KiB)\n`,
    );
    io.stdout.write(
      renderTable(
        ['', 'hot on node 0', 'hot on node 1', 'cold on node 0', 'cold on node 1'].map((h, i) => ({
          header: h,
          align: i ? ('right' as const) : ('left' as const),
        })),
        [
          ['before', ...before.hot, ...before.cold],
          ['after', ...after.hot, ...after.cold],
        ],
      ),
    );
    io.stdout.write(`converged in ${convergeMs.toFixed(0)} ms (${st.scans} scan passes)\n`);
    io.stdout.write(renderTable(['counter', { header: 'delta', align: 'right' }], Object.entries(counters)));
    io.stdout.write(
      st.migrator
        ? `${st.migrator} copied ${st.foliosCopied} of ${st.foliosOffered} folios offered; the copy phase took ${pct(ph.batchCopy, engineSeconds)} of the engine's ${(engineSeconds * 1000).toFixed(1)} ms\n`
        : `the kernel's CPU copy moved every folio (no migrator for numa_misplaced); engine time ${(engineSeconds * 1000).toFixed(1)} ms\n`,
    );
    io.stdout.write('every byte verified\n');
  } finally {
    bar.stop();
    await nb.stop();
    await m.close();
  }
}
