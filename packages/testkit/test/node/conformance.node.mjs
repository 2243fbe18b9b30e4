// The conformance suite under node:test (no expect: the suite falls back to node:assert).
// Run with `node --test test/node/` after building; test/node-runner.test.ts does that.
import { describe, it } from 'node:test';
import { createMockMigrator, runMigratorConformance } from '@pagemig/testkit';

describe('mock', () => {
  runMigratorConformance({ describe, it, factory: () => createMockMigrator() });
});
