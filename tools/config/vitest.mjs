// Shared vitest preset. Every package writes a JSON report so the root `pnpm test` can print one
// "N passed, N failed" line for the whole workspace.
import { readFileSync } from 'node:fs';

/** @param {{ name: string, dir: string, timeout?: number }} opts */
export function packageTestConfig({ name, dir, timeout = 30_000 }) {
  const pkg = JSON.parse(readFileSync(new URL('package.json', `file://${dir}/`), 'utf8'));
  return {
    define: { __PACKAGE_VERSION__: JSON.stringify(pkg.version) },
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
