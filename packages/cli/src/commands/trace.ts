import type { Command } from 'commander';
import { type CommandContext, examples, machineCommandOptions } from '../context.js';
import { emitJson } from '../io.js';
import { intFlag } from '../machine.js';
import { runCommand } from '../run_command.js';
import { addScenarioFlags, type ScenarioOpts, withScenario } from '../scenario_command.js';

interface TraceOpts extends ScenarioOpts {
  event?: string;
  limit?: string;
}

export function registerTraceCommand(program: Command, ctx: CommandContext): void {
  const cmd = program
    .command('trace')
    .description(
      'print the tracepoint lines (migrate:, compaction:) of a scenario, as /sys/kernel/tracing/trace does',
    )
    .option(
      '-e, --event <name>',
      'only this event (mm_migrate_pages), system (migrate, compaction) or system:event',
    )
    .option('--limit <n>', 'print at most the first n lines');
  addScenarioFlags(cmd);
  machineCommandOptions(cmd);
  examples(cmd, [
    'pagemig trace',
    'pagemig trace --event mm_migrate_pages --migrator ptdma',
    'pagemig trace --scenario compact --nodes 1 --event compaction --limit 20',
  ]);
  cmd.action(async (o: TraceOpts) => {
    ctx.exit(
      await runCommand(ctx.io, 'trace', !!o.json, async () => {
        const limit = o.limit === undefined ? Number.POSITIVE_INFINITY : intFlag('--limit', o.limit, 1);
        await withScenario(ctx, o, (m, scenario) => {
          const all = m.trace.lines(o.event);
          const lines = all.slice(0, limit);
          if (o.json)
            emitJson(ctx.io, 'trace', {
              ok: true,
              scenario,
              event: o.event ?? null,
              total: all.length,
              lines,
            });
          else ctx.io.stdout.write(lines.map((l) => `${l}\n`).join(''));
        });
      }),
    );
  });
}
