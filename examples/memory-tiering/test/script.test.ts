import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { expect, it } from 'vitest';

// `pnpm start` runs the built script; turbo builds it before this test.
const script = join(import.meta.dirname, '../dist/main.js');

const EXPECTED = [
  /^demote +3072 pages, 3072 folios copied by ptdma; now 1024 pages in DRAM, 3072 on CXL$/m,
  /^promote +1024 pages, 1024 folios copied by ptdma; now 2048 pages in DRAM, 2048 on CXL$/m,
  /pgpromote_success: 1024/,
  /^ {2}pt1chan0 copied [\d.]+ MiB$/m,
];

// The whole example in a child process: seconds alone, much longer on a loaded two-core host.
it('prints its report when run as a script', async () => {
  expect(existsSync(script), 'dist/main.js is missing: run the build first').toBe(true);
  const { stdout } = await promisify(execFile)('node', [script], { cwd: join(import.meta.dirname, '..') });
  for (const line of EXPECTED) expect(stdout).toMatch(line);
}, 90_000);
