/** Where a command writes: the process's streams, or buffers in tests. */
export interface Io {
  stdout: { write(s: string): unknown };
  stderr: { write(s: string): unknown; isTTY?: boolean };
  env: Record<string, string | undefined>;
  cwd: string;
}

export function processIo(): Io {
  return { stdout: process.stdout, stderr: process.stderr, env: process.env, cwd: process.cwd() };
}

/** Version of every `--json` document; bump on an incompatible change. */
export const JSON_SCHEMA_VERSION = 1;

/** Writes the one JSON document of a `--json` run. */
export function emitJson(io: Io, command: string, body: Record<string, unknown>): void {
  io.stdout.write(`${JSON.stringify({ schemaVersion: JSON_SCHEMA_VERSION, command, ...body }, null, 2)}\n`);
}
