import { defineConfig } from 'vitest/config';
import { packageTestConfig } from '../../tools/config/vitest.mjs';

export default defineConfig(packageTestConfig({ name: 'kswapd', dir: import.meta.dirname }));
