import { runMigratorConformance } from '@pagemig/testkit';
import { describe, expect, it } from 'vitest';
import { createMigrator } from '../dist/index.js';

// The migrator conformance suite of @pagemig/testkit against the built package (the function
// thread only exists in dist), with two client contexts.
runMigratorConformance({ describe, it, expect, factory: () => createMigrator({ channels: 2 }) });
