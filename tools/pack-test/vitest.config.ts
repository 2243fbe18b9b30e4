import { defineConfig } from 'vitest/config';
import { packageTestConfig } from '../config/vitest.mjs';

export default defineConfig(
  packageTestConfig({ name: 'pack-test', dir: import.meta.dirname, timeout: 90_000 }),
);
