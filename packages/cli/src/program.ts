import { Command, CommanderError } from 'commander';
import { registerBenchCommand } from './commands/bench.js';
import { registerCompactCommand } from './commands/compact.js';
import { registerDriversCommand } from './commands/drivers.js';
import { registerMigrateCommand } from './commands/migrate.js';
import { registerNumaCommand } from './commands/numa.js';
import { registerProcCommand } from './commands/proc.js';
import { registerReportCommand } from './commands/report.js';
import { registerTierCommand } from './commands/tier.js';
import { registerTraceCommand } from './commands/trace.js';
import type { CommandContext } from './context.js';
import { createDrivers, type Drivers } from './drivers.js';
import { CliError, EXIT_CODES_HELP, ExitCode } from './exit_codes.js';
import { emitJson, type Io, processIo } from './io.js';
import { registerModeledCommands } from './modeled/index.js';

export interface ProgramOptions {
  io?: Io;
  /** Which migrators are installed; default: resolved from the working directory, then pagemig's own. */
  drivers?: Drivers;
}

/** The `pagemig` program; `exitCode()` is what the last command set. */
export function createProgram(opts: ProgramOptions = {}): { program: Command; exitCode(): number } {
  const io = opts.io ?? processIo();
  let code: number = ExitCode.OK;
  let drivers = opts.drivers;
  const ctx: CommandContext = {
    io,
    drivers: () => (drivers ??= createDrivers(io.cwd)),
    exit: (c) => {
      code = c;
    },
  };
  const program = new Command('pagemig')
    .description('Linux page migration with batched folio copy and pluggable copy offload, emulated')
    .version(__PACKAGE_VERSION__)
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride()
    .configureOutput({ writeOut: (s) => io.stdout.write(s), writeErr: (s) => io.stderr.write(s) })
    .addHelpText('after', `\n${EXIT_CODES_HELP}\n`);
  registerBenchCommand(program, ctx);
  registerMigrateCommand(program, ctx);
  registerCompactCommand(program, ctx);
  registerNumaCommand(program, ctx);
  registerTierCommand(program, ctx);
  registerDriversCommand(program, ctx);
  registerProcCommand(program, ctx);
  registerTraceCommand(program, ctx);
  registerReportCommand(program, ctx);
  registerModeledCommands(program, ctx);
  return { program, exitCode: () => code };
}

/** The command a parse error belongs to (for its --json document): the first known command name. */
function commandOf(program: Command, args: readonly string[]): string {
  const names = new Set(program.commands.map((c) => c.name()));
  return args.find((a) => names.has(a)) ?? 'pagemig';
}

/** Why commander showed the help instead of running: `help <name>` of no command, or no command. */
function helpProblem(program: Command, args: readonly string[]): string {
  const names = new Set(program.commands.map((c) => c.name()));
  const asked = args[0] === 'help' ? args.find((a, i) => i > 0 && !a.startsWith('-')) : undefined;
  return asked !== undefined && !names.has(asked)
    ? `unknown command ${JSON.stringify(asked)}; commands: ${[...names].join(', ')}`
    : 'no command given';
}

/** `--json` among the arguments (before a `--` that ends the options). */
function wantsJson(args: readonly string[]): boolean {
  const end = args.indexOf('--');
  return (end < 0 ? args : args.slice(0, end)).includes('--json');
}

/**
 * The command was stopped by `signal` (Ctrl-C): under --json its one document still comes, as an
 * error, since a --json consumer reads stdout whatever happened. Returns the shell's exit code for
 * the signal (128 + its number).
 */
export function interrupted(
  args: readonly string[],
  signal: 'SIGINT' | 'SIGTERM',
  io: Io = processIo(),
): number {
  const exit = signal === 'SIGINT' ? 130 : 143;
  const message = `interrupted by ${signal}`;
  if (wantsJson(args)) {
    const { program } = createProgram({ io });
    emitJson(io, commandOf(program, args), {
      ok: false,
      error: { code: 'ERR_INTERRUPTED', message, exitCode: exit },
    });
  }
  io.stderr.write(`pagemig: ${message}\n`);
  return exit;
}

/** Runs `pagemig <args>` and resolves with the exit code (never exits the process). */
export async function runCli(args: string[], opts: ProgramOptions = {}): Promise<number> {
  const io = opts.io ?? processIo();
  const { program, exitCode } = createProgram({ ...opts, io });
  // Errors found while parsing (commander's own, or a flag's parser) never reach a command's
  // runCommand: under --json they still get their one error document on stdout.
  const fail = (code: string, message: string, exit: number) => {
    if (wantsJson(args))
      emitJson(io, commandOf(program, args), { ok: false, error: { code, message, exitCode: exit } });
    return exit;
  };
  try {
    await program.parseAsync(args, { from: 'user' });
  } catch (e) {
    if (e instanceof CommanderError) {
      if (e.code === 'commander.helpDisplayed' || e.code === 'commander.version') return ExitCode.OK;
      // `pagemig --json` alone: --json belongs to the commands, and none was given.
      const noCommand =
        e.code === 'commander.unknownOption' && commandOf(program, args) === 'pagemig' && wantsJson(args);
      const message =
        e.code === 'commander.help'
          ? helpProblem(program, args)
          : noCommand
            ? 'no command given'
            : e.message.replace(/^error: /, '');
      return fail('ERR_USAGE', message, ExitCode.USAGE);
    }
    if (e instanceof CliError) {
      io.stderr.write(`pagemig: ${e.message}\n`);
      return fail(e.code, e.message, e.exitCode);
    }
    throw e;
  }
  return exitCode();
}
