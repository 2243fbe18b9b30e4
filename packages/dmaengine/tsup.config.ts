import { defineConfig } from 'tsup';
import { libraryConfig } from '../../tools/config/tsup.mjs';

// Two entries: the package, and `./device` — what device threads import (no @pagemig/core, so a
// worker loads a few kilobytes instead of the whole machine model).
export default defineConfig(
  libraryConfig({ dir: import.meta.dirname, entry: { index: 'src/index.ts', device: 'src/device.ts' } }),
);
