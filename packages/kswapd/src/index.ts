export { pgdatBalanced } from './balance.js';
export { anonUnreclaimableReason, canDemote, type ReclaimOrigin } from './demote.js';
export {
  attachKswapd,
  KSWAPD_NAP_MS,
  Kswapd,
  type KswapdKnobs,
  type KswapdOptions,
  type KswapdState,
  type KswapdStats,
} from './kswapd.js';
export type { DemotionTotals, NodeReclaimStats } from './stats.js';
export { VMSCAN_TRACE_EVENTS } from './tracepoints.js';
export {
  DEF_PRIORITY,
  inactiveIsLow,
  MAX_RECLAIM_RETRIES,
  SWAP_CLUSTER_MAX,
} from './vmscan.js';

/** This package's version. */
export const KSWAPD_VERSION: string = __PACKAGE_VERSION__;
