import { EFAULT, EINVAL, EIO, ENOMEM, EPERM, type SyscallResult } from './errno.js';
import { splitHugePmdIfNeeded } from './huge_memory.js';
import { HUGETLB_NR } from './hugetlb.js';
import type { Kernel } from './kernel.js';
import { allocPagesMpol, getVmaPolicy, isShmem } from './mempolicy_alloc.js';
import { mpolSetSharedPolicy } from './mempolicy_shared.js';
import {
  getNodes,
  getTaskPolicy,
  MPOL_DEFAULT,
  MPOL_INTERLEAVE,
  MPOL_MF_INTERNAL,
  MPOL_MF_MOVE,
  MPOL_MF_MOVE_ALL,
  MPOL_MF_STRICT,
  MPOL_MF_VALID,
  MPOL_WEIGHTED_INTERLEAVE,
  type Mpol,
  mpolEqual,
  mpolNew,
  mpolSetNodemask,
  sanitizeMpolFlags,
} from './mempolicy_struct.js';
import { isolateFolio, migratePages, putbackFolios } from './migrate.js';
import { MigrateMode, MigrateReason } from './migrate_mode.js';
import type { Mm, Vma } from './mm.js';
import { PAGE_SIZE } from './mmzone.js';
import { PG_head } from './page.js';
import { PTE_PFN_SHIFT, pteIsMigration, pteIsPresent, USER_BASE, USER_PAGES, ZERO_PFN } from './pagetable.js';
import { type MmWalkOps, walkPageRange } from './pagewalk.js';
import type { Process } from './process.js';
import { folioMaybeMappedShared } from './rmap.js';

/**
 * mbind(2) (mm/mempolicy.c kernel_mbind, do_mbind): gives a range of the caller's address space a
 * policy, splitting and merging its areas (mbind_range, vma_modify_policy), and with
 * MPOL_MF_MOVE[_ALL] migrates the pages that do not follow it (queue_pages_range, then
 * migrate_pages() with reason mempolicy_mbind and alloc_migration_target_by_mpol).
 */

/** Internal flags of queue_pages_range. */
const MPOL_MF_DISCONTIG_OK = MPOL_MF_INTERNAL << 0;
const MPOL_MF_INVERT = MPOL_MF_INTERNAL << 1;

const fail = (errno: number): SyscallResult => ({ ret: -1, errno });

/** STRICT without MOVE flags: do_mbind fails at the first misplaced page. */
const strictlyUnmovable = (flags: number) =>
  (flags & (MPOL_MF_STRICT | MPOL_MF_MOVE | MPOL_MF_MOVE_ALL)) === MPOL_MF_STRICT;

// queue_pages' state (struct queue_pages): module level, so the walk's ops allocate nothing.
let qk: Kernel;
let qFlags = 0;
let qNmask: readonly number[] = [];
let qVma: Vma;
let qLarge = -1;
let qFailed = 0;
let qList: number[] = [];

/** queue_folio_required: with MPOL_MF_INVERT, a folio on a node outside the mask. */
function required(head: number): boolean {
  return qNmask.includes(qk.nodeOf(head)) !== ((qFlags & MPOL_MF_INVERT) !== 0);
}

/** migrate_folio_add: a shared folio stays unless MOVE_ALL (not a failure); false if not isolated. */
function migrateFolioAdd(head: number): boolean {
  if (qFlags & MPOL_MF_MOVE_ALL || !folioMaybeMappedShared(qk, head)) {
    if (!isolateFolio(qk, head)) return false;
    qList.push(head);
  }
  return true;
}

/** A misplaced folio of the walk: queued to move, else a failure. */
function queueFolio(head: number): void {
  if (!(qFlags & (MPOL_MF_MOVE | MPOL_MF_MOVE_ALL)) || !qVma.migratable || !migrateFolioAdd(head)) qFailed++;
}

const queueOps: MmWalkOps = {
  pmdEntry(_pt, _pmdIdx, entry) {
    // queue_folios_pmd: a PMD migration entry fails; the huge zero page is skipped.
    if (pteIsMigration(entry)) {
      qFailed++;
      return;
    }
    const pfn = entry >>> PTE_PFN_SHIFT;
    if (pfn !== ZERO_PFN && required(pfn)) queueFolio(pfn);
  },
  pteEntry(_pt, _slot, entry) {
    if (qFailed && strictlyUnmovable(qFlags)) return;
    // pte_present: a PROT_NONE (NUMA hinting) entry still maps its folio.
    if (!pteIsPresent(entry)) {
      if (pteIsMigration(entry)) qFailed++;
      return;
    }
    const pfn = entry >>> PTE_PFN_SHIFT;
    // vm_normal_folio leaves out the zero page.
    if (pfn === ZERO_PFN) return;
    const head = qk.pages.head(pfn);
    if (!required(head)) return;
    // A large folio mapped by consecutive PTEs is queued (or failed) once.
    if (qk.pages.flags[head]! & PG_head) {
      if (head === qLarge) return;
      qLarge = head;
    }
    queueFolio(head);
  },
};

interface Queued {
  /** 0, -EFAULT (a hole in the range) or -EIO (STRICT alone found a misplaced page). */
  err: number;
  /** Misplaced folios that could not be queued (a THP counting one). */
  nrFailed: number;
  heads: number[];
}

/**
 * queue_pages_range with queue_pages_test_walk: every area of [lo, hi) in order; a hole before,
 * between or after them is -EFAULT unless MPOL_MF_DISCONTIG_OK, a range with no area at all always
 * is. Areas are scanned only when pages are to be moved or checked (and non-migratable ones only
 * under MPOL_MF_STRICT).
 */
function queuePagesRange(
  k: Kernel,
  mm: Mm,
  lo: number,
  hi: number,
  nmask: readonly number[],
  flags: number,
): Queued {
  const vmas = lo < USER_PAGES && hi > 0 ? mm.vmasIn(Math.max(lo, 0), Math.min(hi, USER_PAGES)) : [];
  qk = k;
  qFlags = flags;
  qNmask = nmask;
  qLarge = -1;
  qFailed = 0;
  qList = [];
  const done = (err: number): Queued => {
    const heads = qList;
    qList = [];
    return { err, nrFailed: qFailed, heads };
  };
  for (let i = 0; i < vmas.length; i++) {
    const vma = vmas[i]!;
    const next = vmas[i + 1];
    if (!(flags & MPOL_MF_DISCONTIG_OK)) {
      // A hole at the head, in the middle or at the tail of the range.
      if (i === 0 && lo < vma.startVpn) return done(-EFAULT);
      if (vma.endVpn < hi && (!next || vma.endVpn < next.startVpn)) return done(-EFAULT);
    }
    if (!vma.migratable && !(flags & MPOL_MF_STRICT)) continue;
    if (!(flags & (MPOL_MF_STRICT | MPOL_MF_MOVE | MPOL_MF_MOVE_ALL))) continue;
    qVma = vma;
    walkPageRange(mm.pt, Math.max(lo, vma.startVpn), Math.min(hi, vma.endVpn), queueOps);
    if (qFailed && strictlyUnmovable(flags)) return done(-EIO);
  }
  return done(vmas.length ? 0 : -EFAULT);
}

/** The area before `vma` if it ends where `vma` starts. */
function prevAdjacent(mm: Mm, vma: Vma): Vma | undefined {
  const prev = vma.startVpn > 0 ? mm.findVma(vma.startVpn - 1) : undefined;
  return prev && prev.endVpn === vma.startVpn ? prev : undefined;
}

/**
 * The splits vma_modify_policy would make for mbind_range over `vmas` (a split is refused with
 * -ENOMEM once the address space has vm.max_map_count areas, a hugetlb area's off a huge page
 * boundary with -EINVAL; a merge needs no split). Checked before anything changes, so a refused
 * mbind leaves every area as it was.
 */
function checkSplits(
  k: Kernel,
  mm: Mm,
  vmas: readonly Vma[],
  lo: number,
  hi: number,
  pol: Mpol | null,
): number {
  let count = mm.vmas.size;
  for (let i = 0; i < vmas.length; i++) {
    const vma = vmas[i]!;
    if (mpolEqual(vma.policy, pol)) continue;
    // The area before has the new policy by now (unless it is outside the range).
    const prev = i > 0 ? vmas[i - 1]! : prevAdjacent(mm, vma);
    const prevPol = i > 0 ? pol : (prev?.policy ?? null);
    const next = i + 1 < vmas.length ? vmas[i + 1] : mm.findVma(vma.endVpn);
    const head = lo > vma.startVpn;
    const tail = hi < vma.endVpn;
    const mergeNext = !tail && !!next && mm.canMerge(vma, next, pol);
    const mergePrev = !head && !!prev && mm.canMerge(prev, vma, prevPol, pol);
    const at: number[] = [];
    if (head && (tail || !mergeNext)) at.push(lo);
    if (tail && (head || !mergePrev)) at.push(hi);
    if (!head && !tail) count -= (mergePrev ? 1 : 0) + (mergeNext ? 1 : 0);
    for (const vpn of at) {
      // split_vma, then __split_vma's may_split (hugetlb_vm_op_split: huge page boundaries only).
      if (count >= k.vm.max_map_count) return -ENOMEM;
      if (vma.hugetlb && vpn % HUGETLB_NR) return -EINVAL;
      count++;
    }
  }
  return 0;
}

/**
 * mbind_range for every area of [lo, hi): an area whose policy differs is cut to the range
 * (__split_vma), given the policy (vma_replace_policy; shmem's object gets it too), and joined with
 * a neighbour it now matches (vma_merge).
 */
function mbindRange(k: Kernel, mm: Mm, vmas: readonly Vma[], lo: number, hi: number, pol: Mpol | null): void {
  const gone = new Set<Vma>();
  for (const vma of vmas) {
    if (gone.has(vma) || mpolEqual(vma.policy, pol)) continue;
    let target = vma;
    // __split_vma -> vma_adjust_trans_huge: a huge PMD across a cut is split first, or one entry
    // would map pages of two areas.
    if (lo > target.startVpn) {
      splitHugePmdIfNeeded(k, mm, lo);
      target = mm.splitVma(target, lo);
    }
    if (hi < target.endVpn) {
      splitHugePmdIfNeeded(k, mm, hi);
      mm.splitVma(target, hi);
    }
    target.policy = pol;
    const prev = prevAdjacent(mm, target);
    if (prev && mm.canMerge(prev, target)) {
      mm.mergeVmas(prev, target);
      target = prev;
    }
    const next = mm.findVma(target.endVpn);
    if (next && mm.canMerge(target, next)) {
      mm.mergeVmas(target, next);
      gone.add(next);
    }
    if (isShmem(target)) mpolSetSharedPolicy(target, pol);
  }
}

/** The kernel's folio->index: private anonymous memory counts pages from address 0. */
function kernelIndex(k: Kernel, head: number): number {
  const index = k.pages.index[head]!;
  return k.mappingOf(head)?.pageCache ? index : index + USER_BASE / PAGE_SIZE;
}

/**
 * do_mbind's interleave base (mmpol.ilx): the interleave index of the first queued folio where an
 * area of the range maps it, less its own offset, so each folio's target is as its fault's would be.
 */
function interleaveBase(k: Kernel, vmas: readonly Vma[], head: number): number {
  const order = k.folioOrder(head);
  const mapping = k.mappingOf(head);
  const index = k.pages.index[head]!;
  for (const vma of vmas) {
    // page_address_in_vma: the area may map the folio if its chain holds the folio's anon_vma.
    if (!mapping || !vma.owners.includes(mapping) || index < vma.pgoff || index >= vma.pgoff + vma.npages)
      continue;
    const { ilx } = getVmaPolicy(vma, vma.startVpn + (index - vma.pgoff), order);
    return ilx - Math.floor(kernelIndex(k, head) / 2 ** order);
  }
  return 0;
}

/** The unsigned 64-bit value of an integer argument (what the syscall register holds). */
const u64 = (v: number) => BigInt.asUintN(64, BigInt(v));

/**
 * kernel_mbind + do_mbind. Errors in the kernel's order: the mode (sanitize_mpol_flags) and the
 * node list (get_nodes), flags outside MPOL_MF_VALID (EINVAL), MPOL_MF_MOVE_ALL without
 * CAP_SYS_NICE (EPERM), an unaligned start or a wrapping range (EINVAL), the policy (mpol_new,
 * mpol_set_nodemask: EINVAL), holes in the range (EFAULT), STRICT with a misplaced page and no
 * MOVE (EIO), a split past vm.max_map_count (ENOMEM); then the policy is applied and the misplaced
 * pages migrate; under MPOL_MF_STRICT any page left misplaced makes it EIO.
 */
export async function kernelMbind(
  k: Kernel,
  caller: Process,
  start: unknown,
  len: unknown,
  mode: unknown,
  nodes: unknown,
  flagsIn: unknown,
): Promise<SyscallResult> {
  const m = sanitizeMpolFlags(mode);
  if (typeof m === 'number') return fail(-m);
  const nmask = getNodes(nodes);
  if (typeof nmask === 'number') return fail(-nmask);
  if (!Number.isInteger(flagsIn)) return fail(EINVAL);
  let flags = (flagsIn as number) >>> 0;
  if (flags & ~MPOL_MF_VALID) return fail(EINVAL);
  if (flags & MPOL_MF_MOVE_ALL && !caller.capable('CAP_SYS_NICE')) return fail(EPERM);
  if (!Number.isInteger(start) || !Number.isInteger(len)) return fail(EINVAL);
  const s = u64(start as number);
  if (s % BigInt(PAGE_SIZE)) return fail(EINVAL);
  if (m.mode === MPOL_DEFAULT) flags &= ~MPOL_MF_STRICT;
  // PAGE_ALIGN(len), then end < start is a wrap.
  const aligned = BigInt.asUintN(64, ((u64(len as number) + 4095n) / 4096n) * 4096n);
  const e = BigInt.asUintN(64, s + aligned);
  if (e < s) return fail(EINVAL);
  if (e === s) return { ret: 0 };
  const made = mpolNew(m.mode, m.flags, nmask);
  if (typeof made === 'number') return fail(-made);
  // The default policy may span holes.
  if (!made) flags |= MPOL_MF_DISCONTIG_OK;
  const pol = made ? mpolSetNodemask(k, caller, made, nmask) : null;
  if (typeof pol === 'number') return fail(-pol);

  const mm = caller.mm;
  const base = BigInt(USER_BASE / PAGE_SIZE);
  const lo = Number(s / 4096n - base);
  const hi = Number(e / 4096n - base);
  const q = queuePagesRange(k, mm, lo, hi, nmask, flags | MPOL_MF_INVERT);
  if (q.err) {
    putbackFolios(k, q.heads);
    return fail(-q.err);
  }
  const vmas = mm.vmasIn(lo, hi);
  const split = checkSplits(k, mm, vmas, lo, hi, pol);
  if (split) {
    putbackFolios(k, q.heads);
    return fail(-split);
  }
  mbindRange(k, mm, vmas, lo, hi, pol);

  let nrFailed = q.nrFailed;
  if (q.heads.length) {
    // alloc_migration_target_by_mpol: the new policy (the task's for MPOL_DEFAULT), each folio at
    // its interleave index, allocated as the caller on its node.
    const mpol = pol ?? getTaskPolicy(caller, caller.node);
    const interleave = mpol.mode === MPOL_INTERLEAVE || mpol.mode === MPOL_WEIGHTED_INTERLEAVE;
    const ilx = interleave ? interleaveBase(k, mm.vmasIn(lo, hi), q.heads[0]!) : 0;
    const r = await migratePages(k, q.heads, {
      node: mpol.nodes[0] ?? caller.node,
      mode: MigrateMode.MIGRATE_SYNC,
      reason: MigrateReason.MR_MEMPOLICY_MBIND,
      alloc: (src, order) =>
        allocPagesMpol(
          k,
          caller,
          // GFP_TRANSHUGE for a large folio (no kswapd), GFP_HIGHUSER_MOVABLE otherwise; both reclaim.
          { order, kswapdReclaim: order === 0, directReclaim: true },
          mpol,
          ilx + Math.floor(kernelIndex(k, src) / 2 ** order),
          caller.node,
        ),
    });
    nrFailed |= r.ret;
  }
  return nrFailed && flags & MPOL_MF_STRICT ? fail(EIO) : { ret: 0 };
}
