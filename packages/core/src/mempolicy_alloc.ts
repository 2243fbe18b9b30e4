import type { Kernel } from './kernel.js';
import { mpolSharedPolicyLookup } from './mempolicy_shared.js';
import {
  getTaskPolicy,
  type MempolicyTask,
  MPOL_BIND,
  MPOL_F_MOF,
  MPOL_F_MORON,
  MPOL_INTERLEAVE,
  MPOL_LOCAL,
  MPOL_PREFERRED,
  MPOL_PREFERRED_MANY,
  MPOL_WEIGHTED_INTERLEAVE,
  type Mpol,
  NUMA_NO_NODE,
} from './mempolicy_struct.js';
import { getIlWeight } from './mempolicy_sysfs.js';
import type { Vma } from './mm.js';
import { HPAGE_PMD_ORDER, PAGE_SIZE } from './mmzone.js';
import { USER_BASE } from './pagetable.js';

/**
 * mm/mempolicy.c at allocation time: which policy applies to a fault (get_vma_policy), the node
 * and nodemask it gives (policy_nodemask, interleave_nid, weighted_interleave_nid) and the
 * allocation itself (alloc_pages_mpol).
 */

/** The kernel's vm_pgoff: private anonymous memory starts at its address's page number. */
function kernelPgoff(vma: Vma): number {
  return vma.shared ? vma.pgoff : vma.pgoff + USER_BASE / PAGE_SIZE;
}

/** Shared anonymous memory (shmem, not hugetlbfs): its policy lives in the object (vm_ops->get_policy). */
export const isShmem = (vma: Vma) => vma.shared && !vma.hugetlb;

/** __get_vma_policy: the area's own policy; shmem's is the object's at the page (shmem_get_policy). */
export function vmaOwnPolicy(vma: Vma, vpn: number): Mpol | null {
  return isShmem(vma) ? mpolSharedPolicyLookup(vma.mapping, vma.index(vpn)) : vma.policy;
}

/**
 * get_vma_policy: the policy of page `vpn` of `vma` (its own, else that of the task running on
 * `thisNid`) and, for the
 * interleave modes, the interleave index of a folio of `order` there: shmem starts from its inode
 * number (i_ino, here the object's id), then the area's offset and the page's within it.
 */
export function getVmaPolicy(
  vma: Vma,
  vpn: number,
  order: number,
  thisNid = vma.mm.task.node,
): { pol: Mpol; ilx: number } {
  const pol = vmaOwnPolicy(vma, vpn) ?? getTaskPolicy(vma.mm.task, thisNid);
  let ilx = isShmem(vma) ? vma.mapping.id : 0;
  if (pol.mode === MPOL_INTERLEAVE || pol.mode === MPOL_WEIGHTED_INTERLEAVE)
    ilx += Math.floor(kernelPgoff(vma) / 2 ** order) + Math.floor((vpn - vma.startVpn) / 2 ** order);
  return { pol, ilx };
}

/** interleave_nid: the ilx-th node of the policy, wrapping. */
export function interleaveNid(pol: Mpol, ilx: number): number {
  return pol.nodes[ilx % pol.nodes.length]!;
}

/** weighted_interleave_nid: the node whose share of the weight total ilx falls in. */
export function weightedInterleaveNid(k: Kernel, pol: Mpol, ilx: number): number {
  let total = 0;
  for (const n of pol.nodes) total += getIlWeight(k, n);
  let target = ilx % total;
  for (const n of pol.nodes) {
    const w = getIlWeight(k, n);
    if (target < w) return n;
    target -= w;
  }
  return pol.nodes[0]!;
}

/** policy_nodemask: the node to start from and the nodes allowed (null: any). */
export function policyNodemask(
  k: Kernel,
  pol: Mpol,
  ilx: number,
  nid: number,
): { nid: number; nodemask: readonly number[] | null } {
  switch (pol.mode) {
    case MPOL_PREFERRED:
      return { nid: pol.nodes[0]!, nodemask: null };
    case MPOL_PREFERRED_MANY:
    case MPOL_BIND:
      return { nid, nodemask: pol.nodes };
    case MPOL_INTERLEAVE:
      return { nid: interleaveNid(pol, ilx), nodemask: null };
    case MPOL_WEIGHTED_INTERLEAVE:
      return { nid: weightedInterleaveNid(k, pol, ilx), nodemask: null };
    default:
      return { nid, nodemask: null };
  }
}

/** How an allocation may try (its gfp flags, as far as the model has them). */
export interface MpolAllocFlags {
  order: number;
  /** __GFP_KSWAPD_RECLAIM: a failed high-order attempt wakes kswapd. */
  kswapdReclaim: boolean;
  /** __GFP_DIRECT_RECLAIM: a THP that does not fit on its node may go elsewhere (GFP_TRANSHUGE). */
  directReclaim: boolean;
}

/**
 * alloc_pages_mpol: a folio by `pol` for interleave index `ilx`, `nid` being the node the task
 * runs on; -1 if none. The task's cpuset bounds every attempt (__cpuset_zone_allowed).
 * MPOL_PREFERRED_MANY tries its nodes, then any; a PMD-size folio under a policy that allows the
 * preferred node is tried there alone first, and only there unless the caller may reclaim (THP
 * faults may not: remote THPs cost more than they save).
 */
export function allocPagesMpol(
  k: Kernel,
  task: MempolicyTask,
  flags: MpolAllocFlags,
  pol: Mpol,
  ilx: number,
  nid: number,
): number {
  const { nid: target, nodemask } = policyNodemask(k, pol, ilx, nid);
  const { order, kswapdReclaim } = flags;
  const cpuset = task.memsAllowed.length < k.nodes.length ? task.memsAllowed : null;
  const interleave = pol.mode === MPOL_INTERLEAVE || pol.mode === MPOL_WEIGHTED_INTERLEAVE;
  // zone_statistics counts numa_local/numa_other against `nid`, numa_interleave for `interleave`.
  const alloc = (mask: readonly number[] | null, thisNode: boolean) =>
    k.allocFolio({
      order,
      nid: target,
      allowed: mask ?? cpuset,
      thisNode,
      kswapdReclaim,
      localNid: nid,
      interleave,
    });
  if (pol.mode === MPOL_PREFERRED_MANY) {
    const pfn = alloc(nodemask, false);
    return pfn >= 0 ? pfn : alloc(null, false);
  }
  if (order === HPAGE_PMD_ORDER && !interleave) {
    if (!nodemask || nodemask.includes(target)) {
      const pfn = alloc(null, true);
      if (pfn >= 0 || !flags.directReclaim) return pfn;
    }
  }
  return alloc(nodemask, false);
}

/**
 * vma_alloc_folio (shmem_alloc_folio for shared memory): a folio of `order` for page `vpn` of
 * `vma` by the policy in force there, the faulting task running on `localNode`; -1 if none.
 */
export function vmaAllocFolio(k: Kernel, vma: Vma, vpn: number, order: number, localNode: number): number {
  const { pol, ilx } = getVmaPolicy(vma, vpn, order, localNode);
  // shmem_get_pgoff_policy: shared memory interleaves by inode number and page offset alone.
  const index = isShmem(vma) ? vma.mapping.id + Math.floor(vma.index(vpn) / 2 ** order) : ilx;
  // A fault never reclaims for a THP (defrag 'madvise': GFP_TRANSHUGE_LIGHT) nor wakes kswapd for one.
  const flags = { order, kswapdReclaim: order === 0, directReclaim: false };
  return allocPagesMpol(k, vma.mm.task, flags, pol, index, localNode);
}

/**
 * mpol_misplaced: for a NUMA hinting fault on a folio of `order` at page `vpn` of `vma`, on node
 * `curNid`, touched from node `thisNid`: the node the policy wants it on, or NUMA_NO_NODE. Only
 * policies with MPOL_F_MOF take part; with MPOL_F_MORON the folio follows the toucher when
 * `shouldMigrate` (should_numa_migrate_memory, the scheduler's two-fault filter) agrees.
 */
export function mpolMisplaced(
  k: Kernel,
  vma: Vma,
  vpn: number,
  order: number,
  curNid: number,
  thisNid: number,
  shouldMigrate: () => boolean,
): number {
  const { pol, ilx } = getVmaPolicy(vma, vpn, order, thisNid);
  if (!(pol.flags & MPOL_F_MOF)) return NUMA_NO_NODE;
  let polnid: number;
  switch (pol.mode) {
    case MPOL_INTERLEAVE:
      polnid = interleaveNid(pol, ilx);
      break;
    case MPOL_WEIGHTED_INTERLEAVE:
      polnid = weightedInterleaveNid(k, pol, ilx);
      break;
    case MPOL_PREFERRED:
      if (pol.nodes.includes(curNid)) return NUMA_NO_NODE;
      polnid = pol.nodes[0]!;
      break;
    case MPOL_LOCAL:
      polnid = thisNid;
      break;
    default:
      // MPOL_BIND, MPOL_PREFERRED_MANY: never towards a node outside the policy.
      if (pol.flags & MPOL_F_MORON) {
        if (!pol.nodes.includes(thisNid)) return NUMA_NO_NODE;
        polnid = thisNid;
        break;
      }
      if (pol.nodes.includes(curNid)) return NUMA_NO_NODE;
      // first_zones_zonelist: the policy's node nearest to the toucher.
      polnid = k.nodes[thisNid]!.fallbackOrder.find((n) => pol.nodes.includes(n)) ?? curNid;
  }
  if (pol.flags & MPOL_F_MORON) {
    polnid = thisNid;
    if (!shouldMigrate()) return NUMA_NO_NODE;
  }
  return curNid !== polnid ? polnid : NUMA_NO_NODE;
}
