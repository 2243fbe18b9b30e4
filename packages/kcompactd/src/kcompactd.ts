import {
  checkMachine,
  EINVAL,
  ESRCH,
  kernelError,
  MAX_PAGE_ORDER,
  type Machine,
  MIGRATE_UNMOVABLE,
  MigrateMode,
  PagemigError,
  type Process,
  TL_KCOMPACTD,
  zoneNames,
} from '@pagemig/core';
import {
  bitmapList,
  checkOptionKeys,
  listenerThrew,
  MAX_TIMER_MS,
  MachineDaemon,
  type PgData,
  show,
  unknownOption,
} from '@pagemig/core/internal';
import {
  type CompactZoneOptions,
  type CompactZoneResult,
  compactionSuitAllocationOrder,
  compactNode,
  compactZone,
  type NodeCompactResult,
  resetIsolationSuitable,
} from './compaction.js';
import { compactionDeferReset, compactionDeferred, deferCompaction } from './defer.js';
import { fragmentationScoreNode, fragmentationScoreWmark } from './fragmentation.js';
import {
  type CompactAllocRequest,
  type CompactAllocResult,
  type DirectCompactAttempt,
  directCompact,
} from './page_alloc.js';
import {
  CompactResult,
  defineCompactionEvents,
  traceKcompactdSleep,
  traceKcompactdWake,
  traceWakeupKcompactd,
  zoneIdx,
} from './tracepoints.js';

function optionError(message: string): PagemigError {
  return new PagemigError('ERR_KCOMPACTD_OPTION', `attachKcompactd: ${message}`, { errno: EINVAL });
}

function stoppedError(what: string): PagemigError {
  return new PagemigError('ERR_KCOMPACTD_STOPPED', `kd.${what}: kcompactd is stopped`);
}

/** HPAGE_FRAG_CHECK_INTERVAL_MSEC: how often kcompactd checks the fragmentation score. */
export const HPAGE_FRAG_CHECK_INTERVAL_MSEC = 500;
/** A proactive pass that did not lower the score delays the next check by 2^6. */
const PROACTIVE_DEFER_SHIFT = 6;

export interface KcompactdOptions {
  /** vm.compaction_proactiveness to set (0..100); default: leave the machine's value (20 at boot). */
  proactiveness?: number;
  /**
   * Proactive check period in ms (HPAGE_FRAG_CHECK_INTERVAL_MSEC = 500). A sleep longer than
   * 2^31 - 1 ms (24.8 days; also the 64-fold back-off of a pass without progress) lasts that
   * long, as msecs_to_jiffies saturates.
   */
  checkIntervalMs?: number;
  /** COMPACT_CLUSTER_MAX for every compaction this instance runs. Default 32. */
  clusterMax?: number;
  /**
   * Per-batch copy timeout handed to the migration engine (ms): > 0 and at most 2^31 - 1, as
   * vm.migrate_copy_timeout_ms. Default: that sysctl (10000).
   */
  copyTimeoutMs?: number;
}

const KNOWN_OPTIONS = ['proactiveness', 'checkIntervalMs', 'clusterMax', 'copyTimeoutMs'];

/** Who allocates (kd.allocFolio): a process, whose context direct compaction runs in. */
export interface AllocFolioOptions {
  task?: Process;
}

/** The keys of an allocation request (core's AllocRequest and the gfp text): any other is a typo. */
const ALLOC_REQUEST_KEYS = Object.keys({
  order: true,
  nid: true,
  mt: true,
  thisNode: true,
  allowed: true,
  kswapdReclaim: true,
  localNid: true,
  interleave: true,
  gfp: true,
} satisfies Record<keyof CompactAllocRequest, true>);

/** The allocating process of kd.allocFolio's options: EINVAL for what is none, ESRCH once it exited. */
function checkTask(opts: AllocFolioOptions, what: string): Process | undefined {
  if (typeof opts !== 'object' || opts === null || Array.isArray(opts))
    throw kernelError(EINVAL, `kd.${what}: options must be an object like { task }, got ${show(opts)}`);
  checkOptionKeys(`kd.${what}`, opts, ['task']);
  const { task } = opts;
  if (task === undefined) return undefined;
  if (typeof task !== 'object' || task === null || !Number.isInteger(task.pid))
    throw kernelError(EINVAL, `kd.${what}: task must be a process (m.spawn()), got ${show(task)}`);
  if (task.exited)
    throw new PagemigError('ERR_PROCESS_EXITED', `kd.${what}: task: process ${task.pid} has exited`, {
      errno: ESRCH,
    });
  return task;
}

/** Who started a compaction. */
export type CompactTrigger = 'direct' | 'kcompactd' | 'proactive' | 'manual';

/** A compact_zone run with what triggered it. */
export type CompactRun = CompactZoneResult & { trigger: CompactTrigger };

/** Totals of the runs of one trigger. */
export interface CompactTotals {
  runs: number;
  pagesMigrated: number;
  pagesFailed: number;
  migrateScanned: number;
  freeScanned: number;
  /** The engine thread's CPU seconds spent in these runs. */
  cpuSeconds: number;
  wallSeconds: number;
  /** Seconds the copies waited on the routed migrator. */
  batchCopySeconds: number;
  foliosCopiedByMigrator: number;
}

function emptyTotals(): CompactTotals {
  return {
    runs: 0,
    pagesMigrated: 0,
    pagesFailed: 0,
    migrateScanned: 0,
    freeScanned: 0,
    cpuSeconds: 0,
    wallSeconds: 0,
    batchCopySeconds: 0,
    foliosCopiedByMigrator: 0,
  };
}

/** One kcompactd<nid>: the per-node state of pglist_data and the thread's loop. */
class NodeDaemon {
  /** kcompactd_max_order */
  maxOrder = 0;
  /** kcompactd_highest_zoneidx */
  highestZoneidx: number;
  /** proactive_compact_trigger */
  proactiveTrigger = false;
  /** Sleeping in wait_event_freezable_timeout (wq_has_sleeper). */
  sleeping = false;
  /** Running a compaction right now. */
  busy = false;
  /** The thread has exited: stop(), or its loop died (kd.errors). */
  stopped = false;
  private wakeFn: (() => void) | null = null;
  private timer: NodeJS.Timeout | undefined;
  readonly done: Promise<void>;
  readonly nrZones: number;
  wakes = 0;
  proactiveRuns = 0;
  /**
   * The kernel thread's identity: its tracepoints carry this pid and comm, as kcompactd<nid>'s do,
   * and it runs on its node's CPUs.
   */
  readonly task: { pid: number; comm: string; node: number };

  constructor(
    private readonly kd: Kcompactd,
    readonly node: PgData,
  ) {
    this.nrZones = Math.max(...node.zones.map((z) => zoneIdx(z))) + 1;
    this.highestZoneidx = this.nrZones - 1;
    this.task = { pid: kd.kernel.nextPid++, comm: `kcompactd${node.nid}`, node: node.nid };
    this.done = kd.kernel.trace
      .during(this.task, () => this.loop())
      .catch((e) => {
        kd.errors.push(e);
      })
      .finally(() => {
        // Exited or died: settled() must not wait for it.
        this.stopped = true;
        this.sleeping = false;
        kd.notifyIdle();
      });
  }

  get nid(): number {
    return this.node.nid;
  }

  /** kcompactd_work_requested */
  workRequested(): boolean {
    return this.maxOrder > 0 || this.kd.stopping || this.proactiveTrigger;
  }

  /** wait_event_freezable_timeout: true when the condition holds on return. */
  private waitEvent(timeoutMs: number): Promise<boolean> {
    if (this.workRequested()) return Promise.resolve(true);
    return new Promise<boolean>((resolve) => {
      this.sleeping = true;
      const done = () => {
        if (!this.sleeping) return;
        this.sleeping = false;
        if (this.timer) clearTimeout(this.timer);
        this.timer = undefined;
        this.wakeFn = null;
        resolve(this.workRequested());
      };
      this.wakeFn = done;
      if (Number.isFinite(timeoutMs)) {
        // The check timer must never keep the process alive. Longer than Node's longest timer it
        // is capped (Node would fire it after 1 ms), as msecs_to_jiffies saturates.
        this.timer = setTimeout(done, Math.min(timeoutMs, MAX_TIMER_MS));
        this.timer.unref();
      }
      this.kd.notifyIdle();
    });
  }

  /** The daemon's work as a `kcompactd` span on its lane of the timeline, while the timeline records. */
  private traced<T>(proactive: number, fn: () => Promise<T>): Promise<T> {
    const tl = this.kd.kernel.timeline;
    return tl.on ? tl.within(TL_KCOMPACTD, fn, () => [this.nid, proactive]) : fn();
  }

  /** wake_up_interruptible */
  wake(): void {
    this.wakeFn?.();
  }

  private async loop(): Promise<void> {
    const kd = this.kd;
    const k = kd.kernel;
    const defaultTimeout = kd.checkIntervalMs;
    let timeout = defaultTimeout;
    // The thread starts on the next turn of the event loop, like a kthread after kthread_run.
    await Promise.resolve();
    while (!kd.stopping) {
      if (!k.vm.compaction_proactiveness) timeout = Number.POSITIVE_INFINITY;
      traceKcompactdSleep(k, this.nid);
      const woke = await this.waitEvent(timeout);
      if (kd.stopping) break;
      this.busy = true;
      try {
        if (woke && !this.proactiveTrigger) {
          await this.traced(0, () => this.doWork());
          timeout = defaultTimeout;
          continue;
        }
        timeout = defaultTimeout;
        if (this.shouldProactiveCompact()) {
          const prevScore = fragmentationScoreNode(this.node);
          this.proactiveRuns++;
          const r = await this.traced(1, () =>
            compactNode(k, this.nid, { proactive: true, ...kd.zoneOpts() }),
          );
          kd.record('proactive', r.zones);
          const score = fragmentationScoreNode(this.node);
          // No progress: back off.
          if (score >= prevScore) timeout = defaultTimeout * 2 ** PROACTIVE_DEFER_SHIFT;
        }
        if (this.proactiveTrigger) this.proactiveTrigger = false;
      } finally {
        this.busy = false;
      }
    }
  }

  /** should_proactive_compact_node */
  shouldProactiveCompact(): boolean {
    const p = this.kd.kernel.vm.compaction_proactiveness;
    if (!p) return false;
    return fragmentationScoreNode(this.node) > fragmentationScoreWmark(p, false);
  }

  /** kcompactd_node_suitable: some zone up to the highest index would benefit. */
  nodeSuitable(): boolean {
    const k = this.kd.kernel;
    for (const zone of this.node.zones) {
      if (zoneIdx(zone) > this.highestZoneidx || zone.present === 0) continue;
      if (compactionSuitAllocationOrder(k, zone, this.maxOrder) === CompactResult.COMPACT_CONTINUE)
        return true;
    }
    return false;
  }

  /** kcompactd_do_work */
  private async doWork(): Promise<void> {
    const kd = this.kd;
    const k = kd.kernel;
    const order = this.maxOrder;
    const highest = this.highestZoneidx;
    this.wakes++;
    traceKcompactdWake(k, this.nid, order, highest);
    k.count('compact_daemon_wake');
    for (const zone of this.node.zones) {
      if (zoneIdx(zone) > highest || zone.present === 0) continue;
      if (compactionDeferred(k, zone, order)) continue;
      if (compactionSuitAllocationOrder(k, zone, order) !== CompactResult.COMPACT_CONTINUE) continue;
      if (kd.stopping) return;
      const r = await compactZone(k, zone, {
        ...kd.zoneOpts(),
        order,
        mode: MigrateMode.MIGRATE_SYNC_LIGHT,
        // GFP_KERNEL
        migratetype: MIGRATE_UNMOVABLE,
        highestZoneidx: highest,
      });
      if (r.result === CompactResult.COMPACT_SUCCESS) compactionDeferReset(k, zone, order, false);
      else if (
        r.result === CompactResult.COMPACT_PARTIAL_SKIPPED ||
        r.result === CompactResult.COMPACT_COMPLETE
      )
        deferCompaction(k, zone, order);
      k.count('compact_daemon_migrate_scanned', r.migrateScanned);
      k.count('compact_daemon_free_scanned', r.freeScanned);
      kd.record('kcompactd', [r]);
    }
    // Done until woken again, unless a larger order or a lower zone was asked for meanwhile.
    if (this.maxOrder <= order) this.maxOrder = 0;
    if (this.highestZoneidx >= highest) this.highestZoneidx = this.nrZones - 1;
  }
}

/**
 * The compaction subsystem of one machine: a kcompactd per node with memory, the
 * vm.compact_memory and vm.compaction_proactiveness sysctl actions, manual per-node compaction,
 * and an allocation path with direct compaction. Create it with `attachKcompactd(m, opts)`.
 */
export class Kcompactd extends MachineDaemon {
  readonly checkIntervalMs: number;
  private readonly daemons = new Map<number, NodeDaemon>();
  private readonly totals: Record<CompactTrigger, CompactTotals> = {
    direct: emptyTotals(),
    kcompactd: emptyTotals(),
    proactive: emptyTotals(),
    manual: emptyTotals(),
  };
  private readonly listeners = new Set<(run: CompactRun) => void>();
  private readonly warnedListeners = new WeakSet<(run: CompactRun) => void>();
  /**
   * Errors thrown by onRun listeners (the newest 100). A listener cannot fail the compaction it
   * is told about: its error is kept here, with one process warning per listener.
   */
  readonly listenerErrors: { trigger: CompactTrigger; error: unknown }[] = [];
  private readonly clusterMax: number | undefined;
  private readonly copyTimeoutMs: number | undefined;

  constructor(machine: Machine, opts: KcompactdOptions = {}) {
    // One kcompactd per machine; stopping (daemons exit, running compactions end at the next
    // batch) and errors (what a daemon loop died of) come from MachineDaemon.
    super(machine, 'kcompactd');
    if (typeof opts !== 'object' || opts === null || Array.isArray(opts))
      throw optionError(`options must be an object like { proactiveness: 20 }, got ${show(opts)}`);
    const unknown = unknownOption(opts, KNOWN_OPTIONS);
    if (unknown) throw optionError(unknown);
    // Each option is read once: a getter read again after the checks could differ or throw.
    const { proactiveness: p, clusterMax, copyTimeoutMs } = opts;
    const checkIntervalMs = opts.checkIntervalMs ?? HPAGE_FRAG_CHECK_INTERVAL_MSEC;
    if (typeof checkIntervalMs !== 'number' || !(checkIntervalMs > 0) || !Number.isFinite(checkIntervalMs))
      throw optionError(`checkIntervalMs must be a positive number of ms, got ${show(checkIntervalMs)}`);
    if (clusterMax !== undefined && (!Number.isInteger(clusterMax) || clusterMax < 1))
      throw optionError(`clusterMax must be a positive integer, got ${show(clusterMax)}`);
    if (
      copyTimeoutMs !== undefined &&
      (typeof copyTimeoutMs !== 'number' || !(copyTimeoutMs > 0) || !(copyTimeoutMs <= MAX_TIMER_MS))
    )
      throw optionError(
        `copyTimeoutMs must be a positive number of ms up to ${MAX_TIMER_MS} (as vm.migrate_copy_timeout_ms), got ${show(copyTimeoutMs)}`,
      );
    if (p !== undefined && !(typeof p === 'number' && Number.isInteger(p) && p >= 0 && p <= 100))
      throw optionError(`proactiveness must be an integer in 0..100, got ${show(p)}`);
    this.checkIntervalMs = checkIntervalMs;
    this.clusterMax = clusterMax;
    this.copyTimeoutMs = copyTimeoutMs;
    this.checkAttachable('attachKcompactd');
    defineCompactionEvents(this.kernel);
    this.install(() => {
      // The allocator's slow path (core) calls these: kswapd's sleep steps wake kcompactd after
      // any failed high-order allocation, and direct compaction runs this package's compaction.
      // They go first: a hook another subsystem holds (EBUSY) is the one refusal possible here.
      this.allocHook('attachKcompactd', 'kswapdSleep', (nid, order, hz) => {
        if (!this.stopping) this.kswapdSleep(nid, order, hz);
      });
      this.allocHook('attachKcompactd', 'directCompact', async (req, prio) => {
        const r = await directCompact(this.kernel, req, prio, this.zoneOpts());
        this.record('direct', r.attempt.zones);
        return r;
      });
      this.undo.push(machine.sysctl.setAction('vm.compact_memory', (v) => this.compactMemorySysctl(v)));
      // Before the action is installed, so the initial value does not trigger a pass.
      if (p !== undefined) machine.sysctl.write('vm.compaction_proactiveness', p);
      this.undo.push(
        machine.sysctl.setAction('vm.compaction_proactiveness', (v) => this.proactivenessSysctl(v)),
      );
    });
    for (const node of this.kernel.nodes) {
      if (node.nrPages > 0 && node.zones.length) this.daemons.set(node.nid, new NodeDaemon(this, node));
    }
    this.attached();
  }

  /** Options every compact_zone of this instance gets. */
  zoneOpts(): Pick<CompactZoneOptions, 'clusterMax' | 'copyTimeoutMs' | 'shouldAbort'> {
    return {
      clusterMax: this.clusterMax,
      copyTimeoutMs: this.copyTimeoutMs,
      shouldAbort: () => this.stopping,
    };
  }

  /** Adds runs to the totals and tells the listeners. */
  record(trigger: CompactTrigger, runs: readonly CompactZoneResult[]): void {
    const t = this.totals[trigger];
    for (const r of runs) {
      t.runs++;
      t.pagesMigrated += r.pagesMigrated;
      t.pagesFailed += r.pagesFailed;
      t.migrateScanned += r.migrateScanned;
      t.freeScanned += r.freeScanned;
      t.cpuSeconds += r.cpuSeconds;
      t.wallSeconds += r.wallSeconds;
      t.batchCopySeconds += r.batchCopySeconds;
      t.foliosCopiedByMigrator += r.offload.foliosCopied;
      const run: CompactRun = { ...r, trigger };
      for (const cb of this.listeners) this.callListener(cb, run);
    }
  }

  private callListener(cb: (run: CompactRun) => void, run: CompactRun): void {
    try {
      cb(run);
    } catch (error) {
      // One warning per listener.
      listenerThrew(
        this.listenerErrors,
        { trigger: run.trigger, error },
        this.warnedListeners,
        cb,
        {
          code: 'PAGEMIG_KCOMPACTD_LISTENER',
          text: (why) =>
            `a kd.onRun listener threw (${why}) after a ${run.trigger} compaction of node ${run.nid}; the compaction went on (kd.listenerErrors)`,
        },
        error,
      );
    }
  }

  /** Calls `cb` after every compact_zone run of this instance. Returns off(). */
  onRun(cb: (run: CompactRun) => void): () => void {
    this.listeners.add(cb);
    return () => this.listeners.delete(cb);
  }

  /** Totals per trigger since attach. */
  stats(): Record<CompactTrigger, CompactTotals> {
    return {
      direct: { ...this.totals.direct },
      kcompactd: { ...this.totals.kcompactd },
      proactive: { ...this.totals.proactive },
      manual: { ...this.totals.manual },
    };
  }

  /** The state of each kcompactd thread. */
  threads(): {
    nid: number;
    pid: number;
    comm: string;
    sleeping: boolean;
    busy: boolean;
    stopped: boolean;
    maxOrder: number;
    wakes: number;
    proactiveRuns: number;
  }[] {
    return [...this.daemons.values()].map((d) => ({
      nid: d.nid,
      pid: d.task.pid,
      comm: d.task.comm,
      sleeping: d.sleeping,
      busy: d.busy,
      stopped: d.stopped,
      maxOrder: d.maxOrder,
      wakes: d.wakes,
      proactiveRuns: d.proactiveRuns,
    }));
  }

  /** Node `nid`'s kcompactd for `kd.<what>`: EINVAL for what is no node id or a node without memory. */
  private daemon(nid: unknown, what: string): NodeDaemon {
    if (!Number.isInteger(nid)) throw kernelError(EINVAL, `kd.${what}: node ${show(nid)} is not a node id`);
    const d = this.daemons.get(nid as number);
    if (d) return d;
    const why =
      (nid as number) >= 0 && (nid as number) < this.kernel.nodes.length
        ? 'it has no memory'
        : 'no such node';
    throw kernelError(
      EINVAL,
      `kd.${what}: node ${nid} has no kcompactd: ${why} (kcompactd runs on the nodes with memory: ${bitmapList([...this.daemons.keys()])})`,
    );
  }

  /**
   * wakeup_kcompactd: asks node `nid`'s kcompactd to compact for `order` (0..MAX_PAGE_ORDER; order
   * 0 is ignored) below zone `highestZoneidx` (default the node's highest). The order and zone
   * index are recorded; the thread is woken only if it sleeps and some zone would benefit. Returns
   * whether it was woken. EINVAL for a bad node, order or zone index; ERR_KCOMPACTD_STOPPED after
   * stop().
   */
  wakeup(nid: number, order: number, highestZoneidx?: number): boolean {
    if (this.stopping) throw stoppedError('wakeup');
    const d = this.daemon(nid, 'wakeup');
    if (!Number.isInteger(order) || order < 0 || order > MAX_PAGE_ORDER)
      throw kernelError(EINVAL, `kd.wakeup: order ${show(order)} is not an integer in 0..${MAX_PAGE_ORDER}`);
    if (
      highestZoneidx !== undefined &&
      (!Number.isInteger(highestZoneidx) || highestZoneidx < 0 || highestZoneidx >= zoneNames.length)
    )
      throw kernelError(
        EINVAL,
        `kd.wakeup: highestZoneidx ${show(highestZoneidx)} is not a zone index 0..${zoneNames.length - 1}`,
      );
    return this.wakeupKcompactd(d, order, highestZoneidx);
  }

  /** wakeup_kcompactd as kswapd's sleep steps call it: the checked request of `wakeup`. */
  private wakeupKcompactd(d: NodeDaemon, order: number, highestZoneidx?: number): boolean {
    if (!order) return false;
    const hz = highestZoneidx ?? d.nrZones - 1;
    if (d.maxOrder < order) d.maxOrder = order;
    if (d.highestZoneidx > hz) d.highestZoneidx = hz;
    if (!d.sleeping) return false;
    if (!d.nodeSuitable()) return false;
    traceWakeupKcompactd(this.kernel, d.nid, order, hz);
    d.wake();
    return true;
  }

  /** The kswapd steps that concern compaction when it goes back to sleep. */
  private kswapdSleep(nid: number, order: number, highestZoneidx: number): void {
    for (const zone of this.kernel.nodes[nid]!.zones) resetIsolationSuitable(this.kernel, zone);
    const d = this.daemons.get(nid);
    if (d) this.wakeupKcompactd(d, order, highestZoneidx);
  }

  /**
   * Allocates a folio like m.kernel.allocFolio, but with the allocator's slow path: on failure
   * kswapd's sleep steps run (skip hints reset, wakeup_kcompactd) and direct compaction is
   * attempted (compact_stall / compact_success / compact_fail). Resolves to the head pfn or -1.
   * With `task`, that process allocates: direct compaction runs in its context (its tracepoints
   * carry its pid and comm) and the allocation counts as local to its node (numa_local).
   */
  async allocFolio(req: CompactAllocRequest, opts: AllocFolioOptions = {}): Promise<number> {
    return (await this.allocSlowpath('allocFolio', req, opts)).pfn;
  }

  /** allocFolio with the direct compaction attempts it made. */
  allocFolioDetailed(req: CompactAllocRequest, opts: AllocFolioOptions = {}): Promise<CompactAllocResult> {
    return this.allocSlowpath('allocFolioDetailed', req, opts);
  }

  private async allocSlowpath(
    what: string,
    req: CompactAllocRequest,
    opts: AllocFolioOptions,
  ): Promise<CompactAllocResult> {
    if (this.stopping) throw stoppedError(what);
    // The rest of the request is core's to check (EINVAL naming the field).
    if (typeof req === 'object' && req !== null)
      checkOptionKeys(`kd.${what}: allocation request`, req, ALLOC_REQUEST_KEYS, 'field');
    const task = checkTask(opts, what);
    const alloc = () => this.kernel.allocFolioSlowpath<DirectCompactAttempt>(req);
    return this.track(task ? this.kernel.trace.during(task, alloc) : alloc());
  }

  /** Manual compaction of one node (/sys/devices/system/node/nodeN/compact). */
  async compactNode(nid: number): Promise<NodeCompactResult> {
    if (this.stopping) throw stoppedError('compactNode');
    this.daemon(nid, 'compactNode');
    const r = await this.track(compactNode(this.kernel, nid, this.zoneOpts()));
    this.record('manual', r.zones);
    return r;
  }

  /** What writing 1 to vm.compact_memory does, awaited: every node, every zone, MIGRATE_SYNC. */
  async compactMemory(): Promise<NodeCompactResult[]> {
    if (this.stopping) throw stoppedError('compactMemory');
    const out: NodeCompactResult[] = [];
    for (const node of this.kernel.nodes) {
      if (this.stopping) break;
      if (node.nrPages === 0) continue;
      const r = await this.track(compactNode(this.kernel, node.nid, this.zoneOpts()));
      this.record('manual', r.zones);
      out.push(r);
    }
    return out;
  }

  /** sysctl_compaction_handler: the write returns once compact_nodes() has compacted every node. */
  private async compactMemorySysctl(v: number): Promise<number> {
    if (v !== 1) return EINVAL;
    await this.track(this.compactMemory());
    return 0;
  }

  private proactivenessSysctl(v: number): number {
    if (!v) return 0;
    for (const d of this.daemons.values()) {
      if (d.proactiveTrigger) continue;
      d.proactiveTrigger = true;
      traceWakeupKcompactd(this.kernel, d.nid, -1, d.nrZones - 1);
      d.wake();
    }
    return 0;
  }

  /** True when no compaction is running or requested. */
  isSettled(): boolean {
    if (this.tracked.size) return false;
    for (const d of this.daemons.values()) {
      if (this.stopping || d.stopped) continue;
      if (!d.sleeping || d.workRequested()) return false;
    }
    return true;
  }

  /**
   * Resolves once every kcompactd sleeps with nothing requested and no manual or sysctl-started
   * compaction is running (e.g. after `m.sysctl.write('vm.compact_memory', 1)`).
   */
  settled(): Promise<void> {
    return this.untilIdle(() => this.isSettled());
  }

  /**
   * stop() (idempotent) has removed the sysctl actions (vm.compact_memory answers ENOENT again) and
   * the allocator hooks: every kcompactd is woken to exit (kthread_stop), and stop() then waits for
   * the running compactions, which end at their next batch.
   */
  protected async shutdown(): Promise<void> {
    for (const d of this.daemons.values()) d.wake();
    await Promise.allSettled([...this.daemons.values()].map((d) => d.done));
  }
}

/**
 * Attaches the compaction subsystem to a machine: from now on vm.compact_memory works and a
 * kcompactd runs per node (woken by `kd.wakeup(nid, order)` and, with proactiveness > 0, checking
 * the fragmentation score every 500 ms). `await kd.stop()` detaches it.
 */
export function attachKcompactd(m: Machine, opts: KcompactdOptions = {}): Kcompactd {
  checkMachine(m, 'attachKcompactd');
  return new Kcompactd(m, opts);
}
