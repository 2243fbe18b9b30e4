import { runMigratorConformance } from '@pagemig/testkit';
import { describe, expect, it } from 'vitest';
import { createMigrator } from '../dist/index.js';

// The migrator conformance suite of @pagemig/testkit, run against the built package (the copy
// worker only exists in dist). Pooled batches are forced so the worker path is what is checked.
runMigratorConformance({
  describe,
  it,
  expect,
  factory: () => createMigrator({ threads: 2, inlineBelow: 0, minChunk: 64 << 10 }),
});
