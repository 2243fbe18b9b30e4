import type { Kernel } from './kernel.js';
import { nodeIsToptier } from './memory_tiers.js';
import type { Mm } from './mm.js';
import { shouldPromote } from './numa_promotion.js';

/**
 * kernel/sched/fair.c, the memory side of NUMA balancing: should_numa_migrate_memory (the
 * two-fault filter; memory tiering's hot/cold test is numa_promotion.ts) and task_numa_fault (what
 * a hinting fault teaches the task). Task placement (task_numa_placement's preferred node, numa
 * groups, sched_move_numa/sched_swap_numa) is not modelled: tasks stay on the node they were
 * placed on and only memory follows them.
 */

/** sysctl_numa_balancing_mode bits (include/linux/sched/sysctl.h). */
export const NUMA_BALANCING_DISABLED = 0;
export const NUMA_BALANCING_NORMAL = 1;
export const NUMA_BALANCING_MEMORY_TIERING = 2;

/**
 * task_numa_fault's flags (include/linux/sched/numa_balancing.h); TNF_NO_GROUP and TNF_SHARED
 * only steer numa groups, which are not modelled.
 */
export const TNF_MIGRATED = 0x01;
export const TNF_FAULT_LOCAL = 0x08;
export const TNF_MIGRATE_FAIL = 0x10;

/** What task_numa_fault recorded for the threads of one address space, in pages. */
export interface NumaFaultStats {
  /**
   * numa_faults_locality since the scanner last adapted its period: pages of remote faults, of
   * local faults, of faults whose migration failed (update_task_scan_period clears it).
   */
  locality: [remote: number, local: number, failed: number];
  /** task_numa_placement's fault_types since the last adaptation: shared, private pages. */
  faultTypes: [shared: number, priv: number];
  /** Hinting faults recorded since the process started. */
  faults: number;
  /** p->numa_pages_migrated: pages its faults migrated. */
  pagesMigrated: number;
}

const stats = new WeakMap<Mm, NumaFaultStats>();

/** The NUMA fault statistics of address space `mm` (all its threads: one task per process here). */
export function numaFaultStats(mm: Mm): NumaFaultStats {
  let s = stats.get(mm);
  if (!s) {
    s = { locality: [0, 0, 0], faultTypes: [0, 0], faults: 0, pagesMigrated: 0 };
    stats.set(mm, s);
  }
  return s;
}

/** folio_use_access_time: memory tiering is on and folio `head` is on a slow-tier node. */
export function folioUseAccessTime(k: Kernel, head: number): boolean {
  return (k.kern.numa_balancing & NUMA_BALANCING_MEMORY_TIERING) !== 0 && !nodeIsToptier(k, k.nodeOf(head));
}

/**
 * folio_migrate_flags' cpupid: it follows the folio, but under memory tiering a move between a
 * slow and a top tier resets it, since the slow tier's value is an access time.
 */
export function migratedLastCpupid(k: Kernel, fromNid: number, toNid: number, lastNid: number): number {
  if (!(k.kern.numa_balancing & NUMA_BALANCING_MEMORY_TIERING)) return lastNid;
  return nodeIsToptier(k, fromNid) !== nodeIsToptier(k, toNid) ? 0 : lastNid;
}

/**
 * The node of a folio's last hinting fault (folio_last_cpupid's node), or -1 when none touched it
 * since it was allocated (the kernel's "-1 & LAST_CPUPID_MASK").
 */
export function folioLastNid(k: Kernel, head: number): number {
  return k.pages.lastNid[head]! - 1;
}

/**
 * should_numa_migrate_memory for a fault from node `dstNid` on folio `head` that lives on
 * `srcNid`: records the fault in the folio (folio_xchg_last_cpupid) and answers whether the folio
 * should follow. pagemig keeps the node half of last_cpupid only, and tasks never change nodes
 * here, so the kernel's "first or private fault early in a task's life" migrates at once when no
 * fault touched the folio yet, and the two-stage filter asks that the previous fault came from
 * the same node: a folio moves on the second fault in a row from `dstNid`. Slow-tier folios never
 * move on their first fault (the cpupid_valid test of normal mode). Under memory tiering a
 * slow-tier folio's last_cpupid holds its access time instead, and hotness decides (shouldPromote).
 */
export function shouldNumaMigrateMemory(k: Kernel, head: number, srcNid: number, dstNid: number): boolean {
  // Cannot migrate to memoryless nodes.
  if (k.nodes[dstNid]!.nrPages === 0) return false;
  // "The pages in slow memory node should be migrated according to hot/cold instead of
  // private/shared."
  if (folioUseAccessTime(k, head)) return shouldPromote(k, head, dstNid);
  const last = folioLastNid(k, head);
  k.pages.lastNid[head] = dstNid + 1;
  if (!(k.kern.numa_balancing & NUMA_BALANCING_MEMORY_TIERING) && !nodeIsToptier(k, srcNid) && last < 0)
    return false;
  if (last < 0) return true;
  return last === dstNid;
}

/**
 * task_numa_fault: a hinting fault of `pages` pages on memory of node `memNid` from a task on
 * `cpuNid`, whose folio's previous fault came from `lastNid` (-1: none). A fault counts as private
 * when there was none before or the previous one came from the same node (pagemig's stand-in for
 * cpupid_match_pid). Nothing is recorded while kernel.numa_balancing is 0, nor for slow-tier
 * memory whose folio had no previous fault.
 */
export function taskNumaFault(
  k: Kernel,
  mm: Mm,
  lastNid: number,
  memNid: number,
  cpuNid: number,
  pages: number,
  flags: number,
): void {
  const mode = k.kern.numa_balancing;
  if (mode === NUMA_BALANCING_DISABLED) return;
  if (!nodeIsToptier(k, memNid) && (mode & NUMA_BALANCING_MEMORY_TIERING || lastNid < 0)) return;
  const s = numaFaultStats(mm);
  const priv = lastNid < 0 || lastNid === cpuNid ? 1 : 0;
  s.faults++;
  if (flags & TNF_MIGRATED) s.pagesMigrated += pages;
  if (flags & TNF_MIGRATE_FAIL) s.locality[2] += pages;
  s.faultTypes[priv] += pages;
  s.locality[flags & TNF_FAULT_LOCAL ? 1 : 0] += pages;
}
