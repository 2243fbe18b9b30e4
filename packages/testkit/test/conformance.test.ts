import { describe, expect, it } from 'vitest';
import { createMockMigrator, runMigratorConformance } from '../src/index.js';

// The suite against the mock (every fault site, inline copies) and the mock with copy workers
// (adds worker_exit). First-party migrators run it in their own packages.
describe('mock migrator', () => {
  runMigratorConformance({ describe, it, expect, factory: () => createMockMigrator() });
});

describe('mock migrator with copy workers', () => {
  runMigratorConformance({
    describe,
    it,
    expect,
    factory: () => createMockMigrator({ name: 'mock-workers', workers: 2 }),
    // Covered by the inline mock above; the worker pool adds only start-up time here.
    skip: [/^copy\/(16KiB|64KiB)$/],
  });
});
