import {
  folioIsolateLru,
  folioLru,
  folioPutbackLru,
  folioReferenced,
  folioTestClearReferenced,
  isolateLruFolios,
  type Kernel,
  LRU_ACTIVE_ANON,
  LRU_INACTIVE_ANON,
  lruSize,
  type Mapping,
  pageFlags,
} from '@pagemig/core/internal';
import { anonUnreclaimableReason, canDemote, demoteFolioList, type ReclaimOrigin } from './demote.js';
import { addDemotion, type DemotionTotals, type NodeReclaimStats } from './stats.js';
import { type ReclaimStat, traceLruShrinkActive, traceLruShrinkInactive } from './tracepoints.js';

/** DEF_PRIORITY: reclaim starts scanning lru_size >> 12 pages per list. */
export const DEF_PRIORITY = 12;
/** SWAP_CLUSTER_MAX: pages per isolate/shrink batch. */
export const SWAP_CLUSTER_MAX = 32;
/** MAX_RECLAIM_RETRIES: kswapd_failures at which kswapd leaves a node to direct reclaim. */
export const MAX_RECLAIM_RETRIES = 16;

/** struct scan_control: one reclaim pass's goal, progress and mode. */
export interface ScanControl {
  nrToReclaim: number;
  nrReclaimed: number;
  nrScanned: number;
  order: number;
  priority: number;
  /** The highest zone index the caller may allocate from (informational: lists are per node). */
  reclaimIdx: number;
  origin: ReclaimOrigin;
  /** sc->may_deactivate & DEACTIVATE_ANON (prepare_scan_control). */
  mayDeactivate: boolean;
  forceDeactivate: boolean;
  skippedDeactivate: boolean;
}

/** What the reclaim functions report to: the attached instance's statistics and options. */
export interface ReclaimEnv {
  readonly kernel: Kernel;
  nodeStats(nid: number): NodeReclaimStats;
  readonly demotion: DemotionTotals;
  readonly copyTimeoutMs: number | undefined;
}

export function newScanControl(
  origin: ReclaimOrigin,
  order: number,
  reclaimIdx: number,
  nrToReclaim: number,
): ScanControl {
  return {
    nrToReclaim,
    nrReclaimed: 0,
    nrScanned: 0,
    order,
    priority: DEF_PRIORITY,
    reclaimIdx,
    origin,
    mayDeactivate: false,
    forceDeactivate: false,
    skippedDeactivate: false,
  };
}

function nrPages(k: Kernel, head: number): number {
  return 1 << k.folioOrder(head);
}

/**
 * inactive_is_low: the inactive anon list is smaller than active / inactive_ratio, where the ratio
 * is int_sqrt(10 * GiB of the two lists), 1 below 1 GiB.
 */
export function inactiveIsLow(k: Kernel, nid: number): boolean {
  const inactive = lruSize(k, nid, LRU_INACTIVE_ANON);
  const active = lruSize(k, nid, LRU_ACTIVE_ANON);
  const gb = Math.floor((inactive + active) / (1 << (30 - 12)));
  const ratio = gb ? Math.floor(Math.sqrt(10 * gb)) : 1;
  return inactive * ratio < active;
}

/**
 * can_reclaim_anon_pages / can_age_anon_pages: without a swap device only demotion reclaims anon
 * memory, so both are can_demote.
 */
export const canReclaimAnon = canDemote;

enum FolioRef {
  RECLAIM,
  KEEP,
  ACTIVATE,
}

/**
 * folio_check_references for an anon folio: young in more than one mapping, or young again after
 * an earlier second chance (PG_referenced) -> activate; young once -> keep it inactive, marked
 * PG_referenced; not young -> reclaim.
 */
function folioCheckReferences(k: Kernel, head: number): FolioRef {
  const referencedPtes = folioReferenced(k, head);
  const referencedFolio = folioTestClearReferenced(k, head);
  if (referencedPtes) {
    k.pages.flags[head]! |= pageFlags.PG_referenced;
    if (referencedFolio || referencedPtes > 1) return FolioRef.ACTIVATE;
    return FolioRef.KEEP;
  }
  return FolioRef.RECLAIM;
}

/** A demotion candidate as it was before the migration, to know it again if it failed. */
interface Candidate {
  head: number;
  mapping: Mapping | undefined;
  index: number;
}

/**
 * shrink_folio_list for isolated anon folios of node `nid`: sorts them by their references, hands
 * the cold ones to demote_folio_list in one migration, and activates what it cannot reclaim (the
 * folios that failed to demote retry without demotion, find no swap, and are activated:
 * activate_locked). Kept folios go back (move_folios_to_lru) on the list they now belong to,
 * oldest first, each linked at the head. Returns the base pages reclaimed (demoted).
 */
async function shrinkFolioList(
  env: ReclaimEnv,
  nid: number,
  heads: readonly number[],
  sc: ScanControl,
  stat: ReclaimStat,
): Promise<number> {
  const k = env.kernel;
  const doDemote = canDemote(k, nid);
  const back: number[] = [];
  const backLru: number[] = [];
  const demote: number[] = [];
  const candidates: Candidate[] = [];
  for (const head of heads) {
    const nr = nrPages(k, head);
    sc.nrScanned += nr;
    const ref = folioCheckReferences(k, head);
    if (ref === FolioRef.RECLAIM && doDemote) {
      demote.push(head);
      candidates.push({ head, mapping: k.mappingOf(head), index: k.pages.index[head]! });
      continue;
    }
    if (ref === FolioRef.KEEP) stat.nrRefKeep += nr;
    else stat.nrActivateAnon += nr;
    back.push(head);
    backLru.push(ref === FolioRef.KEEP ? LRU_INACTIVE_ANON : LRU_ACTIVE_ANON);
  }
  let reclaimed = 0;
  // Whatever happens to the migration, the folios held here go back to the LRU.
  try {
    const run = demote.length ? demoteFolioList(k, nid, demote, sc.origin, env.copyTimeoutMs) : null;
    if (run) {
      const r = await run;
      addDemotion(env.demotion, r);
      reclaimed = r.nrSucceeded;
      env.nodeStats(nid).demoted += r.nrSucceeded;
      // The engine put the failed folios back on the inactive list: activate them.
      for (const c of candidates) {
        if (!failedDemotion(k, nid, c)) continue;
        const nr = nrPages(k, c.head);
        if (!folioIsolateLru(k, c.head)) continue;
        stat.nrActivateAnon += nr;
        back.push(c.head);
        backLru.push(LRU_ACTIVE_ANON);
      }
    } else {
      for (const head of demote) {
        stat.nrActivateAnon += nrPages(k, head);
        back.push(head);
        backLru.push(LRU_ACTIVE_ANON);
      }
    }
  } finally {
    for (let i = 0; i < back.length; i++) folioPutbackLru(k, back[i]!, backLru[i]!);
  }
  k.count('pgactivate', stat.nrActivateAnon);
  env.nodeStats(nid).activated += stat.nrActivateAnon;
  return reclaimed;
}

/**
 * Whether demotion candidate `c` is still where it was: the same anon page (mapping and index) at
 * the same frame, back on node `nid`'s inactive list. A demoted folio's frame was freed, and any
 * new folio there belongs to another page.
 */
function failedDemotion(k: Kernel, nid: number, c: Candidate): boolean {
  return (
    folioLru(k, c.head) === LRU_INACTIVE_ANON &&
    k.nodeOf(c.head) === nid &&
    k.mappingOf(c.head) === c.mapping &&
    k.pages.index[c.head] === c.index
  );
}

/**
 * shrink_inactive_list: isolates up to `nrToScan` pages from the inactive tail, counts
 * pgscan_<origin>/pgscan_anon, shrinks them, counts pgsteal_<origin>/pgsteal_anon.
 */
async function shrinkInactiveList(env: ReclaimEnv, nid: number, nrToScan: number, sc: ScanControl) {
  const k = env.kernel;
  const isolated: number[] = [];
  const { scanned, taken } = isolateLruFolios(k, nid, LRU_INACTIVE_ANON, nrToScan, isolated);
  k.count(sc.origin === 'kswapd' ? 'pgscan_kswapd' : 'pgscan_direct', scanned);
  k.count('pgscan_anon', scanned);
  const ns = env.nodeStats(nid);
  ns.scanned += scanned;
  if (taken === 0) return 0;
  const stat: ReclaimStat = { nrActivateAnon: 0, nrRefKeep: 0 };
  const reclaimed = await shrinkFolioList(env, nid, isolated, sc, stat);
  k.count(sc.origin === 'kswapd' ? 'pgsteal_kswapd' : 'pgsteal_direct', reclaimed);
  k.count('pgsteal_anon', reclaimed);
  ns.reclaimed += reclaimed;
  traceLruShrinkInactive(k, nid, scanned, reclaimed, stat, sc.priority);
  return reclaimed;
}

/**
 * shrink_active_list: moves up to `nrToScan` pages from the active tail to the inactive list. The
 * rmap walk clears their accessed bits; referenced anon folios are deactivated all the same (only
 * executable file folios get another trip, and there are no file folios here).
 */
export function shrinkActiveList(env: ReclaimEnv, nid: number, nrToScan: number, sc: ScanControl): void {
  const k = env.kernel;
  const held: number[] = [];
  const { scanned, taken } = isolateLruFolios(k, nid, LRU_ACTIVE_ANON, nrToScan, held);
  k.count('pgrefill', scanned);
  let deactivated = 0;
  for (const head of held) {
    folioReferenced(k, head);
    deactivated += nrPages(k, head);
    folioPutbackLru(k, head, LRU_INACTIVE_ANON);
  }
  k.count('pgdeactivate', deactivated);
  const ns = env.nodeStats(nid);
  ns.refilled += scanned;
  ns.deactivated += deactivated;
  traceLruShrinkActive(k, nid, taken, 0, deactivated, 0, sc.priority);
}

/**
 * get_scan_count for a node whose only evictable memory is anon: nothing without a way to reclaim
 * it (SCAN_FILE with no file pages), else lru_size >> priority of both anon lists. The file LRU is
 * empty, so the file_is_tiny case of prepare_scan_control applies and anon is scanned alone
 * (SCAN_ANON) rather than split by swappiness.
 */
function getScanCount(k: Kernel, nid: number, sc: ScanControl): [number, number] {
  if (!canReclaimAnon(k, nid)) return [0, 0];
  return [lruSize(k, nid, LRU_INACTIVE_ANON) >> sc.priority, lruSize(k, nid, LRU_ACTIVE_ANON) >> sc.priority];
}

/** shrink_list: an active list is only aged when prepare_scan_control allows deactivation. */
async function shrinkList(env: ReclaimEnv, nid: number, lru: number, nrToScan: number, sc: ScanControl) {
  if (lru === LRU_ACTIVE_ANON) {
    if (sc.mayDeactivate) shrinkActiveList(env, nid, nrToScan, sc);
    else sc.skippedDeactivate = true;
    return 0;
  }
  return shrinkInactiveList(env, nid, nrToScan, sc);
}

/**
 * shrink_lruvec: scans both anon lists in SWAP_CLUSTER_MAX batches until the inactive target is
 * done; kswapd stops once nr_to_reclaim is met, direct reclaim at DEF_PRIORITY scans it all
 * (proportional_reclaim). Then the inactive list is refilled if it became too small.
 */
async function shrinkLruvec(env: ReclaimEnv, nid: number, sc: ScanControl, stop: () => boolean) {
  const k = env.kernel;
  const nr = getScanCount(k, nid, sc);
  const proportional = sc.origin !== 'kswapd' && sc.priority === DEF_PRIORITY;
  let reclaimed = 0;
  while (nr[LRU_INACTIVE_ANON]! > 0 && !stop()) {
    for (const lru of [LRU_INACTIVE_ANON, LRU_ACTIVE_ANON]) {
      if (!nr[lru]) continue;
      const n = Math.min(nr[lru]!, SWAP_CLUSTER_MAX);
      nr[lru]! -= n;
      reclaimed += await shrinkList(env, nid, lru, n, sc);
    }
    // With the file lists empty, the proportional adjustment stops at once (nr_file == 0).
    if (reclaimed >= sc.nrToReclaim && !proportional) break;
  }
  sc.nrReclaimed += reclaimed;
  if (canReclaimAnon(k, nid) && inactiveIsLow(k, nid)) shrinkActiveList(env, nid, SWAP_CLUSTER_MAX, sc);
}

/**
 * shrink_node: prepare_scan_control's deactivation decision, one shrink_lruvec, and the
 * kswapd_failures reset on progress ("a successful direct reclaim run will revive a dormant
 * kswapd"). Returns the pages reclaimed from the node.
 */
export async function shrinkNode(
  env: ReclaimEnv,
  nid: number,
  sc: ScanControl,
  stop: () => boolean,
): Promise<number> {
  const k = env.kernel;
  sc.mayDeactivate = sc.forceDeactivate || inactiveIsLow(k, nid);
  const before = sc.nrReclaimed;
  await shrinkLruvec(env, nid, sc, stop);
  const reclaimed = sc.nrReclaimed - before;
  const ns = env.nodeStats(nid);
  if (reclaimed) {
    ns.kswapdFailures = 0;
    ns.reclaimFailed = null;
  } else {
    ns.reclaimFailed = anonUnreclaimableReason(k, nid) ?? ns.reclaimFailed;
  }
  return reclaimed;
}
