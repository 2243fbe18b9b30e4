import {
  CTL_ACK_SEQ,
  CTL_FLUSH_WAITERS,
  CTL_GEN,
  CTL_HEADER,
  CTL_INTS,
  CTL_NR_SLOTS,
  S_ACK,
  S_STATE,
  SLOT_INTS,
  T_RUNNING,
} from './mmu.js';

/**
 * arch/x86/mm/tlb.c for emulated user threads: a TLB shootdown of an address space waits until
 * every running thread of it dropped its cached translations (see mmu.ts for the protocol). An
 * address space without threads has no MmTlb, and a flush of the machine is then a counter.
 */
export class MmTlb {
  /** The control block the threads of this address space share (see mmu.ts). */
  readonly ctl = new Int32Array(new SharedArrayBuffer(CTL_INTS * 4));
  /** Threads started and not yet exited. */
  live = 0;
  /** Set by the engine's unmap when an entry of this address space changed; cleared by the flush. */
  pending = false;
  /** Shootdowns of this address space. */
  shootdowns = 0;
}

/** Spin this long on the acknowledgements before sleeping (a sleep/wake round trip costs ~83 µs). */
const SPIN_MS = 0.05;
/** A sleeping flusher rechecks after this long even without a wakeup. */
const SLEEP_MS = 5;

function begin(t: MmTlb): number {
  t.shootdowns++;
  return (Atomics.add(t.ctl, CTL_GEN, 1) + 1) | 0;
}

/** True once every running thread acknowledged generation `gen`. */
function acked(t: MmTlb, gen: number): boolean {
  const ctl = t.ctl;
  const n = Atomics.load(ctl, CTL_NR_SLOTS);
  for (let s = 0; s < n; s++) {
    const b = CTL_HEADER + s * SLOT_INTS;
    if (Atomics.load(ctl, b + S_STATE) === T_RUNNING && ((Atomics.load(ctl, b + S_ACK) - gen) | 0) < 0)
      return false;
  }
  return true;
}

/**
 * flush_tlb_mm for several address spaces from an async path (the migration engine): returns
 * once no thread of them can use a translation cached before the call. Spins briefly, then sleeps
 * in Atomics.waitAsync so the main thread keeps serving page faults meanwhile.
 */
export async function shootdownAsync(list: readonly MmTlb[]): Promise<void> {
  const gens = list.map(begin);
  const t0 = performance.now();
  for (let i = 0; i < list.length; i++) {
    const t = list[i]!;
    const gen = gens[i]!;
    while (!acked(t, gen)) {
      if (performance.now() - t0 < SPIN_MS) continue;
      const ctl = t.ctl;
      Atomics.add(ctl, CTL_FLUSH_WAITERS, 1);
      try {
        const seq = Atomics.load(ctl, CTL_ACK_SEQ);
        if (acked(t, gen)) break;
        const r = Atomics.waitAsync(ctl, CTL_ACK_SEQ, seq, SLEEP_MS);
        if (r.async) await r.value;
      } finally {
        Atomics.sub(ctl, CTL_FLUSH_WAITERS, 1);
      }
    }
  }
}

/**
 * flush_tlb_mm from a synchronous path (fault handling, munmap, fork): blocks the main thread in
 * Atomics.wait. Never deadlocks on a thread that sleeps in a fault or on a migration entry: those
 * count as acknowledged. Gives up after `timeoutMs` and returns false (a thread stuck in a loop
 * that touches no memory and never calls mmu.checkpoint()).
 */
export function shootdownSync(t: MmTlb, timeoutMs = 10_000): boolean {
  const gen = begin(t);
  const t0 = performance.now();
  const ctl = t.ctl;
  while (!acked(t, gen)) {
    const now = performance.now() - t0;
    if (now < SPIN_MS) continue;
    if (now > timeoutMs) return false;
    Atomics.add(ctl, CTL_FLUSH_WAITERS, 1);
    try {
      const seq = Atomics.load(ctl, CTL_ACK_SEQ);
      if (acked(t, gen)) break;
      Atomics.wait(ctl, CTL_ACK_SEQ, seq, SLEEP_MS);
    } finally {
      Atomics.sub(ctl, CTL_FLUSH_WAITERS, 1);
    }
  }
  return true;
}

/** flush_tlb_mm if the address space has live threads (zero cost otherwise). */
export function flushTlbMm(t: MmTlb | null): void {
  if (t !== null && t.live > 0) shootdownSync(t);
}
