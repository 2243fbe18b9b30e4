/**
 * The doorbell protocol between a driver and its device thread, over the emulator words of the
 * device's register file: the driver bumps an MMIO sequence on every write the device must see;
 * the device works while it finds work, then polls the sequence for a bounded time, then sleeps on
 * it. While the driver has a migration run going (the run word), the device polls longer after each
 * batch, as a hardware engine that never sleeps between doorbells: the next batch then costs a
 * doorbell, not a thread wake-up. Each device keeps these words at its own offsets and names them in
 * an `EmulatorWords`.
 */

/** Int32 indexes of a device's emulator words in its register file. */
export interface EmulatorWords {
  /** Bumped on every MMIO write the device acts on; the device thread waits on it. */
  readonly mmioSeq: number;
  /** The mmioSeq value the device has fully acted on (idle and caught up). */
  readonly seenSeq: number;
  /** 1 while the device thread sleeps (or is about to) on mmioSeq. */
  readonly sleeping: number;
  /** How long the idle device polls mmioSeq before it sleeps, in nanoseconds. */
  readonly spinNs: number;
  /** Device life: EMU_STATE_*. */
  readonly state: number;
  /** Nonzero: the device thread ends. */
  readonly exit: number;
  /** Nonzero while the driver has a migration run going (runStart..runEnd). */
  readonly run: number;
  /** How long the device polls after each piece of work while a run goes, in nanoseconds. */
  readonly runSpinNs: number;
  /** Times the device thread went to sleep (each costs the next doorbell a wake-up). */
  readonly sleeps: number;
}

export const EMU_STATE_BOOT = 0;
export const EMU_STATE_READY = 1;
export const EMU_STATE_EXITED = 2;

/**
 * Off the CPU this long between two looks at the clock: the scheduler gave this core to another
 * thread that needed it (need_resched(), for a kernel spinner), so polling stops and the thread
 * sleeps. Shorter gaps are the engine's own thread taking its turn between batches.
 */
export const PREEMPTED_NS = 1_000_000;

const nowNs = (): number => performance.now() * 1e6;

/** What a poll ended with: a doorbell, the budget spent (or the run ended), or the core taken away. */
export const POLL_DOORBELL = 1;
export const POLL_TIMEOUT = 0;
export const POLL_PREEMPTED = -1;

/**
 * Polls `seq` at index `at` for up to `budgetNs`: POLL_DOORBELL once it moves past `seen`;
 * POLL_TIMEOUT when the budget is spent or `run` (an index; -1: none) drops to 0 (the run ended);
 * POLL_PREEMPTED when the thread was off the CPU for PREEMPTED_NS (the core is needed elsewhere).
 */
export function pollWord(r: Int32Array, at: number, seen: number, budgetNs: number, run: number): number {
  let last = nowNs();
  const until = last + budgetNs;
  for (let i = 1; ; i++) {
    if (Atomics.load(r, at) !== seen) return POLL_DOORBELL;
    if ((i & 63) !== 0) continue;
    if (run >= 0 && Atomics.load(r, run) === 0) return POLL_TIMEOUT;
    const now = nowNs();
    if (now - last > PREEMPTED_NS) return POLL_PREEMPTED;
    if (now >= until) return POLL_TIMEOUT;
    last = now;
  }
}

/** A learned poll below this is not worth it: sleep at once. */
export const MIN_POLL_NS = 20_000;

/**
 * The adaptive part of a run's poll (as an adaptive mutex spins only while spinning pays): a poll
 * that caught its doorbell, or an idle period short enough that a longer poll (up to `max`) would
 * have, doubles the budget; an idle period longer than `max`, or a poll cut short by the scheduler
 * (the core is needed), halves it, down to none. So a device starts a run polling briefly, polls
 * longer while doorbells keep coming soon, and stops taking CPU it cannot use on a loaded host or
 * when the gaps between batches are long. Returns the next budget.
 */
export function nextPollBudget(budget: number, max: number, idleNs: number, outcome: number): number {
  if (outcome !== POLL_PREEMPTED && idleNs <= max) return Math.min(max, Math.max(budget, MIN_POLL_NS) * 2);
  const half = budget / 2;
  return half < MIN_POLL_NS ? 0 : half;
}

/**
 * The device thread: `step()` while it does work, else poll the MMIO sequence (the run's budget,
 * learned as above, while the run word is set; the idle one otherwise) and sleep on it, until the
 * exit word is set. The state word reads READY while it runs, EXITED after.
 */
export function runDeviceLoop(r: Int32Array, words: EmulatorWords, step: () => boolean): void {
  const { mmioSeq, seenSeq, sleeping, spinNs, state, exit, run, runSpinNs, sleeps } = words;
  Atomics.store(r, state, EMU_STATE_READY);
  Atomics.notify(r, state);
  let budget = -1;
  for (;;) {
    if (Atomics.load(r, exit)) break;
    const seq = Atomics.load(r, mmioSeq);
    if (step()) continue;
    Atomics.store(r, seenSeq, seq);
    // Waking a sleeping thread costs tens of microseconds of the waker's CPU here; a doorbell that
    // arrives while the device still polls costs well under one. Poll for a bounded time, then sleep.
    const inRun = Atomics.load(r, run) !== 0;
    const max = Atomics.load(r, inRun ? runSpinNs : spinNs) >>> 0;
    // A run's poll starts at the full budget (the run's next batch is expected soon) and only
    // shrinks on evidence.
    if (!inRun) budget = -1;
    else if (budget < 0 || budget > max) budget = max;
    const idle0 = nowNs();
    let outcome = POLL_TIMEOUT;
    const b = inRun ? budget : max;
    if (b > 0) outcome = pollWord(r, mmioSeq, seq, b, inRun ? run : -1);
    if (outcome !== POLL_DOORBELL) {
      Atomics.store(r, sleeping, 1);
      Atomics.add(r, sleeps, 1);
      Atomics.wait(r, mmioSeq, seq);
      Atomics.store(r, sleeping, 0);
    }
    if (inRun) budget = nextPollBudget(budget, max, nowNs() - idle0, outcome);
  }
  Atomics.store(r, state, EMU_STATE_EXITED);
  Atomics.notify(r, state);
}

/**
 * Driver side: makes the device see a register write. Bump, then look: the device sets SLEEPING
 * before its last look at the sequence, so one of the two sees the other (both sequentially
 * consistent) and no doorbell is lost. Only the writer that takes SLEEPING back from 1 to 0 pays
 * for the wake-up, so back-to-back writes wake a sleeping device once.
 */
export function wakeDevice(r: Int32Array, words: EmulatorWords): void {
  Atomics.add(r, words.mmioSeq, 1);
  if (Atomics.load(r, words.sleeping) && Atomics.compareExchange(r, words.sleeping, 1, 0) === 1)
    Atomics.notify(r, words.mmioSeq);
}

/**
 * Driver side: a migration run starts (`on`) or ends. Starting wakes a sleeping device at once, so
 * it is polling by the time the run's first doorbell comes; ending lets it sleep after its work.
 */
export function setDeviceRun(r: Int32Array, words: EmulatorWords, on: boolean): void {
  Atomics.store(r, words.run, on ? 1 : 0);
  if (on) wakeDevice(r, words);
}
