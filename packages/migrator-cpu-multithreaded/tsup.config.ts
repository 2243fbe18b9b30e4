import { defineConfig } from 'tsup';
import { libraryConfig } from '../../tools/config/tsup.mjs';

// Two entries: the migrator, and the worker module that piscina loads in every thread
// (resolved at run time with `new URL('./copy_worker.js', import.meta.url)`).
export default defineConfig(
  libraryConfig({
    dir: import.meta.dirname,
    entry: { index: 'src/index.ts', copy_worker: 'src/copy_worker.ts' },
  }),
);
