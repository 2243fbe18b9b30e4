import type { MigrationPhases, MigrationResult } from '@pagemig/core';

/** What reclaim did on one node since attach (kswapd's and direct reclaim's work together). */
export interface NodeReclaimStats {
  nid: number;
  /** kswapd<nid> woken to run balance_pgdat (mm_vmscan_kswapd_wake). */
  wakes: number;
  /** balance_pgdat runs (each counts pageoutrun). */
  balanceRuns: number;
  /** balance_pgdat runs that went through every priority and reclaimed nothing (kswapd_failures++). */
  failedRuns: number;
  /** pgdat->kswapd_failures now: at MAX_RECLAIM_RETRIES (16) kswapd leaves the node to direct reclaim. */
  kswapdFailures: number;
  /** Base pages scanned on the inactive list (pgscan_*), by kswapd and by direct reclaim. */
  scanned: number;
  /** Base pages reclaimed (pgsteal_*): here always demoted, as anon has no swap. */
  reclaimed: number;
  /** Base pages demoted to a lower tier (pgdemote_*). */
  demoted: number;
  /** Base pages moved to the active list (pgactivate). */
  activated: number;
  /** Base pages moved to the inactive list by shrink_active_list (pgdeactivate). */
  deactivated: number;
  /** Base pages scanned on the active list (pgrefill). */
  refilled: number;
  /** try_to_free_pages calls that shrank this node. */
  directReclaims: number;
  /**
   * Why the node's anon memory cannot be reclaimed now (no demotion target, demotion disabled, no
   * room below), or null when its last reclaim attempt made progress or none failed.
   */
  reclaimFailed: string | null;
}

export function emptyNodeStats(nid: number): NodeReclaimStats {
  return {
    nid,
    wakes: 0,
    balanceRuns: 0,
    failedRuns: 0,
    kswapdFailures: 0,
    scanned: 0,
    reclaimed: 0,
    demoted: 0,
    activated: 0,
    deactivated: 0,
    refilled: 0,
    directReclaims: 0,
    reclaimFailed: null,
  };
}

/** The demotion migrations (reason demotion) summed, as the policy daemons report theirs. */
export interface DemotionTotals {
  runs: number;
  pagesDemoted: number;
  pagesFailed: number;
  /** The engine's phases summed over the runs (seconds); batchCopy is the routed migrator's copy. */
  phases: MigrationPhases;
  cpuSeconds: number;
  wallSeconds: number;
  foliosOffered: number;
  foliosCopied: number;
  /** The migrator routed for demotion in the last run, or null (CPU copy). */
  migrator: string | null;
}

export function emptyDemotionTotals(): DemotionTotals {
  return {
    runs: 0,
    pagesDemoted: 0,
    pagesFailed: 0,
    phases: { unmap: 0, flush: 0, batchCopy: 0, fallbackCopy: 0, move: 0 },
    cpuSeconds: 0,
    wallSeconds: 0,
    foliosOffered: 0,
    foliosCopied: 0,
    migrator: null,
  };
}

export function addDemotion(t: DemotionTotals, r: MigrationResult): void {
  t.runs++;
  t.pagesDemoted += r.nrSucceeded;
  t.pagesFailed += r.nrFailed;
  for (const key of Object.keys(t.phases) as (keyof MigrationPhases)[]) t.phases[key] += r.phases[key];
  t.cpuSeconds += r.cpuSeconds;
  t.wallSeconds += r.wallSeconds;
  t.foliosOffered += r.offload.foliosOffered;
  t.foliosCopied += r.offload.foliosCopied;
  t.migrator = r.offload.migrator ?? t.migrator;
}
