import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll } from 'vitest';
import { createDrivers, type Drivers } from '../src/drivers.js';
import type { Io } from '../src/io.js';
import { runCli } from '../src/program.js';

export const cliDir = fileURLToPath(new URL('..', import.meta.url));
export const binPath = path.join(cliDir, 'dist', 'bin.js');

const made: string[] = [];
// Evaluated once per test file: its temporary directories go when the file is done.
afterAll(() => {
  for (const dir of made.splice(0)) rmSync(dir, { recursive: true, force: true });
});

export function tempDir(files: Record<string, string> = {}): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'pagemig-cli-'));
  made.push(dir);
  for (const [name, text] of Object.entries(files)) writeFileSync(path.join(dir, name), text);
  return dir;
}

export interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** `pagemig <args>` in this process, with captured streams (stderr not a TTY: no bars). */
export async function run(
  args: string[],
  opts: { cwd?: string; drivers?: Drivers; tty?: boolean } = {},
): Promise<Run> {
  let stdout = '';
  let stderr = '';
  const io: Io = {
    stdout: { write: (s: string) => (stdout += s) },
    stderr: { write: (s: string) => (stderr += s), isTTY: opts.tty ?? false },
    env: {},
    cwd: opts.cwd ?? tempDir(),
  };
  const code = await runCli(args, { io, ...(opts.drivers ? { drivers: opts.drivers } : {}) });
  return { code, stdout, stderr };
}

/** The built `pagemig` bin as a child process. */
export function runBin(args: string[], cwd = tempDir()): Promise<Run> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [binPath, ...args],
      { cwd, env: { ...process.env, CI: '1' } },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

/** The real installed drivers with only `ids` listed as installed (keeps test sweeps small). */
export function onlyDrivers(ids: string[]): Drivers {
  const real = createDrivers(cliDir);
  return {
    async list() {
      return (await real.list()).map((l) =>
        ids.includes(l.id) ? l : { ...l, installed: false, version: null, capabilities: null },
      );
    },
    load: (id, options) => real.load(id, options),
  };
}
