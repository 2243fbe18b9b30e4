import type { Kernel, Mm, NumaFaultStats, Vma } from '@pagemig/core/internal';
import { changeProtNuma, pagetable, vmaPolicyMof } from '@pagemig/core/internal';

/**
 * kernel/sched/fair.c's scanner side of NUMA balancing: the scan period bounds (task_scan_min,
 * task_scan_max), its adaptation (update_task_scan_period) and one pass of task_numa_work over
 * an address space. Everything here counts in pages and milliseconds.
 */

/** The scanner's knobs in force: the sysctls, or the attach options that override them. */
export interface ScanKnobs {
  scanDelayMs: number;
  scanPeriodMinMs: number;
  scanPeriodMaxMs: number;
  scanSizeMb: number;
}

/** The scan state of one process (mm->numa_* and the scanning task's p->numa_scan_*). */
export interface TaskScan {
  /** mm->numa_next_scan: when the next pass may run (performance.now() ms). */
  nextScan: number;
  /** p->numa_scan_period and p->numa_scan_period_max (ms; 0 before the first pass). */
  period: number;
  periodMax: number;
  /** mm->numa_scan_offset: the page the next pass resumes at. */
  offset: number;
  /** mm->numa_scan_seq: full passes over the address space so far. */
  seq: number;
  /** p->numa_scan_seq: mm's seq at the last task_numa_placement. */
  placedSeq: number;
  /** The fault count at the last placement: placement runs on the first fault after a new seq. */
  placedFaults: number;
  /** Passes run and the entries they made PROT_NONE (numa_pte_updates of this process). */
  passes: number;
  ptesUpdated: number;
}

/** MAX_SCAN_WINDOW: never scan more than this many MB of PTEs per second. */
const MAX_SCAN_WINDOW = 2560;
/** NUMA_PERIOD_SLOTS and NUMA_PERIOD_THRESHOLD: the period moves in tenths; aim for 70% local. */
const NUMA_PERIOD_SLOTS = 10;
const NUMA_PERIOD_THRESHOLD = 7;

/** MB of the scan window in 4 KiB pages (scan_size << (20 - PAGE_SHIFT)). */
function mbToPages(mb: number): number {
  return mb * 256;
}

/**
 * get_mm_rss: the pages an address space maps (the zero page is not counted; PROT_NONE and
 * migration entries are): core's counter, kept as entries come and go, so it costs O(1).
 */
export function mmRss(mm: Mm): number {
  return mm.rss;
}

/** task_nr_scan_windows: how many scan windows cover the resident set (at least one). */
function taskNrScanWindows(knobs: ScanKnobs, rss: number): number {
  const nrScanPages = mbToPages(knobs.scanSizeMb);
  return Math.ceil((rss || nrScanPages) / nrScanPages);
}

/** task_scan_min: the shortest period per window, never above MAX_SCAN_WINDOW MB/s. */
export function taskScanMin(knobs: ScanKnobs, rss: number): number {
  const windows = knobs.scanSizeMb < MAX_SCAN_WINDOW ? Math.floor(MAX_SCAN_WINDOW / knobs.scanSizeMb) : 1;
  const floor = Math.floor(1000 / windows);
  const scan = Math.floor(knobs.scanPeriodMinMs / taskNrScanWindows(knobs, rss));
  return Math.max(floor, scan);
}

/** task_scan_max (no numa groups): the longest period per window, not below task_scan_min. */
export function taskScanMax(knobs: ScanKnobs, rss: number): number {
  const smin = taskScanMin(knobs, rss);
  return Math.max(smin, Math.floor(knobs.scanPeriodMaxMs / taskNrScanWindows(knobs, rss)));
}

/**
 * update_task_scan_period: slower when there were no faults worth counting or a migration failed
 * (the period doubles, the next pass is pushed back, and, as in the kernel, the locality is not
 * cleared, so one failed migration keeps the period growing to its maximum); otherwise by tenths
 * of the period: slower when most faults were private (memory already follows) or local, faster
 * when they were remote. Clears the locality on that path.
 */
export function updateTaskScanPeriod(
  st: TaskScan,
  s: NumaFaultStats,
  shared: number,
  priv: number,
  smin: number,
  now: number,
): void {
  const [remote, local, failed] = s.locality;
  if (local + shared === 0 || failed) {
    st.period = Math.min(st.periodMax, st.period * 2);
    st.nextScan = now + st.period;
    return;
  }
  const periodSlot = Math.ceil(st.period / NUMA_PERIOD_SLOTS);
  const lrRatio = Math.floor((local * NUMA_PERIOD_SLOTS) / (local + remote));
  const psRatio = Math.floor((priv * NUMA_PERIOD_SLOTS) / (priv + shared));
  let diff: number;
  if (psRatio >= NUMA_PERIOD_THRESHOLD) diff = Math.max(psRatio - NUMA_PERIOD_THRESHOLD, 1) * periodSlot;
  else if (lrRatio >= NUMA_PERIOD_THRESHOLD) diff = Math.max(lrRatio - NUMA_PERIOD_THRESHOLD, 1) * periodSlot;
  else diff = -(NUMA_PERIOD_THRESHOLD - Math.max(lrRatio, psRatio)) * periodSlot;
  st.period = Math.min(Math.max(st.period + diff, smin), st.periodMax);
  s.locality.fill(0);
}

/**
 * task_numa_placement's part that is modelled: on the first fault after the scanner finished a
 * pass (a new mm->numa_scan_seq) it takes the shared/private faults since the last time and
 * adapts the scan period. The preferred node, numa groups and task migration are not modelled.
 */
export function taskNumaPlacement(
  st: TaskScan,
  s: NumaFaultStats,
  knobs: ScanKnobs,
  rss: () => number,
  now: number,
): void {
  if (st.placedSeq === st.seq || s.faults === st.placedFaults) return;
  st.placedSeq = st.seq;
  st.placedFaults = s.faults;
  const resident = rss();
  st.periodMax = taskScanMax(knobs, resident);
  const [shared, priv] = s.faultTypes;
  s.faultTypes.fill(0);
  updateTaskScanPeriod(st, s, shared, priv, taskScanMin(knobs, resident), now);
}

/** reset_ptenuma_scan: a full pass is done; the next one starts at the lowest address. */
function resetPtenumaScan(st: TaskScan): void {
  st.seq++;
  st.offset = 0;
}

/**
 * One task_numa_work pass over the areas of a process from its scan offset: up to scan_size MB of
 * pages that had something to change (and up to 8 times that of address space), in windows that
 * end on 2 MiB boundaries, skipping areas NUMA balancing may not touch (VM_IO/VM_PFNMAP, hugetlb,
 * a policy without MPOL_F_MOF). `vmasFrom(vpn)` gives the areas that end above page `vpn` in
 * address order; the pass takes only those it visits, so with a lazy iterator (Mm.vmasFrom, the
 * kernel's vma_iter_init + for_each_vma) it costs O(log n) plus the areas it scans, whatever the
 * number of areas. `targetNode` is the node of a single-threaded process's thread, else -1;
 * `thisNid` the node of the task that runs the pass. Returns the entries made PROT_NONE.
 */
export function taskNumaWork(
  k: Kernel,
  vmasFrom: (vpn: number) => Iterable<Vma>,
  st: TaskScan,
  knobs: ScanKnobs,
  targetNode: number,
  thisNid: number,
): number {
  let pages = mbToPages(knobs.scanSizeMb);
  let virtpages = pages * 8;
  let start = st.offset;
  let vmi = vmasFrom(start)[Symbol.iterator]();
  let next = vmi.next();
  if (next.done) {
    resetPtenumaScan(st);
    start = 0;
    vmi = vmasFrom(0)[Symbol.iterator]();
    next = vmi.next();
  }
  let updated = 0;
  // Whether the budget ran out before the last area (else the pass reached the end).
  let stopped = false;
  scan: for (; !next.done; next = vmi.next()) {
    const vma = next.value;
    if (!vma.migratable || vma.hugetlb || !vmaPolicyMof(vma, thisNid)) continue;
    let end: number;
    do {
      start = Math.max(start, vma.startVpn);
      end = Math.min(
        Math.ceil((start + pages) / pagetable.PTRS_PER_PTE) * pagetable.PTRS_PER_PTE,
        vma.endVpn,
      );
      const nr = changeProtNuma(k, vma, start, end, targetNode);
      updated += nr;
      // Count only windows that had present entries to change: areas that are empty or already
      // PROT_NONE are skipped through faster, up to the virtual-space budget.
      if (nr) pages -= end - start;
      virtpages -= end - start;
      start = end;
      if (pages <= 0 || virtpages <= 0) {
        stopped = true;
        break scan;
      }
    } while (end !== vma.endVpn);
  }
  // The last areas may all be skipped: the scan restarts from the bottom next time.
  if (stopped) st.offset = start;
  else resetPtenumaScan(st);
  st.passes++;
  st.ptesUpdated += updated;
  return updated;
}
