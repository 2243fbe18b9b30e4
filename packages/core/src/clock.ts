import { EINVAL, kernelError } from './errno.js';
import { show } from './show.js';

/**
 * The longest delay Node's setTimeout keeps (2^31 - 1 ms, 24.8 days): it turns anything longer
 * into 1 ms with a TimeoutOverflowWarning.
 */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/** 'wall': milliseconds since the machine was created. 'manual': 0 until advance() moves it. */
export type MachineClockMode = 'wall' | 'manual';

/**
 * The machine's clock (jiffies for the time-based decisions of the kernel: hint-fault latency,
 * the promotion rate limit, kswapd's timestamps). Those read `now()`, never performance.now(), so a
 * manual clock makes a run step-by-step reproducible.
 */
export interface MachineClock {
  /** Milliseconds on this clock. */
  now(): number;
  readonly mode: MachineClockMode;
  /** Moves a manual clock forward by `ms` (>= 0). EINVAL on a wall clock. */
  advance(ms: number): void;
}

/**
 * The clock of one machine. The manual time sits in shared memory (`buffer`, one Float64) so the
 * machine's worker threads read the same time as the main thread.
 */
export class Clock implements MachineClock {
  readonly buffer = new SharedArrayBuffer(8);
  private readonly ms = new Float64Array(this.buffer);
  private readonly origin = performance.now();

  constructor(readonly mode: MachineClockMode) {}

  now(): number {
    return this.mode === 'manual' ? this.ms[0]! : performance.now() - this.origin;
  }

  advance(ms: number): void {
    if (this.mode !== 'manual')
      throw kernelError(
        EINVAL,
        "clock.advance: the machine's clock is 'wall'; createMachine({ clock: 'manual' }) makes one that advances",
      );
    if (typeof ms !== 'number' || !Number.isFinite(ms) || ms < 0)
      throw kernelError(EINVAL, `clock.advance: ms ${show(ms)} is not a finite number >= 0`);
    this.ms[0] = this.ms[0]! + ms;
  }
}
