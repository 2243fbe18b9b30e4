import { EACCES, EBUSY, EFAULT, EINVAL, ENODEV, ENOENT, EPERM, type SyscallResult } from './errno.js';
import type { Kernel } from './kernel.js';
import { MPOL_MF_MOVE, MPOL_MF_MOVE_ALL } from './mempolicy.js';
import { isolateFolios, migratePages, putbackFolios } from './migrate.js';
import { MigrateMode, MigrateReason } from './migrate_mode.js';
import type { Mm } from './mm.js';
import { addrToVpn } from './mm.js';
import { MAX_NUMNODES } from './mmzone.js';
import { PG_isolated } from './page.js';
import { PTE_PRESENT, ZERO_PFN } from './pagetable.js';
import { entryPfn, pageEntry } from './pagewalk.js';
import type { Process } from './process.js';
import { findTarget } from './ptrace.js';
import { folioMaybeMappedShared } from './rmap.js';

export interface MovePagesResult extends SyscallResult {
  /** Per-page status: a node id, or a negative errno. Entries the kernel does not write keep their input value. */
  status: number[];
}

const fail = (errno: number): SyscallResult => ({ ret: -1, errno });

/** The present page mapping `addr`: its pfn, ZERO_PFN, or -1 (no page); -2 if no VMA. */
function followPage(mm: Mm, addr: number): { pfn: number; vmaOk: boolean } {
  // get_user of a pointer: anything but a number (a BigInt, a string) points nowhere.
  const vpn = typeof addr === 'number' ? addrToVpn(addr) : -1;
  const vma = vpn >= 0 ? mm.findVma(vpn) : undefined;
  if (!vma) return { pfn: -2, vmaOk: false };
  const e = pageEntry(mm.pt, vpn);
  if (!(e & PTE_PRESENT)) return { pfn: -1, vmaOk: vma.migratable };
  return { pfn: entryPfn(e, vpn), vmaOk: vma.migratable };
}

/** Migrates the queued folios to `node` (do_move_pages_to_node: MIGRATE_SYNC, MR_SYSCALL). */
async function moveToNode(k: Kernel, heads: number[], node: number): Promise<number> {
  if (!heads.length) return 0;
  const queued = heads.splice(0);
  return (
    await migratePages(k, queued, {
      node,
      mode: MigrateMode.MIGRATE_SYNC,
      reason: MigrateReason.MR_SYSCALL,
    })
  ).ret;
}

/**
 * store_status: put_user of `n` status words from `start`; -EFAULT when the buffer refuses the
 * write (a frozen or read-only array, a primitive), as a status pointer the kernel cannot write.
 */
function storeStatus(status: number[], start: number, value: number, n: number): number {
  try {
    for (let j = start; j < start + n; j++) status[j] = value;
    return 0;
  } catch {
    return -EFAULT;
  }
}

/**
 * move_pages(2) (kernel_move_pages): flags, then MOVE_ALL privilege, then pid; nodes null is a
 * query; otherwise consecutive entries with the same target node are batched, an immediate result
 * flushes the batch, an invalid node fails the call after flushing what was queued, and a
 * positive return counts pages not migrated plus those never attempted. A status buffer that
 * cannot be written fails the call with EFAULT after the queued pages were migrated (out_flush),
 * and whatever throws, no folio stays isolated.
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
  const queued: number[] = [];
  try {
    return await doPagesMove(k, caller, pid, addrs, nodes, flags, statusIn, queued);
  } finally {
    // Folios isolated for a batch that never reached the engine (a throw between the isolation
    // and the flush) go back to the LRU.
    putbackFolios(k, queued.splice(0));
  }
}

async function doPagesMove(
  k: Kernel,
  caller: Process,
  pid: number,
  addrs: readonly number[],
  nodes: readonly number[] | null,
  flags: number,
  statusIn: number[] | undefined,
  queued: number[],
): Promise<MovePagesResult> {
  const status = statusIn ?? new Array<number>(Array.isArray(addrs) ? addrs.length : 0).fill(-123);
  const done = (r: SyscallResult): MovePagesResult => ({ ...r, status });
  if (!Number.isInteger(flags) || flags & ~(MPOL_MF_MOVE | MPOL_MF_MOVE_ALL)) return done(fail(EINVAL));
  if (flags & MPOL_MF_MOVE_ALL && !caller.privileged) return done(fail(EPERM));
  const target = findTarget(k, caller, pid);
  if (typeof target === 'number') return done(fail(target));
  if (!Array.isArray(addrs) || !(status?.length >= addrs.length)) return done(fail(EFAULT));
  const nr = addrs.length;
  const mm = target.mm;

  if (nodes === null) {
    // do_pages_stat: no VMA or zero page → -EFAULT, nothing present → -ENOENT, else the node.
    for (let i = 0; i < nr; i++) {
      const { pfn } = followPage(mm, addrs[i]!);
      const st = pfn === -2 || pfn === ZERO_PFN ? -EFAULT : pfn === -1 ? -ENOENT : k.nodeOf(pfn);
      if (storeStatus(status, i, st, 1)) return done(fail(EFAULT));
    }
    return done({ ret: 0 });
  }
  if (!Array.isArray(nodes) || nodes.length < nr) return done(fail(EFAULT));

  let current = -1;
  let start = 0;
  // move_pages_and_store_status
  const flush = async (node: number, i: number): Promise<number> => {
    if (!queued.length) return 0;
    const err = await moveToNode(k, queued, node);
    if (err) return err > 0 ? err + nr - i : err;
    return storeStatus(status, start, node, i - start);
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
    err = storeStatus(status, i, r === 0 ? current : r, 1);
    // out_flush: the queued pages still move, then the call fails with EFAULT.
    if (err) break;
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
