import { defineConfig } from 'tsup';
import { libraryConfig } from '../../tools/config/tsup.mjs';

// Two entries: the library (runCli, defineConfig, the result types) and the `pagemig` bin.
export default defineConfig(
  libraryConfig({ dir: import.meta.dirname, entry: { index: 'src/index.ts', bin: 'src/bin.ts' } }),
);
