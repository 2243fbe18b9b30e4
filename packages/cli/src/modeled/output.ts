import { PagemigError } from '@pagemig/core';
import { CliError, ExitCode } from '../exit_codes.js';
import { type Io, JSON_SCHEMA_VERSION, processIo } from '../io.js';

/** Where modeled commands write (the process by default, buffers in tests). */
export type ModeledIo = Pick<Io, 'stdout' | 'stderr'>;

export const defaultIo = (): ModeledIo => processIo();

/** Core's coded errors (unknown profile, invalid file) are usage errors; the message stays core's. */
export async function runModeled(
  io: ModeledIo,
  command: string,
  json: boolean,
  body: () => number,
): Promise<number> {
  try {
    return body();
  } catch (e) {
    const code = PagemigError.isInstance(e) ? e.code : e instanceof CliError ? e.code : 'ERR_FAILURE';
    const exitCode = PagemigError.isInstance(e) || e instanceof CliError ? ExitCode.USAGE : ExitCode.FAILURE;
    const message = (e as Error).message ?? String(e);
    if (json) emit(io, command, { ok: false, error: { code, message, exitCode } });
    io.stderr.write(`pagemig ${command}: ${message}\n`);
    return exitCode;
  }
}

/** The one JSON document of a --json run (same envelope as every pagemig command). */
export function emit(io: ModeledIo, command: string, body: Record<string, unknown>): void {
  io.stdout.write(`${JSON.stringify({ schemaVersion: JSON_SCHEMA_VERSION, command, ...body }, null, 2)}\n`);
}

export const pct = (x: number) => `${x >= 0 ? '+' : ''}${(100 * x).toFixed(0)}%`;
export const share = (x: number) => `${(100 * x).toFixed(x < 0.01 ? 2 : 0)}%`;
export const fixed2 = (x: number) => x.toFixed(2);

/** Folio size label: 4096 -> '4K', 2097152 -> '2M'. */
export function sizeLabel(bytes: number): string {
  return bytes >= 1 << 20 ? `${bytes / (1 << 20)}M` : `${bytes / 1024}K`;
}
