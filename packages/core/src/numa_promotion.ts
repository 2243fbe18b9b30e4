import type { Kernel } from './kernel.js';
import { WMARK_PROMO } from './mmzone.js';

/**
 * NUMA_BALANCING_MEMORY_TIERING (kernel.numa_balancing bit 1): slow-tier folios are promoted by
 * hotness, not by the two-fault filter. The scanner stamps the scan time into a slow-tier folio
 * (folio_xchg_access_time); the hint fault's latency (fault time - scan time) under the hot
 * threshold makes the folio a promotion candidate, rate-limited per target node
 * (numa_promotion_rate_limit), with a threshold that adapts to the candidate rate
 * (numa_promotion_adjust_threshold). kernel/sched/fair.c and include/linux/mm.h.
 */

/**
 * The kernel keeps the access time in the folio's last_cpupid bits; pagemig's last_cpupid is the
 * one-byte lastNid of struct page (LAST_CPUPID_SHIFT 8), so, as include/linux/mm.h does for a
 * cpupid field narrower than PAGE_ACCESS_TIME_MIN_BITS (12), the time is kept in 16 ms buckets and
 * the latency wraps every 4096 ms. No byte is added to struct page.
 */
const LAST_CPUPID_SHIFT = 8;
const LAST_CPUPID_MASK = (1 << LAST_CPUPID_SHIFT) - 1;
const PAGE_ACCESS_TIME_MIN_BITS = 12;
const PAGE_ACCESS_TIME_BUCKETS = PAGE_ACCESS_TIME_MIN_BITS - LAST_CPUPID_SHIFT;
export const PAGE_ACCESS_TIME_MASK = LAST_CPUPID_MASK << PAGE_ACCESS_TIME_BUCKETS;

/** NUMA_MIGRATION_ADJUST_STEPS: the threshold moves in sixteenths of twice the default. */
const NUMA_MIGRATION_ADJUST_STEPS = 16;
const MSEC_PER_SEC = 1000;

/** jiffies_to_msecs(jiffies): whole milliseconds of the machine's clock. */
function nowMs(k: Kernel): number {
  return Math.floor(k.clock.now());
}

/** MB_TO_PAGES: MB in 4 KiB pages. */
function mbToPages(mb: number): number {
  return mb * 256;
}

/** folio_xchg_access_time: stores `timeMs` in folio `head` and returns the time it held. */
function folioXchgAccessTime(k: Kernel, head: number, timeMs: number): number {
  const p = k.pages;
  const last = p.lastNid[head]!;
  p.lastNid[head] = (timeMs >>> PAGE_ACCESS_TIME_BUCKETS) & LAST_CPUPID_MASK;
  return last << PAGE_ACCESS_TIME_BUCKETS;
}

/** change_prot_numa's stamp on a slow-tier folio it makes PROT_NONE: the scan time. */
export function folioStampScanTime(k: Kernel, head: number): void {
  folioXchgAccessTime(k, head, nowMs(k));
}

/**
 * numa_hint_fault_latency: ms since folio `head` was scanned (in 16 ms buckets, modulo 4096 ms);
 * the fault's time becomes the folio's new access time.
 */
export function numaHintFaultLatency(k: Kernel, head: number): number {
  const time = nowMs(k);
  const last = folioXchgAccessTime(k, head, time);
  return (time - last) & PAGE_ACCESS_TIME_MASK;
}

/** The promotion state of one target node (pglist_data's nbp_* fields and its candidate count). */
export interface PromotionState {
  /** nbp_rl_start / nbp_rl_nr_cand: the rate limit's 1-second window and the count at its start. */
  rlStart: number;
  rlNrCand: number;
  /** nbp_th_start / nbp_th_nr_cand: the threshold's adjustment period and the count at its start. */
  thStart: number;
  thNrCand: number;
  /** nbp_threshold: the adapted hot threshold in ms, 0 = the default (hot_threshold_ms). */
  threshold: number;
  /** node_page_state(pgdat, PGPROMOTE_CANDIDATE): candidates for this node so far (pages). */
  candidates: number;
}

const states = new WeakMap<Kernel, PromotionState[]>();

/** The promotion state of target node `nid` of machine `k`. */
export function promotionState(k: Kernel, nid: number): PromotionState {
  let s = states.get(k);
  if (!s) {
    s = k.nodes.map(() => ({
      rlStart: 0,
      rlNrCand: 0,
      thStart: 0,
      thNrCand: 0,
      threshold: 0,
      candidates: 0,
    }));
    states.set(k, s);
  }
  return s[nid]!;
}

/**
 * pgdat_free_space_enough: some zone of node `nid` has more than its promo watermark plus
 * max(1 GiB, 1/16 of the node) free, so every recently accessed slow-tier folio may come.
 */
function pgdatFreeSpaceEnough(k: Kernel, nid: number): boolean {
  const node = k.nodes[nid]!;
  const enough = Math.max((1024 * 1024 * 1024) >>> 12, node.nrPages >>> 4);
  for (let z = node.zones.length - 1; z >= 0; z--) {
    const zone = node.zones[z]!;
    if (zone.present === 0) continue;
    if (zone.watermarkOk(0, zone.watermark[WMARK_PROMO]! + enough)) return true;
  }
  return false;
}

/**
 * numa_promotion_rate_limit: counts `nr` candidate pages (pgpromote_candidate) and answers whether
 * the node's candidates in the current window (restarted once more than a second has passed)
 * reached `rateLimit` pages.
 */
function numaPromotionRateLimit(
  k: Kernel,
  s: PromotionState,
  rateLimit: number,
  nr: number,
  now: number,
): boolean {
  k.count('pgpromote_candidate', nr);
  s.candidates += nr;
  if (now - s.rlStart > MSEC_PER_SEC) {
    s.rlStart = now;
    s.rlNrCand = s.candidates;
  }
  return s.candidates - s.rlNrCand >= rateLimit;
}

/**
 * numa_promotion_adjust_threshold: once per kernel.numa_balancing_scan_period_max_ms, compares the
 * candidates of the period with what the rate limit allows in it and moves the threshold one step
 * (2 * refTh / 16) down when there were over 110% of them, up (to 2 * refTh at most) under 90%.
 */
function numaPromotionAdjustThreshold(
  k: Kernel,
  s: PromotionState,
  rateLimit: number,
  refTh: number,
  now: number,
): void {
  const thPeriod = k.kern.numa_balancing_scan_period_max_ms;
  if (now - s.thStart <= thPeriod) return;
  s.thStart = now;
  const refCand = Math.floor((rateLimit * thPeriod) / MSEC_PER_SEC);
  const diffCand = s.candidates - s.thNrCand;
  const unitTh = Math.floor((refTh * 2) / NUMA_MIGRATION_ADJUST_STEPS);
  let th = s.threshold || refTh;
  if (diffCand > Math.floor((refCand * 11) / 10)) th = Math.max(th - unitTh, unitTh);
  else if (diffCand < Math.floor((refCand * 9) / 10)) th = Math.min(th + unitTh, refTh * 2);
  s.thNrCand = s.candidates;
  s.threshold = th;
}

/**
 * should_numa_migrate_memory's memory-tiering branch for slow-tier folio `head` faulted from
 * top-tier node `dstNid`: promote at once when the node has plenty of free memory
 * (pgpromote_candidate_nrl; the adapted threshold is reset), else when the hint-fault latency is
 * under the threshold in force and the node's rate limit lets one more candidate through.
 */
export function shouldPromote(k: Kernel, head: number, dstNid: number): boolean {
  const nr = 1 << k.folioOrder(head);
  const s = promotionState(k, dstNid);
  if (pgdatFreeSpaceEnough(k, dstNid)) {
    // "workload changed, reset hot threshold"
    s.threshold = 0;
    k.count('pgpromote_candidate_nrl', nr);
    return true;
  }
  const now = nowMs(k);
  const defTh = k.kern.numa_balancing_hot_threshold_ms;
  const rateLimit = mbToPages(k.kern.numa_balancing_promote_rate_limit_MBps);
  numaPromotionAdjustThreshold(k, s, rateLimit, defTh, now);
  const th = s.threshold || defTh;
  if (numaHintFaultLatency(k, head) >= th) return false;
  return !numaPromotionRateLimit(k, s, rateLimit, nr, now);
}

/**
 * reset_memory_tiering (kernel/sched/core.c, when a kernel.numa_balancing write turns memory
 * tiering on): every node's adapted threshold goes back to the default and its adjustment period
 * restarts now.
 */
export function resetMemoryTiering(k: Kernel): void {
  const now = nowMs(k);
  for (let nid = 0; nid < k.nodes.length; nid++) {
    const s = promotionState(k, nid);
    s.threshold = 0;
    s.thNrCand = s.candidates;
    s.thStart = now;
  }
}
