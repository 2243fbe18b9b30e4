import { EINVAL, kernelError } from './errno.js';

/** A NUMA memory policy (mm/mempolicy.c): where a VMA's folios are allocated. */
export type MempolicyMode = 'default' | 'bind' | 'preferred' | 'interleave';
export interface Mempolicy {
  readonly mode: MempolicyMode;
  readonly nodes: readonly number[];
}

export const defaultPolicy: Mempolicy = { mode: 'default', nodes: [] };

export function validatePolicy(policy: Mempolicy, nrNodes: number): Mempolicy {
  const modes: MempolicyMode[] = ['default', 'bind', 'preferred', 'interleave'];
  if (!modes.includes(policy.mode)) {
    throw kernelError(EINVAL, `policy.mode ${JSON.stringify(policy.mode)} is not one of ${modes.join(', ')}`);
  }
  if (policy.mode === 'default') return defaultPolicy;
  if (policy.nodes.length === 0) throw kernelError(EINVAL, `policy '${policy.mode}' needs at least one node`);
  for (const n of policy.nodes) {
    if (!Number.isInteger(n) || n < 0 || n >= nrNodes) {
      throw kernelError(EINVAL, `policy node ${n} does not exist (nodes 0..${nrNodes - 1})`);
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
