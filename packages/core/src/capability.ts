import { EINVAL, kernelError } from './errno.js';
import { suggestKey } from './migrator_options.js';
import { show } from './show.js';

/**
 * POSIX capabilities (include/uapi/linux/capability.h): the names in bit order, so the index of a
 * name is its CAP_* number (CAP_SYS_PTRACE 19, CAP_SYS_NICE 23, CAP_LAST_CAP 40).
 */
export const CAPABILITIES = [
  'CAP_CHOWN',
  'CAP_DAC_OVERRIDE',
  'CAP_DAC_READ_SEARCH',
  'CAP_FOWNER',
  'CAP_FSETID',
  'CAP_KILL',
  'CAP_SETGID',
  'CAP_SETUID',
  'CAP_SETPCAP',
  'CAP_LINUX_IMMUTABLE',
  'CAP_NET_BIND_SERVICE',
  'CAP_NET_BROADCAST',
  'CAP_NET_ADMIN',
  'CAP_NET_RAW',
  'CAP_IPC_LOCK',
  'CAP_IPC_OWNER',
  'CAP_SYS_MODULE',
  'CAP_SYS_RAWIO',
  'CAP_SYS_CHROOT',
  'CAP_SYS_PTRACE',
  'CAP_SYS_PACCT',
  'CAP_SYS_ADMIN',
  'CAP_SYS_BOOT',
  'CAP_SYS_NICE',
  'CAP_SYS_RESOURCE',
  'CAP_SYS_TIME',
  'CAP_SYS_TTY_CONFIG',
  'CAP_MKNOD',
  'CAP_LEASE',
  'CAP_AUDIT_WRITE',
  'CAP_AUDIT_CONTROL',
  'CAP_SETFCAP',
  'CAP_MAC_OVERRIDE',
  'CAP_MAC_ADMIN',
  'CAP_SYSLOG',
  'CAP_WAKE_ALARM',
  'CAP_BLOCK_SUSPEND',
  'CAP_AUDIT_READ',
  'CAP_PERFMON',
  'CAP_BPF',
  'CAP_CHECKPOINT_RESTORE',
] as const;

export type Capability = (typeof CAPABILITIES)[number];

/** Overrides ptrace_may_access (cap_ptrace_access_check, __ptrace_may_access). */
export const CAP_SYS_PTRACE = 'CAP_SYS_PTRACE' satisfies Capability;
/** Needed for MPOL_MF_MOVE_ALL, and by migrate_pages(2) for nodes outside the target's cpuset. */
export const CAP_SYS_NICE = 'CAP_SYS_NICE' satisfies Capability;

/** CAP_FULL_SET: what a root process has after execve (and `privileged: true` gives). */
export const CAP_FULL_SET: ReadonlySet<Capability> = new Set(CAPABILITIES);
const CAP_EMPTY_SET: ReadonlySet<Capability> = new Set();

/**
 * The capability set of a new process: the given list; else `privileged` (true: the full set,
 * false: none); else what execve gives: the full set for uid 0, none for anyone else.
 */
export function capabilitySet(
  capabilities: readonly Capability[] | undefined,
  privileged: boolean | undefined,
  uid: number,
): ReadonlySet<Capability> {
  if (capabilities) return new Set(capabilities);
  if (privileged !== undefined) return privileged ? CAP_FULL_SET : CAP_EMPTY_SET;
  return uid === 0 ? CAP_FULL_SET : CAP_EMPTY_SET;
}

/** spawn's check of `capabilities`: a list of CAP_* names (EINVAL naming the bad entry). */
export function checkCapabilities(caps: unknown): void {
  if (caps === undefined) return;
  if (!Array.isArray(caps))
    throw kernelError(
      EINVAL,
      `capabilities must be a list of names like ['CAP_SYS_NICE'], got ${show(caps)}`,
    );
  for (const c of caps) {
    if ((CAPABILITIES as readonly unknown[]).includes(c)) continue;
    const hint = typeof c === 'string' ? suggestKey(c, CAPABILITIES) : undefined;
    throw kernelError(
      EINVAL,
      `capabilities: ${show(c)} is not a capability${hint ? `; did you mean ${JSON.stringify(hint)}?` : ' (CAP_SYS_NICE, CAP_SYS_PTRACE, ... of linux/capability.h)'}`,
    );
  }
}

/** cap_issubset(a, b): every capability of `a` is in `b`. */
export function capIsSubset(a: ReadonlySet<Capability>, b: ReadonlySet<Capability>): boolean {
  if (a.size > b.size) return false;
  for (const c of a) if (!b.has(c)) return false;
  return true;
}
