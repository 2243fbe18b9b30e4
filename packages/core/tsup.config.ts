import { defineConfig } from 'tsup';
import { libraryConfig } from '../../tools/config/tsup.mjs';

// Entries: the public library, its `internal` and `timing` subpaths, the timeline writer that
// worker and device threads import (`timeline-writer`: imports nothing), and the worker module every
// user thread runs (resolved at run time with `new URL('./user-thread.js', import.meta.url)`).
export default defineConfig(
  libraryConfig({
    dir: import.meta.dirname,
    entry: {
      index: 'src/index.ts',
      internal: 'src/internal.ts',
      timing: 'src/timing/index.ts',
      'user-thread': 'src/user_thread.ts',
      'timeline-writer': 'src/timeline_writer.ts',
    },
  }),
);
