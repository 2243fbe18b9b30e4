import {
  checkMachine,
  EINVAL,
  type Machine,
  type MigrationPhases,
  PagemigError,
  type Process,
} from '@pagemig/core';
import {
  flushProtNuma,
  MachineDaemon,
  type MisplacedMigration,
  misplacedCpuSeconds,
  misplacedInFlight,
  misplacedSettled,
  numaFaultStats,
  onMisplacedMigration,
  pagetable,
  promotionState,
  show,
  unknownOption,
  walkPageRange,
} from '@pagemig/core/internal';
import {
  mmRss,
  type ScanKnobs,
  type TaskScan,
  taskNumaPlacement,
  taskNumaWork,
  taskScanMax,
  taskScanMin,
} from './task_numa_work.js';

export interface NumaBalancingOptions {
  /**
   * Instead of kernel.numa_balancing_scan_delay_ms: how long after a process is first seen running
   * its first scan pass comes (ms).
   */
  scanDelayMs?: number;
  /** Shorthand for scanPeriodMinMs = scanPeriodMaxMs: a scan period that does not adapt (ms). */
  scanPeriodMs?: number;
  /**
   * Instead of kernel.numa_balancing_scan_period_min_ms: the time to scan the whole resident set
   * at the fastest (ms).
   */
  scanPeriodMinMs?: number;
  /** Instead of kernel.numa_balancing_scan_period_max_ms: the same at the slowest (ms). */
  scanPeriodMaxMs?: number;
  /** Instead of kernel.numa_balancing_scan_size_mb: the scan window (MB of pages per pass). */
  scanSizeMb?: number;
}

/** What one attached instance did since it was attached. */
export interface NumaBalancingStats {
  /** The NUMA balancing counters of /proc/vmstat, as deltas since attach. */
  counters: Record<(typeof NUMA_COUNTERS)[number], number>;
  /** task_numa_work passes run, and the entries they made PROT_NONE. */
  scans: number;
  ptesUpdated: number;
  /** Misplaced-folio migrations that reached the engine, and their outcome in pages. */
  migrations: number;
  pagesMigrated: number;
  pagesFailed: number;
  /** The engine's phases summed over those migrations (seconds), and their wall time. */
  phases: MigrationPhases;
  wallSeconds: number;
  /**
   * CPU seconds of the kernel's (main) thread while misplaced migrations were in flight (core's
   * misplacedCpuSeconds; busy periods that ended): the engine's work on them and whatever else
   * that thread did meanwhile. Call settled() first for a complete figure.
   */
  cpuSeconds: number;
  /** Folios offered to and copied by the migrator routed for numa_misplaced, and its name. */
  foliosOffered: number;
  foliosCopied: number;
  migrator: string | null;
  /**
   * Memory tiering (kernel.numa_balancing=2): pgpromote_candidate, pgpromote_candidate_nrl and
   * pgpromote_success as deltas since attach, and each node's adapted hot threshold in ms
   * (pgdat->nbp_threshold; 0 = kernel.numa_balancing_hot_threshold_ms is in force).
   */
  promotion: { candidates: number; candidatesNrl: number; promoted: number; thresholdMs: number[] };
  /** Per process that ran threads while attached: its scanner and what its faults recorded. */
  processes: {
    pid: number;
    comm: string;
    scanPeriodMs: number;
    scanSeq: number;
    scans: number;
    ptesUpdated: number;
    hintFaults: number;
    pagesMigrated: number;
  }[];
}

/** The counters of mm/vmstat.c's CONFIG_NUMA_BALANCING block, in the kernel's order. */
export const NUMA_COUNTERS = [
  'numa_pte_updates',
  'numa_huge_pte_updates',
  'numa_hint_faults',
  'numa_hint_faults_local',
  'numa_pages_migrated',
] as const;

/** The memory-tiering counters of /proc/vmstat (node stats), in the kernel's order. */
const PROMOTION_COUNTERS = ['pgpromote_success', 'pgpromote_candidate', 'pgpromote_candidate_nrl'] as const;

/** The scheduler tick that checks for due scans (HZ=250). */
const TICK_MS = 4;
/** The largest value of the sysctls (proc_dointvec). */
const INT_MAX = 2 ** 31 - 1;

const KNOWN = ['scanDelayMs', 'scanPeriodMs', 'scanPeriodMinMs', 'scanPeriodMaxMs', 'scanSizeMb'];

function optionError(message: string): PagemigError {
  return new PagemigError('ERR_NUMA_BALANCING_OPTION', `attachNumaBalancing: ${message}`, { errno: EINVAL });
}

function checkOptions(opts: unknown): NumaBalancingOptions {
  if (typeof opts !== 'object' || opts === null || Array.isArray(opts))
    throw optionError(`options must be an object like { scanDelayMs: 10 }, got ${show(opts)}`);
  const o = opts as Record<string, unknown>;
  const unknown = unknownOption(o, KNOWN);
  if (unknown) throw optionError(unknown);
  const int = (key: string, min: number, what: string) => {
    const v = o[key];
    if (v !== undefined && !(Number.isInteger(v) && (v as number) >= min && (v as number) <= INT_MAX))
      throw optionError(`${key} must be ${what} (an integer ${min}..${INT_MAX}), got ${show(v)}`);
  };
  for (const key of ['scanDelayMs', 'scanPeriodMs', 'scanPeriodMinMs', 'scanPeriodMaxMs'])
    int(key, 0, 'a number of ms');
  int('scanSizeMb', 1, 'a number of MB');
  if (o.scanPeriodMs !== undefined && (o.scanPeriodMinMs !== undefined || o.scanPeriodMaxMs !== undefined))
    throw optionError('give either scanPeriodMs or scanPeriodMinMs/scanPeriodMaxMs, not both');
  return o as NumaBalancingOptions;
}

/**
 * Automatic NUMA balancing for one machine: the task_numa_work scanner of every process that runs
 * user threads, driven by kernel.numa_balancing. Hinting faults and misplaced-folio migrations are
 * core's (do_numa_page); this instance scans, adapts each process's scan period and accounts for
 * the migrations. Create it with `attachNumaBalancing(m, options)`.
 */
export class NumaBalancing extends MachineDaemon {
  private readonly opts: NumaBalancingOptions;
  private readonly tasks = new Map<Process, TaskScan>();
  private readonly counters0: Record<string, number>;
  private readonly cpu0: number;
  private readonly totals = {
    migrations: 0,
    pagesMigrated: 0,
    pagesFailed: 0,
    phases: { unmap: 0, flush: 0, batchCopy: 0, fallbackCopy: 0, move: 0 } as MigrationPhases,
    wallSeconds: 0,
    foliosOffered: 0,
    foliosCopied: 0,
    migrator: null as string | null,
  };
  private wakeFn: (() => void) | null = null;
  /** A pass in progress (its TLB shootdown), for settled(). */
  private scanning: Promise<void> | null = null;
  private readonly done: Promise<void>;

  constructor(machine: Machine, options: NumaBalancingOptions = {}) {
    // One per machine; errors (what the scanner loop died of, migrations the engine threw on)
    // come from MachineDaemon.
    super(machine, 'NUMA balancing');
    this.opts = checkOptions(options);
    this.checkAttachable('attachNumaBalancing');
    const v = machine.vmstat();
    this.cpu0 = misplacedCpuSeconds(machine.kernel);
    this.counters0 = Object.fromEntries([...NUMA_COUNTERS, ...PROMOTION_COUNTERS].map((c) => [c, v[c]]));
    this.undo.push(machine.sysctl.setAction('kernel.numa_balancing', () => this.wake()));
    this.undo.push(onMisplacedMigration(this.kernel, (m) => this.record(m)));
    this.attached();
    this.done = this.loop().catch((e: unknown) => {
      this.errors.push(e);
    });
  }

  /** The scanner's knobs in force: the options, else the sysctls (read at every pass). */
  knobs(): ScanKnobs {
    const kern = this.kernel.kern;
    const o = this.opts;
    return {
      scanDelayMs: o.scanDelayMs ?? kern.numa_balancing_scan_delay_ms,
      scanPeriodMinMs: o.scanPeriodMs ?? o.scanPeriodMinMs ?? kern.numa_balancing_scan_period_min_ms,
      scanPeriodMaxMs: o.scanPeriodMs ?? o.scanPeriodMaxMs ?? kern.numa_balancing_scan_period_max_ms,
      scanSizeMb: o.scanSizeMb ?? kern.numa_balancing_scan_size_mb,
    };
  }

  private record(m: MisplacedMigration): void {
    const t = this.totals;
    t.migrations++;
    const r = m.result;
    if (!r) {
      t.pagesFailed += 1 << m.order;
      this.errors.push(m.error);
      return;
    }
    t.pagesMigrated += r.nrSucceeded;
    t.pagesFailed += r.nrFailed;
    for (const key of Object.keys(t.phases) as (keyof MigrationPhases)[]) t.phases[key] += r.phases[key];
    t.wallSeconds += r.wallSeconds;
    t.foliosOffered += r.offload.foliosOffered;
    t.foliosCopied += r.offload.foliosCopied;
    t.migrator = r.offload.migrator ?? t.migrator;
  }

  private wake(): number {
    this.wakeFn?.();
    return 0;
  }

  /** Sleeps `ms` (forever: until woken by a kernel.numa_balancing write or stop()). */
  private sleep(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      let timer: NodeJS.Timeout | undefined;
      this.wakeFn = () => {
        this.wakeFn = null;
        clearTimeout(timer);
        resolve();
      };
      if (Number.isFinite(ms)) {
        // The scanner's timer never keeps the process alive.
        timer = setTimeout(() => this.wakeFn?.(), ms);
        timer.unref();
      }
    });
  }

  private async loop(): Promise<void> {
    // The daemon starts on the next turn of the event loop.
    await Promise.resolve();
    while (!this.stopping) {
      // A manual clock does not move by itself: passes are driven with scanNow().
      if (this.kernel.kern.numa_balancing === 0 || this.kernel.clock.mode === 'manual') {
        await this.sleep(Number.POSITIVE_INFINITY);
        continue;
      }
      while (this.scanning) await this.scanning;
      this.scanning = this.tick();
      await this.scanning;
      this.scanning = null;
      if (!this.stopping) await this.sleep(TICK_MS);
    }
  }

  /**
   * task_tick_numa for every process with live user threads: the first time it is seen its first
   * pass is scheduled scan_delay later; a due pass runs task_numa_work and shoots the TLB down.
   */
  private async tick(): Promise<void> {
    const k = this.kernel;
    const now = k.clock.now();
    const knobs = this.knobs();
    for (const [proc] of this.tasks) if (proc.exited) this.tasks.delete(proc);
    for (const proc of k.processes.values()) {
      if (this.stopping) return;
      if (!proc.threads.length || proc.exited) continue;
      await this.scanTask(proc, now, knobs, false);
    }
  }

  /**
   * One process's turn: task_numa_placement's period adaptation, then, when the pass is due (or
   * `force`), one task_numa_work pass and its TLB shootdown. The scanning task is the process's
   * only thread, or with none the process itself on its node (a main-thread driver); with several
   * threads the first one scans and no node is skipped.
   */
  private async scanTask(proc: Process, now: number, knobs: ScanKnobs, force: boolean): Promise<void> {
    const k = this.kernel;
    const threads = proc.threads;
    let st = this.tasks.get(proc);
    if (!st) {
      st = {
        nextScan: now + knobs.scanDelayMs,
        period: 0,
        periodMax: 0,
        offset: 0,
        seq: 0,
        placedSeq: 0,
        placedFaults: 0,
        passes: 0,
        ptesUpdated: 0,
      };
      this.tasks.set(proc, st);
    }
    const mm = proc.mm;
    if (st.period) taskNumaPlacement(st, numaFaultStats(mm), knobs, () => mmRss(mm), now);
    if (!force && now < st.nextScan) return;
    if (st.period === 0) {
      const rss = mmRss(mm);
      st.periodMax = taskScanMax(knobs, rss);
      st.period = taskScanMin(knobs, rss);
    }
    st.nextScan = now + st.period;
    const thisNid = threads.length ? threads[0]!.node : proc.node;
    // A single-threaded process leaves alone what is already on its thread's node.
    const target = threads.length <= 1 ? thisNid : -1;
    if (taskNumaWork(k, (vpn) => mm.vmasFrom(vpn), st, knobs, target, thisNid)) await flushProtNuma(mm);
  }

  /**
   * One task_numa_work pass for every live process now, whatever its scan period (for runs stepped
   * on a manual clock; the pass sets the next one a period later as a timed pass does). Resolves
   * once every pass has made its entries PROT_NONE and shot the TLB down; the faults and the
   * migrations come later, from the processes' accesses (settled() waits for those). Nothing is
   * scanned while kernel.numa_balancing is 0. Rejects with ERR_NUMA_BALANCING_STOPPED after stop().
   */
  async scanNow(): Promise<void> {
    if (this.stopping)
      throw new PagemigError('ERR_NUMA_BALANCING_STOPPED', 'scanNow: NUMA balancing is stopped');
    const k = this.kernel;
    if (k.kern.numa_balancing === 0) return;
    while (this.scanning) await this.scanning;
    const pass = (async () => {
      const now = k.clock.now();
      const knobs = this.knobs();
      for (const [proc] of this.tasks) if (proc.exited) this.tasks.delete(proc);
      for (const proc of [...k.processes.values()])
        if (!proc.exited) await this.scanTask(proc, now, knobs, true);
    })();
    this.scanning = pass;
    try {
      await pass;
    } finally {
      if (this.scanning === pass) this.scanning = null;
    }
  }

  /** Totals since attach. */
  stats(): NumaBalancingStats {
    const v = this.machine.vmstat();
    const t = this.totals;
    const processes = [...this.tasks].map(([proc, st]) => {
      const s = numaFaultStats(proc.mm);
      return {
        pid: proc.pid,
        comm: proc.comm,
        scanPeriodMs: st.period,
        scanSeq: st.seq,
        scans: st.passes,
        ptesUpdated: st.ptesUpdated,
        hintFaults: s.faults,
        pagesMigrated: s.pagesMigrated,
      };
    });
    return {
      counters: Object.fromEntries(
        NUMA_COUNTERS.map((c) => [c, v[c] - this.counters0[c]!]),
      ) as NumaBalancingStats['counters'],
      scans: processes.reduce((n, p) => n + p.scans, 0),
      ptesUpdated: processes.reduce((n, p) => n + p.ptesUpdated, 0),
      migrations: t.migrations,
      pagesMigrated: t.pagesMigrated,
      pagesFailed: t.pagesFailed,
      phases: { ...t.phases },
      wallSeconds: t.wallSeconds,
      cpuSeconds: misplacedCpuSeconds(this.kernel) - this.cpu0,
      promotion: {
        candidates: v.pgpromote_candidate - this.counters0.pgpromote_candidate!,
        candidatesNrl: v.pgpromote_candidate_nrl - this.counters0.pgpromote_candidate_nrl!,
        promoted: v.pgpromote_success - this.counters0.pgpromote_success!,
        thresholdMs: this.kernel.nodes.map((_, nid) => promotionState(this.kernel, nid).threshold),
      },
      foliosOffered: t.foliosOffered,
      foliosCopied: t.foliosCopied,
      migrator: t.migrator,
      processes,
    };
  }

  /** Misplaced-folio migrations in flight on the machine. */
  inFlight(): number {
    return misplacedInFlight(this.kernel);
  }

  /** Resolves once no scan pass and no misplaced-folio migration is in progress. */
  async settled(): Promise<void> {
    while (this.scanning || misplacedInFlight(this.kernel)) {
      if (this.scanning) await this.scanning;
      await misplacedSettled(this.kernel);
    }
  }

  /**
   * stop() (idempotent) has removed the sysctl action and the listener: the scanner is woken to
   * exit, the migrations in flight end, and every PROT_NONE entry the scanner left is made
   * accessible again, so the machine is as if NUMA balancing had never been attached but for where
   * the folios now are. (The kernel leaves them when kernel.numa_balancing goes to 0: they fault
   * once each, harmlessly; writing 0 here does the same.)
   */
  protected async shutdown(): Promise<void> {
    this.wakeFn?.();
    await this.done;
    await this.settled();
    for (const proc of this.kernel.processes.values()) restoreProtections(proc);
  }
}

/** A PROT_NONE entry made accessible as it was before the scan (no accessed bit set). */
function unprotect(e: number): number {
  return (e & ~pagetable.PTE_PROTNONE) | pagetable.PTE_PRESENT;
}

/** Makes every PROT_NONE entry of `proc` accessible (no TLB flush: access only grows). */
function restoreProtections(proc: Process): void {
  const pt = proc.mm.pt;
  for (const vma of proc.mm.vmas) {
    walkPageRange(pt, vma.startVpn, vma.endVpn, {
      pmdEntry(_pt, i, e) {
        if (pagetable.pteIsProtnone(e)) Atomics.store(pt.pmd, i, unprotect(e));
      },
      pteEntry(_pt, i, e) {
        if (pagetable.pteIsProtnone(e)) Atomics.store(pt.pte, i, unprotect(e));
      },
    });
  }
}

/**
 * Attaches automatic NUMA balancing to a machine. It scans while kernel.numa_balancing is not 0
 * (`m.sysctl.write('kernel.numa_balancing', '1')`); misplaced folios migrate through the migrator
 * routed for numa_misplaced. `await nb.stop()` detaches it.
 */
export function attachNumaBalancing(m: Machine, options: NumaBalancingOptions = {}): NumaBalancing {
  checkMachine(m, 'attachNumaBalancing');
  return new NumaBalancing(m, options);
}
