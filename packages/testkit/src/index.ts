export { createFaultPlan, FaultPlan, type FaultRule, type FaultSite, InjectedFault } from '@pagemig/core';
export { type ConformanceOptions, type ItLike, runMigratorConformance } from './conformance.js';
export { type ExitResult, runUntilExit } from './exit.js';
export { assertExpect, type ExpectLike } from './expect.js';
export {
  batchOf,
  checkRegion,
  createTestMachine,
  fillPattern,
  headsOf,
  machineChecksum,
  markedRows,
  migrateRegion,
  patternBytes,
  populateRegion,
  regionNodes,
  type TestMachineOptions,
  type TestRegion,
  verifyPattern,
} from './fixtures.js';
export { trackHandles } from './leaks.js';
export {
  createMockMigrator,
  type MockMigrator,
  type MockMigratorOptions,
  type MockMigratorStats,
  rowMarked,
} from './mock_migrator.js';
