import { EACCES, EINVAL, ENOENT, ESRCH, kernelError, PagemigError } from './errno.js';
import { hugetlbSysctls } from './hugetlb_sysfs.js';
import {
  type Kernel,
  type KernTunables,
  MAX_THREADS,
  PID_MAX_LIMIT,
  RESERVED_PIDS,
  type VmTunables,
} from './kernel.js';
import { resetMemoryTiering } from './numa_promotion.js';
import type { Process } from './process.js';
import { show } from './show.js';
import { NUMA_BALANCING_MEMORY_TIERING } from './task_numa.js';

/**
 * A sysctl handler that a subsystem installs (kcompactd): 0 or an errno, or for a knob whose
 * kernel handler works inside the write (vm.compact_memory), a promise of it settled when the
 * work is done.
 */
export type SysctlAction = (value: number) => number | Promise<number>;

/** Who writes: a process (its permission is checked, the handler's events and allocations are its). */
export interface SysctlWriteOptions {
  task?: Process;
}

interface Knob {
  min: number;
  max: number;
  /** Write-only files (mode 0200) refuse reads with EACCES. */
  writeOnly?: boolean;
  /** An unsigned long (proc_doulongvec_minmax): any '-' is EINVAL, even "-0". */
  ulong?: boolean;
  get?: () => number;
  /** The handler of a knob that only sets a value (and maybe wakes a thread). */
  set?: (v: number) => number;
  /** The handler of a knob whose kernel handler works inside the write: writeAsync only. */
  work?: (v: number) => Promise<number>;
}

const ULONG_MAX = 2n ** 64n - 1n;

/**
 * Parses an integer the way proc_dointvec does (proc_get_long): optional leading whitespace and
 * '-', then strtoul with base 0 (0x.. hex, 0.. octal, else decimal), then only whitespace.
 */
function parseInt10(value: string | number): number | null {
  if (typeof value === 'number') return Number.isSafeInteger(value) ? value : null;
  if (typeof value !== 'string') return null;
  const m = /^\s*(-?)(?:0[xX]([0-9a-fA-F]+)|(0[0-7]*)|([1-9]\d*))\s*$/.exec(value);
  if (!m) return null;
  const digits = m[2] !== undefined ? `0x${m[2]}` : m[3] !== undefined ? `0o${m[3].slice(1) || '0'}` : m[4]!;
  // strtoul's overflow (above ULONG_MAX) is EINVAL; compared exactly, as a double rounds 2^64 - 1 up.
  if (BigInt(digits) > ULONG_MAX) return null;
  const v = Number(digits);
  return m[1] ? -v : v;
}

/**
 * /proc/sys/vm and /proc/sys/kernel with the kernel's ranges: out of range or unparsable → EINVAL,
 * an unknown name → ENOENT. `write` returns 0 or an errno, as the write(2) on the file would. A
 * name that is not a string throws EINVAL (no path to open); on a closed machine `write` throws
 * ERR_MACHINE_CLOSED. A knob whose kernel handler does its work inside the write
 * (vm.compact_memory: compact_nodes()) is written with `await writeAsync(...)`, which settles once
 * the work is done, as the write(2) returns after it; `write` refuses it (ERR_SYSCTL_ASYNC).
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
    tunable('compaction_proactiveness', 0, 100, (v) => this.syncAction('vm.compaction_proactiveness', v));
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
    // sysctl_numa_balancing (kernel/sched/core.c): proc_dointvec_minmax 0..4 (SYSCTL_FOUR): 1
    // NUMA_BALANCING_NORMAL, 2 NUMA_BALANCING_MEMORY_TIERING (promotion of hot slow-tier folios),
    // 3 both. The attached numa-balancing daemon hears of every write.
    this.knobs.set('kernel.numa_balancing', {
      min: 0,
      max: 4,
      get: () => k.kern.numa_balancing,
      set: (v) => {
        if (!(k.kern.numa_balancing & NUMA_BALANCING_MEMORY_TIERING) && v & NUMA_BALANCING_MEMORY_TIERING)
          resetMemoryTiering(k);
        k.kern.numa_balancing = v;
        return this.syncAction('kernel.numa_balancing', v);
      },
    });
    // The scanner's knobs by their sysctl names (kernel.numa_balancing_scan_*, until 5.13; since,
    // /sys/kernel/debug/sched/numa_balancing/*): proc_dointvec, scan_size_mb at least 1. Negative
    // values, which the kernel would store wrapped into its unsigned variables, are EINVAL here.
    kern('numa_balancing_scan_delay_ms', 'numa_balancing_scan_delay_ms', 0, 2 ** 31 - 1);
    kern('numa_balancing_scan_period_min_ms', 'numa_balancing_scan_period_min_ms', 0, 2 ** 31 - 1);
    kern('numa_balancing_scan_period_max_ms', 'numa_balancing_scan_period_max_ms', 0, 2 ** 31 - 1);
    kern('numa_balancing_scan_size_mb', 'numa_balancing_scan_size_mb', 1, 2 ** 31 - 1);
    // sched_fair_sysctls: numa_balancing_promote_rate_limit_MBps, proc_dointvec_minmax from 0.
    kern('numa_balancing_promote_rate_limit_MBps', 'numa_balancing_promote_rate_limit_MBps', 0, 2 ** 31 - 1);
    // The kernel's debugfs u32 sched/numa_balancing/hot_threshold_ms, a sysctl here.
    kern('numa_balancing_hot_threshold_ms', 'numa_balancing_hot_threshold_ms', 0, 2 ** 32 - 1);
    tunable('max_map_count', 0, 2 ** 31 - 1);
    // mm/hugetlb_sysctl.c: the hugetlb pool's size and surplus limit.
    for (const [name, knob] of hugetlbSysctls(k)) this.knobs.set(name, knob);
    // compact_memory accepts only 1 (recent kernels) and needs the compaction subsystem attached.
    this.knobs.set('vm.compact_memory', {
      min: 1,
      max: 1,
      writeOnly: true,
      work: async (v) => (await this.actions.get('vm.compact_memory')?.(v)) ?? ENOENT,
    });
  }

  /** The action of a knob whose handler returns at once (0 when none is installed). */
  private syncAction(name: string, v: number): number {
    const r = this.actions.get(name)?.(v) ?? 0;
    if (typeof r !== 'number')
      throw new PagemigError(
        'ERR_SYSCTL_ASYNC',
        `sysctl ${name}: its action returned a promise; it must return 0 or an errno`,
      );
    return r;
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

  /**
   * Writes a value; 0 on success or the errno the kernel returns. With `task`, the process writes:
   * the files are root's (mode 0644, 0200), so a uid other than 0 gets EACCES (proc_sys_permission),
   * and what the handler does (a kcompactd wake-up) is traced as that process's.
   */
  write(name: string, value: string | number, opts: SysctlWriteOptions = {}): number {
    const knob = this.knob(name, 'write');
    if (knob?.work)
      throw new PagemigError(
        'ERR_SYSCTL_ASYNC',
        `sysctl.write(${JSON.stringify(name)}): the kernel's handler works inside the write (it returns when done); write it with await m.sysctl.writeAsync(${JSON.stringify(name)}, ${show(value)})`,
      );
    const { errno, v } = this.prepare(name, knob, value, opts, 'write');
    if (errno) return errno;
    const set = knob!.set!;
    return opts.task ? this.k.trace.during(opts.task, () => set(v)) : set(v);
  }

  /**
   * Writes any knob and settles with 0 or the errno once the kernel's handler is done: for
   * vm.compact_memory, once every zone of every node was compacted (compact_nodes()), so a
   * /proc/vmstat read after it sees the compaction. `task` as for `write`: the compaction runs as
   * that process (its tracepoints carry its pid and comm).
   */
  async writeAsync(name: string, value: string | number, opts: SysctlWriteOptions = {}): Promise<number> {
    const knob = this.knob(name, 'writeAsync');
    const { errno, v } = this.prepare(name, knob, value, opts, 'writeAsync');
    if (errno) return errno;
    const run = () => (knob!.work ? knob!.work(v) : Promise.resolve(knob!.set!(v)));
    return opts.task ? this.k.trace.during(opts.task, run) : run();
  }

  /**
   * The checks of a write, in the kernel's order: the file exists (ENOENT; vm.compact_memory only
   * with compaction attached), the writer may open it (EACCES), the value parses and is in range
   * (EINVAL), the machine is open. Returns the errno (0: go on) and the value.
   */
  private prepare(
    name: string,
    knob: Knob | undefined,
    value: string | number,
    opts: SysctlWriteOptions,
    what: string,
  ): { errno: number; v: number } {
    if (typeof opts !== 'object' || opts === null)
      throw kernelError(EINVAL, `sysctl.${what}: options must be an object like { task }, got ${opts}`);
    const task = opts.task;
    if (task !== undefined && (typeof task !== 'object' || task === null || !Number.isInteger(task.uid)))
      throw kernelError(EINVAL, `sysctl.${what}: task must be a process (m.spawn()), got ${String(task)}`);
    const fail = (errno: number) => ({ errno, v: 0 });
    if (!knob) return fail(ENOENT);
    if (knob.work && !this.actions.has(normalize(name))) return fail(ENOENT);
    if (task && task.uid !== 0) return fail(EACCES);
    if (knob.ulong && typeof value === 'string' && /^\s*-/.test(value)) return fail(EINVAL);
    const v = parseInt10(value);
    if (v === null || v < knob.min || v > knob.max) return fail(EINVAL);
    // A write that would take effect (or start compaction) refuses on a closed machine.
    this.k.assertOpen(`sysctl.${what}(${JSON.stringify(name)})`);
    if (task?.exited)
      throw new PagemigError('ERR_PROCESS_EXITED', `process ${task.pid} has exited`, { errno: ESRCH });
    return { errno: 0, v };
  }
}

function normalize(name: string): string {
  return name.replace(/^\/?proc\/sys\//, '').replace(/\//g, '.');
}
