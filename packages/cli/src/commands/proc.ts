import { Argument, type Command } from 'commander';
import { type CommandContext, examples, machineCommandOptions } from '../context.js';
import { emitJson } from '../io.js';
import { runCommand } from '../run_command.js';
import { addScenarioFlags, type ScenarioOpts, withScenario } from '../scenario_command.js';

const FILES = ['buddyinfo', 'pagetypeinfo', 'vmstat', 'zoneinfo'] as const;

export function registerProcCommand(program: Command, ctx: CommandContext): void {
  const cmd = program
    .command('proc')
    .description("print a /proc file (the kernel's exact text) after a scenario")
    .addArgument(new Argument('<file>', '/proc file').choices(FILES));
  addScenarioFlags(cmd);
  machineCommandOptions(cmd);
  examples(cmd, [
    'pagemig proc buddyinfo',
    'pagemig proc vmstat --scenario compact --nodes 1 --node-memory 128MiB',
    'pagemig proc zoneinfo --scenario idle --json',
  ]);
  cmd.action(async (file: (typeof FILES)[number], o: ScenarioOpts) => {
    ctx.exit(
      await runCommand(ctx.io, 'proc', !!o.json, () =>
        withScenario(ctx, o, (m, scenario) => {
          const text = m.procfs[file]();
          if (o.json) emitJson(ctx.io, 'proc', { ok: true, file: `/proc/${file}`, scenario, text });
          else ctx.io.stdout.write(text);
        }),
      ),
    );
  });
}
