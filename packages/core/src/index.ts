export type { MachineConfig, NodeConfig } from './config.js';
export * from './errno.js';
export {
  createFaultPlan,
  DRIVER_FAULT_SITES,
  type DriverFaultSite,
  ENGINE_FAULT_SITES,
  type EngineFaultSite,
  FAULT_SITE_ACTIONS,
  type FaultAction,
  type FaultInfo,
  FaultPlan,
  type FaultRecord,
  type FaultRule,
  type FaultSite,
  InjectedFault,
} from './fault_inject.js';
export { createMachine, Machine, type NodeInfo, type Procfs } from './machine.js';
export {
  type Mempolicy,
  type MempolicyMode,
  MPOL_MF_LAZY,
  MPOL_MF_MOVE,
  MPOL_MF_MOVE_ALL,
  MPOL_MF_STRICT,
} from './mempolicy.js';
export {
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
export {
  type BooleanOptionSpec,
  type CustomOptionSpec,
  checkMigratorOptions,
  describeKnownKeys,
  type IntegerOptionSpec,
  type MigratorOptionSpec,
  type MigratorOptionsSpec,
  type NumberOptionSpec,
  type ParsedMigratorOptions,
  suggestKey,
} from './migrator_options.js';
export { CORE_VERSION, MigratorErrorCode, validateMigrator } from './migrator_validate.js';
export { Mmu, MmuFault, type MmuInit } from './mmu.js';
export {
  HPAGE_PMD_NR,
  HPAGE_PMD_ORDER,
  MAX_NUMNODES,
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
export type { MovePagesResult } from './move_pages.js';
export { USER_BASE, ZERO_PFN } from './pagetable.js';
export { type MmapOptions, type PageInfo, Process, type SpawnOptions } from './process.js';
export { threadCpuSeconds } from './schedstat.js';
export type { Sysctl } from './sysctl.js';
export {
  type ChromeTrace,
  checkChromeTrace,
  type MigratorTimeline,
  Timeline,
  TimelineCapture,
  type TimelineEvent,
  type TimelineKind,
  type TimelineStartOptions,
  type TimelineThread,
  type TimelineTrack,
  type TimelineTrackKind,
} from './timeline.js';
export {
  type TimelineHandle,
  TimelineWriter,
  TL_BATCH,
  TL_BATCH_COPY,
  TL_COMPACT_ZONE,
  TL_COPY_SHARE,
  TL_DMA_COMPLETION,
  TL_DMA_DESC,
  TL_DMA_IRQ,
  TL_FALLBACK_COPY,
  TL_FLUSH,
  TL_FOLIO_MOVE,
  TL_KCOMPACTD,
  TL_MOVE,
  TL_RUN,
  TL_UNMAP,
  TL_USER_FAULT,
  TL_USER_MIGRATION_WAIT,
  TL_USER_RUNNING,
  TL_USER_TLB_ACK,
  timelineWriter,
} from './timeline_writer.js';
// The timing model's own entry is @pagemig/core/timing; re-exported here, where it was first published.
export * from './timing/index.js';
export {
  formatTraceLine,
  type ParsedTraceLine,
  parseTraceLines,
  type TraceListener,
  type TraceRecord,
  type Tracer,
} from './trace.js';
export { formatSize, parseSize, type Size } from './units.js';
export { type ThreadSpec, UserThread, type UserThreadState } from './user_threads.js';
export { type VmstatName, vmstatEvents, vmstatGauges, vmstatNodeEvents } from './vmstat.js';
export {
  laneWordIndex,
  laneWords,
  type PatternCheck,
  type PatternError,
  type PatternResult,
  type PatternWorkload,
  patternWord,
  runWorkload,
  verifyPattern,
  type Workload,
} from './workload.js';
