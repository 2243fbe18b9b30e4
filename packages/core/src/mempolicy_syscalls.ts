import { EFAULT, EINVAL, ENOMEM, kernelError, type SyscallResult } from './errno.js';
import type { Kernel } from './kernel.js';
import { handleMmFault } from './memory.js';
import { vmaOwnPolicy } from './mempolicy_alloc.js';
import {
  getNodes,
  MPOL_F_ADDR,
  MPOL_F_MEMS_ALLOWED,
  MPOL_F_NODE,
  MPOL_INTERLEAVE,
  MPOL_LOCAL,
  MPOL_MODE_FLAGS,
  MPOL_WEIGHTED_INTERLEAVE,
  type Mpol,
  mpolNew,
  mpolSetNodemask,
  sanitizeMpolFlags,
} from './mempolicy_struct.js';
import { addrToVpn } from './mm.js';
import { PTE_PFN_SHIFT, pteIsMigration, pteIsPresent, ZERO_PFN } from './pagetable.js';
import { entryPfn, pageEntry } from './pagewalk.js';
import type { Process } from './process.js';
import { show } from './show.js';

/** set_mempolicy(2) and get_mempolicy(2) (mm/mempolicy.c). */

/** get_mempolicy(2)'s outputs: `mode` is *policy (a node id under MPOL_F_NODE), `nodes` *nmask. */
export interface GetMempolicyResult extends SyscallResult {
  /** The mode with its mode flags, or with MPOL_F_NODE a node id; -1 when the call failed. */
  mode: number;
  /** The policy's nodes (the caller's mask for a policy with mode flags); [] when the call failed. */
  nodes: number[];
}

/**
 * kernel_set_mempolicy + do_set_mempolicy: the mode (sanitize_mpol_flags), the node list
 * (get_nodes), mpol_new and mpol_set_nodemask decide the errors (all EINVAL, EFAULT for a list
 * that cannot be read).
 */
export function kernelSetMempolicy(k: Kernel, task: Process, mode: unknown, nodes: unknown): SyscallResult {
  const m = sanitizeMpolFlags(mode);
  if (typeof m === 'number') return { ret: -1, errno: -m };
  const nmask = getNodes(nodes);
  if (typeof nmask === 'number') return { ret: -1, errno: -nmask };
  const made = mpolNew(m.mode, m.flags, nmask);
  if (typeof made === 'number') return { ret: -1, errno: -made };
  const pol = made ? mpolSetNodemask(k, task, made, nmask) : null;
  if (typeof pol === 'number') return { ret: -1, errno: -pol };
  task.mempolicy = pol;
  return { ret: 0 };
}

/** get_policy_nodemask, or the caller's mask for a policy with mode flags. */
function policyNodes(pol: Mpol | null): number[] {
  if (!pol) return [];
  if (pol.flags & MPOL_MODE_FLAGS) return [...pol.userNodes];
  return pol.mode === MPOL_LOCAL ? [] : [...pol.nodes];
}

/**
 * lookup_node: the node of the page at `vpn`, faulting it in for reading as get_user_pages does
 * (the zero page counts as node 0, where the kernel's empty_zero_page lives). A page under
 * migration reports the node it is leaving. Returns a negative errno if it cannot be had.
 */
function lookupNode(k: Kernel, task: Process, vpn: number): number {
  const vma = task.mm.findVma(vpn)!;
  // VM_IO/VM_PFNMAP areas have no struct page to return.
  if (!vma.migratable) return -EFAULT;
  let e = pageEntry(task.mm.pt, vpn);
  // GUP follows a PROT_NONE (NUMA hinting) entry without taking the fault.
  if (!pteIsPresent(e) && !pteIsMigration(e)) {
    try {
      handleMmFault(k, task.mm, vma, vpn, false, task.node);
    } catch (err) {
      return -((err as { errno?: number }).errno ?? ENOMEM);
    }
    e = pageEntry(task.mm.pt, vpn);
  }
  const pfn = pteIsPresent(e) ? entryPfn(e, vpn) : e >>> PTE_PFN_SHIFT;
  return pfn === ZERO_PFN ? 0 : k.nodeOf(pfn);
}

/**
 * kernel_get_mempolicy + do_get_mempolicy. `flags` outside MPOL_F_NODE|ADDR|MEMS_ALLOWED, MEMS_ALLOWED
 * with another flag, an address without MPOL_F_ADDR, or MPOL_F_NODE alone while the task does not
 * interleave: EINVAL; MPOL_F_ADDR on an unmapped address: EFAULT. MPOL_F_ADDR reports the area's
 * own policy (MPOL_DEFAULT when it has none), not the task's.
 */
export function kernelGetMempolicy(
  k: Kernel,
  task: Process,
  opts: { addr?: number; flags?: number },
): GetMempolicyResult {
  if (typeof opts !== 'object' || opts === null)
    throw kernelError(
      EINVAL,
      `getMempolicy options must be an object like { addr, flags }, got ${show(opts)}`,
    );
  const failed = (errno: number): GetMempolicyResult => ({ ret: -1, errno, mode: -1, nodes: [] });
  const flags = opts.flags ?? 0;
  const addr = opts.addr ?? 0;
  if (!Number.isInteger(flags) || !Number.isInteger(addr)) return failed(EINVAL);
  if (BigInt.asUintN(64, BigInt(flags)) & ~BigInt(MPOL_F_NODE | MPOL_F_ADDR | MPOL_F_MEMS_ALLOWED))
    return failed(EINVAL);
  if (flags & MPOL_F_MEMS_ALLOWED) {
    if (flags & (MPOL_F_NODE | MPOL_F_ADDR)) return failed(EINVAL);
    return { ret: 0, mode: 0, nodes: [...task.memsAllowed] };
  }
  let pol: Mpol | null = task.mempolicy;
  let vpn = -1;
  if (flags & MPOL_F_ADDR) {
    vpn = addrToVpn(addr);
    const vma = vpn >= 0 ? task.mm.findVma(vpn) : undefined;
    if (!vma) return failed(EFAULT);
    // Do not fall back to the task's policy: an area without its own is MPOL_DEFAULT.
    pol = vmaOwnPolicy(vma, vpn);
  } else if (addr) return failed(EINVAL);

  let mode: number;
  if (flags & MPOL_F_NODE) {
    if (flags & MPOL_F_ADDR) {
      const nid = lookupNode(k, task, vpn);
      if (nid < 0) return failed(-nid);
      mode = nid;
    } else if (
      pol &&
      pol === task.mempolicy &&
      (pol.mode === MPOL_INTERLEAVE || pol.mode === MPOL_WEIGHTED_INTERLEAVE)
    ) {
      // The next node of the task's own round robin (il_prev), which only allocations outside any
      // area advance: the model has none, so it is the first node, as after set_mempolicy.
      mode = pol.nodes[0]!;
    } else return failed(EINVAL);
  } else {
    // Internal flags (MPOL_F_MOF, ...) are masked off before the mode reaches user space.
    mode = pol ? pol.mode | (pol.flags & MPOL_MODE_FLAGS) : 0;
  }
  return { ret: 0, mode, nodes: policyNodes(pol) };
}
