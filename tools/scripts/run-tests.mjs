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

// The CLI's report test drives Debian's chromium; install it on a fresh machine when we can.
if (!existsSync('/usr/bin/chromium')) {
  const apt =
    process.getuid?.() === 0 && spawnSync('apt-get', ['--version'], { stdio: 'ignore' }).status === 0;
  if (!apt) {
    console.error(
      "/usr/bin/chromium is missing: install Debian's chromium (apt-get install chromium) and rerun",
    );
    process.exit(1);
  }
  spawnSync('apt-get', ['update'], { stdio: 'inherit' });
  const r = spawnSync('apt-get', ['install', '-y', '--no-install-recommends', 'chromium'], {
    stdio: 'inherit',
  });
  if (r.status !== 0) {
    console.error('installing chromium with apt-get failed (see above); install it and rerun');
    process.exit(1);
  }
}

// Lint and types are part of the suite: a change that breaks either fails the run.
const lint = spawnSync('pnpm', ['exec', 'biome', 'ci', '.'], { cwd: root, stdio: 'inherit' });
const turbo = spawnSync('pnpm', ['exec', 'turbo', 'run', 'typecheck', 'test', ...process.argv.slice(2)], {
  cwd: root,
  stdio: 'inherit',
  env: { ...process.env, TURBO_TELEMETRY_DISABLED: '1' },
});
// Package hygiene (publint, attw) checks the tarballs of every publishable package, so it runs
// once turbo has built them all (it has no dependency edge that would order it in turbo), and
// only in a full run (a filtered one may not have built every package).
const hygiene =
  process.argv.length > 2
    ? { status: 0 }
    : spawnSync('pnpm', ['--filter', '@pagemig-tools/hygiene', 'run', 'check'], {
        cwd: root,
        stdio: 'inherit',
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
if (hygiene.status !== 0) console.error('package hygiene (publint, attw) failed (see above)');
process.exit(
  lint.status !== 0 || turbo.status !== 0 || hygiene.status !== 0 || failed > 0 || passed === 0 ? 1 : 0,
);
