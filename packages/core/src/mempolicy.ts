import { EINVAL, EPERM, kernelError, type SyscallResult } from './errno.js';
import type { Kernel } from './kernel.js';
import { isolateFolios, migratePages } from './migrate.js';
import { MigrateMode, MigrateReason } from './migrate_mode.js';
import type { Mm } from './mm.js';
import { MAX_NUMNODES } from './mmzone.js';
import { PTE_PFN_SHIFT, PTE_PRESENT, ZERO_PFN } from './pagetable.js';
import { type MmWalkOps, walkPageRange } from './pagewalk.js';
import type { Process } from './process.js';
import { findTarget } from './ptrace.js';
import { folioMaybeMappedShared } from './rmap.js';
import { show } from './show.js';

/**
 * mm/mempolicy.c: memory policies (where a VMA's folios are allocated) and the syscalls that set
 * them or move pages by node: migrate_pages(2) today, mbind/set_mempolicy/get_mempolicy next.
 */

/** include/uapi/linux/mempolicy.h: flags of mbind(2) and move_pages(2). */
export const MPOL_MF_STRICT = 1 << 0;
export const MPOL_MF_MOVE = 1 << 1;
export const MPOL_MF_MOVE_ALL = 1 << 2;
export const MPOL_MF_LAZY = 1 << 3;

/** A NUMA memory policy (mm/mempolicy.c): where a VMA's folios are allocated. */
export type MempolicyMode = 'default' | 'bind' | 'preferred' | 'interleave';
export interface Mempolicy {
  readonly mode: MempolicyMode;
  readonly nodes: readonly number[];
}

export const defaultPolicy: Mempolicy = { mode: 'default', nodes: [] };

export function validatePolicy(policy: Mempolicy, nrNodes: number): Mempolicy {
  const modes: MempolicyMode[] = ['default', 'bind', 'preferred', 'interleave'];
  if (typeof policy !== 'object' || policy === null)
    throw kernelError(
      EINVAL,
      `policy must be an object like { mode: 'bind', nodes: [1] }, got ${policy === null ? 'null' : typeof policy}`,
    );
  if (!modes.includes(policy.mode)) {
    throw kernelError(EINVAL, `policy.mode ${show(policy.mode)} is not one of ${modes.join(', ')}`);
  }
  if (policy.mode === 'default') return defaultPolicy;
  if (!Array.isArray(policy.nodes))
    throw kernelError(EINVAL, `policy '${policy.mode}' needs a list of nodes`);
  if (policy.nodes.length === 0) throw kernelError(EINVAL, `policy '${policy.mode}' needs at least one node`);
  for (const n of policy.nodes) {
    if (!Number.isInteger(n) || n < 0 || n >= nrNodes) {
      throw kernelError(EINVAL, `policy node ${show(n)} does not exist (nodes 0..${nrNodes - 1})`);
    }
  }
  return { mode: policy.mode, nodes: [...new Set(policy.nodes)].sort((a, b) => a - b) };
}

/**
 * The node to try first and the nodes allowed for a folio at page offset `ilx` of order `order`
 * (policy_node / policy_nodemask / interleave_nid). `allowed` null means any node.
 */
export function policyNode(
  policy: Mempolicy,
  localNode: number,
  ilx: number,
  order: number,
): { nid: number; allowed: readonly number[] | null } {
  switch (policy.mode) {
    case 'default':
      return { nid: localNode, allowed: null };
    case 'preferred':
      return { nid: policy.nodes[0]!, allowed: null };
    case 'bind':
      return { nid: policy.nodes.includes(localNode) ? localNode : policy.nodes[0]!, allowed: policy.nodes };
    case 'interleave':
      return { nid: policy.nodes[Math.floor(ilx / 2 ** order) % policy.nodes.length]!, allowed: null };
  }
}

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
    if (entry & PTE_PRESENT) queueFolio(entry >>> PTE_PFN_SHIFT);
  },
  pteEntry(_pt, _slot, entry) {
    if (entry & PTE_PRESENT) queueFolio(entry >>> PTE_PFN_SHIFT);
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
