import { defineConfig } from 'tsup';
import { libraryConfig } from '../../tools/config/tsup.mjs';

// Two entries: the migrator, and the device model each emulated engine runs in its own worker
// thread (loaded at run time with `new URL('./ptdma-device.js', import.meta.url)`).
export default defineConfig(
  libraryConfig({
    dir: import.meta.dirname,
    entry: { index: 'src/index.ts', 'ptdma-device': 'src/ptdma/device.ts' },
  }),
);
