import { EFAULT, EINVAL, kernelError } from './errno.js';
import type { Kernel } from './kernel.js';
import { MAX_NUMNODES } from './mmzone.js';
import { bitmapList, N_MEMORY, nodeState } from './nodemask.js';
import { show } from './show.js';

/**
 * struct mempolicy and what it is made of (include/uapi/linux/mempolicy.h, include/linux/
 * mempolicy.h, and mm/mempolicy.c's mpol_new, mpol_set_nodemask, mpol_equal, mpol_to_str): the
 * part of memory policy that address spaces and the allocator need, without the syscalls.
 */

/** include/uapi/linux/mempolicy.h: the policy modes. */
export const MPOL_DEFAULT = 0;
export const MPOL_PREFERRED = 1;
export const MPOL_BIND = 2;
export const MPOL_INTERLEAVE = 3;
export const MPOL_LOCAL = 4;
export const MPOL_PREFERRED_MANY = 5;
export const MPOL_WEIGHTED_INTERLEAVE = 6;
export const MPOL_MAX = 7;

/** Mode flags of set_mempolicy(2) and mbind(2), OR-ed into the mode. */
export const MPOL_F_STATIC_NODES = 1 << 15;
export const MPOL_F_RELATIVE_NODES = 1 << 14;
export const MPOL_F_NUMA_BALANCING = 1 << 13;
export const MPOL_MODE_FLAGS = MPOL_F_STATIC_NODES | MPOL_F_RELATIVE_NODES | MPOL_F_NUMA_BALANCING;

/** Flags of get_mempolicy(2). */
export const MPOL_F_NODE = 1 << 0;
export const MPOL_F_ADDR = 1 << 1;
export const MPOL_F_MEMS_ALLOWED = 1 << 2;

/** Flags of mbind(2) and move_pages(2). */
export const MPOL_MF_STRICT = 1 << 0;
export const MPOL_MF_MOVE = 1 << 1;
export const MPOL_MF_MOVE_ALL = 1 << 2;
export const MPOL_MF_LAZY = 1 << 3;
export const MPOL_MF_INTERNAL = 1 << 4;
export const MPOL_MF_VALID = MPOL_MF_STRICT | MPOL_MF_MOVE | MPOL_MF_MOVE_ALL;

/** Internal flags sharing the policy's flags word with the mode flags. */
export const MPOL_F_SHARED = 1 << 0;
/** Preferred local allocation: no longer set by the kernel (MPOL_LOCAL replaced it), kept in uapi. */
export const MPOL_F_LOCAL = 1 << 1;
export const MPOL_F_MOF = 1 << 3;
export const MPOL_F_MORON = 1 << 4;

/** NUMA_NO_NODE. */
export const NUMA_NO_NODE = -1;

/**
 * struct mempolicy. Immutable: mpol_dup (fork, a VMA split) shares the object. No policy at all
 * (MPOL_DEFAULT: the VMA falls back to the task's, the task to local allocation) is `null`.
 */
export interface Mpol {
  /** MPOL_PREFERRED .. MPOL_WEIGHTED_INTERLEAVE. */
  readonly mode: number;
  /** The mode flags given (MPOL_F_STATIC_NODES, ...) plus MPOL_F_MOF/MPOL_F_MORON, MPOL_F_SHARED. */
  readonly flags: number;
  /** pol->nodes: the nodes in force, ascending (empty for MPOL_LOCAL; one node for MPOL_PREFERRED). */
  readonly nodes: readonly number[];
  /** w.user_nodemask: the mask as the caller gave it, kept when a mode flag is set (else empty). */
  readonly userNodes: readonly number[];
}

/** The task side of a policy (struct task_struct's mempolicy, its cpuset and node). */
export interface MempolicyTask {
  /** current->mempolicy; null: the default (local allocation). */
  mempolicy: Mpol | null;
  /** cpuset_current_mems_allowed. */
  readonly memsAllowed: readonly number[];
  /** numa_node_id(): the node the task runs on. */
  readonly node: number;
}

/**
 * preferred_node_policy[nid] (numa_policy_init): what get_task_policy returns for a task without
 * a policy, so its folios go to the node it runs on and NUMA balancing may move them (MOF|MORON).
 */
const preferredNodePolicy: Mpol[] = [];
const preferredNodePolicies = new WeakSet<Mpol>();
export function preferredNodePolicyOf(nid: number): Mpol {
  let pol = preferredNodePolicy[nid];
  if (!pol) {
    pol = Object.freeze({
      mode: MPOL_PREFERRED,
      flags: MPOL_F_MOF | MPOL_F_MORON,
      nodes: [nid],
      userNodes: [],
    });
    preferredNodePolicy[nid] = pol;
    preferredNodePolicies.add(pol);
  }
  return pol;
}

/** get_task_policy: the task's policy, else the preferred-node policy of the node it runs on. */
export function getTaskPolicy(task: MempolicyTask, thisNid = task.node): Mpol {
  return task.mempolicy ?? preferredNodePolicyOf(thisNid);
}

/** The ids of a nodemask that node_states[N_MEMORY] holds: nodes with memory. */
export function nodesWithMemory(k: Kernel, nodes: readonly number[]): number[] {
  return nodes.filter((n) => n < k.nodes.length && nodeState(k.nodes[n]!, N_MEMORY));
}

/** sanitize_mpol_flags: splits `mode` into the mode and its flags; a negative errno if refused. */
export function sanitizeMpolFlags(mode: unknown): { mode: number; flags: number } | number {
  if (!Number.isInteger(mode)) return -EINVAL;
  const m = (mode as number) | 0;
  let flags = m & MPOL_MODE_FLAGS;
  const base = m & ~MPOL_MODE_FLAGS;
  if (base >>> 0 >= MPOL_MAX) return -EINVAL;
  if (flags & MPOL_F_STATIC_NODES && flags & MPOL_F_RELATIVE_NODES) return -EINVAL;
  if (flags & MPOL_F_NUMA_BALANCING) {
    if (base !== MPOL_BIND && base !== MPOL_PREFERRED_MANY) return -EINVAL;
    flags |= MPOL_F_MOF | MPOL_F_MORON;
  }
  return { mode: base, flags };
}

/**
 * get_nodes for a list of node ids: null or undefined is a NULL mask (empty); what is not an
 * array cannot be read (-EFAULT); an id that is not an integer in 0..MAX_NUMNODES-1 is a bit the
 * kernel refuses (-EINVAL). Returns the ascending ids or a negative errno.
 */
export function getNodes(nodes: unknown): number[] | number {
  if (nodes === null || nodes === undefined) return [];
  if (!Array.isArray(nodes)) return -EFAULT;
  const out = new Set<number>();
  for (const n of nodes) {
    if (!Number.isInteger(n) || n < 0 || n >= MAX_NUMNODES) return -EINVAL;
    out.add(n);
  }
  return [...out].sort((a, b) => a - b);
}

/** What mpol_new decided: no policy (MPOL_DEFAULT), a mode and flags to complete, or an errno. */
type NewPolicy = null | { mode: number; flags: number } | number;

/** mpol_new: checks the mode against the nodemask; MPOL_PREFERRED without nodes is MPOL_LOCAL. */
export function mpolNew(mode: number, flags: number, nodes: readonly number[]): NewPolicy {
  if (mode === MPOL_DEFAULT) return nodes.length ? -EINVAL : null;
  const relOrStatic = flags & (MPOL_F_STATIC_NODES | MPOL_F_RELATIVE_NODES);
  if (mode === MPOL_PREFERRED) {
    if (!nodes.length) {
      if (relOrStatic) return -EINVAL;
      return { mode: MPOL_LOCAL, flags };
    }
  } else if (mode === MPOL_LOCAL) {
    if (nodes.length || relOrStatic) return -EINVAL;
  } else if (!nodes.length) return -EINVAL;
  return { mode, flags };
}

/** mpol_relative_nodemask: `orig` folded onto `rel` (bit i of the fold is the i-th node of rel). */
function relativeNodemask(orig: readonly number[], rel: readonly number[]): number[] {
  const w = rel.length;
  if (!w) return [];
  const folded = [...new Set(orig.map((n) => n % w))].sort((a, b) => a - b);
  return folded.map((i) => rel[i]!);
}

/**
 * mpol_set_nodemask + the mode's create op: the policy's nodes are the caller's mask within the
 * task's cpuset and the nodes with memory (folded onto them with MPOL_F_RELATIVE_NODES). An empty
 * result is -EINVAL; MPOL_PREFERRED keeps the first node. Returns the policy or a negative errno.
 */
export function mpolSetNodemask(
  k: Kernel,
  task: MempolicyTask,
  pol: { mode: number; flags: number },
  nodes: readonly number[],
): Mpol | number {
  const userNodes = pol.flags & MPOL_MODE_FLAGS ? [...nodes] : [];
  if (pol.mode === MPOL_LOCAL)
    return Object.freeze({ mode: pol.mode, flags: pol.flags, nodes: [], userNodes });
  const allowed = nodesWithMemory(k, task.memsAllowed);
  const mask =
    pol.flags & MPOL_F_RELATIVE_NODES
      ? relativeNodemask(nodes, allowed)
      : nodes.filter((n) => allowed.includes(n));
  if (!mask.length) return -EINVAL;
  return Object.freeze({
    mode: pol.mode,
    flags: pol.flags,
    nodes: pol.mode === MPOL_PREFERRED ? [mask[0]!] : mask,
    userNodes,
  });
}

const sameNodes = (a: readonly number[], b: readonly number[]) =>
  a.length === b.length && a.every((n, i) => n === b[i]);

/** mpol_equal: same mode, flags and nodes (and the caller's mask where it is kept). */
export function mpolEqual(a: Mpol | null, b: Mpol | null): boolean {
  if (a === b) return true;
  if (!a || !b || a.mode !== b.mode || a.flags !== b.flags) return false;
  if (a.flags & MPOL_MODE_FLAGS && !sameNodes(a.userNodes, b.userNodes)) return false;
  return sameNodes(a.nodes, b.nodes);
}

/** policy_modes[]: the names mpol_to_str prints. */
const policyModeNames = [
  'default',
  'prefer',
  'bind',
  'interleave',
  'local',
  'prefer (many)',
  'weighted interleave',
];

/**
 * mpol_to_str: "<mode>[=static|=relative][|balancing][:<nodelist>]"; no policy and the
 * preferred-node policy of a task without one print "default".
 */
export function mpolToStr(pol: Mpol | null): string {
  if (!pol || preferredNodePolicies.has(pol)) return 'default';
  let out = policyModeNames[pol.mode]!;
  const flags = pol.flags & MPOL_MODE_FLAGS;
  if (flags) {
    out += '=';
    if (flags & MPOL_F_STATIC_NODES) out += 'static';
    else if (flags & MPOL_F_RELATIVE_NODES) out += 'relative';
    if (flags & MPOL_F_NUMA_BALANCING) {
      // is_power_of_2(flags): balancing alone follows '=' directly.
      if (flags & (flags - 1)) out += '|';
      out += 'balancing';
    }
  }
  if (pol.mode !== MPOL_LOCAL && pol.nodes.length) out += `:${bitmapList(pol.nodes)}`;
  return out;
}

/** The modes of the object form (mmap's `policy` option, `p.maps()`): MPOL_* by name. */
export type MempolicyMode =
  | 'default'
  | 'preferred'
  | 'bind'
  | 'interleave'
  | 'local'
  | 'preferred_many'
  | 'weighted_interleave';

/** A memory policy in object form: `{ mode: 'bind', nodes: [1] }`. */
export interface Mempolicy {
  readonly mode: MempolicyMode;
  readonly nodes: readonly number[];
}

const modeByName: Record<MempolicyMode, number> = {
  default: MPOL_DEFAULT,
  preferred: MPOL_PREFERRED,
  bind: MPOL_BIND,
  interleave: MPOL_INTERLEAVE,
  local: MPOL_LOCAL,
  preferred_many: MPOL_PREFERRED_MANY,
  weighted_interleave: MPOL_WEIGHTED_INTERLEAVE,
};
const modeNames = Object.keys(modeByName) as MempolicyMode[];

/** The object form of a policy (null is 'default'). */
export function mempolicyView(pol: Mpol | null): Mempolicy {
  return pol ? { mode: modeNames[pol.mode]!, nodes: [...pol.nodes] } : { mode: 'default', nodes: [] };
}

/**
 * mmap's `policy` option: the object form made into a policy as mbind(2) would (mpol_new), but
 * strict, since it is an API and not a bitmap: every node must exist and be in the task's
 * cpuset, else EINVAL naming it. 'default' is no policy (its nodes are ignored).
 */
export function mpolFromOption(k: Kernel, task: MempolicyTask, policy: Mempolicy): Mpol | null {
  if (typeof policy !== 'object' || policy === null)
    throw kernelError(
      EINVAL,
      `policy must be an object like { mode: 'bind', nodes: [1] }, got ${policy === null ? 'null' : typeof policy}`,
    );
  if (!modeNames.includes(policy.mode))
    throw kernelError(EINVAL, `policy.mode ${show(policy.mode)} is not one of ${modeNames.join(', ')}`);
  if (policy.mode === 'default') return null;
  const nodes = policy.nodes ?? [];
  if (!Array.isArray(nodes)) throw kernelError(EINVAL, `policy '${policy.mode}' needs a list of nodes`);
  const nrNodes = k.nodes.length;
  for (const n of nodes)
    if (!Number.isInteger(n) || n < 0 || n >= nrNodes)
      throw kernelError(EINVAL, `policy node ${show(n)} does not exist (nodes 0..${nrNodes - 1})`);
  const outside = nodes.filter((n) => !task.memsAllowed.includes(n));
  if (outside.length)
    throw kernelError(EINVAL, `policy nodes ${outside.join(',')} are not in the cpuset's mems_allowed`);
  const ids = [...new Set(nodes)].sort((a, b) => a - b);
  const made = mpolNew(modeByName[policy.mode], 0, ids);
  if (typeof made === 'number' || made === null)
    throw kernelError(
      EINVAL,
      policy.mode === 'local'
        ? "policy 'local' takes no nodes"
        : `policy '${policy.mode}' needs at least one node`,
    );
  const pol = mpolSetNodemask(k, task, made, ids);
  if (typeof pol === 'number')
    throw kernelError(EINVAL, `policy nodes ${ids.join(',')} have no memory in the cpuset's mems_allowed`);
  return pol;
}
