import { defineConfig } from 'vitest/config';
import { packageTestConfig } from '../config/vitest.mjs';

export default defineConfig(packageTestConfig({ name: 'bench', dir: import.meta.dirname }));
