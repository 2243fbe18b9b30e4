import type { Machine } from '@pagemig/core';
import { Argument, type Command } from 'commander';
import { type CommandContext, examples, machineCommandOptions } from '../context.js';
import { usageError } from '../exit_codes.js';
import { emitJson } from '../io.js';
import { intFlag } from '../machine.js';
import { runCommand } from '../run_command.js';
import { addScenarioFlags, type ScenarioOpts, withScenario } from '../scenario_command.js';

const FILES = ['buddyinfo', 'pagetypeinfo', 'vmstat', 'zoneinfo', 'numa_maps'] as const;

interface ProcOpts extends ScenarioOpts {
  pid?: string;
}

/** One process's /proc/PID/numa_maps. */
interface NumaMapsFile {
  pid: number;
  comm: string;
  file: string;
  text: string;
}

/**
 * /proc/PID/numa_maps of `--pid`, or of every live process (pid order): with several, each is
 * introduced as head(1) introduces files ("==> /proc/PID/numa_maps <==", a blank line between).
 */
function numaMapsFiles(
  m: Machine,
  pid: string | undefined,
): { file: string; text: string; files: NumaMapsFile[] } {
  const live = [...m.kernel.processes.keys()].sort((a, b) => a - b);
  const pids = pid === undefined ? live : [intFlag('--pid', pid, 1, 2 ** 22)];
  if (pids.length === 1 && !live.includes(pids[0]!))
    throw usageError(
      `--pid: no process ${pids[0]} is alive after the scenario; live: ${live.join(', ') || 'none'}`,
    );
  const files = pids.map((p) => ({
    pid: p,
    comm: m.process(p)!.comm,
    file: `/proc/${p}/numa_maps`,
    text: m.procfs.numaMaps(p),
  }));
  if (files.length === 1) return { file: files[0]!.file, text: files[0]!.text, files };
  const text = files.map((f) => `==> ${f.file} <==\n${f.text}`).join('\n');
  return { file: '/proc/*/numa_maps', text, files };
}

export function registerProcCommand(program: Command, ctx: CommandContext): void {
  const cmd = program
    .command('proc')
    .description("print a /proc file (the kernel's exact text) after a scenario")
    .addArgument(new Argument('<file>', '/proc file').choices(FILES))
    .option('--pid <pid>', "numa_maps: the process whose file to print (default: every live process's)");
  addScenarioFlags(cmd);
  machineCommandOptions(cmd);
  examples(cmd, [
    'pagemig proc buddyinfo',
    'pagemig proc vmstat --scenario compact --nodes 1 --node-memory 128MiB',
    'pagemig proc zoneinfo --scenario idle --json',
    'pagemig proc numa_maps --pid 1',
  ]);
  cmd.action(async (file: (typeof FILES)[number], o: ProcOpts) => {
    ctx.exit(
      await runCommand(ctx.io, 'proc', !!o.json, () => {
        if (o.pid !== undefined && file !== 'numa_maps')
          throw usageError('--pid: only numa_maps is per process');
        return withScenario(ctx, o, (m, scenario) => {
          if (file === 'numa_maps') {
            const { file: path, text, files } = numaMapsFiles(m, o.pid);
            if (o.json) emitJson(ctx.io, 'proc', { ok: true, file: path, scenario, text, processes: files });
            else ctx.io.stdout.write(text);
            return;
          }
          const text = m.procfs[file]();
          if (o.json) emitJson(ctx.io, 'proc', { ok: true, file: `/proc/${file}`, scenario, text });
          else ctx.io.stdout.write(text);
        });
      }),
    );
  });
}
