/**
 * @pagemig/core/internal: what subsystems share with core (mm/internal.h), for the daemon
 * packages (kcompactd, numa-balancing, kswapd), the testkit and the benchmarks. It is outside
 * semver: names and shapes here change with core's minor versions. Applications and migrator
 * authors use the public entry, `@pagemig/core`.
 */
export { MAX_TIMER_MS } from './clock.js';
export { MachineDaemon } from './daemon.js';
export {
  deferredSplitFolio,
  folioTestPartiallyMapped,
  isolateSplitFolios,
  splitFolio,
  splitLayout,
} from './huge_memory.js';
export { folioTestHugetlb, Hstate, HUGETLB_NR, HUGETLB_ORDER } from './hugetlb.js';
export {
  hostTasks,
  Kernel,
  type KernTunables,
  PID_MAX_DEFAULT,
  setHostTaskLimit,
  THREADS_MAX_DEFAULT,
  type VmTunables,
} from './kernel.js';
export { listenerThrew } from './listener_errors.js';
export {
  folioAddLru,
  folioIsolateLru,
  folioLru,
  folioLruList,
  folioPutbackLru,
  folioReferenced,
  folioTestClearReferenced,
  isolateLruFolios,
  LRU_ACTIVE_ANON,
  LRU_INACTIVE_ANON,
  LRU_UNEVICTABLE,
  Lruvecs,
  lruNames,
  lruSize,
  NR_LRU_LISTS,
  nrIsolatedAnon,
} from './lru.js';
export {
  DEFAULT_TIER_PERF,
  DEMOTION_ENABLED_PATH,
  MEMORY_TIERING_DIR,
  MEMTIER_ADISTANCE_DRAM,
  MEMTIER_CHUNK_BITS,
  MEMTIER_CHUNK_SIZE,
  type MemoryTier,
  MemoryTiers,
  memoryTierOf,
  mtPerfToAdistance,
  NUMA_NO_NODE,
  nextDemotionNode,
  nodeGetAllowedTargets,
  nodeIsToptier,
} from './memory_tiers.js';
export {
  type FolioList,
  GUP_PIN_COUNTING_BIAS,
  isolateFolios,
  type MigratePagesOptions,
  migratePages,
  putbackFolios,
} from './migrate.js';
export {
  type MisplacedMigration,
  misplacedCpuSeconds,
  misplacedInFlight,
  misplacedSettled,
  onMisplacedMigration,
} from './migrate_misplaced.js';
export { resolveMode, resolveReason } from './migrate_mode.js';
export type { MigratorEntry } from './migrate_offload.js';
export { unknownOption } from './migrator_options.js';
export { addrToVpn, Mm, Vma, vpnToAddr } from './mm.js';
export { changeProtNuma, flushProtNuma, vmaPolicyMof } from './mprotect.js';
export { PgData } from './node.js';
export {
  bitmapList,
  N_CPU,
  N_GENERIC_INITIATOR,
  N_HIGH_MEMORY,
  N_MEMORY,
  N_NORMAL_MEMORY,
  N_ONLINE,
  N_POSSIBLE,
  type NodeState,
  nodeState,
  nodesInState,
} from './nodemask.js';
export { type PromotionState, promotionState } from './numa_promotion.js';
export { checkOptionKeys } from './option_keys.js';
export * as pageFlags from './page.js';
export { PageArray } from './page.js';
export {
  type AllocHooks,
  type AllocRequest,
  allocPages,
  allocPagesSlowpath,
  CompactPriority,
  type CompactPriorityValue,
  DEF_COMPACT_PRIORITY,
  type DirectCompactAttempt,
  highestZoneidxFor,
  INIT_COMPACT_PRIORITY,
  MIN_COMPACT_COSTLY_PRIORITY,
  MIN_COMPACT_PRIORITY,
  PAGE_ALLOC_COSTLY_ORDER,
  preferredZone,
  type SlowpathResult,
  wakeAllKswapds,
  zonelistAllows,
  zonelistOf,
} from './page_alloc.js';
export * as pagetable from './pagetable.js';
export { entryPfn, type MmWalkOps, pageEntry, walkPageRange } from './pagewalk.js';
export { findTarget, ptraceMayAccess } from './ptrace.js';
export { folioMaybeMappedShared, Mapping, type RmapHit, rmapWalk } from './rmap.js';
export { show } from './show.js';
export {
  NUMA_BALANCING_DISABLED,
  NUMA_BALANCING_MEMORY_TIERING,
  NUMA_BALANCING_NORMAL,
  type NumaFaultStats,
  numaFaultStats,
} from './task_numa.js';
export { sumZoneNumaEvents, zoneStatistics } from './vmstat.js';
export { Zone } from './zone.js';
