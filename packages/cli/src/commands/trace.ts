import type { Command } from 'commander';
import { type CommandContext, examples, machineCommandOptions } from '../context.js';
import { usageError } from '../exit_codes.js';
import { emitJson } from '../io.js';
import { intFlag } from '../machine.js';
import { runCommand } from '../run_command.js';
import { addScenarioFlags, type ScenarioOpts, withScenario } from '../scenario_command.js';

/** The tracepoints the model emits, by system (include/trace/events/{migrate,compaction}.h, and pagemig's own). */
export const TRACE_EVENTS: Readonly<Record<string, readonly string[]>> = {
  migrate: ['mm_migrate_pages_start', 'mm_migrate_pages', 'set_migration_pte', 'remove_migration_pte'],
  compaction: [
    'mm_compaction_isolate_migratepages',
    'mm_compaction_isolate_freepages',
    'mm_compaction_migratepages',
    'mm_compaction_begin',
    'mm_compaction_end',
    'mm_compaction_try_to_compact_pages',
    'mm_compaction_finished',
    'mm_compaction_suitable',
    'mm_compaction_deferred',
    'mm_compaction_defer_compaction',
    'mm_compaction_defer_reset',
    'mm_compaction_kcompactd_sleep',
    'mm_compaction_wakeup_kcompactd',
    'mm_compaction_kcompactd_wake',
  ],
  pagemig: ['migrate_phases'],
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
            if (enable) m.trace.enable(enable);
          },
        );
      }),
    );
  });
}
