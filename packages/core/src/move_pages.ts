import { EACCES, EBUSY, EFAULT, EINVAL, ENODEV, ENOENT, EPERM, ESRCH } from './errno.js';
import type { Kernel } from './kernel.js';
import { emitPhases, isolateFolios, MigrationRun, runResult, threadCpuSeconds } from './migrate.js';
import { MigrateMode, MigrateReason } from './migrate_mode.js';
import type { Mm } from './mm.js';
import { addrToVpn } from './mm.js';
import { PG_isolated } from './page.js';
import { PMD_HUGE, PMD_TABLE, PTE_PFN_SHIFT, PTE_PRESENT, ZERO_PFN } from './pagetable.js';
import type { Process } from './process.js';
import { rmapWalk } from './rmap.js';

/** include/uapi/linux/mempolicy.h */
export const MPOL_MF_STRICT = 1 << 0;
export const MPOL_MF_MOVE = 1 << 1;
export const MPOL_MF_MOVE_ALL = 1 << 2;
export const MPOL_MF_LAZY = 1 << 3;
/** MAX_NUMNODES with CONFIG_NODES_SHIFT=10. */
export const MAX_NUMNODES = 1024;

export interface SyscallResult {
  /** The syscall's return value: -1 on error (see errno), else 0 or the count not migrated. */
  ret: number;
  errno?: number;
}

export interface MovePagesResult extends SyscallResult {
  /** Per-page status: a node id, or a negative errno. Entries the kernel does not write keep their input value. */
  status: number[];
}

const fail = (errno: number): SyscallResult => ({ ret: -1, errno });

/** The present page mapping `addr`: its pfn, ZERO_PFN, or -1 (no page); -2 if no VMA. */
function followPage(mm: Mm, addr: number): { pfn: number; vmaOk: boolean } {
  const vpn = addrToVpn(addr);
  const vma = vpn >= 0 ? mm.findVma(vpn) : undefined;
  if (!vma) return { pfn: -2, vmaOk: false };
  const pt = mm.pt;
  const pmd = pt.pmd[vpn >>> 9]!;
  let e = 0;
  let off = 0;
  if (pmd & PMD_HUGE) {
    e = pmd;
    off = vpn & 511;
  } else if (pmd & PMD_TABLE) e = pt.pte[pt.pteIndex(vpn)]!;
  if (!(e & PTE_PRESENT)) return { pfn: -1, vmaOk: vma.migratable };
  const base = e >>> PTE_PFN_SHIFT;
  return { pfn: base === ZERO_PFN ? ZERO_PFN : base + off, vmaOk: vma.migratable };
}

/** folio_maybe_mapped_shared: mapped by more than one address space. */
export function folioMaybeMappedShared(k: Kernel, head: number): boolean {
  const p = k.pages;
  if (p.mapcount[head]! <= 1) return false;
  const mapping = k.mappingOf(head);
  if (!mapping) return false;
  let first: Mm | null = null;
  let shared = false;
  rmapWalk(mapping, p.index[head]!, head, 1 << k.folioOrder(head), (hit) => {
    if (first === null) first = hit.mm;
    else if (hit.mm !== first) shared = true;
  });
  return shared;
}

/** find_mm_struct: pid 0 is the caller; another pid needs CAP_SYS_NICE or the same uid. */
export function findTarget(k: Kernel, caller: Process, pid: number): Process | number {
  const target = pid === 0 ? caller : k.processes.get(pid);
  if (!target || target.exited || !Number.isInteger(pid) || pid < 0) return ESRCH;
  if (target !== caller && !caller.privileged && caller.uid !== target.uid) return EPERM;
  return target;
}

/** Migrates the queued folios to `node` (do_move_pages_to_node: MIGRATE_SYNC, MR_SYSCALL). */
async function moveToNode(k: Kernel, heads: number[], node: number): Promise<number> {
  if (!heads.length) return 0;
  const t0 = performance.now();
  const c0 = threadCpuSeconds();
  const run = new MigrationRun(k, k.offload, node, MigrateMode.MIGRATE_SYNC, MigrateReason.MR_SYSCALL, {
    demoteOrigin: 'kswapd',
    copyTimeoutMs: 10_000,
  });
  const ret = await run.migratePages(heads);
  emitPhases(k, runResult(run, ret, 0, t0, c0));
  heads.length = 0;
  return ret;
}

/**
 * move_pages(2) (kernel_move_pages): flags, then MOVE_ALL privilege, then pid; nodes null is a
 * query; otherwise consecutive entries with the same target node are batched, an immediate result
 * flushes the batch, an invalid node fails the call after flushing what was queued, and a
 * positive return counts pages not migrated plus those never attempted.
 */
export async function movePages(
  k: Kernel,
  caller: Process,
  pid: number,
  addrs: readonly number[],
  nodes: readonly number[] | null,
  flags: number,
  statusIn?: number[],
): Promise<MovePagesResult> {
  const status = statusIn ?? new Array<number>(Array.isArray(addrs) ? addrs.length : 0).fill(-123);
  const done = (r: SyscallResult): MovePagesResult => ({ ...r, status });
  if (!Number.isInteger(flags) || flags & ~(MPOL_MF_MOVE | MPOL_MF_MOVE_ALL)) return done(fail(EINVAL));
  if (flags & MPOL_MF_MOVE_ALL && !caller.privileged) return done(fail(EPERM));
  const target = findTarget(k, caller, pid);
  if (typeof target === 'number') return done(fail(target));
  if (!Array.isArray(addrs) || status.length < addrs.length) return done(fail(EFAULT));
  const nr = addrs.length;
  const mm = target.mm;

  if (nodes === null) {
    // do_pages_stat: no VMA or zero page → -EFAULT, nothing present → -ENOENT, else the node.
    for (let i = 0; i < nr; i++) {
      const { pfn } = followPage(mm, addrs[i]!);
      status[i] = pfn === -2 || pfn === ZERO_PFN ? -EFAULT : pfn === -1 ? -ENOENT : k.nodeOf(pfn);
    }
    return done({ ret: 0 });
  }
  if (!Array.isArray(nodes) || nodes.length < nr) return done(fail(EFAULT));

  const queued: number[] = [];
  let current = -1;
  let start = 0;
  // move_pages_and_store_status
  const flush = async (node: number, i: number): Promise<number> => {
    if (!queued.length) return 0;
    const err = await moveToNode(k, queued, node);
    if (err) return err > 0 ? err + nr - i : err;
    for (let j = start; j < i; j++) status[j] = node;
    return 0;
  };
  const result = (err: number): MovePagesResult => done(err < 0 ? fail(-err) : { ret: err });

  let err = 0;
  let i = 0;
  for (; i < nr; i++) {
    const node = nodes[i]!;
    if (!Number.isInteger(node) || node < 0 || node >= MAX_NUMNODES || node >= k.nodes.length) {
      err = -ENODEV;
      break;
    }
    if (!target.memsAllowed.includes(node)) {
      err = -EACCES;
      break;
    }
    if (current === -1) {
      current = node;
      start = i;
    } else if (node !== current) {
      err = await flush(current, i);
      if (err) return result(err);
      start = i;
      current = node;
    }
    const r = addFolioForMigration(k, mm, addrs[i]!, current, (flags & MPOL_MF_MOVE_ALL) !== 0, queued);
    if (r > 0) continue;
    status[i] = r === 0 ? current : r;
    err = await flush(current, i);
    if (err) {
      // Page i has been accounted for.
      return result(err > 0 ? err - 1 : err);
    }
    current = -1;
  }
  const err1 = await flush(current, i);
  if (err >= 0) err = err1;
  return result(err);
}

/** add_folio_for_migration: 1 queued, 0 already on the node, else a negative errno. */
function addFolioForMigration(
  k: Kernel,
  mm: Mm,
  addr: number,
  node: number,
  moveAll: boolean,
  queued: number[],
): number {
  const { pfn, vmaOk } = followPage(mm, addr);
  if (pfn === -2 || !vmaOk) return -EFAULT;
  if (pfn === -1) return -ENOENT;
  if (pfn === ZERO_PFN) return -EFAULT;
  const head = k.pages.head(pfn);
  if (k.nodeOf(head) === node) return 0;
  if (!moveAll && folioMaybeMappedShared(k, head)) return -EACCES;
  if (k.pages.flags[head]! & PG_isolated) return -EBUSY;
  const { heads } = isolateFolios(k, [head]);
  if (!heads.length) return -EBUSY;
  queued.push(head);
  return 1;
}
