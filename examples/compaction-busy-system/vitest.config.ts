import { defineConfig } from 'vitest/config';
import { packageTestConfig } from '../../tools/config/vitest.mjs';

export default defineConfig(
  packageTestConfig({ name: 'example-compaction-busy-system', dir: import.meta.dirname }),
);
