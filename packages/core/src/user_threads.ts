import { existsSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { EAGAIN, EINVAL, ENOMEM, hostNoMem, kernelError, PagemigError } from './errno.js';
import type { Kernel } from './kernel.js';
import {
  accessStatsSlots,
  CTL_ACK_SEQ,
  CTL_DOORBELL,
  CTL_FLUSH_WAITERS,
  CTL_GEN,
  CTL_HEADER,
  CTL_NR_SLOTS,
  FAULT_ANSWERED,
  FAULT_IDLE,
  FAULT_KILLED,
  FAULT_REQUESTED,
  MAX_USER_THREADS,
  type MmuInit,
  S_ACK,
  S_FAULT,
  S_FAULT_RESULT,
  S_FAULT_VPN,
  S_FAULT_WRITE,
  S_FAULTS,
  S_MIGRATION_WAITS,
  S_STATE,
  S_STOP,
  S_TLB_FLUSHES,
  SLOT_INTS,
  STOP_KILLED,
  STOP_NONE,
  STOP_REQUESTED,
  T_EXITED,
  T_RUNNING,
  T_STARTING,
} from './mmu.js';
import { PAGEBLOCK_ORDER } from './mmzone.js';
import { N_CPU, nodeState } from './nodemask.js';
import type { Process } from './process.js';
import { show } from './show.js';
import { MmTlb } from './tlbflush.js';
import type { TraceTask } from './trace.js';
import type { UserThreadData, UserThreadMessage } from './user_thread.js';
import type { Workload } from './workload.js';
import { accessPages, checkAccessWorkload, prepareAccessWorkload } from './workload_access.js';

/** What a user thread runs: a built-in workload, or a function exported by a module. */
export interface ThreadSpec {
  /** A built-in workload (see workload.ts), e.g. `{ kind: 'pattern', ... }`. */
  workload?: Workload;
  /**
   * A JavaScript module (path or URL) whose default export (or `export`) is called as
   * `fn(mmu, data, tid)` in the thread; its (structured-cloneable) return value is the result.
   */
  module?: string | URL;
  export?: string;
  /** Structured-cloneable data for the module function (SharedArrayBuffers are shared). */
  data?: unknown;
  /** TLB entries of the thread (power of two). Default 64. */
  tlbEntries?: number;
  /**
   * The node whose CPUs the thread runs on (its numa_node_id: local allocations, NUMA hinting
   * faults); a node with CPUs. Default: its process's node.
   */
  node?: number;
}

export type UserThreadState = 'starting' | 'running' | 'blocked' | 'exited';

const STATE_NAMES: Record<number, UserThreadState> = {
  0: 'starting',
  1: 'starting',
  2: 'running',
  3: 'blocked',
  4: 'exited',
};

/** Per machine: the node of every pageblock, shared with its threads' MMUs (built once). */
const pageblockNodes = new WeakMap<Kernel, Uint8Array>();
function nodeOfPageblock(k: Kernel): Uint8Array {
  let t = pageblockNodes.get(k);
  if (!t) {
    // Node sizes are whole pageblocks, so no pageblock straddles two nodes.
    t = new Uint8Array(new SharedArrayBuffer(k.nrPages >>> PAGEBLOCK_ORDER));
    for (const n of k.nodes) t.fill(n.nid, n.startPfn >>> PAGEBLOCK_ORDER, n.endPfn >>> PAGEBLOCK_ORDER);
    pageblockNodes.set(k, t);
  }
  return t;
}

let workerUrl: URL | undefined;
/** dist/user-thread.js next to the bundle, or (running from src under a test runner) in ../dist. */
function userThreadUrl(): URL {
  if (workerUrl) return workerUrl;
  for (const rel of ['./user-thread.js', '../dist/user-thread.js']) {
    const u = new URL(rel, import.meta.url);
    if (existsSync(fileURLToPath(u))) return (workerUrl = u);
  }
  throw new PagemigError(
    'ERR_NO_WORKER_BUILD',
    'user threads run the built worker dist/user-thread.js of @pagemig/core; build the package first (pnpm build)',
  );
}

/** One emulated user thread (a worker_thread) of a process. */
export class UserThread<T = unknown> {
  /** Resolves with the thread's result; rejects with its error (PagemigError ERR_USER_THREAD). */
  readonly done: Promise<T>;
  /** The thread as the task its faults run as (tid, its process's comm, its node). */
  readonly task: TraceTask;
  private exited = false;

  constructor(
    private readonly group: ThreadGroup,
    private readonly worker: Worker,
    readonly tid: number,
    readonly slot: number,
    /** The node the thread runs on. */
    readonly node: number,
    /** Its MMU's access counters (mmu.ts accessStatsSlots). */
    private readonly access: Float64Array,
  ) {
    this.task = { pid: tid, comm: group.comm, node };
    this.done = new Promise<T>((resolve, reject) => {
      // The outcome is settled when the worker has exited: join() means the thread is gone.
      let outcome: { ok: true; value: T } | { ok: false; error: Error } | undefined;
      worker.on('message', (msg: UserThreadMessage) => {
        if (outcome) return;
        if (msg.ok) outcome = { ok: true, value: msg.result as T };
        else {
          const e = new PagemigError(
            'ERR_USER_THREAD',
            `user thread ${tid} of pid ${group.pid} failed: ${msg.error.message}`,
            msg.error.errno ? { errno: msg.error.errno } : {},
          );
          if (msg.error.stack) e.stack = `${e.stack}\n  thread stack: ${msg.error.stack}`;
          outcome = { ok: false, error: e };
        }
        // The thread function returned: nothing it left behind (timers) keeps the thread alive.
        void worker.terminate();
      });
      worker.on('error', (err) => {
        outcome ??= {
          ok: false,
          error: new PagemigError(
            'ERR_USER_THREAD',
            `user thread ${tid} of pid ${group.pid} crashed: ${err.message}`,
          ),
        };
      });
      worker.on('exit', (code) => {
        this.exited = true;
        group.threadExited(this);
        const o = outcome ?? {
          ok: false as const,
          error: new PagemigError(
            'ERR_USER_THREAD',
            `user thread ${tid} of pid ${group.pid} exited (code ${code}) without a result`,
          ),
        };
        if (o.ok) resolve(o.value);
        else reject(o.error);
      });
    });
    // Nobody has to await a thread: an unobserved failure must not crash the host.
    this.done.catch(() => {});
  }

  get pid(): number {
    return this.group.pid;
  }

  private word(i: number): number {
    return Atomics.load(this.group.tlb.ctl, CTL_HEADER + this.slot * SLOT_INTS + i);
  }

  get state(): UserThreadState {
    return this.exited ? 'exited' : (STATE_NAMES[this.word(S_STATE)] ?? 'exited');
  }

  /** Asks the thread to stop: built-in workloads return at their next check. */
  stop(): void {
    const ctl = this.group.tlb.ctl;
    const i = CTL_HEADER + this.slot * SLOT_INTS + S_STOP;
    Atomics.compareExchange(ctl, i, STOP_NONE, STOP_REQUESTED);
  }

  /** The thread's result (same as `done`). */
  join(): Promise<T> {
    return this.done;
  }

  /** Ends the thread at once (worker.terminate). */
  async terminate(): Promise<void> {
    await this.worker.terminate();
  }

  /**
   * Shootdowns acknowledged, faults posted, migration-entry sleeps; the accesses to each node's
   * memory (cache-line accesses: one per load32/store32/loadWord/storeWord, one per 64-byte line a
   * read or write touches; reads of the shared zero page count on no node) and the milliseconds
   * slept on migration entries (wall time). Kept after the thread exited.
   */
  stats(): {
    tlbFlushes: number;
    faults: number;
    migrationWaits: number;
    accessesByNode: number[];
    migrationWaitMs: number;
  } {
    const nodes = this.access.length - 2;
    return {
      tlbFlushes: this.word(S_TLB_FLUSHES),
      faults: this.word(S_FAULTS),
      migrationWaits: this.word(S_MIGRATION_WAITS),
      accessesByNode: Array.from(this.access.subarray(0, nodes)),
      migrationWaitMs: this.access[nodes + 1]!,
    };
  }

  /** @internal */
  get workerRef(): Worker {
    return this.worker;
  }
}

/**
 * The threads of one process (its address space's user threads), their control block and the
 * main-thread side of their page faults: a thread posts a fault in its mailbox and rings the
 * doorbell; the fault server (Atomics.waitAsync on the doorbell) runs handle_mm_fault and answers.
 */
export class ThreadGroup {
  readonly tlb: MmTlb;
  private readonly slots: (UserThread | null)[] = [];
  private serving = false;
  /** Slots whose fault waits for direct reclaim (answered when it settles). */
  private readonly reclaiming = new Set<number>();
  private readonly live = new Set<UserThread>();

  constructor(
    private readonly k: Kernel,
    private readonly proc: Process,
  ) {
    const pt = proc.mm.pt;
    if (!pt.tlb) pt.tlb = new MmTlb();
    this.tlb = pt.tlb;
  }

  get pid(): number {
    return this.proc.pid;
  }

  get comm(): string {
    return this.proc.comm;
  }

  /** Live threads. */
  get threads(): UserThread[] {
    return [...this.live];
  }

  spawn<T>(spec: ThreadSpec): UserThread<T> {
    if (!this.k.mem.backed) {
      throw new PagemigError(
        'ERR_NO_BACKING',
        "user threads read and write RAM: this machine was created with backing: 'none'",
      );
    }
    if (!spec || (spec.workload === undefined) === (spec.module === undefined))
      throw kernelError(EINVAL, 'a thread spec needs exactly one of workload or module');
    const node = spec.node ?? this.proc.node;
    if (!Number.isInteger(node) || node < 0 || node >= this.k.nodes.length)
      throw kernelError(
        EINVAL,
        `thread node ${show(node)} does not exist (nodes 0..${this.k.nodes.length - 1})`,
      );
    if (!nodeState(this.k.nodes[node]!, N_CPU))
      throw kernelError(EINVAL, `thread node ${node} has no CPUs: no thread runs there`);
    // Access workloads are checked here (EINVAL) and get their shared tables before the worker starts.
    let workload = spec.workload;
    if (workload && workload.kind !== 'pattern') {
      try {
        checkAccessWorkload(workload);
      } catch (e) {
        if (e instanceof RangeError) throw kernelError(EINVAL, e.message);
        throw e;
      }
      try {
        workload = prepareAccessWorkload(workload);
      } catch (e) {
        // A Zipf table (16 bytes per page of the region) the host cannot give: not bad input.
        throw hostNoMem(e, `thread workload: the Zipf table of ${accessPages(workload)} pages`);
      }
    }
    const ctl = this.tlb.ctl;
    let slot = -1;
    for (let s = 0; s < MAX_USER_THREADS; s++) {
      if (this.slots[s]) continue;
      slot = s;
      break;
    }
    if (slot < 0) throw kernelError(EAGAIN, `pid ${this.pid} already runs ${MAX_USER_THREADS} threads`);
    const b = CTL_HEADER + slot * SLOT_INTS;
    for (let i = 0; i < SLOT_INTS; i++) Atomics.store(ctl, b + i, 0);
    Atomics.store(ctl, b + S_ACK, Atomics.load(ctl, CTL_GEN));
    Atomics.store(ctl, b + S_STATE, T_STARTING);
    if (slot + 1 > Atomics.load(ctl, CTL_NR_SLOTS)) Atomics.store(ctl, CTL_NR_SLOTS, slot + 1);
    const tid = this.k.nextPid++;
    // Its track on the timeline, under its process (recorded only while the timeline is on).
    let thread: UserThread<T> | undefined;
    const track = this.k.timeline.track(
      `${this.proc.comm}:${tid}`,
      `${this.proc.comm} (pid ${this.pid})`,
      'user',
      {
        pid: tid,
        isRunning: () => thread?.state === 'running',
      },
    );
    const init: MmuInit = {
      sections: this.k.mem.sections,
      sectionPfnShift: this.k.mem.pagesPerSectionShift,
      pmd: this.proc.mm.pt.pmd.buffer as SharedArrayBuffer,
      pte: this.proc.mm.pt.pteBuffer,
      ctl: ctl.buffer as SharedArrayBuffer,
      slot,
      migrationWait: this.k.migrationWait.buffer as SharedArrayBuffer,
      ...(spec.tlbEntries !== undefined ? { tlbEntries: spec.tlbEntries } : {}),
      timeline: this.k.timeline.handle(track),
      nodeOfPageblock: nodeOfPageblock(this.k),
      accessStats: new SharedArrayBuffer(8 * accessStatsSlots(this.k.nodes.length)),
    };
    let module: string | undefined;
    if (spec.module !== undefined) {
      const m = spec.module;
      module = m instanceof URL ? m.href : /^[a-z]+:/i.test(m) ? m : pathToFileURL(m).href;
    }
    const data: UserThreadData = {
      mmu: init,
      tid,
      ...(spec.workload ? { workload } : {}),
      ...(module ? { module } : {}),
      ...(spec.export ? { export: spec.export } : {}),
      ...(spec.data !== undefined ? { data: spec.data } : {}),
    };
    const worker = new Worker(userThreadUrl(), { workerData: data, name: `${this.proc.comm}:${tid}` });
    const t = new UserThread<T>(this, worker, tid, slot, node, new Float64Array(init.accessStats!));
    thread = t;
    this.slots[slot] = t;
    this.live.add(t);
    if (this.tlb.live++ === 0) this.k.threaded.add(this.tlb);
    void this.serve();
    return t;
  }

  /** Called when a thread's worker exited (normally, by an error, or terminated). */
  threadExited(t: UserThread): void {
    if (!this.live.delete(t)) return;
    const ctl = this.tlb.ctl;
    const b = CTL_HEADER + t.slot * SLOT_INTS;
    Atomics.store(ctl, b + S_STATE, T_EXITED);
    // A fault left in the mailbox by a dead thread is dropped.
    Atomics.store(ctl, b + S_FAULT, FAULT_IDLE);
    this.slots[t.slot] = null;
    if (Atomics.load(ctl, CTL_FLUSH_WAITERS) > 0) {
      Atomics.add(ctl, CTL_ACK_SEQ, 1);
      Atomics.notify(ctl, CTL_ACK_SEQ);
    }
    if (--this.tlb.live === 0) this.k.threaded.delete(this.tlb);
    // Wake the fault server so it notices when no thread is left.
    Atomics.add(ctl, CTL_DOORBELL, 1);
    Atomics.notify(ctl, CTL_DOORBELL);
  }

  /** The fault server: runs while the process has threads. */
  private async serve(): Promise<void> {
    if (this.serving) return;
    this.serving = true;
    const ctl = this.tlb.ctl;
    try {
      while (this.live.size > 0) {
        const v = Atomics.load(ctl, CTL_DOORBELL);
        this.answerFaults(false);
        if (this.live.size === 0) break;
        const r = Atomics.waitAsync(ctl, CTL_DOORBELL, v, 1000);
        if (r.async) await r.value;
      }
    } finally {
      this.serving = false;
    }
  }

  /** Serves every posted fault (with `kill`, answers each one "killed"). */
  private answerFaults(kill: boolean): void {
    const ctl = this.tlb.ctl;
    const n = Atomics.load(ctl, CTL_NR_SLOTS);
    for (let s = 0; s < n; s++) {
      const b = CTL_HEADER + s * SLOT_INTS;
      if (Atomics.load(ctl, b + S_FAULT) !== FAULT_REQUESTED) continue;
      if (!kill && this.reclaiming.has(s)) continue;
      const t = this.slots[s];
      let r: number;
      if (kill || !t || this.killed(s)) r = FAULT_KILLED;
      else {
        this.k.lastFailedAlloc = null;
        r = this.runFault(s, t);
        // __alloc_pages_direct_reclaim: the allocation failed and a reclaimer is installed; the
        // thread stays asleep in its fault while reclaim runs, then the fault is retried once.
        const reclaim = r === -ENOMEM ? this.k.directReclaim : undefined;
        const req = this.k.lastFailedAlloc;
        if (reclaim && req) {
          // try_to_free_pages runs in the faulting task: its events carry the thread.
          this.reclaimThenRetry(s, t, () => this.k.trace.during(t.task, () => reclaim(req)));
          continue;
        }
      }
      this.answer(s, r);
    }
  }

  private killed(slot: number): boolean {
    const stop = Atomics.load(this.tlb.ctl, CTL_HEADER + slot * SLOT_INTS + S_STOP);
    return this.proc.exited || stop === STOP_KILLED;
  }

  /** Runs the fault in `slot` as its thread, on its node: its events carry its tid, its allocations are local there. */
  private runFault(slot: number, t: UserThread): number {
    const b = CTL_HEADER + slot * SLOT_INTS;
    const vpn = Atomics.load(this.tlb.ctl, b + S_FAULT_VPN);
    const write = Atomics.load(this.tlb.ctl, b + S_FAULT_WRITE) === 1;
    return this.k.trace.during(t.task, () => this.proc.serveFault(vpn, write, t.node));
  }

  private answer(slot: number, r: number): void {
    const ctl = this.tlb.ctl;
    const b = CTL_HEADER + slot * SLOT_INTS;
    Atomics.store(ctl, b + S_FAULT_RESULT, r);
    Atomics.store(ctl, b + S_FAULT, FAULT_ANSWERED);
    Atomics.notify(ctl, b + S_FAULT);
  }

  /**
   * Answers the fault in `slot` once direct reclaim settled: retried once (a second failure is
   * the answer, ENOMEM as without reclaim); a reclaimer that throws counts as no progress. A
   * thread killed or gone meanwhile was answered by kill() or dropped with its slot.
   */
  private reclaimThenRetry(slot: number, t: UserThread, reclaim: () => Promise<number>): void {
    this.reclaiming.add(slot);
    void Promise.resolve()
      .then(reclaim)
      .catch(() => 0)
      .then(() => {
        this.reclaiming.delete(slot);
        const b = CTL_HEADER + slot * SLOT_INTS;
        if (this.slots[slot] !== t || Atomics.load(this.tlb.ctl, b + S_FAULT) !== FAULT_REQUESTED) return;
        this.answer(slot, this.killed(slot) ? FAULT_KILLED : this.runFault(slot, t));
      });
  }

  /** Asks every thread to stop and waits for all of them; returns their outcomes. */
  async stopAll(): Promise<PromiseSettledResult<unknown>[]> {
    const all = [...this.live];
    for (const t of all) t.stop();
    return Promise.allSettled(all.map((t) => t.done));
  }

  /**
   * exit(): kills every thread. Synchronous part: every thread stops using the address space
   * (a running thread leaves at its next access; bounded by `timeoutMs`) and pending faults are
   * answered "killed"; returns the promise of the workers' termination.
   */
  kill(timeoutMs = 2000): Promise<void> {
    const all = [...this.live];
    if (!all.length) return Promise.resolve();
    const ctl = this.tlb.ctl;
    for (const t of all) Atomics.store(ctl, CTL_HEADER + t.slot * SLOT_INTS + S_STOP, STOP_KILLED);
    Atomics.add(ctl, CTL_GEN, 1);
    this.answerFaults(true);
    const t0 = performance.now();
    const running = () =>
      all.some((t) => Atomics.load(ctl, CTL_HEADER + t.slot * SLOT_INTS + S_STATE) === T_RUNNING);
    while (running() && performance.now() - t0 < timeoutMs) {
      Atomics.add(ctl, CTL_FLUSH_WAITERS, 1);
      const seq = Atomics.load(ctl, CTL_ACK_SEQ);
      if (running()) Atomics.wait(ctl, CTL_ACK_SEQ, seq, 5);
      Atomics.sub(ctl, CTL_FLUSH_WAITERS, 1);
      this.answerFaults(true);
    }
    const done = Promise.all(all.map((t) => t.terminate())).then(() => undefined);
    this.k.threadExits.add(done);
    void done.finally(() => this.k.threadExits.delete(done));
    return done;
  }
}
