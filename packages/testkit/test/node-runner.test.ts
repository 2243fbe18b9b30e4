import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { expect, it } from 'vitest';

// The suite with the runner injected from node:test, against the built packages.
it('runs under node:test', () => {
  const cwd = fileURLToPath(new URL('..', import.meta.url));
  const r = spawnSync(process.execPath, ['--test', '--test-reporter=tap', 'test/node/conformance.node.mjs'], {
    cwd,
    encoding: 'utf8',
    timeout: 120_000,
  });
  const out = `${r.stdout}\n${r.stderr}`;
  expect(out, out.slice(-3000)).toMatch(/# fail 0/);
  expect(r.status, out.slice(-3000)).toBe(0);
  const passed = Number(/# pass (\d+)/.exec(out)?.[1]);
  expect(passed).toBeGreaterThanOrEqual(25);
}, 120_000);
