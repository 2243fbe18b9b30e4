export { createFaultPlan, FaultPlan, type FaultRule, type FaultSite, InjectedFault } from '@pagemig/core';
export { copyBatchRounds } from './batch_rounds.js';
export { type ConformanceOptions, type ItLike, runMigratorConformance } from './conformance.js';
export { type DmaTarget, type DmaWindowRequest, mapDmaWindows } from './dma_windows.js';
export { engineTimeoutProblems } from './engine_timeout.js';
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
  scatteredRows,
  type TestMachineOptions,
  type TestRegion,
  verifyPattern,
} from './fixtures.js';
export { migrateEachFolioSize } from './folio_sizes.js';
export { trackHandles } from './leaks.js';
export {
  type ExitLifetimeOptions,
  type LifetimeProbe,
  runExitLifetimeSuite,
  runLifetimeChild,
} from './lifetime.js';
export { changedPages, fillMemory, snapshotMemory } from './memory.js';
export {
  createMockMigrator,
  type MockMigrator,
  type MockMigratorOptions,
  type MockMigratorStats,
  rowMarked,
} from './mock_migrator.js';
export { migratorOptionError } from './options.js';
