// The slow path's priorities live in core (page_alloc.ts); re-exported for compaction callers.
export {
  CompactPriority,
  type CompactPriorityValue,
  DEF_COMPACT_PRIORITY,
  INIT_COMPACT_PRIORITY,
  MIN_COMPACT_COSTLY_PRIORITY,
  MIN_COMPACT_PRIORITY,
  PAGE_ALLOC_COSTLY_ORDER,
} from '@pagemig/core/internal';
export {
  COMPACT_CLUSTER_MAX,
  COMPACTION_HPAGE_ORDER,
  type CompactZoneOptions,
  type CompactZoneResult,
  compactionSuitAllocationOrder,
  compactionSuitable,
  compactNode,
  compactZone,
  type NodeCompactResult,
  resetCachedPositions,
  resetIsolationSuitable,
  type ZoneCompactState,
  zoneCompactState,
} from './compaction.js';
export {
  COMPACT_MAX_DEFER_SHIFT,
  compactionDeferReset,
  compactionDeferred,
  compactionRestarting,
  deferCompaction,
} from './defer.js';
export {
  type ContigPageInfo,
  contigPageInfo,
  extfragForOrder,
  extfragOf,
  fragmentationIndex,
  fragmentationIndexOf,
  fragmentationScoreNode,
  fragmentationScoreWmark,
  fragmentationScoreZone,
  fragmentationScoreZoneWeighted,
  type NodeFragmentation,
  nodeFragmentation,
  zoneNrFree,
} from './fragmentation.js';
export {
  type AllocFolioOptions,
  attachKcompactd,
  type CompactRun,
  type CompactTotals,
  type CompactTrigger,
  HPAGE_FRAG_CHECK_INTERVAL_MSEC,
  Kcompactd,
  type KcompactdOptions,
} from './kcompactd.js';
export {
  allocFolioDirectCompact,
  type CompactAllocRequest,
  type CompactAllocResult,
  type DirectCompactAttempt,
  type SlowpathHooks,
  tryToCompactPages,
} from './page_alloc.js';
export {
  COMPACTION_TRACE_EVENTS,
  CompactResult,
  type CompactResultValue,
  type CompactStatusName,
  compactResultNames,
  zoneIdx,
} from './tracepoints.js';
export {
  BlockState,
  type BlockStateValue,
  blockStateNames,
  renderZoneMapsSvg,
  type ZoneMap,
  type ZoneMapSvgOptions,
  zoneMap,
  zoneMapColors,
  zoneMapCounts,
  zoneMapSvg,
  zoneMapText,
} from './zonemap.js';

/** This package's version. */
export const KCOMPACTD_VERSION: string = __PACKAGE_VERSION__;
export {
  type BusyScenarioOptions,
  type BusyScenarioResult,
  type BusyWorkerData,
  type BusyWorkerResult,
  busyWorkerUrl,
  runBusyScenario,
} from './busy.js';
