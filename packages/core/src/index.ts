export { type AccessCounts, type ModeledAccessTime, modeledAccessTime } from './access_cost.js';
export {
  compileAccessTrace,
  type ReplayOptions,
  type ReplayResult,
  replayAccessTrace,
} from './access_replay.js';
export {
  ACCESS_CSV_HEADER,
  type AccessRecord,
  type AccessRegion,
  type AccessTrace,
  type DamoFormatOptions,
  type DamoParseOptions,
  formatAccessCsv,
  formatDamoRecord,
  parseAccessCsv,
  parseDamoRecord,
} from './access_trace.js';
export {
  CAP_FULL_SET,
  CAP_SYS_NICE,
  CAP_SYS_PTRACE,
  CAPABILITIES,
  type Capability,
} from './capability.js';
export type { MachineClock, MachineClockMode } from './clock.js';
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
export { checkMachine, createMachine, Machine, type NodeInfo, type Procfs } from './machine.js';
export {
  type Mempolicy,
  type MempolicyMode,
  MPOL_BIND,
  MPOL_DEFAULT,
  MPOL_F_ADDR,
  MPOL_F_LOCAL,
  MPOL_F_MEMS_ALLOWED,
  MPOL_F_MOF,
  MPOL_F_MORON,
  MPOL_F_NODE,
  MPOL_F_NUMA_BALANCING,
  MPOL_F_RELATIVE_NODES,
  MPOL_F_SHARED,
  MPOL_F_STATIC_NODES,
  MPOL_INTERLEAVE,
  MPOL_LOCAL,
  MPOL_MAX,
  MPOL_MF_INTERNAL,
  MPOL_MF_LAZY,
  MPOL_MF_MOVE,
  MPOL_MF_MOVE_ALL,
  MPOL_MF_STRICT,
  MPOL_MF_VALID,
  MPOL_MODE_FLAGS,
  MPOL_PREFERRED,
  MPOL_PREFERRED_MANY,
  MPOL_WEIGHTED_INTERLEAVE,
} from './mempolicy.js';
export type { GetMempolicyResult } from './mempolicy_syscalls.js';
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
export { CORE_TRACE_EVENTS } from './migrate_trace.js';
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
  type MigrationRunInfo,
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
export type { Sysctl, SysctlAction, SysctlWriteOptions } from './sysctl.js';
export type { Sysfs } from './sysfs.js';
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
  TRACE_EVENTS_OFF_BY_DEFAULT,
  type TraceListener,
  type TraceRecord,
  type Tracer,
  type TraceTask,
} from './trace.js';
export { formatSize, parseSize, type Size } from './units.js';
export { type ThreadSpec, UserThread, type UserThreadState } from './user_threads.js';
export {
  type VmstatName,
  vmstatEvents,
  vmstatGauges,
  vmstatNodeEvents,
  vmstatNumaEvents,
} from './vmstat.js';
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
export {
  type AccessCheck,
  type AccessError,
  type AccessResult,
  type AccessWorkload,
  accessWord,
  type CompiledTrace,
  type HotRange,
  type MmuCounters,
  prepareAccessWorkload,
  type ReplayWorkload,
  verifyAccess,
  type ZipfTable,
  zipfTable,
} from './workload_access.js';
