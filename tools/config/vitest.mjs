// Shared vitest preset. Every package writes a JSON report so the root `pnpm test` can print one
// "N passed, N failed" line for the whole workspace.
import { readFileSync } from 'node:fs';

/** @param {{ name: string, dir: string, timeout?: number }} opts */
export function packageTestConfig({ name, dir, timeout = 30_000 }) {
  const pkg = JSON.parse(readFileSync(new URL('package.json', `file://${dir}/`), 'utf8'));
  // The core a package is built and tested against: what its migrators declare in engines.core.
  const core = JSON.parse(readFileSync(new URL('../../packages/core/package.json', import.meta.url), 'utf8'));
  const coreRange = `^${core.version}`;
  return {
    define: { __PACKAGE_VERSION__: JSON.stringify(pkg.version), __CORE_RANGE__: JSON.stringify(coreRange) },
    test: {
      name,
      environment: 'node',
      include: ['src/**/*.test.ts', 'test/**/*.test.ts'],
      testTimeout: timeout,
      hookTimeout: timeout,
      // Two cores: one test file at a time keeps emulated machines from competing for memory.
      fileParallelism: false,
      reporters: ['default', ['json', { outputFile: 'test-results.json' }]],
    },
  };
}
