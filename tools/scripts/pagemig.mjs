#!/usr/bin/env node
// `pnpm pagemig <args>`: builds the packages (the CLI and every driver it can load), then runs
// the pagemig CLI. The build's output (turbo's banner and summary, a failed task's log) goes to
// stderr, so stdout holds only what the command prints: `pnpm pagemig drivers --json | jq` works.
// It is a bin (package @pagemig-tools/scripts, a devDependency of the root) rather than a root
// script, because pnpm prints a "> pkg@ script" header on stdout before every script it runs.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../..', import.meta.url));
const args = process.argv.slice(2);
const turbo = path.join(root, 'node_modules', '.bin', process.platform === 'win32' ? 'turbo.cmd' : 'turbo');

function fail(message) {
  process.stderr.write(`pagemig: ${message}\n`);
  // Under --json, stdout still gets its one document.
  const end = args.indexOf('--');
  if ((end < 0 ? args : args.slice(0, end)).includes('--json')) {
    const command = args.find((a) => !a.startsWith('-')) ?? 'pagemig';
    const error = { code: 'ERR_BUILD', message, exitCode: 1 };
    process.stdout.write(`${JSON.stringify({ schemaVersion: 1, command, ok: false, error }, null, 2)}\n`);
  }
  process.exit(1);
}

if (!existsSync(turbo)) fail(`${turbo} is missing: run pnpm install first`);
const build = spawnSync(turbo, ['run', 'build', '--filter=./packages/*', '--output-logs=errors-only'], {
  cwd: root,
  stdio: ['ignore', 2, 2],
  env: { ...process.env, TURBO_TELEMETRY_DISABLED: '1' },
});
if (build.error) fail(`cannot run turbo: ${build.error.message}`);
if (build.status !== 0) fail('the build failed (its output is above); the command did not run');

const cli = spawnSync(process.execPath, [path.join(root, 'packages', 'cli', 'dist', 'bin.js'), ...args], {
  stdio: 'inherit',
});
if (cli.error) fail(`cannot run the CLI: ${cli.error.message}`);
if (cli.signal) process.kill(process.pid, cli.signal);
process.exit(cli.status ?? 1);
