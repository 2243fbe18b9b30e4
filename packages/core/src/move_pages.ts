import { CAP_SYS_NICE } from './capability.js';
import { EACCES, EBUSY, EFAULT, EINVAL, ENODEV, ENOENT, EPERM, type SyscallResult } from './errno.js';
import type { Kernel } from './kernel.js';
import { MPOL_MF_MOVE, MPOL_MF_MOVE_ALL } from './mempolicy.js';
import { isolateFolio, migratePages, putbackFolios } from './migrate.js';
import { MigrateMode, MigrateReason } from './migrate_mode.js';
import type { Mm } from './mm.js';
import { addrToVpn } from './mm.js';
import { MAX_NUMNODES } from './mmzone.js';
import { N_MEMORY, nodeState } from './nodemask.js';
import { PG_isolated } from './page.js';
import { pteIsPresent, ZERO_PFN } from './pagetable.js';
import { entryPfn, pageEntry } from './pagewalk.js';
import type { Process } from './process.js';
import { findTarget } from './ptrace.js';
import { folioMaybeMappedShared } from './rmap.js';

export interface MovePagesResult extends SyscallResult {
  /** Per-page status: a node id, or a negative errno. Entries the kernel does not write keep their input value. */
  status: number[];
}

const fail = (errno: number): SyscallResult => ({ ret: -1, errno });

/** Whether the VMA of the last followPage() may migrate (a module variable: no object per page). */
let followVmaOk = false;

/**
 * get_user of a pointer: its virtual page, or -1 when it points nowhere (anything but a number,
 * like a BigInt or a string, does). Called where the address is read, so the address (a double)
 * is never boxed to pass it on.
 */
function userVpn(addr: unknown): number {
  return typeof addr === 'number' ? addrToVpn(addr) : -1;
}

/** The present page mapping virtual page `vpn`: its pfn, ZERO_PFN, or -1 (no page); -2 if no VMA. */
function followPage(mm: Mm, vpn: number): number {
  const vma = vpn >= 0 ? mm.findVma(vpn) : undefined;
  followVmaOk = vma?.migratable ?? false;
  if (!vma) return -2;
  const e = pageEntry(mm.pt, vpn);
  // follow_page/folio_walk: a PROT_NONE (NUMA hinting) entry maps its page like a present one.
  if (!pteIsPresent(e)) return -1;
  return entryPfn(e, vpn);
}

/**
 * The folios isolated for the next migration (do_pages_move's pagelist), in a typed array: a JS
 * array of tens of thousands of entries costs tens of nanoseconds per push (each growth of a
 * large array is a new large object), a typed array one store.
 */
class PageList {
  private readonly heads: Int32Array;
  private count = 0;
  constructor(capacity: number) {
    this.heads = new Int32Array(capacity);
  }
  get length(): number {
    return this.count;
  }
  push(head: number): void {
    this.heads[this.count++] = head;
  }
  /** Empties the list and returns what it held (a view, valid until the next push). */
  take(): Int32Array {
    const list = this.heads.subarray(0, this.count);
    this.count = 0;
    return list;
  }
}

/** Migrates the queued folios to `node` (do_move_pages_to_node: MIGRATE_SYNC, MR_SYSCALL). */
async function moveToNode(k: Kernel, queued: PageList, node: number): Promise<number> {
  if (!queued.length) return 0;
  // The engine owns them from here on (it moves or puts back every one): none is left for
  // movePages' cleanup. Nothing is queued while it runs.
  const heads = queued.take();
  return (
    await migratePages(k, heads, {
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
  // At most one folio per address, and each folio once (it stays isolated).
  const queued = new PageList(Array.isArray(addrs) ? Math.min(addrs.length, k.nrPages) : 0);
  try {
    return await doPagesMove(k, caller, pid, addrs, nodes, flags, statusIn, queued);
  } finally {
    // Folios isolated for a batch that never reached the engine (a throw between the isolation
    // and the flush) go back to the LRU.
    putbackFolios(k, queued.take());
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
  queued: PageList,
): Promise<MovePagesResult> {
  const status = statusIn ?? new Array<number>(Array.isArray(addrs) ? addrs.length : 0).fill(-123);
  const done = (r: SyscallResult): MovePagesResult => ({ ...r, status });
  if (!Number.isInteger(flags) || flags & ~(MPOL_MF_MOVE | MPOL_MF_MOVE_ALL)) return done(fail(EINVAL));
  if (flags & MPOL_MF_MOVE_ALL && !caller.capable(CAP_SYS_NICE)) return done(fail(EPERM));
  const target = findTarget(k, caller, pid);
  if (typeof target === 'number') return done(fail(target));
  if (!Array.isArray(addrs) || !(status?.length >= addrs.length)) return done(fail(EFAULT));
  const nr = addrs.length;
  const mm = target.mm;

  if (nodes === null) {
    // do_pages_stat: no VMA or zero page → -EFAULT, nothing present → -ENOENT, else the node.
    for (let i = 0; i < nr; i++) {
      const pfn = followPage(mm, userVpn(addrs[i]));
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

  const moveAll = (flags & MPOL_MF_MOVE_ALL) !== 0;
  let err = 0;
  let i = 0;
  for (; i < nr; i++) {
    if (current !== -1) {
      i = queuePages(k, target, mm, addrs, nodes, i, current, moveAll, queued);
      if (i === nr) break;
    }
    const node = nodes[i]!;
    err = nodeError(k, target, node);
    if (err) break;
    if (current === -1) {
      current = node;
      start = i;
    } else if (node !== current) {
      err = await flush(current, i);
      if (err) return result(err);
      start = i;
      current = node;
    }
    const r = addFolioForMigration(k, mm, userVpn(addrs[i]), current, moveAll, queued);
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

/**
 * do_pages_move's check of a target node: a node out of range or without memory
 * (!node_state(node, N_MEMORY)) is -ENODEV (the call ends after the queued batch moves; its status
 * entry is not written), one outside the target's cpuset -EACCES; 0 when it may be used.
 */
function nodeError(k: Kernel, target: Process, node: number): number {
  if (
    !Number.isInteger(node) ||
    node < 0 ||
    node >= MAX_NUMNODES ||
    node >= k.nodes.length ||
    !nodeState(k.nodes[node]!, N_MEMORY)
  )
    return -ENODEV;
  return target.memsAllowed.includes(node) ? 0 : -EACCES;
}

/**
 * do_pages_move's common case, in a synchronous loop of its own: from page `i` on, the pages bound
 * for `current` that add_folio_for_migration queues. Returns the first page that needs more (an
 * await, an error, another node) or the end. The page it stops at is left as it was (checking a
 * node or adding a page that does not queue changes nothing), and the caller takes it from there.
 * (A long loop in the async caller would be compiled on stack replacement and deoptimized at its
 * exit on every call.)
 */
function queuePages(
  k: Kernel,
  target: Process,
  mm: Mm,
  addrs: readonly number[],
  nodes: readonly number[],
  i: number,
  current: number,
  moveAll: boolean,
  queued: PageList,
): number {
  for (; i < addrs.length; i++) {
    const node = nodes[i]!;
    if (node !== current || nodeError(k, target, node)) return i;
    if (addFolioForMigration(k, mm, userVpn(addrs[i]), current, moveAll, queued) <= 0) return i;
  }
  return i;
}

/** add_folio_for_migration: 1 queued, 0 already on the node, else a negative errno. */
function addFolioForMigration(
  k: Kernel,
  mm: Mm,
  vpn: number,
  node: number,
  moveAll: boolean,
  queued: PageList,
): number {
  const pfn = followPage(mm, vpn);
  if (pfn === -2 || !followVmaOk) return -EFAULT;
  if (pfn === -1) return -ENOENT;
  if (pfn === ZERO_PFN) return -EFAULT;
  const head = k.pages.head(pfn);
  if (k.nodeOf(head) === node) return 0;
  if (!moveAll && folioMaybeMappedShared(k, head)) return -EACCES;
  if (k.pages.flags[head]! & PG_isolated) return -EBUSY;
  if (!isolateFolio(k, head)) return -EBUSY;
  queued.push(head);
  return 1;
}
