import { EPERM, ESRCH } from './errno.js';
import type { Kernel } from './kernel.js';
import type { Process } from './process.js';

/**
 * find_mm_struct / the task lookup of kernel_migrate_pages: pid 0 is the caller; another live
 * process must pass the ptrace-style access check (same uid, or a privileged caller). Returns
 * the target or an errno (ESRCH, EPERM).
 */
export function findTarget(k: Kernel, caller: Process, pid: number): Process | number {
  const target = pid === 0 ? caller : k.processes.get(pid);
  if (!target || target.exited || !Number.isInteger(pid) || pid < 0) return ESRCH;
  if (target !== caller && !caller.privileged && caller.uid !== target.uid) return EPERM;
  return target;
}
