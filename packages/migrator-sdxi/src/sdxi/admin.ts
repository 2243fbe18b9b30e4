/**
 * The driver's admin queue: descriptors for context 0 (start, stop, sync), submitted in one
 * doorbell and waited for on their completion blocks — polled for a moment, then with
 * Atomics.waitAsync, so the engine's thread never blocks.
 */
import type { SdxiDescriptor } from './descriptor.js';
import type { Mmio } from './regs.js';
import type { ContextRing } from './ring.js';
import { CXTV_RUN, contextStateName } from './tables.js';

/** How long a completion is polled before waiting asynchronously: admin operations finish fast. */
const POLL_MS = 0.05;

export class AdminQueue {
  private queue: Promise<unknown> = Promise.resolve();

  constructor(
    readonly ring: ContextRing,
    private readonly mmio: Mmio,
    /** Keeps the process alive while waiting (the function thread is unref'd). */
    private readonly hold: { ref(): void; unref(): void },
    private readonly timeoutMs = 1000,
  ) {}

  /** Runs `descs` in order; rejects if the admin context cannot take them or one fails. */
  run(descs: readonly SdxiDescriptor[]): Promise<void> {
    const p = this.queue.then(() => this.exec(descs));
    this.queue = p.catch(() => {});
    return p;
  }

  private async exec(descs: readonly SdxiDescriptor[]): Promise<void> {
    const r = this.ring;
    const state = r.state();
    if (state !== CXTV_RUN) throw new Error(`sdxi: the admin context is ${contextStateName(state)}`);
    const first = r.reserve(descs.length);
    if (first < 0) throw new Error('sdxi: the admin ring is full');
    descs.forEach((d, i) => {
      r.put(first + i, d);
    });
    r.ringDoorbell(this.mmio);
    this.hold.ref();
    try {
      for (let i = 0; i < descs.length; i++) {
        await this.wait(first + i);
        if (r.failed(first + i))
          throw new Error(`sdxi: admin descriptor ${first + i} failed (see the function's error log)`);
      }
    } finally {
      this.hold.unref();
    }
  }

  private async wait(i: number): Promise<void> {
    const [word, at] = this.ring.signalWord(i);
    const spinUntil = performance.now() + POLL_MS;
    while (Atomics.load(word, at) !== 0n && performance.now() < spinUntil);
    const deadline = performance.now() + this.timeoutMs;
    for (;;) {
      const v = Atomics.load(word, at);
      if (v === 0n) return;
      const left = deadline - performance.now();
      if (left <= 0)
        throw new Error(`sdxi: admin descriptor ${i} did not complete within ${this.timeoutMs} ms`);
      const w = Atomics.waitAsync(word, at, v, left);
      if (w.async) await w.value;
    }
  }
}
