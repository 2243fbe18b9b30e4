import { type MachineConfig, resolveConfig } from './config.js';
import { EINVAL, errnoNames, kernelError, PagemigError } from './errno.js';
import { FaultPlan, type FaultRule } from './fault_inject.js';
import { splitFolio } from './huge_memory.js';
import { checkInvariants } from './invariants.js';
import { Kernel } from './kernel.js';
import {
  GUP_PIN_COUNTING_BIAS,
  type MigrateOptions,
  type MigrationResult,
  migrateFolios,
} from './migrate.js';
import type { OffloadHost } from './migrate_offload.js';
import { PAGE_SIZE } from './mmzone.js';
import { PG_head, STRUCT_PAGE_BYTES } from './page.js';
import { Process, type SpawnOptions } from './process.js';
import { buddyinfo, pagetypeinfo, vmstat, vmstatValues, zoneinfo } from './procfs.js';
import { Sysctl } from './sysctl.js';
import type { Tracer } from './trace.js';
import type { VmstatName } from './vmstat.js';

export interface NodeInfo {
  nid: number;
  tier: string;
  /** Bytes of memory. */
  memory: number;
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
}

/** An emulated NUMA machine. Create it with `createMachine()`. */
export class Machine {
  /** Kernel internals, for subsystems built on core (kcompactd, drivers, the testkit). */
  readonly kernel: Kernel;
  readonly procfs: Procfs;
  readonly sysctl: Sysctl;
  readonly nodes: readonly NodeInfo[];
  private closed = false;

  constructor(config: MachineConfig) {
    const resolved = resolveConfig(config);
    const k = new Kernel(resolved);
    this.kernel = k;
    this.sysctl = new Sysctl(k);
    for (const [name, value] of Object.entries(resolved.sysctl)) {
      const err = this.sysctl.write(name, value);
      if (err) {
        throw new PagemigError(
          'ERR_INVALID_CONFIG',
          `createMachine: sysctl.${name}: ${JSON.stringify(value)} was refused (${errnoNames[err] ?? err})`,
          { errno: err },
        );
      }
    }
    this.procfs = {
      buddyinfo: () => buddyinfo(k),
      pagetypeinfo: () => pagetypeinfo(k),
      zoneinfo: () => zoneinfo(k),
      vmstat: () => vmstat(k),
    };
    this.nodes = k.nodes.map((n) => ({
      nid: n.nid,
      tier: n.tier,
      memory: n.nrPages * PAGE_SIZE,
      startPfn: n.startPfn,
      zones: n.zones.map((z) => ({ type: z.type, startPfn: z.startPfn, pages: z.spanned })),
      distances: n.distances,
    }));
  }

  /** Copy offload: register / unregister / route migrators (migrate_copy_offload). */
  get offload(): OffloadHost {
    return this.kernel.offload;
  }

  /** In-kernel migrate_pages() of the folios containing `pfns` to `opts.node`. */
  migrateFolios(pfns: ArrayLike<number>, opts: MigrateOptions): Promise<MigrationResult> {
    this.open();
    return migrateFolios(this.kernel, pfns, opts);
  }

  /** get_page: takes an extra reference on the folio of `pfn` (migration then retries -EAGAIN). */
  folioGet(pfn: number): void {
    this.kernel.pages.refcount[this.liveHead(pfn)]!++;
  }

  /** put_page: drops a reference taken with folioGet. */
  folioPut(pfn: number): void {
    this.kernel.folioPut(this.liveHead(pfn));
  }

  /** pin_user_pages (FOLL_PIN): a DMA pin that keeps the folio from being migrated until unpinned. */
  pinFolio(pfn: number): () => void {
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
      throw kernelError(EINVAL, `pfn ${pfn} is not RAM`);
    const head = this.kernel.pages.head(pfn);
    if (this.kernel.pages.refcount[head]! <= 0)
      throw kernelError(EINVAL, `pfn ${pfn} is not in an allocated folio`);
    return head;
  }

  get trace(): Tracer {
    return this.kernel.trace;
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

  /** Starts a process. */
  spawn(opts: SpawnOptions = {}): Process {
    this.open();
    const p = new Process(this.kernel, this.kernel.nextPid++, opts);
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
    const n = this.kernel.nodes[nid];
    if (!n) throw kernelError(EINVAL, `node ${nid} does not exist`);
    return n.freePages;
  }

  /**
   * Splits the large folio containing `pfn` (like debugfs split_huge_pages): to `newOrder`
   * uniformly, or buddy-style around `at` (non-uniform). Returns the heads of the new folios still
   * in use; pieces that nothing maps or caches are freed, as the kernel's split does.
   */
  splitFolio(pfn: number, newOrder: number, opts: { at?: number } = {}): number[] {
    this.open();
    if (!Number.isInteger(pfn) || pfn < 0 || pfn >= this.nrPages)
      throw kernelError(EINVAL, `pfn ${pfn} is not RAM`);
    const head = this.kernel.pages.head(pfn);
    if (!(this.kernel.pages.flags[head]! & PG_head))
      throw kernelError(EINVAL, `pfn ${pfn} is not in a large folio`);
    return splitFolio(this.kernel, head, newOrder, opts);
  }

  /**
   * Puts a fault plan in force (tests): the engine honours the engine sites, migrators read it
   * from `ctx.faults`. Takes a FaultPlan or its rules; null removes it. Returns the plan.
   */
  injectFaults(
    plan: FaultPlan | readonly FaultRule[] | null,
    opts: { seed?: number } = {},
  ): FaultPlan | null {
    const p = plan === null ? null : plan instanceof FaultPlan ? plan : new FaultPlan(plan, opts);
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

  private open(): void {
    if (this.closed) throw kernelError(EINVAL, 'the machine is closed');
  }

  /** Ends every process and releases the machine. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    // Kernel threads of attached subsystems first: no compaction starts on a closing machine.
    await Promise.all([...this.kernel.closeHooks].map((fn) => fn()));
    // User threads next: they stop touching memory before anything is unmapped.
    for (const p of this.kernel.processes.values()) void p.killThreads();
    await Promise.all([...this.kernel.threadExits]);
    await this.kernel.offload.closeAll();
    for (const p of [...this.kernel.processes.values()]) p.exit();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}

/** Builds a machine: nodes, zones, buddy allocator, and (by default) pre-faulted RAM. */
export async function createMachine(config: MachineConfig): Promise<Machine> {
  return new Machine(config);
}
