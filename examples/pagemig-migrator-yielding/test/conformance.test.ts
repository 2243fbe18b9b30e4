import { runMigratorConformance } from '@pagemig/testkit';
import { describe, expect, it } from 'vitest';
import { createMigrator } from '../src/index.js';

// The whole @pagemig/testkit suite: contract, copies of every folio size, marking, abort,
// concurrency, dispose, the engine's fault sites and the declared driver sites, live threads.
// A small slice makes every multi-folio batch yield, so the suite exercises the async path.
runMigratorConformance({ describe, it, expect, factory: () => createMigrator({ sliceBytes: 64 << 10 }) });
