import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { expect, it } from 'vitest';

// `pnpm start` runs the built script; turbo builds it before this test.
const script = join(import.meta.dirname, '../dist/main.js');

const EXPECTED = [
  /^app runs on node 0; 4096 pages, its thread writes 512 of them \(every 8th\)$/m,
  /^ {2}[0-9a-f]+ default anon=4096 dirty=4096 .*N0=\d+ N1=\d+ kernelpagesize_kB=4$/m,
  /^ {2}hot pages +512 +0$/m,
  /^converged in \d+ ms \(\d+ scan passes\); bytes verified$/m,
  /^trace: .* mode=MIGRATE_ASYNC reason=numa_misplaced$/m,
];

// The whole example in a child process: seconds alone, much longer on a loaded two-core host.
it('prints its report when run as a script', async () => {
  expect(existsSync(script), 'dist/main.js is missing: run the build first').toBe(true);
  const { stdout } = await promisify(execFile)('node', [script], { cwd: join(import.meta.dirname, '..') });
  for (const line of EXPECTED) expect(stdout).toMatch(line);
}, 90_000);
