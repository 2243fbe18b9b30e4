import { PagemigError } from '@pagemig/core';
import { driverError } from './drivers.js';
import { CliError, ExitCode } from './exit_codes.js';
import { emitJson, type Io } from './io.js';

function asCliError(e: unknown): CliError {
  if (e instanceof CliError) return e;
  if (PagemigError.isInstance(e) && e.code.startsWith('ERR_MIGRATOR')) return driverError(e);
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
