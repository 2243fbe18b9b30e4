import { defineConfig } from 'vitest/config';
import { packageTestConfig } from '../../tools/config/vitest.mjs';

export default defineConfig(packageTestConfig({ name: 'example-memory-tiering', dir: import.meta.dirname }));
