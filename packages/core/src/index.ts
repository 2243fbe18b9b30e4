export type { MachineConfig, NodeConfig } from './config.js';
export * from './errno.js';
export { splitLayout } from './huge_memory.js';
export type { Kernel, VmTunables } from './kernel.js';
export { createMachine, Machine, type NodeInfo, type Procfs } from './machine.js';
export type { Mempolicy, MempolicyMode } from './mempolicy.js';
export {
  GUP_PIN_COUNTING_BIAS,
  type MigrateOptions,
  type MigrationPhases,
  type MigrationResult,
  NR_MAX_MIGRATE_PAGES_RETRY,
} from './migrate.js';
export {
  formatReasonMask,
  MigrateMode,
  type MigrateModeName,
  type MigrateModeValue,
  MigrateReason,
  type MigrateReasonName,
  type MigrateReasonValue,
  migrateModeNames,
  migrateReasonNames,
  parseReasonMask,
  REASON_MASK_ALL,
} from './migrate_mode.js';
export { MIGRATOR_MAX_CONSECUTIVE_FAILURES, type MigratorStatus, OffloadHost } from './migrate_offload.js';
export {
  BATCH_COPIED,
  BATCH_DST,
  BATCH_FLAGS,
  BATCH_NR,
  BATCH_ROW_INTS,
  BATCH_SRC,
  defineMigrator,
  MIGRATOR_API_VERSION,
  MigrationBatch,
  type Migrator,
  type MigratorCapabilities,
  type MigratorContext,
  type MigratorLogger,
  type OffloadInfo,
} from './migrator.js';
export { CORE_VERSION, MigratorErrorCode, validateMigrator } from './migrator_validate.js';
export {
  HPAGE_PMD_NR,
  HPAGE_PMD_ORDER,
  MAX_PAGE_ORDER,
  MIGRATE_HIGHATOMIC,
  MIGRATE_ISOLATE,
  MIGRATE_MOVABLE,
  MIGRATE_RECLAIMABLE,
  MIGRATE_TYPES,
  MIGRATE_UNMOVABLE,
  migratetypeNames,
  NR_PAGE_ORDERS,
  PAGE_SHIFT,
  PAGE_SIZE,
  PAGEBLOCK_NR_PAGES,
  PAGEBLOCK_ORDER,
  type ZoneName,
  zoneNames,
} from './mmzone.js';
export {
  MAX_NUMNODES,
  type MovePagesResult,
  MPOL_MF_LAZY,
  MPOL_MF_MOVE,
  MPOL_MF_MOVE_ALL,
  MPOL_MF_STRICT,
  type SyscallResult,
} from './move_pages.js';
export type { PgData } from './node.js';
export type { PageArray } from './page.js';
export * as pageFlags from './page.js';
export { USER_BASE, ZERO_PFN } from './pagetable.js';
export { type MmapOptions, type PageInfo, Process, type SpawnOptions } from './process.js';
export type { Sysctl } from './sysctl.js';
export type { TraceListener, TraceRecord, Tracer } from './trace.js';
export { formatSize, parseSize, type Size } from './units.js';
export { type VmstatName, vmstatEvents, vmstatGauges, vmstatNodeEvents } from './vmstat.js';
export type { Zone } from './zone.js';
