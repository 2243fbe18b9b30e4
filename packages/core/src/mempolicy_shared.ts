import { MPOL_F_SHARED, type Mpol } from './mempolicy_struct.js';
import type { Vma } from './mm.js';
import type { Mapping } from './rmap.js';
import { halves, type TreapNode, treapMerge, treapSplit } from './treap.js';

/**
 * Shared policies (mm/mempolicy.c's sp_node tree, shmem's get_policy/set_policy): the policy of
 * shared anonymous memory belongs to the shmem object, by page offset, so every process that maps
 * it allocates by it, and it outlives the area that set it.
 */

/** One policy range [start, end) of page offsets (struct sp_node). */
class SpNode implements TreapNode<SpNode> {
  l: SpNode | null = null;
  r: SpNode | null = null;
  readonly prio = Math.random();

  constructor(
    readonly start: number,
    public end: number,
    readonly policy: Mpol,
  ) {}
}

// The ranges are disjoint, so start order is end order and nothing needs augmenting.
const noAugment = () => undefined;

/** Splits `n` into the ranges starting before `key` (returned) and the rest (halves.r). */
function splitAt(n: SpNode | null, key: number): SpNode | null {
  treapSplit(n, (x) => x.start < key, noAugment);
  return halves.l as SpNode | null;
}

/** The range with the highest start of a subtree, or null. */
function last(n: SpNode | null): SpNode | null {
  if (n) while (n.r) n = n.r;
  return n;
}

const merge = (a: SpNode | null, b: SpNode | null) => treapMerge(a, b, noAugment);

/**
 * Each shmem object's policy ranges (its struct shared_policy: an rb-tree there, a treap here),
 * ordered by start and disjoint; a lookup costs O(log R), a replace O(log R) besides the ranges it
 * drops.
 */
const sharedPolicies = new WeakMap<Mapping, { root: SpNode | null }>();

/** mpol_shared_policy_lookup (sp_lookup): the policy of page offset `index` of `mapping`, or null. */
export function mpolSharedPolicyLookup(mapping: Mapping, index: number): Mpol | null {
  let n = sharedPolicies.get(mapping)?.root ?? null;
  while (n) {
    if (index < n.start) n = n.l;
    else if (index >= n.end) n = n.r;
    else return n.policy;
  }
  return null;
}

/**
 * mpol_set_shared_policy (shared_policy_replace): the area's page offsets get `pol` (null
 * removes the policy there); ranges it overlaps are cut, one spanning it is split in two. Like
 * the kernel, equal neighbours are not merged.
 */
export function mpolSetSharedPolicy(vma: Vma, pol: Mpol | null): void {
  const start = vma.pgoff;
  const end = vma.pgoff + vma.npages;
  let sp = sharedPolicies.get(vma.mapping);
  if (!sp) {
    if (!pol) return;
    sp = { root: null };
    sharedPolicies.set(vma.mapping, sp);
  }
  const before = splitAt(sp.root, start);
  const from = halves.r as SpNode | null;
  // The ranges starting inside [start, end) go, except a tail of the last one past `end`.
  const inside = splitAt(from, end);
  let after = halves.r as SpNode | null;
  const cut = last(inside);
  if (cut && cut.end > end) after = merge(new SpNode(end, cut.end, cut.policy), after);
  // Only the last range starting before `start` can reach into [start, end).
  const prev = last(before);
  if (prev && prev.end > start) {
    if (prev.end > end) after = merge(new SpNode(end, prev.end, prev.policy), after);
    prev.end = start;
  }
  // sp_alloc: the tree holds a copy marked MPOL_F_SHARED.
  const node = pol && new SpNode(start, end, Object.freeze({ ...pol, flags: pol.flags | MPOL_F_SHARED }));
  sp.root = merge(merge(before, node), after);
}
