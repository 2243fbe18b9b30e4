import { execFile } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

// Runs after the whole suite (tools/scripts/run-tests.mjs runs hygiene once turbo is done), because
// the entry point builds the packages and must not rewrite dist/ under other packages' tests.
const repoRoot = path.resolve(import.meta.dirname, '../../..');

/** `pnpm <args>` at the repository root, as the README runs it. */
function pnpm(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      'pnpm',
      args,
      // The environment as it is: turbo hashes CI, so the build hits the cache of the run around it.
      { cwd: repoRoot, env: process.env, maxBuffer: 64 << 20 },
      (err, stdout, stderr) => {
        resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr });
      },
    );
  });
}

// Issue 20: `pnpm pagemig drivers --json | python3 -m json.tool` failed: pnpm's script header and
// turbo's banner were on stdout. The README's entry point builds with its output on stderr.
describe('pnpm pagemig (the README entry point)', () => {
  it(
    'pnpm pagemig drivers --json: stdout is the JSON document and nothing else',
    async () => {
      const r = await pnpm(['pagemig', 'drivers', '--json']);
      expect(r.code, r.stderr.slice(-3000)).toBe(0);
      const doc = JSON.parse(r.stdout);
      expect(doc).toMatchObject({ schemaVersion: 1, command: 'drivers', ok: true });
      expect(doc.drivers.map((d: { id: string }) => d.id).slice(0, 4)).toEqual([
        'cpu-serial',
        'cpu-multithreaded',
        'ptdma',
        'sdxi',
      ]);
      // An error under --json is one document too, with the exit code it documents.
      const bad = await pnpm(['pagemig', 'predict', '--profile', 'bogus', '--json']);
      expect(bad.code, bad.stderr.slice(-3000)).toBe(2);
      expect(JSON.parse(bad.stdout).error.exitCode).toBe(2);
    },
    15 * 60_000,
  );
});
