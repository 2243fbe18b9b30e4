/**
 * @pagemig/core/internal: what subsystems share with core (mm/internal.h), for the daemon
 * packages (kcompactd, numa-balancing, kswapd), the testkit and the benchmarks. It is outside
 * semver: names and shapes here change with core's minor versions. Applications and migrator
 * authors use the public entry, `@pagemig/core`.
 */
export { isolateSplitFolios, splitFolio, splitLayout } from './huge_memory.js';
export {
  hostTasks,
  Kernel,
  type KernTunables,
  PID_MAX_DEFAULT,
  setHostTaskLimit,
  THREADS_MAX_DEFAULT,
  type VmTunables,
} from './kernel.js';
export {
  GUP_PIN_COUNTING_BIAS,
  isolateFolios,
  type MigratePagesOptions,
  migratePages,
  putbackFolios,
} from './migrate.js';
export { resolveMode, resolveReason } from './migrate_mode.js';
export type { MigratorEntry } from './migrate_offload.js';
export { addrToVpn, Mm, Vma, vpnToAddr } from './mm.js';
export { PgData } from './node.js';
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
  type SlowpathResult,
  wakeAllKswapds,
  zonelistAllows,
  zonelistOf,
} from './page_alloc.js';
export * as pagetable from './pagetable.js';
export { entryPfn, type MmWalkOps, pageEntry, walkPageRange } from './pagewalk.js';
export { findTarget } from './ptrace.js';
export { folioMaybeMappedShared, Mapping, type RmapHit, rmapWalk } from './rmap.js';
export { Zone } from './zone.js';
