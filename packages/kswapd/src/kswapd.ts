import { checkMachine, EINVAL, kernelError, MAX_PAGE_ORDER, type Machine, PagemigError } from '@pagemig/core';
import {
  type AllocRequest,
  DEMOTION_ENABLED_PATH,
  MAX_TIMER_MS,
  MachineDaemon,
  show,
  unknownOption,
} from '@pagemig/core/internal';
import { balancePgdat, pgdatBalanced } from './balance.js';
import { tryToFreePages } from './direct_reclaim.js';
import { type DemotionTotals, emptyDemotionTotals, emptyNodeStats, type NodeReclaimStats } from './stats.js';
import {
  defineVmscanEvents,
  gfpOfZoneidx,
  MAX_NR_ZONES,
  traceKswapdSleep,
  traceKswapdWake,
  traceWakeupKswapd,
} from './tracepoints.js';
import { MAX_RECLAIM_RETRIES, type ReclaimEnv } from './vmscan.js';

function optionError(message: string): PagemigError {
  return new PagemigError('ERR_KSWAPD_OPTION', `attachKswapd: ${message}`, { errno: EINVAL });
}

/** kswapd_try_to_sleep's short nap before it sleeps for good: schedule_timeout(HZ/10). */
export const KSWAPD_NAP_MS = 100;

export interface KswapdOptions {
  /**
   * Writes /sys/kernel/mm/numa/demotion_enabled (false at boot, as the kernel's): true lets reclaim
   * demote cold folios to the next memory tier. Default: leave the knob as it is; a later write
   * takes effect at the next scan.
   */
  demotion?: boolean;
  /** Install direct reclaim (try_to_free_pages) for allocations that fail. Default true. */
  directReclaim?: boolean;
  /**
   * kswapd_try_to_sleep's nap in ms before a balanced kswapd sleeps for good. Default 100 (HZ/10).
   * A nap longer than 2^31 - 1 ms (24.8 days) lasts that long, as msecs_to_jiffies saturates.
   */
  napMs?: number;
  /**
   * Per-batch copy timeout handed to the migration engine for demotions (ms), 1..2^31 - 1 as
   * vm.migrate_copy_timeout_ms. Default: the sysctl.
   */
  copyTimeoutMs?: number;
}

const KNOWN_OPTIONS = ['demotion', 'directReclaim', 'napMs', 'copyTimeoutMs'];

/** The knobs kswapd works with now. */
export interface KswapdKnobs {
  /** /sys/kernel/mm/numa/demotion_enabled. */
  demotionEnabled: boolean;
  directReclaim: boolean;
  napMs: number;
  copyTimeoutMs: number | undefined;
  /** vm.min_free_kbytes and vm.watermark_scale_factor, which set the watermarks kswapd balances to. */
  minFreeKbytes: number;
  watermarkScaleFactor: number;
  /** kernel.numa_balancing: with bit 1 (memory tiering) kswapd balances to the promo watermark. */
  numaBalancing: number;
}

/** What `ks.stats()` returns: per node, summed, and the demotion migrations. */
export interface KswapdStats {
  nodes: NodeReclaimStats[];
  wakes: number;
  scanned: number;
  reclaimed: number;
  demoted: number;
  directReclaims: number;
  failedRuns: number;
  /** Every node's reason, "; "-joined, or null when no node's reclaim is failing. */
  reclaimFailed: string | null;
  demotion: DemotionTotals;
}

/** What a kswapd thread is doing. */
export type KswapdState = 'running' | 'napping' | 'sleeping' | 'stopped';

/** One kswapd<nid>: the node's reclaim state of pglist_data and the thread's loop. */
class KswapdThread {
  /** pgdat->kswapd_order */
  order = 0;
  /** pgdat->kswapd_highest_zoneidx (MAX_NR_ZONES: nothing requested). */
  highestZoneidx = MAX_NR_ZONES;
  /** On pgdat->kswapd_wait (waitqueue_active): napping or asleep; null while it runs. */
  wait: 'nap' | 'sleep' | null = null;
  stopped = false;
  private wakeFn: ((woken: boolean) => void) | null = null;
  readonly task: { pid: number; comm: string; node: number };
  readonly done: Promise<void>;

  constructor(
    private readonly ks: Kswapd,
    readonly nid: number,
  ) {
    const k = ks.kernel;
    this.task = { pid: k.nextPid++, comm: `kswapd${nid}`, node: nid };
    this.done = k.trace
      .during(this.task, () => this.loop())
      .catch((e) => {
        ks.errors.push(e);
      })
      .finally(() => {
        this.stopped = true;
        ks.notifyIdle();
      });
  }

  /** wake_up_interruptible(&pgdat->kswapd_wait) */
  wake(): void {
    this.wakeFn?.(true);
  }

  /** Sleeps on kswapd_wait, for `ms` or until woken; true when woken (schedule_timeout's remaining). */
  private waitFor(kind: 'nap' | 'sleep', ms: number): Promise<boolean> {
    return new Promise<boolean>((resolve) => {
      let timer: NodeJS.Timeout | undefined;
      const done = (woken: boolean) => {
        if (this.wakeFn !== done) return;
        this.wakeFn = null;
        this.wait = null;
        if (timer) clearTimeout(timer);
        resolve(woken);
      };
      this.wait = kind;
      this.wakeFn = done;
      if (Number.isFinite(ms)) {
        // The nap must never keep the process alive. Longer than Node's longest timer it is capped
        // (Node would fire it after 1 ms), as msecs_to_jiffies saturates at MAX_JIFFY_OFFSET.
        timer = setTimeout(() => done(false), Math.min(ms, MAX_TIMER_MS));
        timer.unref();
      }
      this.ks.notifyIdle();
    });
  }

  /** kswapd_highest_zoneidx: the requested index, else the previous run's. */
  private requestedZoneidx(prev: number): number {
    return this.highestZoneidx === MAX_NR_ZONES ? prev : this.highestZoneidx;
  }

  /** prepare_kswapd_sleep: a hopeless node, or a balanced one, may sleep. */
  prepareSleep(order: number, highestZoneidx: number): boolean {
    if (this.ks.nodeStats(this.nid).kswapdFailures >= MAX_RECLAIM_RETRIES) return true;
    return pgdatBalanced(this.ks.kernel, this.nid, order, highestZoneidx);
  }

  /** kswapd(): sleep until woken, balance the node, repeat. */
  private async loop(): Promise<void> {
    const ks = this.ks;
    const k = ks.kernel;
    // The thread starts on the next turn of the event loop, like a kthread after kthread_run.
    await Promise.resolve();
    let highestZoneidx = MAX_NR_ZONES - 1;
    let allocOrder = 0;
    let reclaimOrder = 0;
    let again = false;
    while (!ks.stopping) {
      if (!again) {
        allocOrder = reclaimOrder = this.order;
        highestZoneidx = this.requestedZoneidx(highestZoneidx);
      }
      await this.tryToSleep(allocOrder, reclaimOrder, highestZoneidx);
      allocOrder = this.order;
      highestZoneidx = this.requestedZoneidx(highestZoneidx);
      this.order = 0;
      this.highestZoneidx = MAX_NR_ZONES;
      if (ks.stopping) break;
      ks.nodeStats(this.nid).wakes++;
      traceKswapdWake(k, this.nid, highestZoneidx, allocOrder);
      reclaimOrder = await balancePgdat(ks, this.nid, allocOrder, highestZoneidx, () => ks.stopping);
      // A high-order run that fell back to order 0 tries to sleep for the order it reached.
      again = reclaimOrder < allocOrder;
    }
  }

  /** kswapd_try_to_sleep */
  private async tryToSleep(allocOrder: number, reclaimOrder: number, highestZoneidx: number): Promise<void> {
    const ks = this.ks;
    const k = ks.kernel;
    if (ks.stopping) return;
    let remaining = false;
    if (this.prepareSleep(reclaimOrder, highestZoneidx)) {
      // reset_isolation_suitable and wakeup_kcompactd (kcompactd's hook), then a short nap.
      k.kswapdSleepStep(this.nid, allocOrder, highestZoneidx);
      remaining = await this.waitFor('nap', ks.napMs);
      if (remaining) {
        this.highestZoneidx = this.requestedZoneidx(highestZoneidx);
        if (this.order < reclaimOrder) this.order = reclaimOrder;
      }
    }
    if (ks.stopping) return;
    if (!remaining && this.prepareSleep(reclaimOrder, highestZoneidx)) {
      traceKswapdSleep(k, this.nid);
      await this.waitFor('sleep', Number.POSITIVE_INFINITY);
    } else {
      k.count(remaining ? 'kswapd_low_wmark_hit_quickly' : 'kswapd_high_wmark_hit_quickly');
    }
  }

  state(): KswapdState {
    if (this.stopped) return 'stopped';
    if (this.wait === 'nap') return 'napping';
    return this.wait === 'sleep' ? 'sleeping' : 'running';
  }
}

/**
 * The reclaim subsystem of one machine: a kswapd per node with memory, woken by allocations that
 * find a zone below its low watermark, and direct reclaim for allocations that fail. Anon memory
 * (there is no swap) is reclaimed by demoting it to the next memory tier. Create it with
 * `attachKswapd(m, opts)`.
 */
export class Kswapd extends MachineDaemon implements ReclaimEnv {
  readonly napMs: number;
  readonly copyTimeoutMs: number | undefined;
  readonly directReclaim: boolean;
  readonly demotion: DemotionTotals = emptyDemotionTotals();
  private readonly threads = new Map<number, KswapdThread>();
  private readonly perNode: NodeReclaimStats[];

  constructor(machine: Machine, opts: KswapdOptions) {
    // One kswapd per machine; stopping (reclaim ends after the migration in progress) and errors
    // (what a kswapd loop died of) come from MachineDaemon.
    super(machine, 'kswapd');
    if (typeof opts !== 'object' || opts === null || Array.isArray(opts))
      throw optionError(`options must be an object like { demotion: true }, got ${show(opts)}`);
    const unknown = unknownOption(opts, KNOWN_OPTIONS);
    if (unknown) throw optionError(unknown);
    // Each option is read once: a getter read again after the checks could differ or throw.
    const { demotion, directReclaim = true, copyTimeoutMs: ct } = opts;
    const napMs = opts.napMs ?? KSWAPD_NAP_MS;
    if (demotion !== undefined && typeof demotion !== 'boolean')
      throw optionError(`demotion must be true or false, got ${show(demotion)}`);
    if (typeof directReclaim !== 'boolean')
      throw optionError(`directReclaim must be true or false, got ${show(directReclaim)}`);
    if (typeof napMs !== 'number' || !(napMs >= 0) || !Number.isFinite(napMs))
      throw optionError(`napMs must be a number of ms >= 0, got ${show(napMs)}`);
    if (ct !== undefined && (typeof ct !== 'number' || !(ct > 0) || !(ct <= MAX_TIMER_MS)))
      throw optionError(
        `copyTimeoutMs must be a positive number of ms up to ${MAX_TIMER_MS} (as vm.migrate_copy_timeout_ms), got ${show(ct)}`,
      );
    this.checkAttachable('attachKswapd');
    defineVmscanEvents(this.kernel);
    this.napMs = napMs;
    this.copyTimeoutMs = ct;
    this.directReclaim = directReclaim;
    this.perNode = this.kernel.nodes.map((n) => emptyNodeStats(n.nid));
    const k = this.kernel;
    // Both hooks go in before anything changes: a taken hook (EBUSY) leaves the machine as it was.
    this.install(() => {
      this.allocHook('attachKswapd', 'wakeKswapd', (nid, order, hz) => {
        this.wakeupKswapd(nid, order, hz);
      });
      if (directReclaim) this.allocHook('attachKswapd', 'directReclaim', (req) => this.tryToFreePages(req));
    });
    if (demotion !== undefined) machine.sysfs.write(DEMOTION_ENABLED_PATH, demotion ? 'true' : 'false');
    for (const node of k.nodes) {
      if (node.nrPages > 0 && node.zones.length) this.threads.set(node.nid, new KswapdThread(this, node.nid));
    }
    this.attached();
  }

  nodeStats(nid: number): NodeReclaimStats {
    return this.perNode[nid]!;
  }

  /**
   * wakeup_kswapd as an allocation below the low watermark of node `nid` calls it (order 0 by
   * default, every zone): true when kswapd<nid> was woken. ERR_KSWAPD_STOPPED after stop().
   */
  wakeup(nid: number, order = 0, highestZoneidx = MAX_NR_ZONES - 1): boolean {
    if (this.stopping) throw new PagemigError('ERR_KSWAPD_STOPPED', 'ks.wakeup: kswapd is stopped');
    if (!Number.isInteger(nid)) throw kernelError(EINVAL, `ks.wakeup: node ${show(nid)} is not a node id`);
    if (!this.threads.has(nid))
      throw kernelError(EINVAL, `ks.wakeup: node ${nid} has no kswapd (no memory, or no such node)`);
    if (!Number.isInteger(order) || order < 0 || order > MAX_PAGE_ORDER)
      throw kernelError(EINVAL, `ks.wakeup: order ${show(order)} is not an integer in 0..${MAX_PAGE_ORDER}`);
    if (!Number.isInteger(highestZoneidx) || highestZoneidx < 0 || highestZoneidx >= MAX_NR_ZONES)
      throw kernelError(
        EINVAL,
        `ks.wakeup: highestZoneidx ${show(highestZoneidx)} is not a zone index 0..${MAX_NR_ZONES - 1}`,
      );
    return this.wakeupKswapd(nid, order, highestZoneidx);
  }

  /**
   * wakeup_kswapd for node `nid`: records the order and zone index asked for; wakes the thread if
   * it waits and the node is neither hopeless (MAX_RECLAIM_RETRIES failures) nor balanced. A node
   * that needs no reclaim hands a high-order request to kcompactd (the kswapdSleep hook). Returns
   * whether it woke the thread.
   */
  private wakeupKswapd(nid: number, order: number, highestZoneidx: number): boolean {
    const t = this.threads.get(nid);
    if (!t || this.stopping) return false;
    if (t.highestZoneidx === MAX_NR_ZONES || t.highestZoneidx < highestZoneidx)
      t.highestZoneidx = highestZoneidx;
    if (t.order < order) t.order = order;
    if (t.wait === null) return false;
    if (
      this.nodeStats(nid).kswapdFailures >= MAX_RECLAIM_RETRIES ||
      pgdatBalanced(this.kernel, nid, order, highestZoneidx)
    ) {
      if (order > 0) this.kernel.kswapdSleepStep(nid, order, highestZoneidx);
      return false;
    }
    traceWakeupKswapd(this.kernel, nid, highestZoneidx, order, gfpOfZoneidx(highestZoneidx));
    t.wake();
    return true;
  }

  /** try_to_free_pages for a failed allocation (the directReclaim hook): resolves to pages reclaimed. */
  tryToFreePages(req: AllocRequest): Promise<number> {
    if (this.stopping) return Promise.resolve(0);
    return this.track(tryToFreePages(this, req, () => this.stopping));
  }

  /** The knobs in force now. */
  knobs(): KswapdKnobs {
    const k = this.kernel;
    return {
      demotionEnabled: k.demotionEnabled,
      directReclaim: this.directReclaim,
      napMs: this.napMs,
      copyTimeoutMs: this.copyTimeoutMs,
      minFreeKbytes: k.vm.min_free_kbytes,
      watermarkScaleFactor: k.vm.watermark_scale_factor,
      numaBalancing: k.kern.numa_balancing,
    };
  }

  /** Per node and summed since attach, with the demotion migrations. */
  stats(): KswapdStats {
    const nodes = this.perNode.map((n) => ({ ...n }));
    const sum = (f: (n: NodeReclaimStats) => number) => nodes.reduce((a, n) => a + f(n), 0);
    const reasons = nodes.map((n) => n.reclaimFailed).filter((r): r is string => r !== null);
    return {
      nodes,
      wakes: sum((n) => n.wakes),
      scanned: sum((n) => n.scanned),
      reclaimed: sum((n) => n.reclaimed),
      demoted: sum((n) => n.demoted),
      directReclaims: sum((n) => n.directReclaims),
      failedRuns: sum((n) => n.failedRuns),
      reclaimFailed: reasons.length ? reasons.join('; ') : null,
      demotion: { ...this.demotion, phases: { ...this.demotion.phases } },
    };
  }

  /** Each kswapd thread: its pid and comm (as its tracepoints carry them), state and request. */
  threadInfo(): {
    nid: number;
    pid: number;
    comm: string;
    state: KswapdState;
    order: number;
    highestZoneidx: number;
  }[] {
    return [...this.threads.values()].map((t) => ({
      nid: t.nid,
      pid: t.task.pid,
      comm: t.task.comm,
      state: t.state(),
      order: t.order,
      highestZoneidx: t.highestZoneidx,
    }));
  }

  /** True when every kswapd sleeps for good and no direct reclaim runs. */
  isSettled(): boolean {
    if (this.tracked.size) return false;
    for (const t of this.threads.values()) if (!t.stopped && t.wait !== 'sleep') return false;
    return true;
  }

  /**
   * Resolves once no kswapd runs or naps and no direct reclaim (with its demotion) is in flight.
   * Wake-ups queued by allocations that just returned are seen first.
   */
  async settled(): Promise<void> {
    // kswapd's nap timer does not keep the process alive; whoever waits for it here does.
    const alive = setInterval(() => undefined, 1 << 30);
    try {
      await new Promise<void>((r) => setImmediate(r));
      await this.untilIdle(() => this.isSettled());
    } finally {
      clearInterval(alive);
    }
  }

  /**
   * stop() (idempotent) has removed the allocator hooks, so a failed allocation wakes nothing and
   * reclaims nothing: every kswapd is woken to exit (kthread_stop), and stop() then waits for the
   * direct reclaim in progress, which puts back what it isolated.
   * /sys/kernel/mm/numa/demotion_enabled keeps its value.
   */
  protected async shutdown(): Promise<void> {
    for (const t of this.threads.values()) t.wake();
    await Promise.allSettled([...this.threads.values()].map((t) => t.done));
  }
}

/**
 * Attaches reclaim to a machine: a kswapd per node with memory (woken below the low watermark,
 * balancing to the high one) and direct reclaim, both demoting cold anon folios to the next memory
 * tier. `demotion: true` enables demotion (/sys/kernel/mm/numa/demotion_enabled). `await ks.stop()`
 * detaches it.
 */
export function attachKswapd(m: Machine, opts: KswapdOptions = {}): Kswapd {
  checkMachine(m, 'attachKswapd');
  return new Kswapd(m, opts);
}
