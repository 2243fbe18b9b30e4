import { CORE_TRACE_EVENTS } from '@pagemig/core';
import { COMPACTION_TRACE_EVENTS } from '@pagemig/kcompactd';
import type { Command } from 'commander';
import { type CommandContext, examples, machineCommandOptions } from '../context.js';
import { usageError } from '../exit_codes.js';
import { emitJson } from '../io.js';
import { intFlag } from '../machine.js';
import { runCommand } from '../run_command.js';
import { addScenarioFlags, type ScenarioOpts, withScenario } from '../scenario_command.js';

/** The tracepoints the scenarios emit, by system: core's (migrate, pagemig) and kcompactd's (compaction). */
export const TRACE_EVENTS: Readonly<Record<string, readonly string[]>> = {
  migrate: CORE_TRACE_EVENTS.migrate,
  compaction: COMPACTION_TRACE_EVENTS,
  pagemig: CORE_TRACE_EVENTS.pagemig,
};

/**
 * `--event`: a system, an event, or system:event the model knows; anything else is a usage error.
 * Returns what to enable (`system` or `system:event`): the per-entry migrate events are off until
 * asked for, as in the kernel.
 */
export function eventFlag(value: string): string {
  for (const [system, events] of Object.entries(TRACE_EVENTS)) {
    if (value === system) return system;
    const event = events.find((e) => value === e || value === `${system}:${e}`);
    if (event) return `${system}:${event}`;
  }
  const list = Object.entries(TRACE_EVENTS)
    .map(([system, events]) => `${system} (${events.join(', ')})`)
    .join('; ');
  throw usageError(
    `--event: unknown event ${JSON.stringify(value)}; use a system or one of its events (or system:event): ${list}`,
  );
}

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
      `only this event (mm_migrate_pages), system (${Object.keys(TRACE_EVENTS).join(', ')}) or system:event`,
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
        const enable = o.event === undefined ? undefined : eventFlag(o.event);
        await withScenario(
          ctx,
          o,
          (m, scenario) => {
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
          },
          (m) => {
            // The compact scenario attaches kcompactd after this: its events are defined first,
            // as a module is loaded before its events can be enabled.
            m.trace.define('compaction', COMPACTION_TRACE_EVENTS);
            if (enable) m.trace.enable(enable);
          },
        );
      }),
    );
  });
}
