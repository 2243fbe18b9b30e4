import { CAP_SYS_PTRACE, capIsSubset } from './capability.js';
import { EPERM, ESRCH } from './errno.js';
import type { Kernel } from './kernel.js';
import type { Process } from './process.js';

/**
 * ptrace_may_access(target, PTRACE_MODE_READ_REALCREDS) (kernel/ptrace.c): a process may always
 * inspect itself; otherwise __ptrace_may_access wants the caller's real uid and gid equal to the
 * target's (one id each here: real, effective and saved are the same) or CAP_SYS_PTRACE, and then
 * the capability LSM's cap_ptrace_access_check wants the target's permitted set inside the
 * caller's (REALCREDS: the permitted, not the effective, set) or CAP_SYS_PTRACE. Every process is
 * dumpable (SUID_DUMP_USER), so the dumpable check never refuses.
 */
export function ptraceMayAccess(caller: Process, target: Process): boolean {
  if (caller === target) return true;
  const ptrace = caller.capable(CAP_SYS_PTRACE);
  if (!ptrace && (caller.uid !== target.uid || caller.gid !== target.gid)) return false;
  return ptrace || capIsSubset(target.capabilities, caller.capabilities);
}

/**
 * find_mm_struct / the task lookup of kernel_migrate_pages: pid 0 is the caller; another live
 * process must pass ptrace_may_access. Returns the target or an errno (ESRCH, EPERM).
 */
export function findTarget(k: Kernel, caller: Process, pid: number): Process | number {
  const target = pid === 0 ? caller : k.processes.get(pid);
  if (!target || target.exited || !Number.isInteger(pid) || pid < 0) return ESRCH;
  return ptraceMayAccess(caller, target) ? target : EPERM;
}
