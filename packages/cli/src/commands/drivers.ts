import type { MigratorListing } from '@pagemig/registry';
import type { Command } from 'commander';
import { type CommandContext, examples } from '../context.js';
import { emitJson } from '../io.js';
import { runCommand } from '../run_command.js';
import { formatSize, renderTable } from '../table.js';

function state(d: MigratorListing): string {
  if (!d.installed) return `not installed: pnpm add ${d.package}`;
  if (d.error !== undefined) return `broken: ${d.error}`;
  return 'installed';
}

/** The driver table: id, package, version, capabilities, and what to install for missing ones. */
export function formatDrivers(list: readonly MigratorListing[]): string {
  return renderTable(
    [
      'id',
      'package',
      'version',
      'offloads CPU',
      { header: 'channels', align: 'right' },
      { header: 'min folio', align: 'right' },
      'status',
    ],
    list.map((d) => {
      const c = d.capabilities;
      return [
        d.id,
        d.package ?? '(registered object)',
        d.version ?? '-',
        c ? (c.offloadsCpu ? 'yes' : 'no') : '-',
        c ? c.channels : '-',
        c?.minFolioBytes ? formatSize(c.minFolioBytes) : '-',
        state(d),
      ];
    }),
  );
}

export function registerDriversCommand(program: Command, ctx: CommandContext): void {
  const cmd = program
    .command('drivers')
    .description(
      'list migrators: installed ones with version and capabilities, missing ones with the package to install',
    )
    .option('--json', 'print one JSON document (schemaVersion 1) on stdout instead of text');
  examples(cmd, ['pagemig drivers', 'pagemig drivers --json']);
  cmd.action(async (o: { json?: boolean }) => {
    ctx.exit(
      await runCommand(ctx.io, 'drivers', !!o.json, async () => {
        const list = await ctx.drivers().list();
        if (o.json) emitJson(ctx.io, 'drivers', { ok: true, drivers: list });
        else ctx.io.stdout.write(formatDrivers(list));
      }),
    );
  });
}
