import { defineConfig } from 'tsup';

// ESM only, with types. @pagemig/core is a peer dependency, so tsup leaves it external.
export default defineConfig({
  entry: ['src/index.ts'],
  format: ['esm'],
  target: 'node20',
  dts: true,
  sourcemap: true,
  clean: true,
});
