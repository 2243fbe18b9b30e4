import { defineConfig } from 'tsup';
import { libraryConfig } from '../../tools/config/tsup.mjs';

// Two entries: the library, and the copy worker of the mock migrator's worker mode (resolved at
// run time with `new URL('./mock-copy-worker.js', import.meta.url)`).
export default defineConfig(
  libraryConfig({
    dir: import.meta.dirname,
    entry: { index: 'src/index.ts', 'mock-copy-worker': 'src/mock_copy_worker.ts' },
  }),
);
