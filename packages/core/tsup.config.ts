import { defineConfig } from 'tsup';
import { libraryConfig } from '../../tools/config/tsup.mjs';

// Two entries: the library, and the worker module every user thread runs (resolved at run time
// with `new URL('./user-thread.js', import.meta.url)`).
export default defineConfig(
  libraryConfig({
    dir: import.meta.dirname,
    entry: { index: 'src/index.ts', 'user-thread': 'src/user_thread.ts' },
  }),
);
