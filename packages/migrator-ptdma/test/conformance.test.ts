import { runMigratorConformance } from '@pagemig/testkit';
import { describe, expect, it } from 'vitest';
import { createMigrator } from '../dist/index.js';

// The migrator conformance suite of @pagemig/testkit against the built package (device workers
// only exist in dist), with two emulated PTDMA engines.
runMigratorConformance({ describe, it, expect, factory: () => createMigrator({ channels: 2 }) });
