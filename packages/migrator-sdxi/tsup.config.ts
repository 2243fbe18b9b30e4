import { defineConfig } from 'tsup';
import { libraryConfig } from '../../tools/config/tsup.mjs';

// Two entries: the migrator, and the function model each emulated SDXI function runs in its own
// worker thread (loaded at run time with `new URL('./sdxi-device.js', import.meta.url)`).
export default defineConfig(
  libraryConfig({
    dir: import.meta.dirname,
    entry: { index: 'src/index.ts', 'sdxi-device': 'src/sdxi/device.ts' },
  }),
);
