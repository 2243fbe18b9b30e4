import { EINVAL, EPERM, type SyscallResult } from './errno.js';
import type { Kernel } from './kernel.js';
import { isolateFolios, migratePages } from './migrate.js';
import { MigrateMode, MigrateReason } from './migrate_mode.js';
import type { Mm } from './mm.js';
import { MAX_NUMNODES } from './mmzone.js';
import { PTE_PFN_SHIFT, pteIsPresent, ZERO_PFN } from './pagetable.js';
import { type MmWalkOps, walkPageRange } from './pagewalk.js';
import type { Process } from './process.js';
import { findTarget } from './ptrace.js';
import { folioMaybeMappedShared } from './rmap.js';

/**
 * mm/mempolicy.c: memory policies (on which nodes a task's or an area's folios are allocated) and
 * migrate_pages(2). struct mempolicy, its constants and making one are in mempolicy_struct.ts, the
 * policy at fault time in mempolicy_alloc.ts, mbind(2) in mempolicy_mbind.ts,
 * set_mempolicy(2)/get_mempolicy(2) in mempolicy_syscalls.ts.
 */

export * from './mempolicy_struct.js';

function nodeMask(nodes: unknown): Set<number> | null {
  if (!Array.isArray(nodes)) return null;
  const out = new Set<number>();
  for (const n of nodes) {
    if (!Number.isInteger(n) || n < 0 || n >= MAX_NUMNODES) return null;
    out.add(n);
  }
  return out;
}

/** node_remap: the node at the same position of `to` as `s` has in `from` (modulo |to|). */
function nodeRemap(s: number, from: number[], to: number[]): number {
  const i = from.indexOf(s);
  return to[i % to.length]!;
}

/**
 * migrate_pages(2) (kernel_migrate_pages): moves every page of `pid` on a node of `oldNodes` to
 * the corresponding node of `newNodes`, keeping relative placement (do_migrate_pages). Returns
 * the number of pages that could not be moved. Shared pages move only with CAP_SYS_NICE.
 */
export async function kernelMigratePages(
  k: Kernel,
  caller: Process,
  pid: number,
  oldNodes: readonly number[],
  newNodes: readonly number[],
): Promise<SyscallResult> {
  const from = nodeMask(oldNodes);
  const to = nodeMask(newNodes);
  if (!from || !to) return { ret: -1, errno: EINVAL };
  const target = findTarget(k, caller, pid);
  if (typeof target === 'number') return { ret: -1, errno: target };
  const taskNodes = new Set(target.memsAllowed);
  if (![...to].every((n) => taskNodes.has(n)) && !caller.privileged) return { ret: -1, errno: EPERM };
  const callerNodes = new Set(caller.memsAllowed);
  const dest = [...to].filter((n) => callerNodes.has(n) && n < k.nodes.length).sort((a, b) => a - b);
  if (!dest.length) return { ret: -1, errno: EINVAL };
  const src = [...from].sort((a, b) => a - b);
  const moveAll = caller.privileged;

  let busy = 0;
  const tmp = new Set(src);
  while (tmp.size) {
    let source = -1;
    let d = 0;
    for (const s of [...tmp].sort((a, b) => a - b)) {
      if (src.length !== dest.length && dest.includes(s)) continue;
      const r = nodeRemap(s, src, dest);
      if (r === s) continue;
      source = s;
      d = r;
      // do_migrate_pages: remember the last moving pair, but take at once one whose destination
      // is not itself a pending source, so incoming pages are not moved again ({0,1} -> {1,2}
      // runs 1 -> 2 before 0 -> 1).
      if (!tmp.has(r)) break;
    }
    if (source === -1) break;
    tmp.delete(source);
    const err = await migrateToNode(k, target.mm, source, d, moveAll);
    if (err < 0) return { ret: -1, errno: -err };
    busy += err;
  }
  return { ret: busy };
}

// queue_folios_pte_range's state: the walk's ops live at module level, so a walk allocates nothing.
let qk: Kernel;
let qSource = 0;
let qMoveAll = false;
let qSeen = new Set<number>();
let qCandidates: number[] = [];
function queueFolio(pfn: number): void {
  if (pfn === ZERO_PFN) return;
  const head = qk.pages.head(pfn);
  if (qSeen.has(head) || qk.nodeOf(head) !== qSource) return;
  qSeen.add(head);
  // Unless MPOL_MF_MOVE_ALL, a shared folio is left where it is (not a failure).
  if (!qMoveAll && folioMaybeMappedShared(qk, head)) return;
  qCandidates.push(head);
}
const queueOps: MmWalkOps = {
  pmdEntry(_pt, _pmdIdx, entry) {
    if (pteIsPresent(entry)) queueFolio(entry >>> PTE_PFN_SHIFT);
  },
  pteEntry(_pt, _slot, entry) {
    if (pteIsPresent(entry)) queueFolio(entry >>> PTE_PFN_SHIFT);
  },
};

/** migrate_to_node: isolates the mm's folios on `source` and migrates them to `dest`. */
async function migrateToNode(
  k: Kernel,
  mm: Mm,
  source: number,
  dest: number,
  moveAll: boolean,
): Promise<number> {
  qk = k;
  qSource = source;
  qMoveAll = moveAll;
  qSeen = new Set();
  qCandidates = [];
  for (const vma of mm.vmas) if (vma.migratable) walkPageRange(mm.pt, vma.startVpn, vma.endVpn, queueOps);
  const { heads, refused } = isolateFolios(k, qCandidates);
  qCandidates = [];
  qSeen = new Set();
  if (!heads.length) return refused;
  const r = await migratePages(k, heads, {
    node: dest,
    mode: MigrateMode.MIGRATE_SYNC,
    reason: MigrateReason.MR_SYSCALL,
    notIsolated: refused,
  });
  return r.ret < 0 ? r.ret : r.ret + refused;
}
