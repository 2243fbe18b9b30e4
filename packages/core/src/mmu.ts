import {
  PMD_HUGE,
  PMD_TABLE,
  PTE_ACCESSED,
  PTE_DIRTY,
  PTE_MIGRATION,
  PTE_PFN_SHIFT,
  PTE_PRESENT,
  PTE_WRITE,
  PTRS_PER_PTE,
  USER_BASE,
  USER_PAGES,
  ZERO_PFN,
} from './pagetable.js';
import {
  type TimelineHandle,
  TimelineWriter,
  TL_USER_FAULT,
  TL_USER_MIGRATION_WAIT,
  TL_USER_RUNNING,
  TL_USER_TLB_ACK,
} from './timeline_writer.js';

/**
 * The MMU of one user thread: it walks the shared page tables, caches translations in a small
 * per-thread TLB, sets accessed/dirty bits with a compare-and-swap on the entry (as x86 hardware
 * does), sleeps on migration entries until the engine remaps the folio, and posts page faults to
 * the kernel (the main thread) through a shared-memory mailbox.
 *
 * This module runs inside worker threads: it imports nothing but the page-table encoding.
 *
 * Shootdown protocol (see tlbflush.ts): every address space with threads has a control block
 * (`ctl`, an Int32Array over a SharedArrayBuffer) with a flush generation and one slot per thread
 * (state, acknowledged generation, stop flag, fault mailbox). The engine bumps the generation and
 * waits until every RUNNING thread acknowledged it. A thread compares the generation on every
 * access; when it changed, it drops its whole TLB and stores the generation as acknowledged. A
 * thread that sleeps (fault, migration entry) or has not started holds no translation in use and
 * counts as acknowledged; it re-reads the generation before it runs again.
 */

/** Control block header (Int32 words). */
export const CTL_GEN = 0;
/** Bumped by threads when they acknowledge or change state while a flusher waits. */
export const CTL_ACK_SEQ = 1;
/** Flushers currently sleeping on CTL_ACK_SEQ. */
export const CTL_FLUSH_WAITERS = 2;
/** Bumped (and notified) by a thread that posts a fault request. */
export const CTL_DOORBELL = 3;
/** Slots in use (high-water mark). */
export const CTL_NR_SLOTS = 4;
export const CTL_HEADER = 8;

/** Per-thread slot words. */
export const S_STATE = 0;
export const S_ACK = 1;
export const S_STOP = 2;
export const S_FAULT = 3;
export const S_FAULT_VPN = 4;
export const S_FAULT_WRITE = 5;
export const S_FAULT_RESULT = 6;
export const S_TLB_FLUSHES = 7;
export const S_FAULTS = 8;
export const S_MIGRATION_WAITS = 9;
export const SLOT_INTS = 16;
export const MAX_USER_THREADS = 64;
export const CTL_INTS = CTL_HEADER + MAX_USER_THREADS * SLOT_INTS;

/** Thread states. */
export const T_FREE = 0;
export const T_STARTING = 1;
export const T_RUNNING = 2;
/** Sleeping in a fault or on a migration entry, or parked by user code: holds no translation. */
export const T_BLOCKED = 3;
export const T_EXITED = 4;

/** S_STOP values. */
export const STOP_NONE = 0;
export const STOP_REQUESTED = 1;
export const STOP_KILLED = 2;

/** S_FAULT mailbox states. */
export const FAULT_IDLE = 0;
export const FAULT_REQUESTED = 1;
export const FAULT_ANSWERED = 2;
/** S_FAULT_RESULT values besides 0 (resolved) and a negative errno. */
export const FAULT_RETRY = 1;
export const FAULT_KILLED = -1000;
/** VM_FAULT_SIGBUS: no page can back the access (a hugetlb pool without a page): the thread gets SIGBUS. */
export const FAULT_SIGBUS = -1001;

/** What a thread needs to build its MMU (all shared memory; cloned into a worker as is). */
export interface MmuInit {
  /** The machine's RAM sections. */
  sections: readonly SharedArrayBuffer[];
  sectionPfnShift: number;
  /** The address space's PMD directory and its (growable) PTE buffer. */
  pmd: SharedArrayBuffer;
  pte: SharedArrayBuffer;
  /** The address space's control block (CTL_INTS words). */
  ctl: SharedArrayBuffer;
  slot: number;
  /** The machine's migration-wait word (bumped and notified after every remove_migration_ptes). */
  migrationWait: SharedArrayBuffer;
  /** TLB entries (a power of two). Default 64. */
  tlbEntries?: number;
  /** The machine's timeline and this thread's track (running, faults, migration waits, shootdown acks). */
  timeline?: TimelineHandle;
  /** The node of every pageblock (pfn >>> 9), for the per-node access counts. */
  nodeOfPageblock?: Uint8Array;
  /**
   * This thread's access counters (Float64, accessStatsSlots(nodes) entries): written by the
   * thread, read by the main thread. Without it the MMU keeps them privately (no per-node counts).
   */
  accessStats?: SharedArrayBuffer;
}

/**
 * The access counters of a thread on a machine of `nodes` nodes: one per node, then the accesses
 * that touched no node's frame (the shared zero page), then the milliseconds slept on migration
 * entries.
 */
export function accessStatsSlots(nodes: number): number {
  return nodes + 2;
}

/** Cache-line size: read() and write() count one access per line they touch. */
const LINE_SHIFT = 6;
/** Pageblock order: the node table has one entry per 2 MiB. */
const PAGEBLOCK_SHIFT = 9;

/** An access the kernel refused (segmentation fault, out of memory) or a killed thread. */
export class MmuFault extends Error {
  constructor(
    message: string,
    readonly errno: number,
    readonly addr: number,
  ) {
    super(message);
    this.name = 'MmuFault';
  }
}

const PAGE_SHIFT = 12;
const WORDS_PER_PAGE = 1024;
/** Spins on the migration-wait word before sleeping (a wake costs ~83 µs here). */
const MIGRATION_SPIN = 200;
/** Safety net: a migration-entry sleep rechecks the entry after this long. */
const MIGRATION_WAIT_MS = 50;

export class Mmu {
  readonly slot: number;
  private readonly ctl: Int32Array;
  private readonly base: number;
  private readonly pmd: Int32Array;
  private readonly pte: Int32Array;
  private readonly mig: Int32Array;
  private readonly words: Int32Array[];
  private readonly bytes: Uint8Array[];
  private readonly shift: number;
  private readonly mask: number;
  private readonly tlbMask: number;
  private readonly tlbVpn: Int32Array;
  private readonly tlbPfn: Int32Array;
  private readonly tlbWrite: Uint8Array;
  /** Access-counter slot of each TLB entry's frame (its node, or `otherSlot`). */
  private readonly tlbSlot: Uint8Array;
  /** Per-node access counts, the zero-page count, migration-wait ms (accessStatsSlots). */
  private readonly acc: Float64Array;
  private readonly nodeOfPageblock: Uint8Array;
  private readonly otherSlot: number;
  private seenGen: number;
  /** The timeline writer of this thread's track, or null. */
  private readonly tl: TimelineWriter | null;
  /** Translations that missed the TLB. */
  tlbMisses = 0;
  /**
   * Main-thread mode (tests, single-threaded tools): resolves a fault synchronously instead of
   * posting it; returns 0, FAULT_RETRY or a negative errno.
   */
  faultHandler: ((vpn: number, write: boolean) => number) | null = null;

  constructor(init: MmuInit) {
    this.slot = init.slot;
    this.ctl = new Int32Array(init.ctl);
    this.base = CTL_HEADER + init.slot * SLOT_INTS;
    this.pmd = new Int32Array(init.pmd);
    // A length-tracking view: it follows the buffer when the kernel adds PTE tables.
    this.pte = new Int32Array(init.pte);
    this.mig = new Int32Array(init.migrationWait);
    this.words = init.sections.map((s) => new Int32Array(s));
    this.bytes = init.sections.map((s) => new Uint8Array(s));
    this.shift = init.sectionPfnShift;
    this.mask = (1 << init.sectionPfnShift) - 1;
    const n = init.tlbEntries ?? 64;
    if (!Number.isInteger(n) || n < 1 || (n & (n - 1)) !== 0)
      throw new RangeError(`tlbEntries ${n} must be a power of two`);
    this.tlbMask = n - 1;
    this.tlbVpn = new Int32Array(n).fill(-1);
    this.tlbPfn = new Int32Array(n);
    this.tlbWrite = new Uint8Array(n);
    this.tlbSlot = new Uint8Array(n);
    this.nodeOfPageblock = init.nodeOfPageblock ?? new Uint8Array(0);
    this.acc = new Float64Array(init.accessStats ?? new ArrayBuffer(8 * accessStatsSlots(0)));
    this.otherSlot = this.acc.length - 2;
    this.seenGen = Atomics.load(this.ctl, CTL_GEN);
    this.tl = init.timeline ? new TimelineWriter(init.timeline.buffer, init.timeline.track) : null;
  }

  /** Now on the timeline's clock (µs), or -1 when it does not record. */
  private tlNow(): number {
    const tl = this.tl;
    return tl?.on ? tl.now() : -1;
  }

  /** The thread starts running at `at` (µs; -1: now): the start of its next `running` span. */
  private beginRunning(at: number): void {
    const tl = this.tl;
    if (tl?.on) tl.setOpenSince(at >= 0 ? at : tl.now());
  }

  /** The thread stops running at `at` (µs; -1: now): its `running` span since the last start (or the capture's). */
  private endRunning(at: number): void {
    const tl = this.tl;
    if (tl === null || !tl.on) return;
    tl.span(TL_USER_RUNNING, Math.max(tl.openSince(), tl.startUs), at >= 0 ? at : tl.now());
  }

  /** Marks the thread running (call once before the first access). */
  enter(): void {
    Atomics.store(this.ctl, this.base + S_STATE, T_RUNNING);
    this.beginRunning(-1);
    this.sync();
  }

  /** Marks the thread exited: it holds no translation any more. */
  exit(): void {
    this.flushTlb();
    const was = Atomics.exchange(this.ctl, this.base + S_STATE, T_EXITED);
    if (was === T_RUNNING) this.endRunning(-1);
    this.signal();
  }

  /**
   * Runs `wait` (a promise: a timer, a message) as a parked thread: a TLB shootdown does not wait
   * for a parked thread. Use it around every await that can take long in a thread function.
   */
  async park<T>(wait: Promise<T>): Promise<T> {
    this.block();
    try {
      return await wait;
    } finally {
      this.unblock();
    }
  }

  /**
   * True once the thread was asked to stop (workloads return at their next check). A kill throws
   * here too: exit() stores the kill before it bumps the generation, so a workload could see the
   * stop before its next access sees the kill, and return as if it had been stopped.
   */
  shouldStop(): boolean {
    const stop = Atomics.load(this.ctl, this.base + S_STOP);
    if (stop === STOP_KILLED) this.killed();
    return stop !== STOP_NONE;
  }

  /** Acknowledges a pending shootdown; call it in long loops that touch no memory. */
  checkpoint(): void {
    if (Atomics.load(this.ctl, CTL_GEN) !== this.seenGen) this.sync();
  }

  /** Counters of this thread. */
  stats(): {
    tlbFlushes: number;
    faults: number;
    migrationWaits: number;
    tlbMisses: number;
    accessesByNode: number[];
    migrationWaitMs: number;
  } {
    return {
      tlbFlushes: Atomics.load(this.ctl, this.base + S_TLB_FLUSHES),
      faults: Atomics.load(this.ctl, this.base + S_FAULTS),
      migrationWaits: Atomics.load(this.ctl, this.base + S_MIGRATION_WAITS),
      tlbMisses: this.tlbMisses,
      accessesByNode: Array.from(this.acc.subarray(0, this.otherSlot)),
      migrationWaitMs: this.acc[this.otherSlot + 1]!,
    };
  }

  /** Virtual page number of a user address. */
  vpnOf(addr: number): number {
    const off = addr - USER_BASE;
    if (!(off >= 0) || off >= USER_PAGES * 4096) this.segv(addr, 'address outside the user address space');
    return Math.floor(off / 4096);
  }

  /**
   * Translates page `vpn` for a read or a write and returns the frame (ZERO_PFN for the zero
   * page): TLB hit, else a page-table walk that may sleep on a migration entry or fault.
   */
  translate(vpn: number, write: boolean): number {
    if (Atomics.load(this.ctl, CTL_GEN) !== this.seenGen) this.sync();
    const t = vpn & this.tlbMask;
    if (this.tlbVpn[t] === vpn && (!write || this.tlbWrite[t] === 1)) {
      this.acc[this.tlbSlot[t]!]!++;
      return this.tlbPfn[t]!;
    }
    return this.walk(vpn, write);
  }

  /** Reads 32-bit word `w` (0..1023) of page `vpn`. */
  loadWord(vpn: number, w: number): number {
    const pfn = this.translate(vpn, false);
    if (pfn === ZERO_PFN) return 0;
    return this.words[pfn >>> this.shift]![((pfn & this.mask) << 10) | w]!;
  }

  /** Writes 32-bit word `w` (0..1023) of page `vpn`. */
  storeWord(vpn: number, w: number, value: number): void {
    const pfn = this.translate(vpn, true);
    this.words[pfn >>> this.shift]![((pfn & this.mask) << 10) | w] = value;
  }

  /** Reads the 32-bit word at `addr` (4-byte aligned). */
  load32(addr: number): number {
    const vpn = this.vpnOf(addr);
    return this.loadWord(vpn, ((addr - USER_BASE - vpn * 4096) >>> 2) & (WORDS_PER_PAGE - 1));
  }

  /** Writes the 32-bit word at `addr` (4-byte aligned). */
  store32(addr: number, value: number): void {
    const vpn = this.vpnOf(addr);
    this.storeWord(vpn, ((addr - USER_BASE - vpn * 4096) >>> 2) & (WORDS_PER_PAGE - 1), value);
  }

  /** Copies `n` bytes at `addr` out of the address space. */
  read(addr: number, n: number): Uint8Array {
    const out = new Uint8Array(n);
    let done = 0;
    while (done < n) {
      const vpn = this.vpnOf(addr + done);
      const off = addr + done - USER_BASE - vpn * 4096;
      const len = Math.min(4096 - off, n - done);
      const pfn = this.translate(vpn, false);
      this.countLines(vpn, off, len);
      if (pfn !== ZERO_PFN) {
        const at = (pfn & this.mask) << PAGE_SHIFT;
        out.set(this.bytes[pfn >>> this.shift]!.subarray(at + off, at + off + len), done);
      }
      done += len;
    }
    return out;
  }

  /** Copies `data` into the address space at `addr`. */
  write(addr: number, data: Uint8Array): void {
    let done = 0;
    while (done < data.length) {
      const vpn = this.vpnOf(addr + done);
      const off = addr + done - USER_BASE - vpn * 4096;
      const len = Math.min(4096 - off, data.length - done);
      const pfn = this.translate(vpn, true);
      this.countLines(vpn, off, len);
      this.bytes[pfn >>> this.shift]!.set(
        data.subarray(done, done + len),
        ((pfn & this.mask) << PAGE_SHIFT) + off,
      );
      done += len;
    }
  }

  /** The cache lines of bytes off..off+len of page `vpn` beyond the one translate() counted. */
  private countLines(vpn: number, off: number, len: number): void {
    this.acc[this.tlbSlot[vpn & this.tlbMask]!]! += ((off + len - 1) >>> LINE_SHIFT) - (off >>> LINE_SHIFT);
  }

  /** Drops every cached translation. */
  flushTlb(): void {
    this.tlbVpn.fill(-1);
  }

  private walk(vpn: number, write: boolean): number {
    this.tlbMisses++;
    for (;;) {
      // Read the wait word before the entry: a remap after this read changes it (no lost wakeup).
      const seq = Atomics.load(this.mig, 0);
      const pmdIdx = vpn >>> 9;
      const pmd = Atomics.load(this.pmd, pmdIdx);
      let arr: Int32Array;
      let idx: number;
      let e: number;
      if (pmd & PMD_HUGE) {
        arr = this.pmd;
        idx = pmdIdx;
        e = pmd;
      } else if (pmd & PMD_TABLE) {
        arr = this.pte;
        idx = (pmd >>> PTE_PFN_SHIFT) * PTRS_PER_PTE + (vpn & 511);
        e = Atomics.load(arr, idx);
      } else {
        this.fault(vpn, write);
        continue;
      }
      if (e & PTE_PRESENT) {
        if (write && !(e & PTE_WRITE)) {
          this.fault(vpn, write);
          continue;
        }
        const want = PTE_ACCESSED | (write ? PTE_DIRTY : 0);
        // Hardware sets A/D with a locked cmpxchg: a changed entry means walk again.
        if ((e & want) !== want && Atomics.compareExchange(arr, idx, e, e | want) !== e) continue;
        let pfn = e >>> PTE_PFN_SHIFT;
        if (arr === this.pmd && pfn !== ZERO_PFN) pfn += vpn & 511;
        const t = vpn & this.tlbMask;
        this.tlbVpn[t] = vpn;
        this.tlbPfn[t] = pfn;
        // A write through the TLB needs a writable entry whose dirty bit is set.
        this.tlbWrite[t] = e & PTE_WRITE && (e | want) & PTE_DIRTY ? 1 : 0;
        // The frame's node, from the pageblock table (the zero page is on none).
        const nid = pfn === ZERO_PFN ? undefined : this.nodeOfPageblock[pfn >>> PAGEBLOCK_SHIFT];
        const slot = nid === undefined || nid >= this.otherSlot ? this.otherSlot : nid;
        this.tlbSlot[t] = slot;
        this.acc[slot]!++;
        return pfn;
      }
      if ((e & (PTE_PRESENT | PTE_MIGRATION)) === PTE_MIGRATION) {
        this.waitMigration(
          seq,
          vpn,
          arr === this.pmd ? (e >>> PTE_PFN_SHIFT) + (vpn & 511) : e >>> PTE_PFN_SHIFT,
        );
        continue;
      }
      // Nothing mapped, or a PROT_NONE entry (NUMA hinting, pagetable.ts): the kernel decides.
      this.fault(vpn, write);
    }
  }

  /** migration_entry_wait: sleeps until the engine removes migration entries, then rechecks. */
  private waitMigration(seq: number, vpn: number, pfn: number): void {
    Atomics.add(this.ctl, this.base + S_MIGRATION_WAITS, 1);
    const t0 = this.tlNow();
    const w0 = performance.now();
    this.block(t0);
    try {
      for (let i = 0; i < MIGRATION_SPIN; i++) if (Atomics.load(this.mig, 0) !== seq) return;
      Atomics.wait(this.mig, 0, seq, MIGRATION_WAIT_MS);
    } finally {
      this.acc[this.otherSlot + 1]! += performance.now() - w0;
      let t1 = -1;
      if (t0 >= 0) {
        t1 = this.tl!.now();
        this.tl!.span(TL_USER_MIGRATION_WAIT, t0, t1, vpn, pfn);
      }
      this.unblock(t1);
    }
  }

  /** Posts a fault to the kernel and sleeps until it is answered. */
  private fault(vpn: number, write: boolean): void {
    Atomics.add(this.ctl, this.base + S_FAULTS, 1);
    let r = 0;
    const t0 = this.tlNow();
    if (this.faultHandler) {
      r = this.faultHandler(vpn, write);
      if (t0 >= 0) this.tl!.span(TL_USER_FAULT, t0, this.tl!.now(), vpn, write ? 1 : 0, r);
    } else {
      const ctl = this.ctl;
      const b = this.base;
      Atomics.store(ctl, b + S_FAULT_VPN, vpn);
      Atomics.store(ctl, b + S_FAULT_WRITE, write ? 1 : 0);
      this.block(t0);
      try {
        Atomics.store(ctl, b + S_FAULT, FAULT_REQUESTED);
        Atomics.add(ctl, CTL_DOORBELL, 1);
        Atomics.notify(ctl, CTL_DOORBELL);
        while (Atomics.load(ctl, b + S_FAULT) === FAULT_REQUESTED) {
          Atomics.wait(ctl, b + S_FAULT, FAULT_REQUESTED, 1000);
        }
        r = Atomics.load(ctl, b + S_FAULT_RESULT);
        Atomics.store(ctl, b + S_FAULT, FAULT_IDLE);
      } finally {
        let t1 = -1;
        if (t0 >= 0) {
          t1 = this.tl!.now();
          this.tl!.span(TL_USER_FAULT, t0, t1, vpn, write ? 1 : 0, r);
        }
        this.unblock(t1);
      }
    }
    if (r === 0 || r === FAULT_RETRY) return;
    const addr = USER_BASE + vpn * 4096;
    if (r === FAULT_KILLED) throw new MmuFault('thread killed: its process exited', 0, addr);
    if (r === FAULT_SIGBUS) throw new MmuFault(`bus error (SIGBUS) at 0x${addr.toString(16)}`, 0, addr);
    if (r === -14) this.segv(addr, 'no mapping');
    throw new MmuFault(
      `${r === -12 ? 'out of memory (VM_FAULT_OOM)' : `fault failed with errno ${-r}`} at 0x${addr.toString(16)}`,
      -r,
      addr,
    );
  }

  private segv(addr: number, why: string): never {
    throw new MmuFault(`segmentation fault at 0x${addr.toString(16)}: ${why}`, 14, addr);
  }

  /** Stops running (at `at` µs on the timeline, -1: now): a shootdown no longer waits for this thread. */
  private block(at = -1): void {
    Atomics.store(this.ctl, this.base + S_STATE, T_BLOCKED);
    this.endRunning(at);
    this.signal();
  }

  private unblock(at = -1): void {
    Atomics.store(this.ctl, this.base + S_STATE, T_RUNNING);
    this.beginRunning(at);
    this.sync();
  }

  /** Drops the TLB if a shootdown happened, acknowledges it, and honours a kill. */
  private sync(): void {
    const g = Atomics.load(this.ctl, CTL_GEN);
    if (g !== this.seenGen) {
      const t0 = this.tlNow();
      this.flushTlb();
      this.seenGen = g;
      Atomics.add(this.ctl, this.base + S_TLB_FLUSHES, 1);
      Atomics.store(this.ctl, this.base + S_ACK, g);
      this.signal();
      if (t0 >= 0) this.tl!.span(TL_USER_TLB_ACK, t0, this.tl!.now(), g);
    }
    if (Atomics.load(this.ctl, this.base + S_STOP) === STOP_KILLED) this.killed();
  }

  /** The process exited: the thread ends at this access (its state is EXITED for the flusher). */
  private killed(): never {
    Atomics.store(this.ctl, this.base + S_STATE, T_EXITED);
    this.signal();
    throw new MmuFault('thread killed: its process exited', 0, 0);
  }

  /** Wakes a flusher that sleeps on the acknowledgements. */
  private signal(): void {
    if (Atomics.load(this.ctl, CTL_FLUSH_WAITERS) > 0) {
      Atomics.add(this.ctl, CTL_ACK_SEQ, 1);
      Atomics.notify(this.ctl, CTL_ACK_SEQ);
    }
  }
}
