import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { expect, it } from 'vitest';

// `pnpm start` runs the built script; turbo builds it before this test.
const script = join(import.meta.dirname, '../dist/main.js');

const EXPECTED = [
  /^cpu-serial +\d+ +\d+ /m,
  /^ptdma +\d+ +\d+ /m,
  /^engine CPU time (freed|cost) by the offload: [\d.]+ ms .*every page verified$/m,
];

// The whole example in a child process: seconds alone, much longer on a loaded two-core host.
it('prints its report when run as a script', async () => {
  expect(existsSync(script), 'dist/main.js is missing: run the build first').toBe(true);
  const { stdout } = await promisify(execFile)('node', [script], { cwd: join(import.meta.dirname, '..') });
  for (const line of EXPECTED) expect(stdout).toMatch(line);
}, 90_000);
