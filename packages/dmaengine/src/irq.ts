/**
 * The CPU side of message-signalled interrupts for emulated devices: one interrupt line (a word in a
 * SharedArrayBuffer) that every device of a driver signals after it updated its own status, and
 * one dispatcher on the engine's thread that waits on it with Atomics.waitAsync (the event loop
 * stays free) and asks each source to service what is pending.
 *
 * Why one line for many devices: waking a thread that went idle costs tens of microseconds of its
 * CPU on the project's machine, so N channels finishing a batch within microseconds of each other
 * should wake the engine once, not N times. After servicing, the dispatcher may spin for a bounded
 * time (NAPI-style polling) while sources still expect interrupts, then sleeps.
 */

/** Something that takes interrupts from the line: a channel's interrupt handler. */
export interface IrqSource {
  /** Handles whatever is pending; returns true while it still expects interrupts. */
  service(): boolean;
}

const PIN = 0;

export class InterruptLine {
  /** [0]: bumped by a device for every interrupt it sends. Hand it to the devices. */
  readonly sab = new SharedArrayBuffer(8);
  private readonly pin = new Int32Array(this.sab);
  private readonly sources = new Set<IrqSource>();
  private running = false;
  /** hold() calls not yet released, and whether a source asked for the dispatcher meanwhile. */
  private held = 0;
  private wanted = false;
  /** Interrupts (wake-ups or polls that found work) the dispatcher handled. */
  dispatches = 0;

  /** @param spinNs how long the dispatcher polls the line before it sleeps, while sources are busy */
  constructor(public spinNs = 0) {}

  register(s: IrqSource): void {
    this.sources.add(s);
  }

  unregister(s: IrqSource): void {
    this.sources.delete(s);
  }

  /** A source has work outstanding: make sure the dispatcher is waiting for its interrupts. */
  arm(): void {
    if (this.running) return;
    if (this.held > 0) {
      this.wanted = true;
      return;
    }
    this.running = true;
    void this.loop();
  }

  /**
   * The engine's thread waits on the line itself (`sleep`): the dispatcher is not started meanwhile,
   * so an interrupt costs no event-loop turn and no promise. `release(busy)` hands over to it when a
   * source still expects interrupts.
   */
  hold(): void {
    this.held++;
  }

  release(busy: boolean): void {
    if (this.held === 0) throw new RangeError('InterruptLine.release() without a hold()');
    if (--this.held > 0 || !this.wanted) return;
    this.wanted = false;
    if (busy) this.arm();
  }

  /** Runs every source's handler once, as an interrupt would; true while one still expects more. */
  serviceAll(): boolean {
    let busy = false;
    for (const s of this.sources) if (s.service()) busy = true;
    this.dispatches++;
    return busy;
  }

  /**
   * Blocks the calling thread until the line moves past `seen` or `timeoutMs` passes: a futex
   * sleep (after polling for `spinNs`), as wait_for_completion sleeps in process context.
   */
  sleep(seen: number, timeoutMs: number): void {
    // (Atomics.wait would take NaN for no timeout at all.)
    if (!(timeoutMs >= 0 && timeoutMs < Number.POSITIVE_INFINITY))
      throw new RangeError(`InterruptLine.sleep(): timeoutMs must be a finite number >= 0, got ${timeoutMs}`);
    const pin = this.pin;
    if (this.spinNs > 0) {
      const until = performance.now() + Math.min(this.spinNs / 1e6, timeoutMs);
      for (let i = 0; Atomics.load(pin, PIN) === seen; i++) {
        if ((i & 63) === 0 && performance.now() >= until) break;
      }
    }
    Atomics.wait(pin, PIN, seen, timeoutMs);
  }

  /** The line's current count (wait for a change with `waitChange`). */
  get count(): number {
    return Atomics.load(this.pin, PIN);
  }

  /** Resolves when the line moves past `seen`, or after `timeoutMs`. */
  async waitChange(seen: number, timeoutMs: number): Promise<void> {
    const w = Atomics.waitAsync(this.pin, PIN, seen, timeoutMs);
    if (w.async) await w.value;
  }

  /** Device side: signal the line (after the device's own status is up to date). */
  static raise(pin: Int32Array): void {
    Atomics.add(pin, PIN, 1);
    Atomics.notify(pin, PIN);
  }

  private async loop(): Promise<void> {
    const pin = this.pin;
    try {
      for (;;) {
        const seen = Atomics.load(pin, PIN);
        let busy = false;
        for (const s of this.sources) if (s.service()) busy = true;
        this.dispatches++;
        if (!busy) return;
        if (this.spinNs > 0) {
          const until = performance.now() + this.spinNs / 1e6;
          for (let i = 0; Atomics.load(pin, PIN) === seen; i++) {
            if ((i & 63) === 0 && performance.now() >= until) break;
          }
        }
        // No timeout: a timed waitAsync costs a timer per wait (measured ~2.5x the CPU).
        const w = Atomics.waitAsync(pin, PIN, seen);
        if (w.async) await w.value;
      }
    } finally {
      this.running = false;
    }
  }
}
