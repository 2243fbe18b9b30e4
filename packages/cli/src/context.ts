import type { Command } from 'commander';
import type { Drivers } from './drivers.js';
import type { Io } from './io.js';

/** What every command gets from the program. */
export interface CommandContext {
  io: Io;
  /** The migrators installed for this run (created on first use). */
  drivers(): Drivers;
  /** Records the command's exit code. */
  exit(code: number): void;
}

/** `--json` and `--config`, which every machine-building command takes. */
export function machineCommandOptions(cmd: Command): Command {
  return cmd
    .option('--json', 'print one JSON document (schemaVersion 1) on stdout instead of text')
    .option(
      '--config <file>',
      'config file (default: pagemig.config.ts or pagemig.config.json in the current directory)',
    );
}

/** Examples shown after a command's help. */
export function examples(cmd: Command, lines: string[]): Command {
  return cmd.addHelpText('after', `\nExamples:\n${lines.map((l) => `  $ ${l}`).join('\n')}\n`);
}
