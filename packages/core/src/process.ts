import { type Capability, capabilitySet, checkCapabilities } from './capability.js';
import {
  EBUSY,
  EFAULT,
  EINVAL,
  ENOMEM,
  ESRCH,
  hostNoMem,
  kernelError,
  PagemigError,
  type SyscallResult,
} from './errno.js';
import { HUGETLB_NR, HUGETLB_ORDER, type HugetlbTask } from './hugetlb.js';
import { SIGBUS } from './hugetlb_fault.js';
import {
  hugetlbCheckSplit,
  hugetlbDupVmaPrivate,
  hugetlbEvictMapping,
  hugetlbReservePages,
  unmapHugetlbArea,
} from './hugetlb_vma.js';
import type { Kernel } from './kernel.js';
import { copyPageRange, dropForkedRange, handleMmFault, zapRange } from './memory.js';
import { kernelMigratePages } from './mempolicy.js';
import { kernelMbind } from './mempolicy_mbind.js';
import {
  type Mempolicy,
  type MempolicyTask,
  MPOL_BIND,
  MPOL_MODE_FLAGS,
  type Mpol,
  mempolicyView,
  mpolFromOption,
} from './mempolicy_struct.js';
import { type GetMempolicyResult, kernelGetMempolicy, kernelSetMempolicy } from './mempolicy_syscalls.js';

import { addrToVpn, Mm, unlinkOwners, Vma, vpnToAddr } from './mm.js';
import { FAULT_KILLED, FAULT_RETRY, FAULT_SIGBUS } from './mmu.js';
import { HPAGE_PMD_ORDER, PAGE_SIZE } from './mmzone.js';
import { type MovePagesResult, movePages } from './move_pages.js';
import { N_CPU, N_MEMORY, nodeState, nodesInState } from './nodemask.js';
import { checkOptionKeys } from './option_keys.js';
import {
  PMD_HUGE,
  PMD_TABLE,
  PT_HOST_RESERVATION,
  PTE_ACCESSED,
  PTE_DIRTY,
  PTE_PFN_SHIFT,
  PTE_PRESENT,
  PTE_WRITE,
  pteIsPresent,
  pteIsProtnone,
  USER_PAGES,
  ZERO_PFN,
} from './pagetable.js';
import { entryPfn, pageEntry } from './pagewalk.js';
import { show } from './show.js';
import { parseSize, type Size } from './units.js';
import { ThreadGroup, type ThreadSpec, type UserThread } from './user_threads.js';
import { folioModStat } from './vmstat.js';

export interface SpawnOptions {
  uid?: number;
  /** The group id (real = effective = saved). Default: the uid. */
  gid?: number;
  /**
   * The capability set (permitted = effective), e.g. `['CAP_SYS_NICE']`. Default: what execve
   * gives, the full set for uid 0 and none for anyone else. Give either this or `privileged`.
   */
  capabilities?: readonly Capability[];
  /**
   * Shorthand for the capability set: true is the full set (root-like: CAP_SYS_NICE for
   * MPOL_MF_MOVE_ALL, CAP_SYS_PTRACE to act on other users' processes, ...), false none.
   */
  privileged?: boolean;
  /** The cpuset's mems_allowed: nodes with memory. Default: every node with memory (N_MEMORY). */
  memsAllowed?: number[];
  /**
   * The node of the CPU the process runs on (its local node for allocation); a node with CPUs, not
   * necessarily in memsAllowed. Default: the first node of memsAllowed with CPUs, else the first
   * node with CPUs.
   */
  node?: number;
  comm?: string;
}

export interface MmapOptions {
  /** MAP_SHARED|MAP_ANONYMOUS (shmem) instead of MAP_PRIVATE|MAP_ANONYMOUS. */
  shared?: boolean;
  /** 'always' = 2 MiB THP, 'never' = 4 KiB pages, or an mTHP size ('16KiB' .. '1MiB'). */
  thp?: 'always' | 'never' | Size;
  /** Shorthand for `policy: { mode: 'bind', nodes: [node] }`. */
  node?: number;
  policy?: Mempolicy;
  /** MAP_LOCKED: populate now and keep the pages mlocked (unevictable). */
  mlock?: boolean;
  /** false models a VM_IO/VM_PFNMAP area that migration must leave alone. */
  migratable?: boolean;
  /**
   * MAP_HUGETLB: 2 MiB pages from the hugetlb pool (vm.nr_hugepages). The length is rounded up to
   * 2 MiB and its huge pages are reserved now (ENOMEM if the pool cannot cover them); faults take
   * pool pages, a fault with none is SIGBUS. `mlock` populates the area but does not lock it.
   */
  hugetlb?: boolean;
}

/** Where an address is backed right now (like /proc/pid/pagemap plus kpageflags). */
export interface PageInfo {
  pfn: number;
  node: number;
  /** Order of the folio that holds the page. */
  order: number;
  headPfn: number;
  zeroPage: boolean;
  huge: boolean;
  writable: boolean;
  dirty: boolean;
  accessed: boolean;
  /** A NUMA hinting (PROT_NONE) entry maps it: the next access takes a hinting fault. */
  protnone: boolean;
}

/** An address as the messages print it, whatever the caller passed. */
function hex(addr: unknown): string {
  return typeof addr === 'number' && Number.isFinite(addr) ? `0x${addr.toString(16)}` : show(addr);
}

function segv(addr: number, why: string): never {
  throw kernelError(EFAULT, `segmentation fault at ${hex(addr)}: ${why}`);
}

const isBool = (v: unknown) => v === undefined || typeof v === 'boolean';

/** include/linux/sched.h: the bytes of a task's comm, its terminating NUL included. */
const TASK_COMM_LEN = 16;
const SPAWN_OPTIONS = ['uid', 'gid', 'capabilities', 'privileged', 'memsAllowed', 'node', 'comm'];
const MMAP_OPTIONS = ['shared', 'thp', 'node', 'policy', 'mlock', 'migratable', 'hugetlb'];

/**
 * The checks of spawn()'s options (EINVAL naming the option): no unknown key, uid and gid ids
 * (0..2^32-2), capabilities a list of CAP_* names or privileged a boolean (not both), memsAllowed
 * a list of existing nodes, node one of them, comm a string (cut to 15 characters, as the kernel's).
 */
export function checkSpawnOptions(opts: unknown, nrNodes: number): asserts opts is SpawnOptions {
  if (typeof opts !== 'object' || opts === null || Array.isArray(opts))
    throw kernelError(
      EINVAL,
      `spawn options must be an object like { uid: 1000 }, got ${opts === null ? 'null' : typeof opts}`,
    );
  checkOptionKeys('spawn', opts, SPAWN_OPTIONS);
  const o = opts as Record<string, unknown>;
  if (
    o.uid !== undefined &&
    !(Number.isInteger(o.uid) && (o.uid as number) >= 0 && (o.uid as number) < 2 ** 32 - 1)
  )
    throw kernelError(EINVAL, `uid ${show(o.uid)} is not a uid (an integer 0..${2 ** 32 - 2})`);
  if (
    o.gid !== undefined &&
    !(Number.isInteger(o.gid) && (o.gid as number) >= 0 && (o.gid as number) < 2 ** 32 - 1)
  )
    throw kernelError(EINVAL, `gid ${show(o.gid)} is not a gid (an integer 0..${2 ** 32 - 2})`);
  if (!isBool(o.privileged))
    throw kernelError(EINVAL, `privileged must be a boolean, got ${show(o.privileged)}`);
  checkCapabilities(o.capabilities);
  if (o.capabilities !== undefined && o.privileged !== undefined)
    throw kernelError(EINVAL, 'give either capabilities or privileged, not both');
  if (o.memsAllowed !== undefined && !Array.isArray(o.memsAllowed))
    throw kernelError(EINVAL, `memsAllowed must be a list of node ids (0..${nrNodes - 1})`);
  if (o.node !== undefined && !Number.isInteger(o.node))
    throw kernelError(EINVAL, `node ${show(o.node)} is not a node id`);
  if (o.comm !== undefined && typeof o.comm !== 'string') throw kernelError(EINVAL, 'comm must be a string');
}

/** A byte view `write` accepts: a Uint8Array (Buffer included), from any realm. */
function isBytes(v: unknown): v is Uint8Array {
  return (
    ArrayBuffer.isView(v) && (v as { [Symbol.toStringTag]?: string })[Symbol.toStringTag] === 'Uint8Array'
  );
}

export function thpOrder(thp: MmapOptions['thp']): number {
  if (thp === undefined || thp === 'never') return 0;
  if (thp === 'always') return HPAGE_PMD_ORDER;
  let order = Number.NaN;
  try {
    order = Math.log2(parseSize(thp, 'mmap thp') / PAGE_SIZE);
  } catch {
    // Reported below with the accepted values.
  }
  if (!Number.isInteger(order) || order < 2 || order > HPAGE_PMD_ORDER) {
    throw kernelError(
      EINVAL,
      `thp ${show(thp)} is not an anonymous folio size (16KiB..2MiB, a power of two; 'always' or 'never')`,
    );
  }
  return order;
}

/** A process: an address space plus the identity syscalls check (uid, gid, capabilities, cpuset). */
export class Process implements MempolicyTask {
  readonly mm: Mm = new Mm(this);
  /** The task's memory policy (set_mempolicy(2)); null is the default, local allocation. */
  mempolicy: Mpol | null = null;
  readonly uid: number;
  readonly gid: number;
  /** The capability set (permitted = effective). */
  readonly capabilities: ReadonlySet<Capability>;
  readonly memsAllowed: readonly number[];
  readonly node: number;
  readonly comm: string;
  exited = false;
  private threadGroup: ThreadGroup | null = null;

  constructor(
    protected readonly k: Kernel,
    readonly pid: number,
    opts: SpawnOptions,
  ) {
    const nn = k.nodes.length;
    this.uid = opts.uid ?? 1000;
    this.gid = opts.gid ?? this.uid;
    this.capabilities = capabilitySet(opts.capabilities, opts.privileged, this.uid);
    // The top cpuset's mems are the nodes with memory (N_MEMORY); cpuset.mems refuses others.
    const mems = opts.memsAllowed ?? nodesInState(k.nodes, N_MEMORY);
    if (mems.length === 0 || mems.some((n) => !Number.isInteger(n) || n < 0 || n >= nn)) {
      throw kernelError(EINVAL, `memsAllowed ${show(mems)} must list existing nodes (0..${nn - 1})`);
    }
    const memless = mems.filter((n) => !nodeState(k.nodes[n]!, N_MEMORY));
    if (memless.length)
      throw kernelError(EINVAL, `memsAllowed: node ${memless.join(',')} has no memory (not in N_MEMORY)`);
    this.memsAllowed = [...new Set(mems)].sort((a, b) => a - b);
    // The node of the CPU the process runs on (numa_node_id); a memory-less node's CPUs allocate
    // from the nearest node with memory (its zonelist). By default the first allowed node with CPUs.
    // A task's CPUs and mems are independent cpuset masks: it may run on a node outside its mems.
    const withCpus = (n: number) => nodeState(k.nodes[n]!, N_CPU);
    this.node = opts.node ?? this.memsAllowed.find(withCpus) ?? nodesInState(k.nodes, N_CPU)[0]!;
    if (!k.nodes[this.node])
      throw kernelError(EINVAL, `node ${this.node} does not exist (nodes 0..${nn - 1})`);
    if (!withCpus(this.node))
      throw kernelError(EINVAL, `node ${this.node} has no CPUs: no process runs there`);
    // set_task_comm: TASK_COMM_LEN is 16 bytes with the NUL, so a longer name is cut to 15.
    this.comm = (opts.comm ?? `proc${pid}`).slice(0, TASK_COMM_LEN - 1);
  }

  /** capable(cap): whether the process holds `cap`. */
  capable(cap: Capability): boolean {
    return this.capabilities.has(cap);
  }

  /** Whether the process holds CAP_SYS_NICE (what `privileged` meant before capabilities). */
  get privileged(): boolean {
    return this.capable('CAP_SYS_NICE');
  }

  /** What a hugetlb reservation sees of this task: cpuset, node, MPOL_BIND nodes (policy_mbind_nodemask). */
  private hugetlbTask(): HugetlbTask {
    const pol = this.mempolicy;
    const bindNodes = pol?.mode === MPOL_BIND ? pol.nodes : null;
    return { memsAllowed: this.memsAllowed, node: this.node, bindNodes };
  }

  private alive(): void {
    if (this.exited) {
      this.k.assertOpen(`process ${this.pid}`);
      throw new PagemigError('ERR_PROCESS_EXITED', `process ${this.pid} has exited`, { errno: ESRCH });
    }
  }

  /** alive() for calls that start work: a closing machine refuses them too (ERR_MACHINE_CLOSED). */
  private working(what: string): void {
    this.alive();
    this.k.assertOpen(`${what} of process ${this.pid}`);
  }

  /** mmap(NULL, len, PROT_READ|PROT_WRITE, MAP_ANONYMOUS|..., -1, 0). Returns the address. */
  mmap(len: number, opts: MmapOptions = {}): number {
    this.working('mmap');
    if (!Number.isSafeInteger(len) || len <= 0)
      throw kernelError(EINVAL, `mmap length ${show(len)} must be a positive integer`);
    if (typeof opts !== 'object' || opts === null)
      throw kernelError(
        EINVAL,
        `mmap options must be an object like { thp: 'never' }, got ${opts === null ? 'null' : typeof opts}`,
      );
    checkOptionKeys('mmap', opts, MMAP_OPTIONS);
    for (const key of ['shared', 'mlock', 'migratable', 'hugetlb'] as const)
      if (!isBool(opts[key]))
        throw kernelError(EINVAL, `mmap ${key} must be a boolean, got ${show(opts[key])}`);
    if (len > USER_PAGES * PAGE_SIZE)
      throw kernelError(ENOMEM, `mmap length ${len} is larger than the 256GiB user address space`);
    const hugetlb = opts.hugetlb ?? false;
    if (hugetlb && opts.thp !== undefined)
      throw kernelError(EINVAL, `mmap: thp ${show(opts.thp)} and hugetlb exclude each other`);
    // ksys_mmap_pgoff: a MAP_HUGETLB length is rounded up to the huge page size.
    const npages = hugetlb
      ? Math.ceil(len / (HUGETLB_NR * PAGE_SIZE)) * HUGETLB_NR
      : Math.ceil(len / PAGE_SIZE);
    const order = hugetlb ? HUGETLB_ORDER : thpOrder(opts.thp);
    if (opts.node !== undefined && opts.policy !== undefined)
      throw kernelError(EINVAL, 'give either node or policy, not both');
    const given = opts.node !== undefined ? { mode: 'bind' as const, nodes: [opts.node] } : opts.policy;
    const policy = given === undefined ? null : mpolFromOption(this.k, this, given);
    const align = Math.max(1 << order, npages >= 512 ? 512 : 1);
    // do_mmap: "Too many mappings?" (map_count may reach max_map_count + 1, as in the kernel).
    if (this.mm.vmas.size > this.k.vm.max_map_count)
      throw kernelError(
        ENOMEM,
        `mmap: ${this.mm.vmas.size} areas is past vm.max_map_count (${this.k.vm.max_map_count})`,
      );
    const startVpn = this.mm.getUnmappedArea(npages, align);
    if (startVpn < 0)
      throw kernelError(ENOMEM, `no room for ${npages} pages in the 256GiB user address space`);
    const shared = opts.shared ?? false;
    const mapping = this.k.newMapping(shared ? 'shmem' : 'anon');
    const vma = new Vma(
      this.mm,
      startVpn,
      npages,
      shared,
      order,
      policy,
      // mmap_region: VM_LOCKED is dropped for hugetlb (its pages are never on an LRU to lock).
      (opts.mlock ?? false) && !hugetlb,
      opts.migratable ?? true,
      mapping,
      // A hugetlb area maps its hugetlbfs file from offset 0 (vm_pgoff), private or shared.
      shared || hugetlb ? 0 : startVpn,
    );
    if (hugetlb) {
      try {
        hugetlbReservePages(this.k, this.hugetlbTask(), vma);
      } catch (e) {
        this.k.releaseMapping(mapping);
        throw e;
      }
    }
    this.mm.insert(vma);
    if (vma.locked) {
      try {
        for (let v = startVpn; v < startVpn + npages; v++) this.translate(v, true);
      } catch (e) {
        this.munmap(vma.start, npages * PAGE_SIZE);
        throw e;
      }
    } else if (hugetlb && opts.mlock) {
      // mm_populate, errors ignored: a huge page the pool cannot give stays unpopulated. Shared
      // areas are populated by reads, private ones by writes (populate_vma_page_range).
      try {
        for (let v = startVpn; v < startVpn + npages; v += HUGETLB_NR) this.translate(v, !shared);
      } catch (e) {
        if ((e as { code?: string }).code !== SIGBUS) throw e;
      }
    }
    return vma.start;
  }

  /** munmap(addr, len): addr must be page aligned; partial unmaps split areas. */
  munmap(addr: number, len: number): void {
    this.alive();
    if (!Number.isInteger(len) || len <= 0)
      throw kernelError(EINVAL, `munmap length ${show(len)} must be a positive integer`);
    if (len > USER_PAGES * PAGE_SIZE)
      throw kernelError(EINVAL, `munmap length ${len} is larger than the 256GiB user address space`);
    const vpn = typeof addr === 'number' ? addrToVpn(addr) : -1;
    if (vpn < 0 || addr % PAGE_SIZE !== 0)
      throw kernelError(EINVAL, `munmap address ${hex(addr)} is not a page-aligned user address`);
    // The kernel's do_vmi_munmap: a range that leaves the user address space is EINVAL.
    if (vpn + Math.ceil(len / PAGE_SIZE) > USER_PAGES)
      throw kernelError(EINVAL, `munmap range ${hex(addr)} + ${len} leaves the 256GiB user address space`);
    const end = vpn + Math.ceil(len / PAGE_SIZE);
    // Only the VMAs the range touches (a VMA iterator over the tree), not every VMA.
    const hit = this.mm.vmasIn(vpn, end);
    const first = hit[0];
    // __split_vma: unmapping the inside of one area adds an area; refused at vm.max_map_count.
    if (first && vpn > first.startVpn && end < first.endVpn && this.mm.vmas.size >= this.k.vm.max_map_count)
      throw kernelError(
        ENOMEM,
        `munmap would split an area past vm.max_map_count (${this.k.vm.max_map_count} areas)`,
      );
    // hugetlb_vm_op_split: a hugetlb area splits only at a huge page boundary.
    for (const vma of hit) if (vma.hugetlb) hugetlbCheckSplit(vma, vpn, end);
    for (const vma of hit) {
      const lo = Math.max(vpn, vma.startVpn);
      const hi = Math.min(end, vma.endVpn);
      if (vma.hugetlb) unmapHugetlbArea(this.k, vma, lo, hi);
      else zapRange(this.k, this.mm, lo, hi - lo);
      this.trimVma(vma, lo, hi);
    }
  }

  private trimVma(vma: Vma, lo: number, hi: number): void {
    const mm = this.mm;
    if (lo === vma.startVpn && hi === vma.endVpn) {
      mm.remove(vma);
      releaseUnlinkedOwners(this.k, vma);
      return;
    }
    if (lo === vma.startVpn) {
      mm.resize(vma, hi, vma.endVpn - hi, vma.index(hi));
      return;
    }
    if (hi === vma.endVpn) {
      mm.resize(vma, vma.startVpn, lo - vma.startVpn, vma.pgoff);
      return;
    }
    mm.splitVma(vma, hi);
    mm.resize(vma, vma.startVpn, lo - vma.startVpn, vma.pgoff);
  }

  /** Translates page `vpn` for an access, faulting as needed; returns the pfn (or ZERO_PFN). */
  protected translate(vpn: number, write: boolean): number {
    const pt = this.mm.pt;
    for (let attempt = 0; attempt < 3; attempt++) {
      const pmd = pt.pmd[vpn >>> 9]!;
      if (pmd & PMD_HUGE && pmd & PTE_PRESENT && (!write || pmd & PTE_WRITE)) {
        const want = PTE_ACCESSED | (write ? PTE_DIRTY : 0);
        if ((pmd & want) !== want) Atomics.or(pt.pmd, vpn >>> 9, want);
        const pfn = pmd >>> PTE_PFN_SHIFT;
        return pfn === ZERO_PFN ? ZERO_PFN : pfn + (vpn & 511);
      }
      if (pmd & PMD_TABLE) {
        const idx = pt.pteIndex(vpn);
        const e = pt.pte[idx]!;
        if (e & PTE_PRESENT && (!write || e & PTE_WRITE)) {
          const want = PTE_ACCESSED | (write ? PTE_DIRTY : 0);
          if ((e & want) !== want) Atomics.or(pt.pte, idx, want);
          return e >>> PTE_PFN_SHIFT;
        }
      }
      const vma = this.mm.findVma(vpn);
      if (!vma) segv(vpnToAddr(vpn), 'no mapping');
      handleMmFault(this.k, this.mm, vma, vpn, write, this.node);
    }
    throw new Error(`fault at page ${vpn} did not resolve`);
  }

  /**
   * The checks of an access to [addr, addr + n): a length, an address in the user address space,
   * and (before any page is touched, so a bad range has no partial effect) a mapping under every
   * page of it, else EFAULT. Returns the first page.
   */
  private checkRange(addr: number, n: number, what: string): number {
    this.working(what);
    if (!Number.isSafeInteger(n) || n < 0)
      throw kernelError(EINVAL, `${what} length ${show(n)} must be a non-negative integer`);
    const vpn = typeof addr === 'number' ? addrToVpn(addr) : -1;
    if (vpn < 0 || !Number.isSafeInteger(addr)) segv(addr, 'address outside the user address space');
    if (n === 0) return vpn;
    const last = addrToVpn(addr + n - 1);
    if (last < 0) segv(addr + n - 1, `${what} of ${n} bytes at ${hex(addr)} leaves the user address space`);
    for (let v = vpn; v <= last; ) {
      const vma = this.mm.findVma(v);
      if (!vma) segv(vpnToAddr(v), `${what} of ${n} bytes at ${hex(addr)}: no mapping`);
      v = vma.endVpn;
    }
    return vpn;
  }

  private needBytes(): void {
    if (!this.k.mem.backed) {
      throw new PagemigError(
        'ERR_NO_BACKING',
        "this machine was created with backing: 'none' and holds no bytes; use touch()",
      );
    }
  }

  /** Copies `bytes` into the process's memory at `addr` (write faults as needed). */
  write(addr: number, bytes: Uint8Array): void {
    this.working('write');
    // A Float64Array or a DataView would be cut to bytes silently: only byte views are data.
    if (!isBytes(bytes))
      throw kernelError(
        EINVAL,
        `write takes a Uint8Array (use new Uint8Array(view.buffer, view.byteOffset, view.byteLength) for other views), got ${bytes === null ? 'null' : ArrayBuffer.isView(bytes) ? (bytes as { constructor: { name: string } }).constructor.name : typeof bytes}`,
      );
    this.checkRange(addr, bytes.length, 'write');
    this.needBytes();
    let done = 0;
    while (done < bytes.length) {
      const a = addr + done;
      const off = a % PAGE_SIZE;
      const n = Math.min(PAGE_SIZE - off, bytes.length - done);
      const pfn = this.translate(addrToVpn(a), true);
      this.k.mem.view(pfn).set(bytes.subarray(done, done + n), off);
      done += n;
    }
  }

  /** Reads `n` bytes at `addr` (read faults map the zero page where nothing was written). */
  read(addr: number, n: number): Uint8Array {
    this.checkRange(addr, n, 'read');
    this.needBytes();
    let out: Uint8Array;
    try {
      out = new Uint8Array(n);
    } catch (e) {
      throw new PagemigError('ENOMEM', `ENOMEM: read of ${n} bytes: the host cannot allocate the buffer`, {
        errno: ENOMEM,
        cause: e,
      });
    }
    let done = 0;
    while (done < n) {
      const a = addr + done;
      const off = a % PAGE_SIZE;
      const len = Math.min(PAGE_SIZE - off, n - done);
      const pfn = this.translate(addrToVpn(a), false);
      if (pfn !== ZERO_PFN) out.set(this.k.mem.view(pfn).subarray(off, off + len), done);
      done += len;
    }
    return out;
  }

  /** Touches every page of [addr, addr + n) with a read or a write access (no data changes). */
  touch(addr: number, n: number, kind: 'read' | 'write' = 'write'): void {
    const first = this.checkRange(addr, n, 'touch');
    if (kind !== 'read' && kind !== 'write')
      throw kernelError(EINVAL, `touch kind ${show(kind)} is not 'read' or 'write'`);
    if (n === 0) return;
    const last = addrToVpn(addr + n - 1);
    for (let v = first; v <= last; v++) this.translate(v, kind === 'write');
  }

  /**
   * move_pages(2) issued by this process: `pid` 0 is itself. With `nodes` null it only reports
   * where each page is. `status`, if given, is written in place like the user buffer; entries
   * the kernel does not write keep their value (default -123, numactl's "impossible value").
   */
  async movePages(
    pid: number,
    addrs: readonly number[],
    nodes: readonly number[] | null,
    flags: number,
    status?: number[],
  ): Promise<MovePagesResult> {
    this.working('movePages');
    return this.k.trace.during(this, () => movePages(this.k, this, pid, addrs, nodes, flags, status));
  }

  /** migrate_pages(2) issued by this process; node masks as lists of node ids. */
  async migratePages(
    pid: number,
    oldNodes: readonly number[],
    newNodes: readonly number[],
  ): Promise<SyscallResult> {
    this.working('migratePages');
    return this.k.trace.during(this, () => kernelMigratePages(this.k, this, pid, oldNodes, newNodes));
  }

  /**
   * mbind(2) issued by this process: gives [addr, addr + len) the policy `mode` (MPOL_*, with
   * MPOL_F_* mode flags OR-ed in) over `nodes` (node ids; null or [] for none); `flags`
   * MPOL_MF_STRICT, MPOL_MF_MOVE, MPOL_MF_MOVE_ALL. Pages that do not follow the policy migrate
   * (reason mempolicy_mbind) with a MOVE flag. Resolves to `{ ret: 0 }` or `{ ret: -1, errno }`.
   */
  async mbind(
    addr: number,
    len: number,
    mode: number,
    nodes: readonly number[] | null,
    flags = 0,
  ): Promise<SyscallResult> {
    this.working('mbind');
    return this.k.trace.during(this, () => kernelMbind(this.k, this, addr, len, mode, nodes, flags));
  }

  /**
   * set_mempolicy(2): the policy of this process's own allocations (areas without one of their
   * own). `modeFlags` (MPOL_F_STATIC_NODES, MPOL_F_RELATIVE_NODES, MPOL_F_NUMA_BALANCING) is the
   * same as OR-ing them into `mode`. Returns `{ ret: 0 }` or `{ ret: -1, errno }`.
   */
  setMempolicy(mode: number, nodes: readonly number[] | null, modeFlags = 0): SyscallResult {
    this.working('setMempolicy');
    if (!Number.isInteger(modeFlags) || modeFlags & ~MPOL_MODE_FLAGS) return { ret: -1, errno: EINVAL };
    return kernelSetMempolicy(this.k, this, Number.isInteger(mode) ? mode | modeFlags : mode, nodes);
  }

  /**
   * get_mempolicy(2): the task's policy, or with MPOL_F_ADDR the policy of the area holding `addr`
   * (MPOL_DEFAULT if it has none); MPOL_F_NODE|MPOL_F_ADDR gives the node of the page at `addr`
   * in `mode` (faulting it in), MPOL_F_MEMS_ALLOWED the cpuset's nodes in `nodes`.
   */
  getMempolicy(opts: { addr?: number; flags?: number } = {}): GetMempolicyResult {
    this.working('getMempolicy');
    return kernelGetMempolicy(this.k, this, opts);
  }

  /** The backing of `addr` without faulting, or null when nothing is mapped there. */
  pageInfo(addr: number): PageInfo | null {
    // An address outside the user window has nothing mapped; one that is no integer is a bug.
    if (!Number.isSafeInteger(addr))
      throw kernelError(EINVAL, `pageInfo: address ${show(addr)} is not an integer`);
    const vpn = addrToVpn(addr);
    if (vpn < 0) return null;
    const e = pageEntry(this.mm.pt, vpn);
    if (!pteIsPresent(e)) return null;
    const huge = (e & PMD_HUGE) !== 0;
    const pfn = entryPfn(e, vpn);
    const zero = pfn === ZERO_PFN;
    const head = zero ? ZERO_PFN : this.k.pages.head(pfn);
    return {
      pfn,
      node: zero ? -1 : this.k.nodeOf(pfn),
      order: zero ? (huge ? HPAGE_PMD_ORDER : 0) : this.k.folioOrder(head),
      headPfn: head,
      zeroPage: zero,
      huge,
      writable: (e & PTE_WRITE) !== 0,
      dirty: (e & PTE_DIRTY) !== 0,
      accessed: (e & PTE_ACCESSED) !== 0,
      protnone: pteIsProtnone(e),
    };
  }

  /** The VMAs as [start, end) byte ranges with their settings (like /proc/pid/maps). */
  maps(): {
    start: number;
    end: number;
    shared: boolean;
    order: number;
    locked: boolean;
    policy: Mempolicy;
    /** MAP_HUGETLB: backed by the hugetlb pool. */
    hugetlb: boolean;
  }[] {
    return [...this.mm.vmas].map((v) => ({
      start: v.start,
      end: v.end,
      shared: v.shared,
      order: v.order,
      locked: v.locked,
      policy: mempolicyView(v.policy),
      hugetlb: v.hugetlb !== null,
    }));
  }

  /**
   * fork(): a child with the same identity; shared mappings stay shared, private ones COW. Pages
   * under migration are copied as migration entries (the child maps the folio when the migration
   * ends). EAGAIN beyond kernel.threads-max or kernel.pid_max, ENOMEM when the host cannot give the
   * child's page tables; a fork that fails leaves no child.
   */
  fork(): Process {
    this.working('fork');
    const pid = this.k.allocPid('fork');
    let child: Process;
    try {
      child = new Process(this.k, pid, {
        uid: this.uid,
        gid: this.gid,
        capabilities: [...this.capabilities],
        memsAllowed: [...this.memsAllowed],
        node: this.node,
        comm: this.comm,
      });
    } catch (e) {
      // copy_process: an mm the host cannot allocate is ENOMEM (EAGAIN is for task limits).
      throw hostNoMem(e, `fork: the child's page tables (${PT_HOST_RESERVATION})`);
    }
    // copy_process: the child inherits the task policy (mpol_dup).
    child.mempolicy = this.mempolicy;
    const made: Vma[] = [];
    try {
      // dup_mmap: the child's VMA tree is copied in one pass (mlock is not inherited: VM_LOCKED is
      // cleared in the child); then the private areas' page tables are shared copy-on-write.
      // anon_vma_fork: a private anonymous area of the child is linked into its parent's owners,
      // whose folios it inherits, and gets its own for its new folios (anonVmaPrepare, at the
      // first one).
      this.mm.dupVmas(child.mm, (vma) => {
        const cv = new Vma(
          child.mm,
          vma.startVpn,
          vma.npages,
          vma.shared,
          vma.order,
          vma.policy,
          false,
          vma.migratable,
          vma.mapping,
          vma.pgoff,
          vma.owners,
        );
        cv.ownPending = !vma.shared && !vma.hugetlb;
        cv.hugetlb = hugetlbDupVmaPrivate(vma);
        made.push(cv);
        return cv;
      });
      for (const vma of this.mm.vmas) if (!vma.shared) copyPageRange(this.k, child.mm, this.mm, vma);
    } catch (e) {
      // copy_process's bad_fork_cleanup_mm: the half-built child goes, with what it mapped, and
      // its areas leave the rmap owners' trees (their own owners go with them); it was never
      // registered.
      for (const cv of made) {
        dropForkedRange(this.k, child.mm, cv);
        unlinkOwners(cv);
        releaseUnlinkedOwners(this.k, cv);
      }
      child.exited = true;
      throw hostNoMem(e, "fork: the child's page tables");
    }
    this.k.processes.set(child.pid, child);
    return child;
  }

  /**
   * Starts a user thread (a worker_thread) that reads and writes this process's memory through
   * the shared page tables with its own MMU and TLB: a built-in workload
   * (`{ workload: { kind: 'pattern', ... } }`) or a module function (`{ module, data }`).
   */
  spawnThread<T = unknown>(spec: ThreadSpec): UserThread<T> {
    this.working('spawnThread');
    this.threadGroup ??= new ThreadGroup(this.k, this);
    return this.threadGroup.spawn<T>(spec);
  }

  /** Starts `n` threads; `spec` may depend on the thread's index. */
  startThreads<T = unknown>(n: number, spec: ThreadSpec | ((i: number) => ThreadSpec)): UserThread<T>[] {
    if (!Number.isInteger(n) || n < 0)
      throw kernelError(EINVAL, `thread count ${n} must be a non-negative integer`);
    const out: UserThread<T>[] = [];
    for (let i = 0; i < n; i++) out.push(this.spawnThread<T>(typeof spec === 'function' ? spec(i) : spec));
    return out;
  }

  /** The live user threads. */
  get threads(): readonly UserThread[] {
    return this.threadGroup?.threads ?? [];
  }

  /** Asks every thread to stop and waits for them; returns each outcome (allSettled). */
  stopThreads(): Promise<PromiseSettledResult<unknown>[]> {
    return this.threadGroup ? this.threadGroup.stopAll() : Promise.resolve([]);
  }

  /** Kills every user thread (as exit() does) and resolves once their workers terminated. */
  killThreads(): Promise<void> {
    return this.threadGroup ? this.threadGroup.kill() : Promise.resolve();
  }

  /**
   * A page fault posted by a user thread running on `node`: 0 resolved, FAULT_RETRY (the page is
   * under migration: the thread waits on the migration entry), or a negative errno (-EFAULT: no
   * mapping; -ENOMEM).
   */
  serveFault(vpn: number, write: boolean, node = this.node): number {
    if (this.exited) return FAULT_KILLED;
    const vma = this.mm.findVma(vpn);
    if (!vma) return -EFAULT;
    try {
      handleMmFault(this.k, this.mm, vma, vpn, write, node);
      return 0;
    } catch (e) {
      if ((e as { code?: string }).code === SIGBUS) return FAULT_SIGBUS;
      const errno = (e as { errno?: number }).errno;
      if (errno === EBUSY) return FAULT_RETRY;
      return -(errno ?? EFAULT);
    }
  }

  /** exit(): kills the threads, unmaps everything; the pid is gone afterwards. */
  exit(): void {
    if (this.exited) return;
    this.threadGroup?.kill();
    // exit_mmap: one pass over the areas, no per-area lookup or split.
    for (const vma of [...this.mm.vmas]) {
      if (vma.hugetlb) unmapHugetlbArea(this.k, vma, vma.startVpn, vma.endVpn);
      else zapRange(this.k, this.mm, vma.startVpn, vma.npages);
      this.mm.remove(vma);
      releaseUnlinkedOwners(this.k, vma);
    }
    this.exited = true;
    this.k.processes.delete(this.pid);
  }
}

/** unlink_anon_vmas: each owner of `vma`'s chain that no area is linked into any more is released. */
function releaseUnlinkedOwners(k: Kernel, vma: Vma): void {
  for (const o of vma.owners) if (o.vmas.size === 0) releaseMapping(k, o);
}

/** Drops an rmap owner once nothing maps it: shmem's page cache lets go of its folios. */
function releaseMapping(k: Kernel, mapping: Vma['mapping']): void {
  if (hugetlbEvictMapping(k, mapping)) return;
  const pc = mapping.pageCache;
  if (pc) {
    // Each folio once, at its first cached page; the cache holds a reference per page.
    let next = 0;
    pc.forEach((pfn, index) => {
      if (index < next) return;
      const head = k.pages.head(pfn);
      const nr = 1 << k.folioOrder(head);
      next = index - (pfn - head) + nr;
      // filemap_remove_folio: the folio leaves the mapping (and NR_SHMEM). One under migration
      // outlives it, and the mapping's id may be reused before the migration ends.
      folioModStat(k, head, -1);
      k.pages.mapping[head] = 0;
      k.folioPut(head, nr);
    });
    pc.clear();
  }
  k.releaseMapping(mapping);
}
