import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { expect, it } from 'vitest';

// `pnpm start` runs the built script; turbo builds it before this test.
const script = join(import.meta.dirname, '../dist/main.js');

const EXPECTED = [
  /package: 'pagemig-migrator-yielding'/,
  /^numa_misplaced: 16 MiB -> node 1, 4096 of 4096 folios copied by yielding; bytes verified$/m,
  /^syscall_or_cpuset: 16 MiB -> node 0, copied by the kernel's CPU copy .*; bytes verified$/m,
];

// The whole example in a child process: seconds alone, much longer on a loaded two-core host.
it('prints its report when run as a script', async () => {
  expect(existsSync(script), 'dist/main.js is missing: run the build first').toBe(true);
  const { stdout } = await promisify(execFile)('node', [script], { cwd: join(import.meta.dirname, '..') });
  for (const line of EXPECTED) expect(stdout).toMatch(line);
}, 90_000);
