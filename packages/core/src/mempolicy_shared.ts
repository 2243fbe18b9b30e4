import { MPOL_F_SHARED, type Mpol } from './mempolicy_struct.js';
import type { Vma } from './mm.js';
import type { Mapping } from './rmap.js';

/**
 * Shared policies (mm/mempolicy.c's sp_node tree, shmem's get_policy/set_policy): the policy of
 * shared anonymous memory belongs to the shmem object, by page offset, so every process that maps
 * it allocates by it, and it outlives the area that set it.
 */

interface SpNode {
  start: number;
  end: number;
  policy: Mpol;
}

/** Each shmem object's policy ranges, ascending and disjoint (its struct shared_policy). */
const sharedPolicies = new WeakMap<Mapping, SpNode[]>();

/** mpol_shared_policy_lookup: the policy of page offset `index` of `mapping`, or null. */
export function mpolSharedPolicyLookup(mapping: Mapping, index: number): Mpol | null {
  const sp = sharedPolicies.get(mapping);
  if (!sp) return null;
  for (const n of sp) if (index >= n.start && index < n.end) return n.policy;
  return null;
}

/**
 * mpol_set_shared_policy (shared_policy_replace): the area's page offsets get `pol` (null
 * removes the policy there); ranges it overlaps are cut, one spanning it is split in two.
 */
export function mpolSetSharedPolicy(vma: Vma, pol: Mpol | null): void {
  const start = vma.pgoff;
  const end = vma.pgoff + vma.npages;
  const out: SpNode[] = [];
  for (const n of sharedPolicies.get(vma.mapping) ?? []) {
    if (n.end <= start || n.start >= end) out.push(n);
    else {
      if (n.start < start) out.push({ start: n.start, end: start, policy: n.policy });
      if (n.end > end) out.push({ start: end, end: n.end, policy: n.policy });
    }
  }
  // sp_alloc: the tree holds a copy marked MPOL_F_SHARED.
  if (pol) out.push({ start, end, policy: Object.freeze({ ...pol, flags: pol.flags | MPOL_F_SHARED }) });
  out.sort((a, b) => a.start - b.start);
  sharedPolicies.set(vma.mapping, out);
}
