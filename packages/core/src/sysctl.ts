import { EACCES, EINVAL, ENOENT, kernelError } from './errno.js';
import {
  type Kernel,
  type KernTunables,
  MAX_THREADS,
  PID_MAX_LIMIT,
  RESERVED_PIDS,
  type VmTunables,
} from './kernel.js';

/** A sysctl handler that a subsystem (kcompactd) installs for a write-triggered action. */
export type SysctlAction = (value: number) => number;

interface Knob {
  min: number;
  max: number;
  /** Write-only files (mode 0200) refuse reads with EACCES. */
  writeOnly?: boolean;
  get?: () => number;
  set: (v: number) => number;
}

/**
 * Parses an integer the way proc_dointvec does (proc_get_long): optional leading whitespace and
 * '-', then strtoul with base 0 (0x.. hex, 0.. octal, else decimal), then only whitespace.
 */
function parseInt10(value: string | number): number | null {
  if (typeof value === 'number') return Number.isSafeInteger(value) ? value : null;
  if (typeof value !== 'string') return null;
  const m = /^\s*(-?)(?:0[xX]([0-9a-fA-F]+)|(0[0-7]*)|([1-9]\d*))\s*$/.exec(value);
  if (!m) return null;
  const v = m[2] !== undefined ? parseInt(m[2], 16) : m[3] !== undefined ? parseInt(m[3], 8) : Number(m[4]);
  return m[1] ? -v : v;
}

/**
 * /proc/sys/vm and /proc/sys/kernel with the kernel's ranges: out of range or unparsable → EINVAL,
 * an unknown name → ENOENT. `write` returns 0 or an errno, as the write(2) on the file would. A
 * name that is not a string throws EINVAL (no path to open); on a closed machine `write` throws
 * ERR_MACHINE_CLOSED.
 */
export class Sysctl {
  private readonly knobs = new Map<string, Knob>();
  private readonly actions = new Map<string, SysctlAction>();

  constructor(private readonly k: Kernel) {
    const tunable = (name: keyof VmTunables, min: number, max: number, after?: (v: number) => number) =>
      this.knobs.set(`vm.${name}`, {
        min,
        max,
        get: () => k.vm[name],
        set: (v) => {
          k.vm[name] = v;
          return after ? after(v) : 0;
        },
      });
    tunable('min_free_kbytes', 0, 2 ** 31 - 1, () => {
      k.setupWatermarks();
      return 0;
    });
    tunable('watermark_scale_factor', 1, 3000, () => {
      k.setupWatermarks();
      return 0;
    });
    tunable(
      'compaction_proactiveness',
      0,
      100,
      (v) => this.actions.get('vm.compaction_proactiveness')?.(v) ?? 0,
    );
    tunable('extfrag_threshold', 0, 1000);
    tunable('compact_unevictable_allowed', 0, 1);
    // pagemig's own knobs (no kernel has them): the batch copy timeout and the abort grace period.
    tunable('migrate_copy_timeout_ms', 1, 2 ** 31 - 1);
    tunable('migrate_abort_grace_ms', 0, 2 ** 31 - 1);
    const kern = (file: string, name: keyof KernTunables, min: number, max: number) =>
      this.knobs.set(`kernel.${file}`, {
        min,
        max,
        get: () => k.kern[name],
        set: (v) => {
          k.kern[name] = v;
          return 0;
        },
      });
    // pid_max_min/pid_max_max of kernel/pid.c; sysctl_max_threads' 1..MAX_THREADS (kernel/fork.c).
    kern('pid_max', 'pid_max', RESERVED_PIDS + 1, PID_MAX_LIMIT);
    kern('threads-max', 'threads_max', 1, MAX_THREADS);
    tunable('max_map_count', 0, 2 ** 31 - 1);
    // compact_memory accepts only 1 (recent kernels) and needs the compaction subsystem attached.
    this.knobs.set('vm.compact_memory', {
      min: 1,
      max: 1,
      writeOnly: true,
      set: (v) => this.actions.get('vm.compact_memory')?.(v) ?? ENOENT,
    });
  }

  /** Installs the action behind a knob (e.g. kcompactd for vm.compact_memory). Returns undo. */
  setAction(name: string, action: SysctlAction): () => void {
    this.actions.set(name, action);
    return () => {
      if (this.actions.get(name) === action) this.actions.delete(name);
    };
  }

  private knob(name: string, what: string): Knob | undefined {
    if (typeof name !== 'string')
      throw kernelError(
        EINVAL,
        `sysctl.${what}: the name must be a string like 'vm.min_free_kbytes', got ${typeof name}`,
      );
    return this.knobs.get(normalize(name));
  }

  names(): string[] {
    return [...this.knobs.keys()];
  }

  /** The file's content (value and newline); throws ENOENT/EACCES like open(2) would fail. */
  read(name: string): string {
    const knob = this.knob(name, 'read');
    if (!knob) throw kernelError(ENOENT, `${name}: no such sysctl`);
    if (knob.writeOnly || !knob.get) throw kernelError(EACCES, `${name}: write-only file`);
    return `${knob.get()}\n`;
  }

  /** Writes a value; 0 on success or the errno the kernel returns. */
  write(name: string, value: string | number): number {
    const knob = this.knob(name, 'write');
    if (!knob) return ENOENT;
    if (normalize(name) === 'vm.compact_memory' && !this.actions.has('vm.compact_memory')) return ENOENT;
    const v = parseInt10(value);
    if (v === null || v < knob.min || v > knob.max) return EINVAL;
    // A write that would take effect (or start compaction) refuses on a closed machine.
    this.k.assertOpen(`sysctl.write(${JSON.stringify(name)})`);
    return knob.set(v);
  }
}

function normalize(name: string): string {
  return name.replace(/^\/?proc\/sys\//, '').replace(/\//g, '.');
}
