import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { expect, it } from 'vitest';

// `pnpm start` runs the built script; turbo builds it before this test.
const script = join(import.meta.dirname, '../dist/main.js');

const EXPECTED = [
  /^node 0: DRAM 16 MiB, node 1: CXL 64 MiB \(no CPUs\); the process writes 6144 pages$/m,
  /^after the writes: +\d+ pages in DRAM, [1-9]\d* on CXL \(kswapd demoted the coldest\)$/m,
  /^after the workload: \d+ pages in DRAM, \d+ on CXL$/m,
  /^the hot set moved \d+ times; \d+ of its last 512 pages are in DRAM$/m,
  /^bytes verified; vmstat deltas:/m,
  /pgpromote_success: [1-9]\d*/,
  /^ {2}pt1chan0 copied [\d.]+ MiB$/m,
];

// The whole example in a child process: seconds alone, much longer on a loaded two-core host.
it('prints its report when run as a script', async () => {
  expect(existsSync(script), 'dist/main.js is missing: run the build first').toBe(true);
  const { stdout } = await promisify(execFile)('node', [script], { cwd: join(import.meta.dirname, '..') });
  for (const line of EXPECTED) expect(stdout).toMatch(line);
}, 90_000);
