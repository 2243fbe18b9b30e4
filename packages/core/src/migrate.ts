import { MAX_TIMER_MS } from './clock.js';
import { EAGAIN, EINVAL, ENOMEM, kernelError } from './errno.js';
import { InjectedFault } from './fault_inject.js';
import { folioTestPartiallyMapped, isolateSplitFolios, splitFolio } from './huge_memory.js';
import {
  allocHugetlbFolioNodemask,
  folioTestHugetlb,
  HUGETLB_NR,
  HUGETLB_ORDER,
  isolateHugetlb,
  moveHugetlbState,
} from './hugetlb.js';
import type { Kernel } from './kernel.js';
import { folioAddLru, folioIsolateLru, folioIsolationDone, folioPutback } from './lru.js';
import { modeledClock } from './migrate_clock.js';
import {
  MigrateMode,
  type MigrateModeName,
  type MigrateModeValue,
  MigrateReason,
  type MigrateReasonName,
  type MigrateReasonValue,
  migrateModeNames,
  migrateReasonNames,
  resolveMode,
  resolveReason,
} from './migrate_mode.js';
import type { MigratorEntry, OffloadHost } from './migrate_offload.js';
import { traceRemoveMigrationPte, traceSetMigrationPte } from './migrate_trace.js';
import { BATCH_COPIED, BATCH_FLAGS, BATCH_ROW_INTS, MigrationBatch } from './migrator.js';
import { HPAGE_PMD_ORDER, MIGRATE_MOVABLE } from './mmzone.js';
import {
  PG_anon,
  PG_buddy,
  PG_content_copied,
  PG_dirty,
  PG_head,
  PG_hugetlb,
  PG_isolated,
  PG_lru,
  PG_tail,
} from './page.js';
import type { AllocRequest } from './page_alloc.js';
import {
  mkPte,
  PMD_HUGE,
  PTE_MIGRATION,
  PTE_PFN_SHIFT,
  PTE_PRESENT,
  PTE_PROTNONE,
  pteIsPresent,
} from './pagetable.js';
import { folioModMapcount, type Mapping, type RmapHit, rmapWalk } from './rmap.js';
import { threadCpuSeconds } from './schedstat.js';
import { show } from './show.js';
import { migratedLastCpupid } from './task_numa.js';
import {
  TL_BATCH,
  TL_BATCH_COPY,
  TL_FALLBACK_COPY,
  TL_FLUSH,
  TL_FOLIO_MOVE,
  TL_MOVE,
  TL_RUN,
  TL_UNMAP,
} from './timeline_writer.js';
import type { ClockOptions, ModeledRun } from './timing/clock.js';
import { folioModStat } from './vmstat.js';

/** mm/migrate.c constants. */
export const NR_MAX_MIGRATE_PAGES_RETRY = 10;
export const NR_MAX_MIGRATE_ASYNC_RETRY = 3;
export const NR_MAX_MIGRATE_SYNC_RETRY = NR_MAX_MIGRATE_PAGES_RETRY - NR_MAX_MIGRATE_ASYNC_RETRY;
/** GUP_PIN_COUNTING_BIAS: a FOLL_PIN adds this many references. */
export const GUP_PIN_COUNTING_BIAS = 1024;

export interface MigrateOptions extends ClockOptions {
  /** Target node; allocation never falls back to another node (__GFP_THISNODE). */
  node: number;
  mode?: MigrateModeName | MigrateModeValue;
  reason?: MigrateReasonName | MigrateReasonValue;
  /** Which reclaim path demotes (MR_DEMOTION only): counts pgdemote_<origin>. Default 'kswapd'. */
  demoteOrigin?: 'kswapd' | 'direct' | 'khugepaged' | 'proactive';
  /**
   * Abort a migrator's batch copy after this long (the CPU copies it). Default: the sysctl
   * `vm.migrate_copy_timeout_ms` (pagemig's own; 10 s, as dcbm).
   */
  copyTimeoutMs?: number;
  /**
   * After the abort, wait this long for the migrator to settle (its destinations stay reserved
   * meanwhile); one that still has not settled is abandoned and disabled. Default: the sysctl
   * `vm.migrate_abort_grace_ms` (pagemig's own; 1 s).
   */
  abortGraceMs?: number;
}

/** Per-phase wall time in seconds. */
export interface MigrationPhases {
  unmap: number;
  flush: number;
  /** Waiting for the migrator's batch copy. */
  batchCopy: number;
  /** CPU copies of folios the migrator did not mark. */
  fallbackCopy: number;
  /** Metadata move, remap and free. */
  move: number;
}

export interface MigrationResult {
  /** migrate_pages(): folios not migrated (>= 0), or a negative errno. */
  ret: number;
  errno?: number;
  nrSucceeded: number;
  nrFailed: number;
  nrThpSucceeded: number;
  nrThpFailed: number;
  nrThpSplit: number;
  nrSplit: number;
  /** Input pfns that could not be isolated (free, not user memory, already isolated). */
  notIsolated: number;
  phases: MigrationPhases;
  /**
   * The engine thread's own CPU time (/proc/thread-self/schedstat on Linux). The kernel brings it up
   * to date when the thread sleeps and at scheduler ticks, so a migration that never sleeps (an
   * inline copy) is charged in whole ticks (4 ms at HZ=250): sum it over many migrations.
   */
  cpuSeconds: number;
  wallSeconds: number;
  /** Under clock 'modeled': the timing model's phases for this run's shape (modeled, not measured). */
  modeled?: ModeledRun;
  offload: {
    migrator: string | null;
    batches: number;
    foliosOffered: number;
    foliosCopied: number;
    failures: number;
  };
}

interface Stats {
  nrSucceeded: number;
  nrFailedPages: number;
  nrThpSucceeded: number;
  nrThpFailed: number;
  nrThpSplit: number;
  nrSplit: number;
  /** Folios not migrated, counted like migrate_pages()'s return (a split folio counts once). */
  nrFailedFolios: number;
}

let lastRunId = 0;
/** A run's mark for pages.isolatedBy: 1..65535, reused after 65535 runs (a run ends long before). */
function nextRunId(): number {
  lastRunId = lastRunId === 0xffff ? 1 : lastRunId + 1;
  return lastRunId;
}

// rmap visitors share state through module variables: no closure is created per folio.
let vk: Kernel;
let vFrom = 0;
let vTo = 0;
function unmapOne(hit: RmapHit): void {
  const pt = hit.mm.pt;
  const arr = hit.huge ? pt.pmd : pt.pte;
  let e = arr[hit.slot]!;
  if (!pteIsPresent(e)) return;
  // try_to_migrate_one: the mapping (accessible or PROT_NONE) becomes a migration entry and drops
  // its rmap and reference; nothing of PROT_NONE is kept, so the remap makes it accessible.
  // A compare-and-swap, because user threads set accessed/dirty bits concurrently.
  for (;;) {
    const seen = Atomics.compareExchange(
      arr,
      hit.slot,
      e,
      (e & ~(PTE_PRESENT | PTE_PROTNONE)) | PTE_MIGRATION,
    );
    if (seen === e) break;
    e = seen;
  }
  if (vk.trace.setMigrationPte)
    traceSetMigrationPte(
      vk,
      hit.vpn,
      (e & ~(PTE_PRESENT | PTE_PROTNONE)) | PTE_MIGRATION,
      hit.huge ? HPAGE_PMD_ORDER : vk.folioOrder(vFrom),
    );
  // Threads of this address space may cache the old translation: the batch flush shoots it down.
  if (pt.tlb !== null) pt.tlb.pending = true;
  folioModMapcount(vk, vFrom, -1);
  vk.pages.refcount[vFrom]!--;
}
function remapOne(hit: RmapHit): void {
  const pt = hit.mm.pt;
  const arr = hit.huge ? pt.pmd : pt.pte;
  const e = arr[hit.slot]!;
  if (!(e & PTE_MIGRATION) || e & PTE_PRESENT) return;
  // remove_migration_pte: a PTE (or PMD) to the same offset of the new folio.
  const pfn = vTo + ((e >>> PTE_PFN_SHIFT) - vFrom);
  const pte = mkPte(pfn, (e & 0x7f & ~PTE_MIGRATION) | PTE_PRESENT | (hit.huge ? PMD_HUGE : 0));
  Atomics.store(arr, hit.slot, pte);
  if (vk.trace.removeMigrationPte)
    traceRemoveMigrationPte(vk, hit.vpn, pte, hit.huge ? HPAGE_PMD_ORDER : vk.folioOrder(vTo));
  folioModMapcount(vk, vTo, 1);
  vk.pages.refcount[vTo]!++;
}

/**
 * A list of folio heads handed to the engine: an array, or a typed array (a caller that queues
 * tens of thousands of folios builds an Int32Array far faster than a JS array).
 */
export type FolioList = ArrayLike<number> & Iterable<number>;

/** Whether any of `heads` is a hugetlb folio. */
function anyHugetlb(k: Kernel, heads: FolioList): boolean {
  for (let i = 0; i < heads.length; i++) if (folioTestHugetlb(k, heads[i]!)) return true;
  return false;
}

/**
 * The lists of one migrate_pages_batch() (from, unmap_folios/dst_folios, ret_folios,
 * split_folios) as typed arrays that every batch of a run reuses, and the runs after it (a pool):
 * the per-page path allocates nothing, so long 4 KiB runs do not pay for garbage collection.
 */
class BatchLists {
  cap = 0;
  /** How many rmap owners entries the runs so far may have left (release clears them). */
  hi = 0;
  /** Folios to unmap in this pass, and those to retry in the next one (-EAGAIN). */
  pend = new Int32Array(0);
  retry = new Int32Array(0);
  nPend = 0;
  nRetry = 0;
  /** The unmapped folios: source heads, reserved destinations, expected references, rmap owners. */
  src = new Int32Array(0);
  dst = new Int32Array(0);
  expected = new Int32Array(0);
  owners: (Mapping | undefined)[] = [];
  /** Per unmapped folio: 0 pending, 1 moved, 2 ready to move in this pass. */
  state = new Uint8Array(0);
  nu = 0;
  /** ret_folios kept for the sync retries (rare: a JS array, reused). */
  readonly left: number[] = [];
  /** Pieces of folios split in this chunk. */
  readonly split: number[] = [];
  /**
   * The abort signal handed to the migrator: one serves the batches of a run and of the runs after
   * it (one at a time) until a batch aborts it. Making a controller costs more than the rest of a
   * compaction cluster's bookkeeping; a migrator removes its abort listeners when a batch settles.
   */
  ac: AbortController | null = null;

  /** Room for a batch of `n` folios (grows, never shrinks: a run's batches have one size). */
  ensure(n: number): void {
    if (n <= this.cap) return;
    const c = Math.max(n, 2 * this.cap, 64);
    this.pend = new Int32Array(c);
    this.retry = new Int32Array(c);
    this.src = new Int32Array(c);
    this.dst = new Int32Array(c);
    this.expected = new Int32Array(c);
    this.state = new Uint8Array(c);
    this.owners = new Array<Mapping | undefined>(c).fill(undefined);
    this.cap = c;
  }
}
const listPool: BatchLists[] = [];

/**
 * The batched migration engine (migrate_pages() after the batch-copy series): batches of
 * NR_MAX_BATCHED_MIGRATION base pages; per batch unmap → one TLB flush → batch copy by the
 * routed migrator → move (CPU copy of unmarked folios, metadata, remap, free) with retries,
 * THP split on ENOMEM, and the kernel's vmstat and tracepoint accounting.
 */
export class MigrationRun {
  readonly stats: Stats = {
    nrSucceeded: 0,
    nrFailedPages: 0,
    nrThpSucceeded: 0,
    nrThpFailed: 0,
    nrThpSplit: 0,
    nrSplit: 0,
    nrFailedFolios: 0,
  };
  readonly phases: MigrationPhases = { unmap: 0, flush: 0, batchCopy: 0, fallbackCopy: 0, move: 0 };
  readonly offload = {
    migrator: null as string | null,
    batches: 0,
    foliosOffered: 0,
    foliosCopied: 0,
    failures: 0,
  };
  /** The batch table handed to the migrator; given back to the kernel's pool when the run ends. */
  table: Int32Array;
  /** The timeline lane this run records on (m.timeline), or -1 when the timeline is off. */
  lane = -1;
  /** The timeline's number of the batch in progress (0 when the timeline is off). */
  private batchId = 0;
  private rc = 0;
  /** Folios put back on the caller's list (not migrated). */
  private putBack = 0;
  /** Pins taken by the unmap_pin fault site, dropped when the batch ends. */
  private readonly pins: number[] = [];
  /**
   * This run's mark in `pages.isolatedBy`: on the folios it holds isolated and the destinations
   * it reserved, cleared as each is migrated, put back or returned. `unwind` gives back exactly
   * the marked ones among `held` (the heads it was given and split pieces) and the destinations of
   * the batch in progress, never a folio another run took after this one freed it.
   */
  private readonly id: number;
  private held: FolioList = [];
  private readonly splitHeads: number[] = [];
  /** The batch lists (pooled); given back when the run ends (release). */
  private readonly lists: BatchLists;
  /** alloc_migration_target's request, reused for every folio (the allocator keeps no reference). */
  private readonly req: AllocRequest;
  // The batch in progress (a run's batches run one at a time): its mode, passes, whether it keeps
  // its retries (lists.left), its length, whether the target ran out of memory, and when it and
  // its current phase started (performance.now()).
  private bMode: MigrateModeValue = MigrateMode.MIGRATE_ASYNC;
  private bPasses = 0;
  private bKeep = false;
  private bLen = 0;
  private enomem = false;
  private tBatch = 0;
  private tPhase = 0;

  constructor(
    private readonly k: Kernel,
    private readonly host: OffloadHost,
    readonly node: number,
    readonly mode: MigrateModeValue,
    readonly reason: MigrateReasonValue,
    private readonly opts: {
      demoteOrigin: string;
      copyTimeoutMs: number;
      abortGraceMs: number;
      /** Where the timeouts came from, for the log: the run's options or the sysctls. */
      timeoutSource: string;
      graceSource: string;
      /** get_new_folio (e.g. compaction_alloc): a prepared folio of `order` for `src`, or -1. */
      alloc?: (src: number, order: number) => number;
      /** put_new_folio (e.g. compaction_free): takes back an unused destination. */
      free?: (dst: number) => void;
    },
  ) {
    this.table = k.takeBatchTable();
    this.id = nextRunId();
    this.lists = listPool.pop() ?? new BatchLists();
    this.req = {
      order: 0,
      nid: node,
      thisNode: true,
      mt: MIGRATE_MOVABLE,
      kswapdReclaim: false,
      // numa_node_id() of the task the run belongs to: looked up once, not per folio.
      localNid: k.trace.currentTask().node ?? 0,
    };
  }

  /**
   * migrate_pages(): migrates isolated folios (heads); puts back what did not move. Whatever throws
   * inside (a migrator bug the engine cannot contain, a caller's hook), every folio of the run that
   * is still isolated gets its mappings back and returns to the LRU before the error propagates.
   */
  migratePages(heads: FolioList): Promise<number> {
    const mark = this.k.pages.isolatedBy;
    for (let i = 0; i < heads.length; i++) mark[heads[i]!] = this.id;
    this.held = heads;
    return this.migrateOwned(heads);
  }

  /** Gives the batch lists back to the pool: the run has ended. */
  release(): void {
    const L = this.lists;
    // Drop the rmap owners the lists still reference.
    L.owners.fill(undefined, 0, L.hi);
    L.hi = 0;
    L.nu = 0;
    L.left.length = 0;
    L.split.length = 0;
    if (listPool.length < 4) listPool.push(L);
  }

  /** Restores and puts back everything the run still holds (remove_migration_ptes(src, src) + putback). */
  private unwind(): void {
    const k = this.k;
    const p = k.pages;
    const mark = p.isolatedBy;
    const id = this.id;
    for (const list of [this.held, this.splitHeads]) {
      for (const head of list) {
        if (mark[head] !== id) continue;
        mark[head] = 0;
        const mapping = k.mappingOf(head);
        if (mapping) {
          vk = k;
          vFrom = head;
          vTo = head;
          rmapWalk(mapping, p.index[head]!, head, 1 << k.folioOrder(head), remapOne);
        }
        if (p.flags[head]! & PG_isolated) putbackFolio(k, head);
      }
    }
    // Only the batch in progress holds destinations: every earlier batch moved or freed its own.
    const L = this.lists;
    for (let i = 0; i < L.nu; i++) {
      const d = L.dst[i]!;
      if (mark[d] !== id) continue;
      mark[d] = 0;
      p.flags[d]! &= ~PG_content_copied;
      if (this.opts.free) this.opts.free(d);
      else k.folioPut(d);
    }
    while (this.pins.length) k.folioPut(this.pins.pop()!, GUP_PIN_COUNTING_BIAS);
    k.wakeMigrationWaiters();
  }

  private async migrateOwned(heads: FolioList): Promise<number> {
    try {
      const k = this.k;
      k.trace.emit(
        'migrate',
        'mm_migrate_pages_start',
        { mode: this.mode, reason: this.reason },
        `mode=${migrateModeNames[this.mode]} reason=${migrateReasonNames[this.reason]}`,
      );
      // migrate_hugetlbs: hugetlb folios go first and alone; the batches take the others. (A run
      // without any skips it without an await or a copy of its list.)
      if (anyHugetlb(k, heads)) heads = await this.migrateHugetlbs(heads);
      // The batches run in a function of their own: V8 compiles a long loop on stack replacement,
      // and code after the loop that had not run before deoptimizes that code again at every run.
      const done = await this.migrateBatches(heads);
      for (let i = done; i < heads.length; i++) this.putback(heads[i]!);
      const s = this.stats;
      k.count('pgmigrate_success', s.nrSucceeded);
      k.count('pgmigrate_fail', s.nrFailedPages);
      k.count('thp_migration_success', s.nrThpSucceeded);
      k.count('thp_migration_fail', s.nrThpFailed);
      k.count('thp_migration_split', s.nrThpSplit);
      if (this.reason === MigrateReason.MR_NUMA_MISPLACED) k.count('numa_pages_migrated', s.nrSucceeded);
      if (this.reason === MigrateReason.MR_DEMOTION)
        k.count(`pgdemote_${this.opts.demoteOrigin}` as 'pgdemote_kswapd', s.nrSucceeded);
      k.trace.emit(
        'migrate',
        'mm_migrate_pages',
        {
          succeeded: s.nrSucceeded,
          failed: s.nrFailedPages,
          thp_succeeded: s.nrThpSucceeded,
          thp_failed: s.nrThpFailed,
          thp_split: s.nrThpSplit,
          large_folio_split: s.nrSplit,
          mode: this.mode,
          reason: this.reason,
        },
        `nr_succeeded=${s.nrSucceeded} nr_failed=${s.nrFailedPages} nr_thp_succeeded=${s.nrThpSucceeded} nr_thp_failed=${s.nrThpFailed} nr_thp_split=${s.nrThpSplit} nr_split=${s.nrSplit} mode=${migrateModeNames[this.mode]} reason=${migrateReasonNames[this.reason]}`,
      );
      if (this.rc < 0) return this.rc;
      // "Return 0 in case all split folios of fail-to-migrate large folios are migrated
      // successfully" (migrate_pages: the list is empty), although the split folio counted as a
      // failure (reference kernel-tests-and-conventions 3.4, 4.7).
      return this.putBack ? s.nrFailedFolios : 0;
    } catch (e) {
      this.unwind();
      throw e;
    }
  }

  /**
   * migrate_pages' loop over chunks of NR_MAX_BATCHED_MIGRATION base pages. Returns how many of
   * `heads` it took; after -ENOMEM the caller puts back the rest.
   */
  private async migrateBatches(heads: FolioList): Promise<number> {
    const k = this.k;
    const batchPages = k.config.migrationBatchPages;
    const L = this.lists;
    const ASYNC = MigrateMode.MIGRATE_ASYNC;
    // A batch returns a promise only when one of its steps waited: a batch that did not costs no
    // await (every promise costs the async-context hooks of move_pages' task tracking).
    let r: Promise<void> | undefined;
    let i = 0;
    while (i < heads.length && this.rc >= 0) {
      // Cut a chunk that reaches NR_MAX_BATCHED_MIGRATION base pages (the folio reaching it included).
      const start = i;
      let pages = 0;
      while (i < heads.length && pages < batchPages) pages += 1 << k.folioOrder(heads[i++]!);
      L.split.length = 0;
      if (this.mode === ASYNC) {
        r = this.batch(heads, start, i, ASYNC, NR_MAX_MIGRATE_PAGES_RETRY, false);
        if (r) await r;
      } else {
        // migrate_pages_sync: the batch async first, then each leftover alone in the requested mode.
        r = this.batch(heads, start, i, ASYNC, NR_MAX_MIGRATE_ASYNC_RETRY, true);
        if (r) await r;
        const left = L.left;
        for (let j = 0; j < left.length; j++) {
          if (this.rc < 0) {
            this.putback(left[j]!);
            continue;
          }
          r = this.batch(left, j, j + 1, this.mode, NR_MAX_MIGRATE_SYNC_RETRY, false);
          if (r) await r;
        }
      }
      if (L.split.length) {
        // Pieces of a split folio: minimal effort, async, one pass. Their failures are not counted
        // as folios: the large folio already counted as one failure.
        const failedBefore = this.stats.nrFailedFolios;
        r = this.batch(L.split, 0, L.split.length, ASYNC, 1, false);
        if (r) await r;
        this.stats.nrFailedFolios = failedBefore;
      }
    }
    return i;
  }

  /** putback_movable_pages for one folio. */
  private putback(head: number): void {
    this.putBack++;
    this.k.pages.isolatedBy[head] = 0;
    putbackFolio(this.k, head);
  }

  /**
   * migrate_hugetlbs: the run's hugetlb folios, one at a time (unmap_and_move_huge_page), never
   * batched, offered to a migrator or split; up to NR_MAX_MIGRATE_PAGES_RETRY passes while some
   * return -EAGAIN. A target the node cannot give (-ENOMEM) ends the run: "when memory is low,
   * don't bother to try to migrate other folios". Returns the other folios, for the batches.
   */
  private async migrateHugetlbs(heads: FolioList): Promise<FolioList> {
    const k = this.k;
    let list: number[] = [];
    const rest: number[] = [];
    for (const head of heads) (folioTestHugetlb(k, head) ? list : rest).push(head);
    if (!list.length) return heads;
    const s = this.stats;
    let retryPages = 0;
    for (let pass = 0; pass < NR_MAX_MIGRATE_PAGES_RETRY && list.length; pass++) {
      retryPages = 0;
      const again: number[] = [];
      for (let i = 0; i < list.length; i++) {
        const rc = await this.unmapAndMoveHugePage(list[i]!);
        if (rc === 0) s.nrSucceeded += HUGETLB_NR;
        else if (rc === -EAGAIN) {
          again.push(list[i]!);
          retryPages += HUGETLB_NR;
        } else {
          s.nrFailedPages += HUGETLB_NR + retryPages;
          this.rc = rc;
          for (const head of [...again, ...list.slice(i), ...rest]) this.putback(head);
          return [];
        }
      }
      list = again;
    }
    // Still busy after the last pass: failed (nr_failed += retry).
    s.nrFailedPages += retryPages;
    s.nrFailedFolios += list.length;
    for (const head of list) this.putback(head);
    return rest;
  }

  /**
   * unmap_and_move_huge_page: 0 (migrated, or freed from under us), -EAGAIN (extra references,
   * e.g. a DMA pin, which also keeps an anon folio mapped) or -ENOMEM (no target on the node). The
   * folio is unmapped and the TLB flushed at once (try_to_migrate without TTU_BATCH_FLUSH), copied
   * on the CPU (folio_mc_copy: the batch copy never takes hugetlb folios), then its mappings and
   * hugetlb state (move_hugetlb_state) go to the target and the source returns to its pool.
   */
  private async unmapAndMoveHugePage(head: number): Promise<number> {
    const k = this.k;
    const p = k.pages;
    if (p.refcount[head] === 1) {
      // Freed from under us (unmapped while isolated): done.
      p.isolatedBy[head] = 0;
      putbackFolio(k, head);
      return 0;
    }
    let t = performance.now();
    const injected = k.faults?.hit('alloc_dst', { node: this.node, order: HUGETLB_ORDER, pfn: head });
    const d = injected
      ? -1
      : await allocHugetlbFolioNodemask(k, this.node, (nid) => this.allocHugetlbTarget(nid));
    if (d < 0) return -ENOMEM;
    p.isolatedBy[d] = this.id;
    const mapping = k.mappingOf(head);
    const exp = mapping?.pageCache ? 1 + HUGETLB_NR : 1;
    const pinned = p.refcount[head]! - p.mapcount[head]! - exp >= GUP_PIN_COUNTING_BIAS;
    const wasMapped = !pinned && mapping !== undefined && p.mapcount[head]! > 0;
    let rc = -EAGAIN;
    try {
      if (wasMapped) {
        vk = k;
        vFrom = head;
        rmapWalk(mapping, p.index[head]!, head, HUGETLB_NR, unmapOne);
        const t1 = performance.now();
        this.phases.unmap += (t1 - t) / 1000;
        const flush = k.tlbFlush();
        if (flush) await flush;
        t = performance.now();
        this.phases.flush += (t - t1) / 1000;
      }
      if (!pinned && p.mapcount[head] === 0 && p.refcount[head] === exp) {
        k.mem.copyPages(d, head, HUGETLB_NR);
        const t1 = performance.now();
        this.phases.fallbackCopy += (t1 - t) / 1000;
        t = t1;
        this.moveHugetlbMapping(head, d, mapping);
        rc = 0;
      }
    } finally {
      // remove_migration_ptes(src, rc ? src : dst): the mappings come back, to the target if moved.
      if (wasMapped) {
        vk = k;
        vFrom = head;
        vTo = rc === 0 ? d : head;
        rmapWalk(mapping, p.index[head]!, head, HUGETLB_NR, remapOne);
        k.wakeMigrationWaiters();
      }
      p.isolatedBy[d] = 0;
      if (rc === 0) {
        moveHugetlbState(k, head, d);
        p.isolatedBy[head] = 0;
        putbackFolio(k, head);
      }
      // The target's allocation reference: a target that nothing maps or caches goes back.
      k.folioPut(d);
    }
    this.phases.move += (performance.now() - t) / 1000;
    return rc;
  }

  /** __folio_migrate_mapping for a hugetlb folio: its flags, rmap owner and page cache go to `to`. */
  private moveHugetlbMapping(from: number, to: number, mapping: Mapping | undefined): void {
    const p = this.k.pages;
    p.flags[to] = PG_head | PG_hugetlb | (p.flags[from]! & (PG_anon | PG_dirty));
    p.mapping[to] = p.mapping[from]!;
    p.index[to] = p.index[from]!;
    const pc = mapping?.pageCache;
    if (pc) {
      pc.store(p.index[from]!, to, HUGETLB_NR);
      p.refcount[to]! += HUGETLB_NR;
      p.refcount[from]! -= HUGETLB_NR;
    }
  }

  /**
   * alloc_migrate_hugetlb_folio's buddy allocation on `nid` (htlb_alloc_mask | __GFP_RETRY_MAYFAIL
   * | __GFP_THISNODE): the slow path may compact the node (through kcompactd's hook).
   */
  private async allocHugetlbTarget(nid: number): Promise<number> {
    const r = await this.k.allocFolioSlowpath({
      order: HUGETLB_ORDER,
      nid,
      thisNode: true,
      mt: MIGRATE_MOVABLE,
      gfp: 'GFP_HIGHUSER_MOVABLE|__GFP_NOWARN|__GFP_RETRY_MAYFAIL|__GFP_COMP|__GFP_THISNODE',
    });
    return r.pfn;
  }

  /**
   * migrate_pages_batch() on list[start, end): unmap → flush → batch copy → move. It runs to the
   * end synchronously and returns undefined, unless a step has to wait (the allocator's slow path,
   * a TLB shootdown of running user threads, a migrator that returns a promise): then it returns a
   * promise of the rest. With `keepRetries` (the async first pass of a sync migration) the folios
   * left for a retry go on `lists.left`; otherwise those count as failed and are put back.
   */
  private batch(
    list: ArrayLike<number>,
    start: number,
    end: number,
    mode: MigrateModeValue,
    passes: number,
    keepRetries: boolean,
  ): Promise<void> | undefined {
    const L = this.lists;
    const n = end - start;
    L.ensure(n);
    const pend = L.pend;
    for (let j = 0; j < n; j++) pend[j] = list[start + j]!;
    L.nPend = n;
    L.nRetry = 0;
    L.nu = 0;
    if (keepRetries) L.left.length = 0;
    this.bMode = mode;
    this.bPasses = passes;
    this.bKeep = keepRetries;
    this.bLen = n;
    this.enomem = false;
    if (this.lane >= 0) {
      this.tBatch = performance.now();
      this.batchId = this.k.timeline.nextBatch();
    }
    this.tPhase = performance.now();
    let r: Promise<void> | undefined;
    try {
      const slow = this.unmapFrom(0, 0);
      r = slow ? slow.then(() => this.afterUnmap()) : this.afterUnmap();
    } catch (e) {
      this.batchEnd();
      throw e;
    }
    if (!r) {
      this.batchEnd();
      return undefined;
    }
    return r.then(
      () => this.batchEnd(),
      (e: unknown) => {
        this.batchEnd();
        throw e;
      },
    );
  }

  /**
   * The batch has ended, however it ended: remove_migration_ptes ran for every folio of it (moved
   * or restored), so the threads that sleep on a migration entry wake; injected pins are dropped.
   */
  private batchEnd(): void {
    const k = this.k;
    k.wakeMigrationWaiters();
    while (this.pins.length) k.folioPut(this.pins.pop()!, GUP_PIN_COUNTING_BIAS);
    if (this.lane >= 0)
      k.timeline.span(
        TL_BATCH,
        this.lane,
        this.tBatch,
        performance.now(),
        this.batchId,
        this.bLen,
        this.bMode,
        this.bPasses,
      );
  }

  /**
   * Phase A from folio `i` of pass `pass` on: allocate destinations and unmap, retrying -EAGAIN up
   * to the batch's passes. Returns a promise only when an allocation went to the slow path; the
   * phase resumes after it.
   */
  private unmapFrom(pass: number, i: number): Promise<void> | undefined {
    const k = this.k;
    const faults = k.faults;
    const p = k.pages;
    const s = this.stats;
    const L = this.lists;
    for (; pass < this.bPasses && L.nPend && !this.enomem; pass++, i = 0) {
      const pend = L.pend;
      for (; i < L.nPend; i++) {
        const head = pend[i]!;
        const order = k.folioOrder(head);
        const nr = 1 << order;
        if (this.enomem) {
          L.retry[L.nRetry++] = head;
          continue;
        }
        const isThp = order === HPAGE_PMD_ORDER ? 1 : 0;
        // migrate_pages_batch: a folio on the deferred split list (partially mapped) is split first,
        // so only its mapped pages move (its unmapped pieces are freed as "freed from under us");
        // it counts as a failed and split large folio.
        if (folioTestPartiallyMapped(k, head) && this.trySplit(head, L.split)) {
          s.nrFailedFolios++;
          s.nrThpFailed += isThp;
          s.nrThpSplit += isThp;
          s.nrSplit++;
          continue;
        }
        const mapping = k.mappingOf(head);
        const exp = mapping?.pageCache ? 1 + nr : 1;
        if (p.refcount[head] === 1 && p.mapcount[head] === 0 && exp === 1) {
          // Freed from under us (unmapped while isolated): done.
          folioIsolationDone(k, head);
          p.isolatedBy[head] = 0;
          k.folioPut(head);
          s.nrSucceeded += nr;
          if (order === HPAGE_PMD_ORDER) s.nrThpSucceeded++;
          continue;
        }
        // A DMA-pinned anon folio cannot be unmapped for migration (try_to_migrate fails).
        if (p.refcount[head]! - p.mapcount[head]! - exp >= GUP_PIN_COUNTING_BIAS) {
          L.retry[L.nRetry++] = head;
          continue;
        }
        const injected = faults?.hit('alloc_dst', { node: this.node, order, pfn: head }) ?? null;
        const d = injected ? -1 : this.opts.alloc ? this.opts.alloc(head, order) : this.allocTarget(order);
        if (d < 0 && order > 0 && !injected && !this.opts.alloc && this.targetMayCompact()) {
          const inPass = pass;
          const at = i;
          return this.allocTargetSlowpath(order).then((got) => {
            this.unmapFolio(head, order, got, mapping, exp);
            return this.unmapFrom(inPass, at + 1);
          });
        }
        this.unmapFolio(head, order, d, mapping, exp);
      }
      // The next pass retries what this one could not unmap.
      L.pend = L.retry;
      L.retry = pend;
      L.nPend = L.nRetry;
      L.nRetry = 0;
    }
    return undefined;
  }

  /** alloc_migration_target: large folios use GFP_TRANSHUGE, which does not wake kswapd. */
  private allocTarget(order: number): number {
    this.req.order = order;
    return this.k.allocFolio(this.req);
  }

  /** Phase A for one folio once its destination was sought: `d`, or -1 when there is none. */
  private unmapFolio(
    head: number,
    order: number,
    d: number,
    mapping: Mapping | undefined,
    exp: number,
  ): void {
    const k = this.k;
    const p = k.pages;
    const s = this.stats;
    const L = this.lists;
    const nr = 1 << order;
    if (d < 0) {
      const isThp = order === HPAGE_PMD_ORDER ? 1 : 0;
      s.nrFailedFolios++;
      s.nrThpFailed += isThp;
      if (order > 0 && this.reason !== MigrateReason.MR_NUMA_MISPLACED && this.trySplit(head, L.split)) {
        s.nrThpSplit += isThp;
        s.nrSplit++;
        return;
      }
      // Out of memory on the target: stop unmapping, move what is unmapped, then give up.
      s.nrFailedPages += nr;
      this.putback(head);
      this.rc = -ENOMEM;
      this.enomem = true;
      return;
    }
    // Reserved: from here on unwind finds it among the batch's destinations.
    p.isolatedBy[d] = this.id;
    const u = L.nu;
    L.src[u] = head;
    L.dst[u] = d;
    L.expected[u] = exp;
    L.owners[u] = mapping;
    L.nu = u + 1;
    if (u >= L.hi) L.hi = u + 1;
    vk = k;
    vFrom = head;
    if (mapping) rmapWalk(mapping, p.index[head]!, head, nr, unmapOne);
    if (k.faults?.hit('unmap_pin', { node: this.node, order, pfn: head })) {
      // A DMA pin taken while the folio is unmapped: the move phase sees extra references.
      p.refcount[head]! += GUP_PIN_COUNTING_BIAS;
      this.pins.push(head);
    }
  }

  /** Phase A is over: the folios that never unmapped, then phase B. */
  private afterUnmap(): Promise<void> | undefined {
    const k = this.k;
    const L = this.lists;
    const pend = L.pend;
    for (let i = 0; i < L.nPend; i++) {
      const head = pend[i]!;
      if (this.enomem) this.putback(head);
      else if (this.bKeep) L.left.push(head);
      else this.fail(head);
    }
    L.nPend = 0;
    const t0 = this.tPhase;
    const t1 = performance.now();
    this.phases.unmap += (t1 - t0) / 1000;
    if (this.lane >= 0) k.timeline.span(TL_UNMAP, this.lane, t0, t1, this.batchId, L.nu);
    this.tPhase = t1;
    // Phase B: one batched TLB flush for every folio unmapped above (a shootdown of the user
    // threads that may cache a translation to a source folio: none writes to it afterwards).
    const flush = k.tlbFlush();
    if (flush) return flush.then(() => this.afterFlush(1));
    return this.afterFlush(0);
  }

  /** Phase B is over (`shot`: it had to shoot down threads): batch copy, then move. */
  private afterFlush(shot: number): Promise<void> | undefined {
    const t1 = this.tPhase;
    const t = performance.now();
    this.phases.flush += (t - t1) / 1000;
    if (this.lane >= 0) this.k.timeline.span(TL_FLUSH, this.lane, t1, t, this.batchId, shot);
    // Phase B': batch copy by the migrator routed for this reason.
    const entry = this.lists.nu ? this.host.entryFor(this.reason) : null;
    if (entry) {
      const copying = this.batchCopy(entry);
      if (copying) return copying.then(() => this.movePhase());
    }
    this.movePhase();
    return undefined;
  }

  /** Phase C: move, up to the batch's passes for -EAGAIN (extra references); then undo the rest. */
  private movePhase(): void {
    const k = this.k;
    const p = k.pages;
    const L = this.lists;
    const n = L.nu;
    const src = L.src;
    const dst = L.dst;
    const expected = L.expected;
    const owners = L.owners;
    const state = L.state;
    state.fill(0, 0, n);
    let todo = n;
    for (let pass = 0; pass < this.bPasses && todo; pass++) {
      const tc = performance.now();
      let ready = 0;
      let cpu = 0;
      for (let i = 0; i < n; i++) {
        if (state[i]) continue;
        const from = src[i]!;
        const to = dst[i]!;
        if (to < 0) continue; // its destination went with an abandoned batch copy
        // The content-copied mark is consumed on first read: a retried pair is copied afresh.
        const copied = (p.flags[to]! & PG_content_copied) !== 0;
        p.flags[to]! &= ~PG_content_copied;
        if (p.refcount[from] !== expected[i]) continue;
        if (!copied) {
          k.mem.copyPages(to, from, p.flags[from]! & PG_head ? 1 << p.order[from]! : 1);
          cpu++;
        }
        state[i] = 2;
        ready++;
      }
      const tm = performance.now();
      this.phases.fallbackCopy += (tm - tc) / 1000;
      const traceFolios = this.lane >= 0 && k.timeline.folios;
      // The CPU copied what the migrator did not: a fallback span only when it copied something.
      if (this.lane >= 0 && cpu) k.timeline.span(TL_FALLBACK_COPY, this.lane, tc, tm, this.batchId, cpu);
      for (let i = 0; i < n && ready; i++) {
        if (state[i] !== 2) continue;
        if (traceFolios) this.moveFolioTraced(src[i]!, dst[i]!, owners[i]);
        else this.moveFolio(src[i]!, dst[i]!, owners[i]);
        state[i] = 1;
        todo--;
      }
      const te = performance.now();
      this.phases.move += (te - tm) / 1000;
      if (this.lane >= 0 && ready) k.timeline.span(TL_MOVE, this.lane, tm, te, this.batchId, ready);
    }
    // migrate_folios_undo: restore the source mappings of what did not move.
    for (let i = 0; i < n && todo; i++) {
      if (state[i]) continue;
      const from = src[i]!;
      vk = k;
      vFrom = from;
      vTo = from;
      const mapping = owners[i];
      if (mapping) rmapWalk(mapping, p.index[from]!, from, 1 << k.folioOrder(from), remapOne);
      const to = dst[i]!;
      if (to >= 0) {
        p.isolatedBy[to] = 0;
        if (this.opts.free) this.opts.free(to);
        else k.folioPut(to);
      }
      if (this.bKeep) L.left.push(from);
      else this.fail(from);
    }
  }

  private fail(head: number): void {
    const nr = 1 << this.k.folioOrder(head);
    this.stats.nrFailedPages += nr;
    this.stats.nrFailedFolios++;
    if (nr === 1 << HPAGE_PMD_ORDER) this.stats.nrThpFailed++;
    this.putback(head);
  }

  /**
   * Whether alloc_migration_target's large-folio request may compact: it asks with GFP_TRANSHUGE,
   * which allows direct reclaim, except where the caller cannot reclaim: NUMA hinting allocates with
   * GFP_TRANSHUGE_LIGHT (alloc_misplaced_dst_folio) and demotion runs in reclaim (PF_MEMALLOC).
   */
  private targetMayCompact(): boolean {
    return this.reason !== MigrateReason.MR_NUMA_MISPLACED && this.reason !== MigrateReason.MR_DEMOTION;
  }

  /**
   * The large-folio target's slow path (alloc_migration_target: GFP_TRANSHUGE | __GFP_THISNODE,
   * a costly order without __GFP_NORETRY): direct compaction of the target node at
   * COMPACT_PRIO_ASYNC, direct reclaim (the directReclaim hook, kswapd's try_to_free_pages), then
   * compaction at COMPACT_PRIO_SYNC_LIGHT, through the directCompact hook that @pagemig/kcompactd
   * installs. Without it nothing compacts and the caller splits the folio at once.
   */
  private async allocTargetSlowpath(order: number): Promise<number> {
    const r = await this.k.allocFolioSlowpath({
      order,
      nid: this.node,
      thisNode: true,
      mt: MIGRATE_MOVABLE,
      kswapdReclaim: false,
      gfp: 'GFP_TRANSHUGE|__GFP_THISNODE',
    });
    return r.pfn;
  }

  /** try_split_folio on ENOMEM: the pieces go on `split`, isolated. */
  private trySplit(head: number, split: number[]): boolean {
    try {
      const heads = splitFolio(this.k, head, 0, { callerRefs: 1 });
      isolateSplitFolios(this.k, heads, head);
      for (const h of heads) this.k.pages.isolatedBy[h] = this.id;
      this.splitHeads.push(...heads);
      split.push(...heads);
      return true;
    } catch (e) {
      if ((e as { errno?: number }).errno === EAGAIN) return false;
      throw e;
    }
  }

  /** moveFolio with a `folio_move` span on the timeline (`m.timeline.start({ folios: true })`). */
  private moveFolioTraced(from: number, to: number, mapping: Mapping | undefined): void {
    const order = this.k.folioOrder(from);
    const f0 = performance.now();
    this.moveFolio(from, to, mapping);
    this.k.timeline.span(TL_FOLIO_MOVE, this.lane, f0, performance.now(), from, to, order, this.batchId);
  }

  /** Metadata, page cache and mappings move to `to`; the source is freed. */
  private moveFolio(from: number, to: number, mapping: Mapping | undefined): void {
    const k = this.k;
    const p = k.pages;
    const order = p.flags[from]! & PG_head ? p.order[from]! : 0;
    const nr = 1 << order;
    p.isolatedBy[from] = 0;
    p.isolatedBy[to] = 0;
    // folio_migrate_flags + __folio_migrate_mapping.
    const keep = p.flags[to]! & (PG_head | PG_tail);
    p.flags[to] = (p.flags[from]! & ~(PG_isolated | PG_lru | PG_head | PG_tail | PG_buddy)) | keep;
    // migrate_folio_move: folio_add_lru(dst), on the list its kept flags (PG_active) name.
    folioAddLru(k, to);
    // The NUMA information goes along, "to prevent over-eager future migrations of this same page".
    p.lastNid[to] = migratedLastCpupid(k, k.nodeOf(from), k.nodeOf(to), p.lastNid[from]!);
    p.mapping[to] = p.mapping[from]!;
    p.index[to] = p.index[from]!;
    let refs = 0;
    if (mapping?.pageCache) {
      mapping.pageCache.store(p.index[from]!, to, nr);
      refs = nr;
    }
    // The new folio holds the page cache's references; its allocation reference is dropped.
    p.refcount[to] = refs;
    p.mapcount[to] = 0;
    // __folio_migrate_mapping: the counters follow the folio to its node (the source leaves them
    // below, as it loses its owner).
    folioModStat(k, to, 1);
    vk = k;
    vFrom = from;
    vTo = to;
    if (mapping) rmapWalk(mapping, p.index[from]!, from, nr, remapOne);
    if (p.refcount[to] === 0) {
      // Nothing maps or caches it any more (unmapped during migration): it is freed.
      k.freeFolio(to);
    }
    // The source: drop the page cache's and the isolation references; it is freed.
    p.refcount[from] = 1;
    folioModStat(k, from, -1);
    p.mapping[from] = 0;
    // migrate_folio_done: the source leaves NR_ISOLATED_ANON and is freed.
    folioIsolationDone(k, from);
    k.folioPut(from);
    const s = this.stats;
    s.nrSucceeded += nr;
    if (order === HPAGE_PMD_ORDER) s.nrThpSucceeded++;
  }

  /**
   * Waits for an asynchronous batch copy: aborts it after copyTimeoutMs, and abandons (and
   * disables) a migrator that has not settled abortGraceMs after its abort; its marks are never
   * read again and the run gets a fresh table. Resolves to the error, if any, boxed.
   */
  private async settle(
    entry: MigratorEntry,
    run: Promise<unknown>,
    ac: AbortController,
    table: Int32Array,
    what: string,
    rows: number,
  ): Promise<{ error: unknown }> {
    const m = entry.migrator;
    let error: unknown;
    const o = this.opts;
    const timer = setTimeout(
      () =>
        ac.abort(
          new Error(
            `batch copy timed out after ${o.copyTimeoutMs} ms (${o.timeoutSource}) waiting for ${m.name} to copy ${what}`,
          ),
        ),
      o.copyTimeoutMs,
    );
    entry.inFlight.add(run);
    const graceMs = o.abortGraceMs;
    let graceTimer: ReturnType<typeof setTimeout> | undefined;
    let abandon: (() => void) | undefined;
    const giveUp = new Promise<'abandoned'>((resolve) => {
      abandon = () => {
        graceTimer = setTimeout(() => resolve('abandoned'), graceMs);
      };
      ac.signal.addEventListener('abort', abandon, { once: true });
    });
    const outcome = await Promise.race([
      run.then(
        () => 'settled' as const,
        (e: unknown) => {
          error = e ?? new Error(`${m.name} rejected without a reason`);
          return 'settled' as const;
        },
      ),
      giveUp,
    ]);
    clearTimeout(timer);
    clearTimeout(graceTimer);
    if (abandon) ac.signal.removeEventListener('abort', abandon);
    entry.inFlight.delete(run);
    if (outcome === 'abandoned') {
      error = new Error(
        `batch copy did not settle ${graceMs} ms (${o.graceSource}) after its signal aborted (${String((ac.signal.reason as Error)?.message ?? ac.signal.reason)}); abandoned`,
      );
      this.table = new Int32Array(new SharedArrayBuffer(table.byteLength));
      this.quarantine(entry, run, table, rows);
      if (!entry.disabled) {
        entry.disabled = 'disabled: a batch copy never settled after its abort';
        this.host.log.push(`error: ${m.name}: ${entry.disabled}`);
      }
    } else if (error === undefined && ac.signal.aborted) {
      error = ac.signal.reason;
    }
    // Boxed: an async function's result is read for a `then`, and a migrator's rejection value
    // may be a thenable or a Proxy that throws on it.
    return { error };
  }

  /**
   * The destinations of an abandoned batch copy stay out of use: the migrator still holds them
   * (as a DMA engine that never completed still owns its buffers). Their pairs lose them (-1: the
   * folio is restored, or retried with a new destination), and the frames are freed once `run`
   * settles or the migrator is disposed. Only the batch in progress holds destinations.
   */
  private quarantine(entry: MigratorEntry, run: Promise<unknown>, table: Int32Array, rows: number): void {
    const k = this.k;
    const held = new Set<number>();
    for (let i = 0; i < rows; i++) held.add(table[i * BATCH_ROW_INTS + 1]!);
    const L = this.lists;
    for (let i = 0; i < L.nu; i++) {
      const d = L.dst[i]!;
      if (!held.has(d)) continue;
      // No longer this run's to give back (unwind) or move into (movePhase).
      k.pages.isolatedBy[d] = 0;
      L.dst[i] = -1;
    }
    const release = () => {
      if (!entry.held.delete(release)) return;
      for (const d of held) k.folioPut(d);
    };
    entry.held.add(release);
    void run.then(release, release);
  }

  /**
   * Phase B': offers the unmapped folios whose references are as expected to the migrator.
   * Returns a promise only when the migrator's copyBatch returned one (or a fault was injected).
   */
  private batchCopy(entry: MigratorEntry): Promise<void> | undefined {
    const k = this.k;
    const p = k.pages;
    const L = this.lists;
    const src = L.src;
    const table = this.table;
    const m = entry.migrator;
    const mode = this.bMode;
    let rows = 0;
    let pages = 0;
    let maxFolio = 0;
    const capacity = table.length / BATCH_ROW_INTS;
    for (let i = 0; i < L.nu && rows < capacity; i++) {
      const from = src[i]!;
      // Batch eligibility: refcount as expected, so the copy is not wasted.
      if (p.refcount[from] !== L.expected[i]) continue;
      const nr = 1 << k.folioOrder(from);
      const o = rows * BATCH_ROW_INTS;
      table[o] = from;
      table[o + 1] = L.dst[i]!;
      table[o + 2] = nr;
      table[o + BATCH_FLAGS] = 0;
      rows++;
      pages += nr;
      if (nr > maxFolio) maxFolio = nr;
    }
    if (!rows) return undefined;
    try {
      if (
        m.shouldOffload &&
        !m.shouldOffload({ reason: this.reason, mode, folios: rows, pages, maxFolioPages: maxFolio })
      )
        return undefined;
    } catch (e) {
      this.host.recordBatch(entry, 0, 0, e);
      this.offload.failures++;
      return undefined;
    }
    this.offload.migrator = m.name;
    const t = performance.now();
    const batch = new MigrationBatch(table, rows, this.reason, mode, this.batchId);
    if (L.ac === null || L.ac.signal.aborted) L.ac = new AbortController();
    const ac = L.ac;
    let error: unknown;
    // The migrator_call fault site: the engine's call behaves like a faulty migrator.
    const fault =
      k.faults !== null ? k.faults.hit('migrator_call', { migrator: m.name, node: this.node }) : null;
    const partial = fault?.action === 'partial';
    let run: Promise<unknown> | null = null;
    if (fault === null || partial) {
      // Call synchronously: a migrator that copies on this thread and returns no promise (like
      // cpu-serial) costs no timer, no promise and no race per batch.
      try {
        const r = m.copyBatch(batch, { signal: ac.signal }) as unknown;
        if (r !== null && typeof r === 'object' && typeof (r as { then?: unknown }).then === 'function') {
          run = Promise.resolve(r);
        }
      } catch (e) {
        error = e ?? new Error(`${m.name} threw without a reason`);
      }
    } else {
      run =
        fault.action === 'hang'
          ? new Promise<never>(() => {})
          : Promise.reject(
              new InjectedFault(
                'migrator_call',
                fault.message ?? `injected ${fault.action ?? 'throw'} of ${m.name}`,
              ),
            );
    }
    if (run)
      return this.settle(entry, run, ac, table, `${rows} folios (${pages} pages)`, rows).then(({ error }) =>
        this.batchCopied(entry, table, rows, pages, partial, t, error),
      );
    this.batchCopied(entry, table, rows, pages, partial, t, error);
    return undefined;
  }

  /** The batch copy settled (`error` if it failed): the marked rows' destinations are copied. */
  private batchCopied(
    entry: MigratorEntry,
    table: Int32Array,
    rows: number,
    pages: number,
    partial: boolean,
    t: number,
    error: unknown,
  ): void {
    const p = this.k.pages;
    if (error === undefined && partial) {
      // "Copied only some rows": drop the marks of every other row.
      for (let i = 1; i < rows; i += 2) Atomics.and(table, i * BATCH_ROW_INTS + BATCH_FLAGS, ~BATCH_COPIED);
    }
    let copied = 0;
    if (error === undefined) {
      for (let i = 0; i < rows; i++) {
        if (Atomics.load(table, i * BATCH_ROW_INTS + BATCH_FLAGS) & BATCH_COPIED) {
          p.flags[table[i * BATCH_ROW_INTS + 1]!]! |= PG_content_copied;
          copied++;
        }
      }
    }
    this.host.recordBatch(entry, rows, copied, error);
    this.offload.batches++;
    this.offload.foliosOffered += rows;
    this.offload.foliosCopied += copied;
    if (error !== undefined) this.offload.failures++;
    const t2 = performance.now();
    this.phases.batchCopy += (t2 - t) / 1000;
    if (this.lane >= 0)
      this.k.timeline.span(TL_BATCH_COPY, this.lane, t, t2, this.batchId, rows, pages, copied);
  }
}

/** Isolates the folios containing `pfns` (isolate_lru_page); returns heads and the count refused. */
export function isolateFolios(k: Kernel, pfns: ArrayLike<number>): { heads: number[]; refused: number } {
  const { heads, refused } = isolateFolioList(k, pfns);
  return { heads: Array.from(heads), refused };
}

/**
 * isolateFolios into a typed array (m.migrateFolios): a JS array of tens of thousands of heads
 * costs tens of nanoseconds per push, a typed array one store.
 */
function isolateFolioList(k: Kernel, pfns: ArrayLike<number>): { heads: Int32Array; refused: number } {
  const p = k.pages;
  // Each folio is isolated once: never more heads than pages.
  const heads = new Int32Array(Math.min(pfns.length, k.nrPages));
  let n = 0;
  for (let i = 0; i < pfns.length; i++) {
    const pfn = pfns[i]!;
    if (!Number.isInteger(pfn) || pfn < 0 || pfn >= k.nrPages) {
      putbackFolios(k, heads.subarray(0, n));
      throw kernelError(EINVAL, `pfn ${show(pfn)} is not RAM (0..${k.nrPages - 1})`);
    }
    const head = p.head(pfn);
    if (isolateFolio(k, head)) heads[n++] = head;
  }
  return { heads: heads.subarray(0, n), refused: pfns.length - n };
}

/** folio_isolate_lru for one head: false when it is free, not on the LRU, or already isolated. */
export function isolateFolio(k: Kernel, head: number): boolean {
  const f = k.pages.flags[head]!;
  if (f & PG_hugetlb) return isolateHugetlb(k, head);
  if (f & PG_buddy) return false;
  return folioIsolateLru(k, head);
}

/** What one engine entry takes: the target and modes, the caller's hooks, and its accounting. */
export interface MigratePagesOptions extends MigrateOptions {
  /** get_new_folio (e.g. compaction_alloc): a prepared folio of `order` for `src`, or -1. */
  alloc?: (src: number, order: number) => number;
  /** put_new_folio (e.g. compaction_free): takes back an unused destination. */
  free?: (dst: number) => void;
  /** Pfns the caller could not isolate, reported as `notIsolated`. */
  notIsolated?: number;
  /**
   * Whether this call is a measured unit of its own (default true): its engine-thread CPU time is
   * read and pagemig:migrate_phases is emitted. Callers that migrate in many small pieces and
   * measure the whole (compaction's 32-page clusters) pass false and sum `phases` themselves.
   */
  account?: boolean;
}

const DEMOTE_ORIGINS = ['kswapd', 'direct', 'khugepaged', 'proactive'];

/** A run's checked options and its modeled clock, resolved before any folio is touched. */
interface RunPlan {
  node: number;
  mode: MigrateModeValue;
  reason: MigrateReasonValue;
  engine: ConstructorParameters<typeof MigrationRun>[5];
  account: boolean;
  clock: ReturnType<typeof modeledClock>;
}

function planRun(k: Kernel, opts: MigratePagesOptions): RunPlan {
  if (typeof opts !== 'object' || opts === null)
    throw kernelError(
      EINVAL,
      `migration options must be an object with the target node, got ${opts === null ? 'null' : typeof opts}`,
    );
  const node = opts.node;
  if (!Number.isInteger(node) || node < 0 || node >= k.nodes.length) {
    throw kernelError(EINVAL, `target node ${show(node)} does not exist (nodes 0..${k.nodes.length - 1})`);
  }
  const mode = resolveMode(opts.mode);
  const reason = resolveReason(opts.reason);
  const demoteOrigin = opts.demoteOrigin ?? 'kswapd';
  if (!DEMOTE_ORIGINS.includes(demoteOrigin))
    throw kernelError(
      EINVAL,
      `demoteOrigin ${show(demoteOrigin)} is not one of ${DEMOTE_ORIGINS.join(', ')}`,
    );
  const copyTimeoutMs = opts.copyTimeoutMs ?? k.vm.migrate_copy_timeout_ms;
  if (typeof copyTimeoutMs !== 'number' || !(copyTimeoutMs > 0) || !(copyTimeoutMs <= MAX_TIMER_MS))
    throw kernelError(
      EINVAL,
      `copyTimeoutMs must be a positive number of ms up to ${MAX_TIMER_MS}, got ${show(copyTimeoutMs)}`,
    );
  if (opts.clock !== undefined && opts.clock !== 'real' && opts.clock !== 'modeled')
    throw kernelError(EINVAL, `clock ${show(opts.clock)} is not 'real' or 'modeled'`);
  const profile = opts.profile as unknown;
  if (
    profile !== undefined &&
    typeof profile !== 'string' &&
    (typeof profile !== 'object' || profile === null)
  )
    throw kernelError(EINVAL, `profile ${show(profile)} is not a profile name or a profile object`);
  const abortGraceMs = opts.abortGraceMs ?? k.vm.migrate_abort_grace_ms;
  if (typeof abortGraceMs !== 'number' || !(abortGraceMs >= 0) || !(abortGraceMs <= MAX_TIMER_MS))
    throw kernelError(
      EINVAL,
      `abortGraceMs must be a number of ms from 0 to ${MAX_TIMER_MS}, got ${show(abortGraceMs)}`,
    );
  return {
    node,
    mode,
    reason,
    engine: {
      demoteOrigin,
      copyTimeoutMs,
      abortGraceMs,
      timeoutSource: opts.copyTimeoutMs === undefined ? 'vm.migrate_copy_timeout_ms' : 'copyTimeoutMs',
      graceSource: opts.abortGraceMs === undefined ? 'vm.migrate_abort_grace_ms' : 'abortGraceMs',
      ...(opts.alloc ? { alloc: opts.alloc } : {}),
      ...(opts.free ? { free: opts.free } : {}),
    },
    account: opts.account ?? true,
    clock: modeledClock(k, k.offload, opts),
  };
}

async function runPlan(
  k: Kernel,
  plan: RunPlan,
  heads: FolioList,
  notIsolated: number,
): Promise<MigrationResult> {
  const t0 = performance.now();
  const c0 = plan.account ? threadCpuSeconds() : 0;
  let run: MigrationRun;
  try {
    plan.clock?.capture(heads);
    run = new MigrationRun(k, k.offload, plan.node, plan.mode, plan.reason, plan.engine);
  } catch (e) {
    putbackFolios(k, heads);
    throw e;
  }
  // The timeline (when on) records the run on a lane of the task that called it.
  const lane = k.timeline.on ? k.timeline.acquireLane() : null;
  if (lane) run.lane = lane.lane;
  // The migrator routed for this reason keeps its copy threads awake until the run ends.
  const served = k.offload.runStart(plan.reason, plan.mode, plan.node, heads);
  // A closing machine waits for the runs in progress before it tears the processes down.
  const work = run.migratePages(heads);
  k.migrations.add(work);
  let ret: number;
  try {
    ret = await work;
  } finally {
    if (served) k.offload.runEnd(served);
    k.migrations.delete(work);
    if (lane?.own) k.timeline.releaseLane(lane.lane);
    // A table a migrator was abandoned with was replaced: this one no migrator holds any more.
    k.releaseBatchTable(run.table);
    run.release();
  }
  const s = run.stats;
  const result: MigrationResult = {
    ret,
    ...(ret < 0 ? { errno: -ret } : {}),
    nrSucceeded: s.nrSucceeded,
    nrFailed: s.nrFailedPages,
    nrThpSucceeded: s.nrThpSucceeded,
    nrThpFailed: s.nrThpFailed,
    nrThpSplit: s.nrThpSplit,
    nrSplit: s.nrSplit,
    notIsolated,
    phases: { ...run.phases },
    cpuSeconds: plan.account ? threadCpuSeconds() - c0 : 0,
    wallSeconds: (performance.now() - t0) / 1000,
    offload: { ...run.offload },
  };
  if (plan.clock) result.modeled = plan.clock.finish(result);
  if (plan.account) emitPhases(k, result);
  if (lane)
    k.timeline.span(
      TL_RUN,
      lane.lane,
      t0,
      performance.now(),
      heads.length,
      plan.node,
      plan.reason,
      plan.mode,
    );
  return result;
}

/**
 * migrate_pages() of include/linux/migrate.h: the one entry into the engine for every caller
 * (m.migrateFolios, move_pages(2), migrate_pages(2), compaction, and the policy daemons). It
 * migrates the isolated folios `heads` to `opts.node` and puts back what did not move; it owns the
 * run: option defaults and checks, the result, the phase tracepoint, CPU accounting and the
 * modeled clock. Invalid options put every folio back before the error is thrown.
 */
export function migratePages(
  k: Kernel,
  heads: FolioList,
  opts: MigratePagesOptions,
): Promise<MigrationResult> {
  let plan: RunPlan;
  try {
    plan = planRun(k, opts);
  } catch (e) {
    putbackFolios(k, heads);
    return Promise.reject(e);
  }
  return runPlan(k, plan, heads, opts.notIsolated ?? 0);
}

/** m.migrateFolios(): isolates the folios that contain `pfns` and migrates them. */
export async function migrateFolios(
  k: Kernel,
  pfns: ArrayLike<number>,
  opts: MigrateOptions,
): Promise<MigrationResult> {
  // Options are checked before isolation, so a refused call leaves every folio where it was.
  const plan = planRun(k, opts);
  if (typeof pfns !== 'object' || pfns === null || !Number.isSafeInteger(pfns.length) || pfns.length < 0)
    throw kernelError(
      EINVAL,
      `pfns must be an array of page frame numbers, got ${pfns === null ? 'null' : typeof pfns}`,
    );
  const { heads, refused } = isolateFolioList(k, pfns);
  return runPlan(k, plan, heads, refused);
}

/** putback_movable_pages: returns isolated folios to the LRU and drops the isolation reference. */
export function putbackFolios(k: Kernel, heads: FolioList): void {
  for (const head of heads) putbackFolio(k, head);
}

function putbackFolio(k: Kernel, head: number): void {
  const f = k.pages.flags[head]!;
  if (f & PG_hugetlb) {
    // folio_putback_hugetlb: a hugetlb folio is migratable again; it is never on an LRU.
    k.pages.flags[head] = f & ~PG_isolated;
    k.folioPut(head);
  } else folioPutback(k, head);
}

/** pagemig's own tracepoint with the phase breakdown of one migration. */
function emitPhases(k: Kernel, r: MigrationResult): void {
  const us = (s: number) => Math.round(s * 1e6);
  const ph = r.phases;
  k.trace.emit(
    'pagemig',
    'migrate_phases',
    {
      ...Object.fromEntries(Object.entries(ph).map(([n, v]) => [n, us(v)])),
      cpu: us(r.cpuSeconds),
      wall: us(r.wallSeconds),
    },
    `unmap_us=${us(ph.unmap)} flush_us=${us(ph.flush)} batch_copy_us=${us(ph.batchCopy)} fallback_copy_us=${us(ph.fallbackCopy)} move_us=${us(ph.move)} cpu_us=${us(r.cpuSeconds)} wall_us=${us(r.wallSeconds)} migrator=${r.offload.migrator ?? 'none'}`,
  );
}
