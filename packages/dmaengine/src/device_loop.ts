/**
 * The doorbell protocol between a driver and its device thread, over the emulator words of the
 * device's register file: the driver bumps an MMIO sequence on every write the device must see;
 * the device works while it finds work, then spins on the sequence for a bounded time, then sleeps
 * on it. Each device keeps these words at its own offsets and names them in an `EmulatorWords`.
 */

/** Int32 indexes of a device's emulator words in its register file. */
export interface EmulatorWords {
  /** Bumped on every MMIO write the device acts on; the device thread waits on it. */
  readonly mmioSeq: number;
  /** The mmioSeq value the device has fully acted on (idle and caught up). */
  readonly seenSeq: number;
  /** 1 while the device thread sleeps (or is about to) on mmioSeq. */
  readonly sleeping: number;
  /** How long the idle device spins on mmioSeq before it sleeps, in nanoseconds. */
  readonly spinNs: number;
  /** Device life: EMU_STATE_*. */
  readonly state: number;
  /** Nonzero: the device thread ends. */
  readonly exit: number;
}

export const EMU_STATE_BOOT = 0;
export const EMU_STATE_READY = 1;
export const EMU_STATE_EXITED = 2;

const nowNs = (): number => performance.now() * 1e6;

/**
 * The device thread: `step()` while it does work, else spin briefly and sleep on the MMIO
 * sequence, until the exit word is set. The state word reads READY while it runs, EXITED after.
 */
export function runDeviceLoop(r: Int32Array, words: EmulatorWords, step: () => boolean): void {
  const { mmioSeq, seenSeq, sleeping, spinNs, state, exit } = words;
  Atomics.store(r, state, EMU_STATE_READY);
  Atomics.notify(r, state);
  for (;;) {
    if (Atomics.load(r, exit)) break;
    const seq = Atomics.load(r, mmioSeq);
    if (step()) continue;
    Atomics.store(r, seenSeq, seq);
    // Waking a sleeping thread costs tens of microseconds; a doorbell that arrives while the
    // device still spins costs well under one. Spin for a bounded time, then sleep.
    const spin = Atomics.load(r, spinNs) >>> 0;
    if (spin > 0) {
      const until = nowNs() + spin;
      for (let i = 0; Atomics.load(r, mmioSeq) === seq; i++) {
        if ((i & 63) === 0 && nowNs() >= until) break;
      }
    }
    Atomics.store(r, sleeping, 1);
    Atomics.wait(r, mmioSeq, seq);
    Atomics.store(r, sleeping, 0);
  }
  Atomics.store(r, state, EMU_STATE_EXITED);
  Atomics.notify(r, state);
}

/**
 * Driver side: makes the device see a register write. Bump, then look: the device sets SLEEPING
 * before its last look at the sequence, so one of the two sees the other (both sequentially
 * consistent) and no doorbell is lost; the write pays for a wake-up only when the device sleeps.
 */
export function wakeDevice(r: Int32Array, words: EmulatorWords): void {
  Atomics.add(r, words.mmioSeq, 1);
  if (Atomics.load(r, words.sleeping)) Atomics.notify(r, words.mmioSeq);
}
