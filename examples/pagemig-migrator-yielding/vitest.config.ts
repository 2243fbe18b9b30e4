import { defineConfig } from 'vitest/config';
// The monorepo's preset (a JSON report for the root `pnpm test` summary); outside this repository
// a plain `defineConfig({ test: { testTimeout: 30_000 } })` does the same job.
import { packageTestConfig } from '../../tools/config/vitest.mjs';

export default defineConfig(
  packageTestConfig({ name: 'pagemig-migrator-yielding', dir: import.meta.dirname }),
);
