import { defineConfig } from 'vitest/config';
import { packageTestConfig } from '../config/vitest.mjs';

export default defineConfig(
  packageTestConfig({ name: 'hygiene', dir: import.meta.dirname, timeout: 60_000 }),
);
