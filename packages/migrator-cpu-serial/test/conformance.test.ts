import { runMigratorConformance } from '@pagemig/testkit';
import { describe, expect, it } from 'vitest';
import { createMigrator } from '../src/index.js';

// The migrator conformance suite of @pagemig/testkit (contract, copies across folio sizes, marking,
// abort, concurrency, dispose, the engine's fault sites, live user threads). cpu-serial declares
// no driver fault sites, so those cases are pruned.
runMigratorConformance({ describe, it, expect, factory: () => createMigrator() });
