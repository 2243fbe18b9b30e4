import { defineConfig } from 'vitest/config';
import { packageTestConfig } from '../../tools/config/vitest.mjs';

export default defineConfig(packageTestConfig({ name: 'cli', dir: import.meta.dirname, timeout: 60_000 }));
