import { ENOMEM, PagemigError } from '@pagemig/core';
import { driverError } from './drivers.js';
import { CliError, ExitCode } from './exit_codes.js';
import { emitJson, type Io } from './io.js';

function asCliError(e: unknown): CliError {
  if (e instanceof CliError) return e;
  if (PagemigError.isInstance(e) && e.code.startsWith('ERR_MIGRATOR')) return driverError(e);
  // The emulated machine ran out of memory building or running the scenario: the flags asked for
  // more than the nodes hold, which is the user's to change (a usage error, as the README says).
  if (PagemigError.isInstance(e) && e.errno === ENOMEM)
    return new CliError(
      `the machine is too small for this run: ${e.message}; give its nodes more memory (--node-memory, or --dram/--cxl for tier) or ask for less`,
      ExitCode.USAGE,
      'ERR_MACHINE_TOO_SMALL',
    );
  const err = e as { message?: string; code?: string };
  return new CliError(err?.message ?? String(e), ExitCode.FAILURE, err?.code ?? 'ERR_FAILURE');
}

/**
 * Runs a command body and turns what it throws into a message on stderr (and, with --json, an
 * error document on stdout) and the matching exit code.
 */
export async function runCommand(
  io: Io,
  command: string,
  json: boolean,
  /** Resolves with an exit code, or anything else for success. */
  body: () => Promise<unknown>,
): Promise<number> {
  try {
    const code = await body();
    return typeof code === 'number' ? code : ExitCode.OK;
  } catch (e) {
    const err = asCliError(e);
    if (json)
      emitJson(io, command, {
        ok: false,
        error: { code: err.code, message: err.message, exitCode: err.exitCode },
      });
    io.stderr.write(`pagemig ${command}: ${err.message}\n`);
    return err.exitCode;
  }
}
