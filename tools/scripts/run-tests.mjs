#!/usr/bin/env node
// Runs every package's tests through turbo, then prints one plain "N passed, N failed" line
// summed over the per-package vitest JSON reports, and exits non-zero on any failure.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';

const root = new URL('../..', import.meta.url).pathname;
const reports = ['packages', 'tools', 'examples']
  .filter((dir) => existsSync(join(root, dir)))
  .flatMap((dir) => readdirSync(join(root, dir)).map((name) => join(root, dir, name, 'test-results.json')));

for (const file of reports) rmSync(file, { force: true });

// Lint and types are part of the suite: a change that breaks either fails the run.
const lint = spawnSync('pnpm', ['exec', 'biome', 'ci', '.'], { cwd: root, stdio: 'inherit' });
const turbo = spawnSync('pnpm', ['exec', 'turbo', 'run', 'typecheck', 'test', ...process.argv.slice(2)], {
  cwd: root,
  stdio: 'inherit',
  env: { ...process.env, TURBO_TELEMETRY_DISABLED: '1' },
});

let passed = 0;
let failed = 0;
let skipped = 0;
for (const file of reports) {
  if (!existsSync(file)) continue;
  const r = JSON.parse(readFileSync(file, 'utf8'));
  passed += r.numPassedTests;
  failed += r.numFailedTests;
  skipped += r.numPendingTests + r.numTodoTests;
  // A suite that failed to load has no failed tests but must still fail the run.
  if (r.numFailedTestSuites > 0 && r.numFailedTests === 0) failed += r.numFailedTestSuites;
}
console.log(`${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}`);
if (lint.status !== 0) console.error('biome found lint or format problems (see above)');
process.exit(lint.status !== 0 || turbo.status !== 0 || failed > 0 || passed === 0 ? 1 : 0);
