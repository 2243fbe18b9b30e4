import type { MachineClock } from './clock.js';
import { type MachineConfig, resolveConfig } from './config.js';
import { EINVAL, ENOMEM, errnoNames, hostNoMem, kernelError, PagemigError } from './errno.js';
import { DRIVER_FAULT_SITES, FaultPlan, type FaultRule } from './fault_inject.js';
import { splitFolio } from './huge_memory.js';
import { checkInvariants } from './invariants.js';
import { Kernel } from './kernel.js';
import { meminfo } from './meminfo.js';
import {
  GUP_PIN_COUNTING_BIAS,
  type MigrateOptions,
  type MigrationResult,
  migrateFolios,
} from './migrate.js';
import type { OffloadHost } from './migrate_offload.js';
import { PAGE_SIZE } from './mmzone.js';
import { checkOptionKeys } from './option_keys.js';
import { PG_head, STRUCT_PAGE_BYTES } from './page.js';
import { PT_HOST_RESERVATION } from './pagetable.js';
import { checkSpawnOptions, Process, type SpawnOptions } from './process.js';
import { buddyinfo, numaMaps, pagetypeinfo, vmstat, vmstatValues, zoneinfo } from './procfs.js';
import { show } from './show.js';
import { Sysctl } from './sysctl.js';
import { Sysfs } from './sysfs.js';
import type { Timeline } from './timeline.js';
import type { Tracer } from './trace.js';
import type { VmstatName } from './vmstat.js';

/** migrateFolios' options (MigrateOptions): a misspelt one is refused, never ignored. */
const MIGRATE_OPTIONS = [
  'node',
  'mode',
  'reason',
  'demoteOrigin',
  'copyTimeoutMs',
  'abortGraceMs',
  'clock',
  'profile',
];

export interface NodeInfo {
  nid: number;
  tier: string;
  /** Abstract distance (mm/memory-tiers.c); -1 on a memory-less node. */
  adistance: number;
  /** Memory tier id (memory_tierN's N); -1 on a memory-less node. */
  memoryTier: number;
  /** Bytes of memory (0 on a memory-less node). */
  memory: number;
  /** CPUs on the node (0 on a CPU-less node, where no process runs). */
  cpus: number;
  startPfn: number;
  zones: { type: string; startPfn: number; pages: number }[];
  distances: readonly number[];
}

/** The /proc views of a machine, with the kernel's exact text. */
export interface Procfs {
  buddyinfo(): string;
  pagetypeinfo(): string;
  zoneinfo(): string;
  vmstat(): string;
  /** /proc/meminfo: memory, LRU and page-table totals and the hugetlb pool (HugePages_*). */
  meminfo(): string;
  /** /proc/PID/numa_maps of a live process (ENOENT otherwise). */
  numaMaps(pid: number): string;
}

/** An emulated NUMA machine. Create it with `createMachine()`. */
export class Machine {
  /** Kernel internals, for subsystems built on core (kcompactd, drivers, the testkit). */
  readonly kernel: Kernel;
  readonly procfs: Procfs;
  /** The /sys views of the nodes (`/sys/devices/system/node/has_memory`, ...), with the kernel's text. */
  readonly sysfs: Sysfs;
  readonly sysctl: Sysctl;
  readonly nodes: readonly NodeInfo[];
  private closing: Promise<void> | null = null;
  /** References taken with folioGet and not yet dropped with folioPut, per folio head. */
  private readonly gets = new Map<number, number>();

  constructor(config: MachineConfig) {
    const resolved = resolveConfig(config);
    let k: Kernel;
    try {
      k = new Kernel(resolved);
    } catch (e) {
      // The host could not give the RAM sections or the page metadata (ArrayBuffer allocation).
      if (e instanceof RangeError)
        throw new PagemigError(
          'ENOMEM',
          `ENOMEM: createMachine: the host could not allocate the machine's memory (${e.message}); use fewer or smaller nodes, or backing: 'none'`,
          { errno: ENOMEM, cause: e },
        );
      throw e;
    }
    this.kernel = k;
    this.sysctl = new Sysctl(k);
    for (const [name, value] of Object.entries(resolved.sysctl)) {
      const err = this.sysctl.write(name, value);
      if (err) {
        throw new PagemigError(
          'ERR_INVALID_CONFIG',
          `createMachine: sysctl.${name}: ${show(value)} was refused (${errnoNames[err] ?? err})`,
          { errno: err },
        );
      }
    }
    this.procfs = {
      buddyinfo: () => buddyinfo(k),
      pagetypeinfo: () => pagetypeinfo(k),
      zoneinfo: () => zoneinfo(k),
      vmstat: () => vmstat(k),
      meminfo: () => meminfo(k),
      numaMaps: (pid) => numaMaps(k, pid),
    };
    this.sysfs = new Sysfs(k);
    this.nodes = k.nodes.map((n) => ({
      nid: n.nid,
      tier: n.tier,
      adistance: k.memoryTiers.adistance[n.nid]!,
      memoryTier: k.memoryTiers.tierOf[n.nid]?.id ?? -1,
      memory: n.nrPages * PAGE_SIZE,
      cpus: n.cpus,
      startPfn: n.startPfn,
      zones: n.zones.map((z) => ({ type: z.type, startPfn: z.startPfn, pages: z.spanned })),
      distances: n.distances,
    }));
  }

  /** Copy offload: register / unregister / route migrators (migrate_copy_offload). */
  get offload(): OffloadHost {
    return this.kernel.offload;
  }

  /**
   * In-kernel migrate_pages() of the folios containing `pfns` to `opts.node`. Bad arguments and a
   * closed machine reject with a PagemigError before any folio is isolated.
   */
  async migrateFolios(pfns: ArrayLike<number>, opts: MigrateOptions): Promise<MigrationResult> {
    this.kernel.assertOpen('migrateFolios');
    if (typeof opts === 'object' && opts !== null) checkOptionKeys('migrateFolios', opts, MIGRATE_OPTIONS);
    return migrateFolios(this.kernel, pfns, opts);
  }

  /** get_page: takes an extra reference on the folio of `pfn` (migration then retries -EAGAIN). */
  folioGet(pfn: number): void {
    this.kernel.assertOpen('folioGet');
    const head = this.liveHead(pfn);
    this.kernel.pages.refcount[head]!++;
    this.gets.set(head, (this.gets.get(head) ?? 0) + 1);
  }

  /** put_page: drops a reference taken with folioGet (EINVAL for a folio it holds none on). */
  folioPut(pfn: number): void {
    const head = this.liveHead(pfn);
    const held = this.gets.get(head) ?? 0;
    if (held === 0)
      throw kernelError(EINVAL, `folioPut: no reference taken with folioGet on the folio of pfn ${pfn}`);
    if (held === 1) this.gets.delete(head);
    else this.gets.set(head, held - 1);
    this.kernel.folioPut(head);
  }

  /** pin_user_pages (FOLL_PIN): a DMA pin that keeps the folio from being migrated until unpinned. */
  pinFolio(pfn: number): () => void {
    this.kernel.assertOpen('pinFolio');
    const head = this.liveHead(pfn);
    this.kernel.pages.refcount[head]! += GUP_PIN_COUNTING_BIAS;
    let pinned = true;
    return () => {
      if (!pinned) return;
      pinned = false;
      this.kernel.folioPut(head, GUP_PIN_COUNTING_BIAS);
    };
  }

  private liveHead(pfn: number): number {
    if (!Number.isInteger(pfn) || pfn < 0 || pfn >= this.nrPages)
      throw kernelError(EINVAL, `pfn ${show(pfn)} is not RAM`);
    const head = this.kernel.pages.head(pfn);
    if (this.kernel.pages.refcount[head]! <= 0)
      throw kernelError(EINVAL, `pfn ${pfn} is not in an allocated folio`);
    return head;
  }

  get trace(): Tracer {
    return this.kernel.trace;
  }

  /**
   * The timeline recorder: `start()`, run something, `stop()` → a capture with spans of the
   * engine's phases, DMA channels, copy workers, user threads and daemons on one clock, exported
   * with `toChromeJson()` (Perfetto, chrome://tracing) or `toFtrace()`.
   */
  get timeline(): Timeline {
    return this.kernel.timeline;
  }

  /** The machine's clock: wall time, or a manual clock moved by `advance(ms)` (`clock: 'manual'`). */
  get clock(): MachineClock {
    return this.kernel.clock;
  }

  /** Total pages of RAM. */
  get nrPages(): number {
    return this.kernel.nrPages;
  }

  /** The RAM sections (SharedArrayBuffers) that migrators and workers copy between. */
  get sections(): readonly SharedArrayBuffer[] {
    return this.kernel.mem.sections;
  }

  /** Bytes of page metadata ("struct page") per 4 KiB page. */
  get metadataBytesPerPage(): number {
    return STRUCT_PAGE_BYTES;
  }

  /**
   * Starts a process. Bad options are EINVAL; more live processes than `kernel.threads-max` (or
   * than this host holds) are EAGAIN, as fork(2) says; an address space the host cannot allocate
   * is ENOMEM.
   */
  spawn(opts: SpawnOptions = {}): Process {
    this.kernel.assertOpen('spawn');
    checkSpawnOptions(opts, this.kernel.nodes.length);
    const pid = this.kernel.allocPid('spawn');
    let p: Process;
    try {
      p = new Process(this.kernel, pid, opts);
    } catch (e) {
      throw hostNoMem(e, `spawn: the new process's page tables (${PT_HOST_RESERVATION})`);
    }
    this.kernel.processes.set(p.pid, p);
    return p;
  }

  /** The live process with this pid. */
  process(pid: number): Process | undefined {
    return this.kernel.processes.get(pid);
  }

  /** /proc/vmstat as an object. */
  vmstat(): Record<VmstatName, number> {
    return vmstatValues(this.kernel);
  }

  /** Free pages of a node (all zones). */
  freePages(nid: number): number {
    const n = Number.isInteger(nid) ? this.kernel.nodes[nid] : undefined;
    if (!n) throw kernelError(EINVAL, `node ${show(nid)} does not exist`);
    return n.freePages;
  }

  /**
   * Splits the large folio containing `pfn` (like debugfs split_huge_pages): to `newOrder`
   * uniformly, or buddy-style around `at` (non-uniform). Returns the heads of the new folios still
   * in use; pieces that nothing maps or caches are freed, as the kernel's split does.
   */
  splitFolio(pfn: number, newOrder: number, opts: { at?: number } = {}): number[] {
    this.kernel.assertOpen('splitFolio');
    if (!Number.isInteger(pfn) || pfn < 0 || pfn >= this.nrPages)
      throw kernelError(EINVAL, `pfn ${show(pfn)} is not RAM`);
    if (!Number.isInteger(newOrder))
      throw kernelError(EINVAL, `split order ${show(newOrder)} is not an integer`);
    if (typeof opts !== 'object' || opts === null)
      throw kernelError(EINVAL, 'splitFolio options must be an object like { at }');
    if (opts.at !== undefined && !Number.isInteger(opts.at))
      throw kernelError(EINVAL, `split point ${show(opts.at)} is not a pfn`);
    const head = this.kernel.pages.head(pfn);
    if (!(this.kernel.pages.flags[head]! & PG_head))
      throw kernelError(EINVAL, `pfn ${pfn} is not in a large folio`);
    return splitFolio(this.kernel, head, newOrder, opts);
  }

  /**
   * Puts a fault plan in force (tests): the engine honours the engine sites, migrators read it
   * from `ctx.faults`. Takes a FaultPlan or its rules; null removes it. Returns the plan. A bad rule,
   * or a driver site that no migrator in use (registered or routed, or the one `match.migrator`
   * names) declares in `capabilities.faultSites`, is ERR_INVALID_FAULT_PLAN: it would never fire.
   */
  injectFaults(
    plan: FaultPlan | readonly FaultRule[] | null,
    opts: { seed?: number } = {},
  ): FaultPlan | null {
    if (plan === null) {
      this.kernel.faults = null;
      return null;
    }
    this.kernel.assertOpen('injectFaults');
    const p = plan instanceof FaultPlan ? plan : new FaultPlan(plan, opts);
    const inUse = this.kernel.offload.inUse();
    p.rules.forEach((rule, i) => {
      if (!(DRIVER_FAULT_SITES as readonly string[]).includes(rule.site)) return;
      const named = rule.match?.migrator;
      const candidates = named === undefined ? inUse : inUse.filter((m) => m.name === named);
      if (candidates.some((m) => (m.capabilities.faultSites ?? []).includes(rule.site))) return;
      const have = inUse.length
        ? inUse
            .map((m) => `${m.name} (${(m.capabilities.faultSites ?? []).join(', ') || 'declares none'})`)
            .join('; ')
        : 'none is registered or routed';
      throw new PagemigError(
        'ERR_INVALID_FAULT_PLAN',
        `fault plan: rule ${i}: driver site ${rule.site} would never fire: no migrator in use${named === undefined ? '' : ` named ${named}`} declares it in capabilities.faultSites; migrators in use: ${have}`,
        { errno: EINVAL },
      );
    });
    this.kernel.faults = p;
    return p;
  }

  /** The fault plan in force, or null. */
  get faults(): FaultPlan | null {
    return this.kernel.faults;
  }

  /** TLB flush counters: batched flushes, and those that shot down user threads. */
  get tlb(): { flushes: number; shootdowns: number } {
    return { flushes: this.kernel.tlbFlushes, shootdowns: this.kernel.tlbShootdowns };
  }

  /** Throws a PagemigError naming the pfn and the rule if the model is inconsistent. */
  checkInvariants(): void {
    checkInvariants(this.kernel);
  }

  /** True once close() was called: calls that would start work throw ERR_MACHINE_CLOSED. */
  get closed(): boolean {
    return this.kernel.closed;
  }

  /**
   * Throws PagemigError ERR_MACHINE_CLOSED (errno EINVAL) naming `what` once the machine is closing
   * or closed; subsystems that attach to a machine (kcompactd) call it first.
   */
  assertOpen(what = 'this call'): void {
    this.kernel.assertOpen(what);
  }

  /**
   * Ends every process and releases the machine. From the call on, everything that would start
   * work (spawn, p.mmap, p.movePages, migrateFolios, sysctl.write, offload.register,
   * injectFaults, attachKcompactd, ...) throws ERR_MACHINE_CLOSED. Migrations in progress finish
   * first. Idempotent: a second call returns the first one's promise.
   */
  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  private async shutdown(): Promise<void> {
    const k = this.kernel;
    k.closed = true;
    // Kernel threads of attached subsystems first: no compaction starts on a closing machine.
    await Promise.all([...k.closeHooks].map((fn) => fn()));
    // User threads next: they stop touching memory before anything is unmapped.
    for (const p of k.processes.values()) void p.killThreads();
    await Promise.all([...k.threadExits]);
    // Migrations in flight (move_pages, migrateFolios) restore or move their folios first: no
    // migration entry is left for exit to meet.
    while (k.migrations.size) await Promise.allSettled([...k.migrations]);
    await k.offload.closeAll();
    for (const p of [...k.processes.values()]) p.exit();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}

/** Builds a machine: nodes, zones, buddy allocator, and (by default) pre-faulted RAM. */
export async function createMachine(config: MachineConfig): Promise<Machine> {
  return new Machine(config);
}

/**
 * The check of a daemon's machine argument (attachKcompactd, attachNumaBalancing): EINVAL naming
 * the caller unless `m` is a machine. By shape, not instanceof: a daemon built against another copy
 * of core (a before/after benchmark) still gets that copy's machines.
 */
export function checkMachine(m: unknown, caller: string): asserts m is Machine {
  const shaped =
    typeof m === 'object' &&
    m !== null &&
    typeof (m as Machine).assertOpen === 'function' &&
    typeof (m as Machine).kernel === 'object';
  if (!shaped)
    throw kernelError(EINVAL, `${caller}: expected a machine from createMachine(), got ${show(m)}`);
}
