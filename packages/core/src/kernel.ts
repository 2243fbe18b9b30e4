import { readFileSync } from 'node:fs';
import { Clock } from './clock.js';
import type { ResolvedConfig } from './config.js';
import { EAGAIN, EBUSY, EINVAL, kernelError, PagemigError } from './errno.js';
import type { FaultPlan } from './fault_inject.js';
import { freeHugeFolio, Hstate } from './hugetlb.js';
import { Lruvecs, lruRemoveFolio } from './lru.js';
import { bootAdistance, MemoryTiers } from './memory_tiers.js';
import { OffloadHost } from './migrate_offload.js';
import { CORE_TRACE_EVENTS } from './migrate_trace.js';
import { BATCH_ROW_INTS } from './migrator.js';
import { MIGRATE_TYPES, PAGEBLOCK_ORDER, WMARK_LOW, WMARK_MIN } from './mmzone.js';
import { PgData } from './node.js';
import { PageArray, PG_head, PG_hugetlb, PG_tail } from './page.js';
import {
  type AllocHooks,
  type AllocRequest,
  allocPagesSlowpath,
  buildZonelist,
  calculateMinFreeKbytes,
  type DirectCompactAttempt,
  getPageFromFreelist,
  preferredZone,
  type SlowpathResult,
  setupPerZoneWmarks,
  wakeAllKswapds,
} from './page_alloc.js';
import { Pageblocks } from './pageblock.js';
import type { Process } from './process.js';
import { Mapping } from './rmap.js';
import { PhysicalMemory } from './sparse.js';
import { Timeline } from './timeline.js';
import { type MmTlb, shootdownAsync } from './tlbflush.js';
import { Tracer } from './trace.js';
import { folioModStat, VmEvents, type VmstatEvent, zoneStatistics } from './vmstat.js';
import { Zone } from './zone.js';

/** The slow path's steps a subsystem can install (AllocHooks' keys). */
const ALLOC_HOOKS = [
  'wakeKswapd',
  'kswapdSleep',
  'directCompact',
  'directReclaim',
] as const satisfies readonly (keyof AllocHooks)[];

/** Tunables of /proc/sys/vm that the model reads. */
export interface VmTunables {
  min_free_kbytes: number;
  watermark_scale_factor: number;
  compaction_proactiveness: number;
  extfrag_threshold: number;
  compact_unevictable_allowed: number;
  /** Most VMAs one address space may have (DEFAULT_MAX_MAP_COUNT). */
  max_map_count: number;
  /**
   * pagemig's own (no kernel has it): how long a migrator's batch copy may run before the engine
   * aborts it and copies the batch on the CPU, in ms; the default of every migration that does not
   * pass `copyTimeoutMs` (move_pages(2), migrate_pages(2), compaction, m.migrateFolios).
   */
  migrate_copy_timeout_ms: number;
  /** pagemig's own: how long an aborted batch copy may take to settle before it is abandoned, in ms. */
  migrate_abort_grace_ms: number;
}

/** Tunables of /proc/sys/kernel that the model reads. */
export interface KernTunables {
  /** kernel.pid_max: pids are allocated cyclically below it (alloc_pid); none free is EAGAIN. */
  pid_max: number;
  /** kernel.threads-max: live tasks (processes) at most; fork/spawn beyond it is EAGAIN. */
  threads_max: number;
  /**
   * kernel.numa_balancing (sysctl_numa_balancing_mode): 0 off, bit 0 NUMA_BALANCING_NORMAL, bit 1
   * NUMA_BALANCING_MEMORY_TIERING. 0 at boot, as on a kernel built without
   * CONFIG_NUMA_BALANCING_DEFAULT_ENABLED.
   */
  numa_balancing: number;
  /** The task_numa_work scanner's knobs (sysctl_numa_balancing_scan_*, kernel/sched/fair.c). */
  numa_balancing_scan_delay_ms: number;
  numa_balancing_scan_period_min_ms: number;
  numa_balancing_scan_period_max_ms: number;
  numa_balancing_scan_size_mb: number;
  /**
   * sysctl_numa_balancing_promote_rate_limit (kernel.numa_balancing_promote_rate_limit_MBps): the
   * memory-tiering mode's promotion candidates per target node and second, in MB.
   */
  numa_balancing_promote_rate_limit_MBps: number;
  /**
   * sysctl_numa_balancing_hot_threshold (the kernel's debugfs sched/numa_balancing/hot_threshold_ms,
   * a sysctl here): a slow-tier folio whose hint fault came sooner than this after the scan is hot.
   */
  numa_balancing_hot_threshold_ms: number;
}

/** PID_MAX_DEFAULT (0x8000), the kernel's pid_max on machines with up to 32 CPUs. */
export const PID_MAX_DEFAULT = 0x8000;
/** RESERVED_PIDS: after wrapping, pids are allocated from here (kernel/pid.c). */
export const RESERVED_PIDS = 300;
/** PID_MAX_LIMIT on 64-bit kernels (4M): the largest pid_max. */
export const PID_MAX_LIMIT = 4 * 1024 * 1024;
/**
 * The default kernel.threads-max of an emulated machine. Not the kernel's formula (RAM / 128 KiB),
 * but what the host survives: every emulated address space costs its host process two memory
 * mappings once it has page tables (the PMD directory and the growable PTE buffer, ~120 KiB of RSS
 * each), and on the project's machine (vm.max_map_count 65530) V8 aborted the whole host process
 * ("Zone Allocation failed") after ~31,500 forked processes. 8192 per machine leaves room for three
 * machines at their limit in one host process, ~1 GB of host memory; the host-wide budget below
 * catches the rest.
 */
export const THREADS_MAX_DEFAULT = 8192;
/** MAX_THREADS (FUTEX_TID_MASK) of kernel/fork.c: the largest threads-max. */
export const MAX_THREADS = 0x3fff_ffff;

/**
 * Emulated processes alive in this host process, over every machine, and the most it may hold:
 * half of the host's vm.max_map_count (two mappings per address space) less 16384 mappings for
 * everything else (RAM sections, workers, V8's own). With 65530 that is 24573, below the ~31,500 at
 * which V8 aborted. A fork or spawn beyond it is EAGAIN, whatever the machines' threads-max say.
 */
const host = { tasks: 0, limit: -1 };
function hostTaskLimit(): number {
  if (host.limit < 0) {
    let maxMapCount = 65530;
    try {
      const v = Number.parseInt(readFileSync('/proc/sys/vm/max_map_count', 'latin1'), 10);
      if (v > 0) maxMapCount = v;
    } catch {
      // Not Linux: assume the kernel's default DEFAULT_MAX_MAP_COUNT.
    }
    host.limit = Math.max(1, Math.floor((maxMapCount - 16384) / 2));
  }
  return host.limit;
}

/**
 * Tests: the host-wide budget of emulated processes (null restores the one derived from
 * vm.max_map_count). Returns the previous budget.
 */
export function setHostTaskLimit(limit: number | null): number {
  const old = hostTaskLimit();
  if (limit === null) host.limit = -1;
  else if (Number.isInteger(limit) && limit >= 0) host.limit = limit;
  else
    throw new PagemigError('EINVAL', `EINVAL: host task limit ${limit} is not an integer >= 0`, {
      errno: EINVAL,
    });
  return old;
}

/** Emulated processes alive in this host process (every machine). */
export function hostTasks(): number {
  return host.tasks;
}

// A machine dropped without close() gives its processes' share of the host budget back when collected.
const dropped = new FinalizationRegistry<{ live: number }>((held) => {
  host.tasks -= held.live;
});

/** The pid table: a Map that keeps the host-wide count of emulated processes. */
class TaskMap<P> extends Map<number, P> {
  readonly held = { live: 0 };
  override set(pid: number, p: P): this {
    if (!this.has(pid)) {
      this.held.live++;
      host.tasks++;
    }
    return super.set(pid, p);
  }
  override delete(pid: number): boolean {
    const had = super.delete(pid);
    if (had) {
      this.held.live--;
      host.tasks--;
    }
    return had;
  }
  override clear(): void {
    host.tasks -= this.held.live;
    this.held.live = 0;
    super.clear();
  }
}

/**
 * The machine's kernel state: physical memory, struct pages, nodes and zones, counters, trace
 * buffer and the rmap owners. The public `Machine` wraps it; the mm modules operate on it.
 */
export class Kernel {
  readonly nrPages: number;
  readonly mem: PhysicalMemory;
  readonly pages: PageArray;
  readonly pageblocks: Pageblocks;
  readonly nodes: PgData[] = [];
  readonly zones: Zone[] = [];
  /** Global zone index of each pageblock (page_zone()). */
  private readonly pageblockZone: Uint8Array;
  readonly events = new VmEvents();
  readonly trace = new Tracer(CORE_TRACE_EVENTS);
  /** The timeline recorder (m.timeline): off until started. */
  readonly timeline: Timeline = new Timeline(this.trace, (pid) => this.processes.get(pid));
  readonly vm: VmTunables;
  readonly mappings: (Mapping | undefined)[] = [undefined];
  private readonly freeMappingIds: number[] = [];
  readonly processes = new TaskMap<Process>();
  readonly offload: OffloadHost = new OffloadHost(this);
  /** The hugetlb pool of the default hstate (2 MiB pages; mm/hugetlb.c). */
  readonly hstate: Hstate;
  /** Every node's LRU lists (lru.ts). */
  readonly lru: Lruvecs;
  /** The pid cursor: the next pid alloc_pid tries (kernel threads of daemons take theirs from it too). */
  nextPid = 1;
  readonly kern: KernTunables = {
    pid_max: PID_MAX_DEFAULT,
    threads_max: THREADS_MAX_DEFAULT,
    numa_balancing: 0,
    numa_balancing_scan_delay_ms: 1000,
    numa_balancing_scan_period_min_ms: 1000,
    numa_balancing_scan_period_max_ms: 60000,
    numa_balancing_scan_size_mb: 256,
    numa_balancing_promote_rate_limit_MBps: 65536,
    numa_balancing_hot_threshold_ms: 1000,
  };
  /** The machine's clock (m.clock): every time-based kernel decision reads `clock.now()`. */
  readonly clock: Clock;
  /** Memory tiers and demotion targets (mm/memory-tiers.c), built at boot. */
  readonly memoryTiers: MemoryTiers;
  /** numa_demotion_enabled (/sys/kernel/mm/numa/demotion_enabled): false at boot, as the kernel's. */
  demotionEnabled = false;
  /** Set when the machine starts closing: calls that would start work refuse (assertOpen). */
  closed = false;
  /** Engine runs in progress (migratePages): a closing machine waits for them before exiting processes. */
  readonly migrations = new Set<Promise<unknown>>();

  constructor(readonly config: ResolvedConfig) {
    this.clock = new Clock(config.machineClock);
    this.nrPages = config.nodes.reduce((s, n) => s + n.pages, 0);
    this.mem = new PhysicalMemory(
      this.nrPages,
      config.sectionSize,
      config.backing === 'shared',
      config.prefault,
    );
    this.pages = new PageArray(this.nrPages);
    this.pageblocks = new Pageblocks(this.nrPages);
    this.pageblockZone = new Uint8Array(this.nrPages >>> PAGEBLOCK_ORDER);
    let pfn = 0;
    let cpu = 0;
    config.nodes.forEach((nc, nid) => {
      const node = new PgData(nid, nc.tier, pfn, nc.pages, config.distances[nid]!, nc.cpus, cpu);
      cpu += nc.cpus;
      let zpfn = pfn;
      for (const zc of nc.zones) {
        const zone = new Zone(nid, zc.type, this.zones.length, zpfn, zc.pages, this.pages, this.pageblocks);
        this.pageblockZone.fill(
          this.zones.length,
          zpfn >>> PAGEBLOCK_ORDER,
          (zpfn + zc.pages) >>> PAGEBLOCK_ORDER,
        );
        node.zones.push(zone);
        this.zones.push(zone);
        zpfn += zc.pages;
      }
      this.nodes.push(node);
      pfn += nc.pages;
    });
    for (const node of this.nodes) {
      // find_next_best_node: the node itself, then nodes with memory (N_MEMORY) by distance.
      node.fallbackOrder = this.nodes
        .filter((n) => n === node || n.nrPages > 0)
        .map((n) => n.nid)
        .sort((a, b) => node.distances[a]! - node.distances[b]! || a - b);
    }
    for (const node of this.nodes) node.zonelist = buildZonelist(this.nodes, node);
    for (const z of this.zones) z.freeAreaInit();
    this.vm = {
      min_free_kbytes: calculateMinFreeKbytes(this.nodes),
      watermark_scale_factor: 10,
      compaction_proactiveness: 20,
      extfrag_threshold: 500,
      compact_unevictable_allowed: 1,
      max_map_count: 65530,
      migrate_copy_timeout_ms: 10_000,
      migrate_abort_grace_ms: 1000,
    };
    this.setupWatermarks();
    this.hstate = new Hstate(this.nodes.length);
    this.lru = new Lruvecs(this.nodes.length);
    this.memoryTiers = new MemoryTiers(this.nodes, bootAdistance(this));
    dropped.register(this, this.processes.held);
  }

  /** Throws ERR_MACHINE_CLOSED (errno EINVAL) once the machine is closing or closed. */
  assertOpen(what: string): void {
    if (this.closed)
      throw new PagemigError('ERR_MACHINE_CLOSED', `${what}: the machine is closed`, { errno: EINVAL });
  }

  /**
   * alloc_pid for fork/spawn: EAGAIN when kernel.threads-max tasks are alive, when the host-wide
   * budget of emulated processes is used up, or when no pid below kernel.pid_max is free; otherwise
   * the next free pid, cyclically (wrapping to RESERVED_PIDS).
   */
  allocPid(what: string): number {
    const again = (why: string) => new PagemigError('EAGAIN', `EAGAIN: ${what}: ${why}`, { errno: EAGAIN });
    if (this.processes.size >= this.kern.threads_max)
      throw again(`${this.processes.size} tasks are alive, kernel.threads-max is ${this.kern.threads_max}`);
    if (host.tasks >= hostTaskLimit())
      throw again(
        `this host process already runs ${host.tasks} emulated processes over all machines, the most it holds (each costs two host memory mappings; see vm.max_map_count): exit some or close a machine`,
      );
    const max = this.kern.pid_max;
    for (let tries = 0; tries < max; tries++) {
      if (this.nextPid >= max) this.nextPid = RESERVED_PIDS;
      const pid = this.nextPid++;
      if (!this.processes.has(pid)) return pid;
    }
    throw again(`no free pid below kernel.pid_max ${max}`);
  }

  /**
   * The huge zero folio exists (huge_zero_folio): the first THP read fault allocated it. It is
   * ZERO_PFN, backed by no frame, and no shrinker frees it.
   */
  hugeZeroFolio = false;
  /** Batched TLB flushes issued (try_to_unmap_flush). */
  tlbFlushes = 0;
  /** Flushes that had to shoot down user threads (some unmapped entry belonged to a threaded mm). */
  tlbShootdowns = 0;
  /** Address spaces with live user threads (their MmTlb). Empty: every flush is a counter. */
  readonly threaded = new Set<MmTlb>();
  /**
   * The migration-wait word: a thread that meets a migration entry sleeps on it; the engine bumps
   * and notifies it after remove_migration_ptes (remap or undo) of every batch.
   */
  readonly migrationWait = new Int32Array(new SharedArrayBuffer(4));
  /** The fault plan in force (tests), or null. */
  faults: FaultPlan | null = null;
  /** Terminations of killed user threads still in progress (Machine.close awaits them). */
  readonly threadExits = new Set<Promise<void>>();
  /** Failed allocations that may wake kswapd go to these (onAllocFailure). */
  private readonly allocFailure = new Set<(req: AllocRequest) => void>();
  /** Batch tables of finished migration runs, for the next ones (takeBatchTable). */
  private readonly batchTables: Int32Array[] = [];
  /** The slow path's steps that attached subsystems provide (setAllocHook). */
  private readonly allocHooks: AllocHooks = {};
  /** Kernel threads of attached subsystems (kcompactd) to stop when the machine closes (onClose). */
  readonly closeHooks = new Set<() => void | Promise<void>>();

  /**
   * try_to_unmap_flush: one shootdown for everything unmapped since the last flush. Without user
   * threads in the affected address spaces it is a counter and returns undefined; otherwise the
   * promise resolves once no thread can use a translation cached before the call.
   */
  tlbFlush(): Promise<void> | undefined {
    this.tlbFlushes++;
    if (this.threaded.size === 0) return undefined;
    let list: MmTlb[] | undefined;
    for (const t of this.threaded) {
      if (!t.pending) continue;
      t.pending = false;
      (list ??= []).push(t);
    }
    if (!list) return undefined;
    this.tlbShootdowns++;
    return shootdownAsync(list);
  }

  /**
   * A batch table (NR_MAX_BATCHED_MIGRATION rows) for a migration run. Runs reuse the tables of
   * finished runs: a SharedArrayBuffer per run cost microseconds and garbage per 32-page
   * compaction cluster.
   */
  takeBatchTable(): Int32Array {
    return (
      this.batchTables.pop() ??
      new Int32Array(new SharedArrayBuffer(Math.max(this.config.migrationBatchPages, 1) * BATCH_ROW_INTS * 4))
    );
  }

  /** Gives a finished run's table back (a few are kept: runs rarely overlap). */
  releaseBatchTable(table: Int32Array): void {
    if (this.batchTables.length < 4) this.batchTables.push(table);
  }

  /** Wakes threads sleeping on migration entries (after remove_migration_ptes). */
  wakeMigrationWaiters(): void {
    if (this.threaded.size === 0) return;
    Atomics.add(this.migrationWait, 0, 1);
    Atomics.notify(this.migrationWait, 0);
  }

  setupWatermarks(): void {
    setupPerZoneWmarks(this.nodes, this.vm.min_free_kbytes, this.vm.watermark_scale_factor);
  }

  zoneOf(pfn: number): Zone {
    return this.zones[this.pageblockZone[pfn >>> PAGEBLOCK_ORDER]!]!;
  }

  nodeOf(pfn: number): number {
    return this.zoneOf(pfn).nid;
  }

  count(name: VmstatEvent, delta = 1): void {
    this.events.counts[name] += delta;
  }

  /**
   * Whether the last allocFolio missed the low watermark (its fast path failed): the slow path,
   * which calls it without the wake-up, wakes kswapd on it itself.
   */
  lowWmarkFailed = false;
  /** The last request allocFolio failed: the one a fault that ran out of memory reclaims for. */
  lastFailedAlloc: AllocRequest | null = null;

  /**
   * The installed directReclaim step (try_to_free_pages), for the user-thread fault path, which
   * runs it with the faulting thread asleep; undefined without one.
   */
  get directReclaim(): AllocHooks['directReclaim'] {
    return this.allocHooks.directReclaim;
  }

  /**
   * Allocates a folio of `order` (refcount 1, no mapping) and returns its head pfn, or -1.
   * Counts pgalloc_<zone> and the NUMA events (zone_statistics) like the kernel.
   */
  allocFolio(req: AllocRequest): number {
    // __alloc_pages: the fast path at WMARK_LOW; when it fails, wake_all_kswapds (whatever the
    // order) and the slow path's first try at WMARK_MIN, which may still succeed.
    let pfn = getPageFromFreelist(this.nodes, req, WMARK_LOW);
    this.lowWmarkFailed = pfn < 0;
    if (pfn < 0) {
      if (req.kswapdReclaim !== false) this.allocFailed(req);
      pfn = getPageFromFreelist(this.nodes, req, WMARK_MIN);
      if (pfn < 0) {
        // A copy: callers reuse their request objects (the engine's target request).
        this.lastFailedAlloc = { ...req };
        return -1;
      }
    }
    const zone = this.zoneOf(pfn);
    this.events.counts[zone.pgallocEvent] += 1 << req.order;
    zoneStatistics(
      preferredZone(this.nodes, req) ?? zone,
      zone,
      req.localNid ?? this.trace.currentTask().node ?? 0,
      req.interleave ? req.nid : -1,
    );
    this.prepNewFolio(pfn, req.order);
    return pfn;
  }

  /**
   * prep_new_page for a block already taken off the free lists (by the allocator, or by
   * compaction's free scanner): folio head/tail metadata, refcount 1, no mapping.
   */
  prepNewFolio(pfn: number, order: number): void {
    const nr = 1 << order;
    const p = this.pages;
    if (order > 0) {
      p.flags.fill(PG_tail, pfn + 1, pfn + nr);
      p.order.fill(order, pfn, pfn + nr);
      p.flags[pfn] = PG_head;
    } else {
      p.flags[pfn] = 0;
      p.order[pfn] = 0;
    }
    p.refcount[pfn] = 1;
    p.mapcount[pfn] = 0;
    p.mapping[pfn] = 0;
    p.index[pfn] = 0;
    // page_cpupid_reset_last: no NUMA hinting fault has touched the new folio.
    p.lastNid[pfn] = 0;
  }

  /**
   * A failed request that may wake kswapd: the observers see it at once; kswapd (or, without one,
   * its sleep step that wakes kcompactd) runs in its own thread, so after the failed call returns.
   */
  private allocFailed(req: AllocRequest): void {
    for (const fn of this.allocFailure) fn(req);
    const hooks = this.allocHooks;
    if (!hooks.wakeKswapd && !hooks.kswapdSleep) return;
    const copy = { ...req };
    // wakeup_kswapd runs in the allocating task: its events carry that task.
    const task = this.trace.currentTask();
    queueMicrotask(() => this.trace.during(task, () => wakeAllKswapds(this.nodes, copy, hooks)));
  }

  /**
   * Installs one step of the allocator's slow path (AllocHooks); a step has one owner, so a
   * second owner gets EBUSY. Returns the function that removes it.
   */
  setAllocHook<K extends keyof AllocHooks>(name: K, fn: NonNullable<AllocHooks[K]>): () => void {
    if (!(ALLOC_HOOKS as readonly string[]).includes(name))
      throw kernelError(
        EINVAL,
        `setAllocHook: unknown hook ${JSON.stringify(name)}; known: ${ALLOC_HOOKS.join(', ')}`,
      );
    if (typeof fn !== 'function')
      throw kernelError(EINVAL, `setAllocHook: the ${name} hook must be a function, got ${typeof fn}`);
    if (this.allocHooks[name])
      throw new PagemigError('EBUSY', `EBUSY: the allocator's ${name} hook is already installed`, {
        errno: EBUSY,
      });
    this.allocHooks[name] = fn;
    return () => {
      if (this.allocHooks[name] === fn) delete this.allocHooks[name];
    };
  }

  /**
   * wakeup_kswapd for one node outside the allocator (migrate_misplaced_folio_prepare's full
   * promotion target): the installed wakeKswapd hook, else the kswapdSleep step, as wakeAllKswapds.
   */
  wakeupKswapd(nid: number, order: number, highestZoneidx: number): void {
    const hooks = this.allocHooks;
    (hooks.wakeKswapd ?? hooks.kswapdSleep)?.(nid, order, highestZoneidx);
  }

  /**
   * The compaction steps of kswapd_try_to_sleep (reset_isolation_suitable, wakeup_kcompactd): the
   * installed kswapdSleep hook, for the kswapd daemon to call as it goes to sleep; nothing without
   * one.
   */
  kswapdSleepStep(nid: number, order: number, highestZoneidx: number): void {
    this.allocHooks.kswapdSleep?.(nid, order, highestZoneidx);
  }

  /**
   * Allocates with the slow path (__alloc_pages_slowpath): on failure kswapd is woken and direct
   * compaction runs through the installed hooks. Resolves to the folio's head pfn (or -1) and the
   * direct compaction attempts made.
   */
  allocFolioSlowpath<A extends DirectCompactAttempt = DirectCompactAttempt>(
    req: AllocRequest,
    hooks: AllocHooks = this.allocHooks,
  ): Promise<SlowpathResult<A>> {
    return allocPagesSlowpath<A>(this, req, hooks);
  }

  /**
   * wake_all_kswapds for the emulation: `fn` is called (synchronously, inside allocFolio) for every
   * request that may wake kswapd and missed the low watermark (its fast path failed). Returns the
   * function that removes it.
   */
  onAllocFailure(fn: (req: AllocRequest) => void): () => void {
    this.allocFailure.add(fn);
    return () => this.allocFailure.delete(fn);
  }

  /** Runs `fn` first when the machine closes (stops a daemon before memory goes). Returns its remover. */
  onClose(fn: () => void | Promise<void>): () => void {
    this.closeHooks.add(fn);
    return () => this.closeHooks.delete(fn);
  }

  /** Returns a folio whose refcount dropped to zero to the buddy allocator. */
  freeFolio(head: number): void {
    const p = this.pages;
    // __folio_put: a hugetlb folio goes back to its pool (free_huge_folio), not to the buddy.
    if (p.flags[head]! & PG_hugetlb) {
      freeHugeFolio(this, head);
      return;
    }
    lruRemoveFolio(this, head);
    // Its pages leave the gauges of anon or shmem memory as its owner goes.
    folioModStat(this, head, -1);
    const order = p.flags[head]! & PG_head ? p.order[head]! : 0;
    const nr = 1 << order;
    if (nr === 1) p.flags[head] = 0;
    else p.flags.fill(0, head, head + nr);
    p.refcount[head] = 0;
    p.mapcount[head] = 0;
    p.mapping[head] = 0;
    p.index[head] = 0;
    this.zoneOf(head).freeOnePage(head, order);
    this.events.counts.pgfree += nr;
  }

  /** folio_put: drops `n` references and frees the folio when none is left. */
  folioPut(head: number, n = 1): void {
    const left = (this.pages.refcount[head]! -= n);
    if (left === 0) this.freeFolio(head);
    else if (left < 0) throw new Error(`refcount underflow on ${this.pages.describe(head)}`);
  }

  folioOrder(head: number): number {
    return this.pages.flags[head]! & PG_head ? this.pages.order[head]! : 0;
  }

  newMapping(kind: 'anon' | 'shmem'): Mapping {
    const id = this.freeMappingIds.pop() ?? this.mappings.length;
    const m = new Mapping(id, kind);
    this.mappings[id] = m;
    return m;
  }

  releaseMapping(m: Mapping): void {
    this.mappings[m.id] = undefined;
    this.freeMappingIds.push(m.id);
  }

  mappingOf(head: number): Mapping | undefined {
    const id = this.pages.mapping[head]!;
    return id ? this.mappings[id] : undefined;
  }

  /** Page-table pages in use by every process (nr_page_table_pages). */
  pageTablePages(): number {
    let n = 0;
    for (const p of this.processes.values()) n += p.mm.pt.tablesInUse;
    return n;
  }

  /** Free blocks of `order` on zone `z`, over all migratetypes (free_area[order].nr_free). */
  nrFreeBlocks(z: Zone, order: number): number {
    let n = 0;
    for (let mt = 0; mt < MIGRATE_TYPES; mt++) n += z.nrFreeList[order * MIGRATE_TYPES + mt]!;
    return n;
  }
}
