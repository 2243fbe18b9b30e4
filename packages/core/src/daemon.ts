import { EBUSY, PagemigError } from './errno.js';
import type { Kernel } from './kernel.js';
import type { Machine } from './machine.js';
import type { AllocHooks } from './page_alloc.js';

/** The daemons attached to each machine, by kind ('kswapd', 'kcompactd', ...). */
const attachedDaemons = new WeakMap<Machine, Map<string, MachineDaemon>>();

/**
 * What the daemon packages (kswapd, kcompactd, NUMA balancing) share as subsystems attached to a
 * machine: one of each kind per machine, nothing attached to a closed machine, everything they
 * installed undone by an idempotent stop() that the machine's close() calls first, and the work
 * they start outside their own loops tracked for settled() and stop().
 *
 * A subclass checks its options, calls `checkAttachable`, installs its hooks inside `install`
 * (`allocHook`, or pushing their removers on `undo`), ends its constructor with `attached()`, and
 * implements `shutdown` (wake its threads and wait for them) for stop().
 */
export abstract class MachineDaemon {
  readonly kernel: Kernel;
  /** Set once stop() began: loops exit, work in progress ends at its next step. */
  stopping = false;
  /** Errors a daemon loop died of (should stay empty). */
  readonly errors: unknown[] = [];
  /** What stop() undoes, in order: hooks, sysctl actions, listeners, the close hook. */
  protected readonly undo: (() => void)[] = [];
  /** Work started outside the daemon's loops (direct reclaim, a manual compaction). */
  protected readonly tracked = new Set<Promise<unknown>>();
  private idleWaiters: (() => void)[] = [];
  private stopped: Promise<void> | null = null;

  protected constructor(
    readonly machine: Machine,
    private readonly kind: string,
  ) {
    this.kernel = machine.kernel;
  }

  /**
   * EBUSY while another daemon of this kind is attached to the machine and not stopping, then
   * ERR_MACHINE_CLOSED on a closed machine, both naming `caller`. Call it once the options are
   * checked and before anything changes.
   */
  protected checkAttachable(caller: string): void {
    const other = attachedDaemons.get(this.machine)?.get(this.kind);
    if (other && !other.stopping)
      throw new PagemigError(
        'EBUSY',
        `EBUSY: ${caller}: this machine already has ${this.kind} attached; stop() it first`,
        { errno: EBUSY },
      );
    this.machine.assertOpen(caller);
  }

  /**
   * Runs the constructor's installing steps. A throw undoes what they installed (every remover on
   * `undo`) before it propagates: a refused attach leaves the machine as it was.
   */
  protected install(steps: () => void): void {
    try {
      steps();
    } catch (e) {
      for (const u of this.undo.splice(0)) u();
      throw e;
    }
  }

  /**
   * Installs one step of the allocator's slow path (kernel.setAllocHook) for stop() to remove.
   * EBUSY naming `caller` when another subsystem holds it.
   */
  protected allocHook<K extends keyof AllocHooks>(
    caller: string,
    name: K,
    fn: NonNullable<AllocHooks[K]>,
  ): void {
    let off: () => void;
    try {
      off = this.kernel.setAllocHook(name, fn);
    } catch (e) {
      if (!(e instanceof PagemigError) || e.code !== 'EBUSY') throw e;
      throw new PagemigError(
        'EBUSY',
        `EBUSY: ${caller}: the allocator's ${name} hook is already installed (m.kernel.setAllocHook); remove it first`,
        { errno: EBUSY, cause: e },
      );
    }
    this.undo.push(off);
  }

  /** The constructor's last step: the machine's daemon of this kind, stopped by its close(). */
  protected attached(): void {
    this.undo.push(this.kernel.onClose(() => this.stop()));
    let kinds = attachedDaemons.get(this.machine);
    if (!kinds) attachedDaemons.set(this.machine, (kinds = new Map()));
    kinds.set(this.kind, this);
  }

  /** Tracks `p` until it settles, for settled() and stop(). */
  protected track<T>(p: Promise<T>): Promise<T> {
    this.tracked.add(p);
    const done = () => {
      this.tracked.delete(p);
      this.notifyIdle();
    };
    p.then(done, done);
    return p;
  }

  /** Wakes whoever waits in `untilIdle` to look again (a thread went to sleep, work ended). */
  notifyIdle(): void {
    const w = this.idleWaiters;
    this.idleWaiters = [];
    for (const r of w) r();
  }

  /** Resolves once `isIdle()` holds, looking again at every notifyIdle(). */
  protected async untilIdle(isIdle: () => boolean): Promise<void> {
    while (!isIdle()) await new Promise<void>((r) => this.idleWaiters.push(r));
  }

  /** Stops the daemon (kthread_stop) and undoes what it installed. Idempotent. */
  stop(): Promise<void> {
    this.stopped ??= this.stopOnce();
    return this.stopped;
  }

  private async stopOnce(): Promise<void> {
    this.stopping = true;
    for (const u of this.undo) u();
    await this.shutdown();
    while (this.tracked.size) await Promise.allSettled([...this.tracked]);
    this.notifyIdle();
  }

  /** stop()'s own part, after `stopping` is set and `undo` ran: wake the threads and wait for them. */
  protected abstract shutdown(): Promise<void>;

  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
  }
}
