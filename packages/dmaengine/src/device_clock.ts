/**
 * A device's timing profile on its own thread: how long the profile says a descriptor takes, and
 * holding the descriptor until then. The clock is virtual (when the device is free again), so sleep
 * granularity does not accumulate over descriptors; the copy itself is timed too, so a throttled
 * copy lands when its modelled time is up rather than one host copy later.
 */
import type { EmulatorWords } from './device_loop.js';

/** Int32 indexes of a device's timing-profile registers in its register file. */
export interface TimingWords {
  /** MB/s (10^6 bytes per second); 0 = host speed. */
  readonly bandwidthMBps: number;
  /** Fixed cost per descriptor, in nanoseconds. */
  readonly latencyNs: number;
}

/** Sleep (on the MMIO sequence, so a register write still gets through) only above this wait; spin below. */
const SLEEP_ABOVE_NS = 200_000;
/** Copies at least this long teach the clock the host's copy cost (short ones are mostly overhead). */
const LEARN_BYTES = 1 << 16;

const nowNs = (): number => performance.now() * 1e6;

export class DeviceClock {
  /** When the device is free again (ns, performance.now() timebase). */
  private busyUntil = 0;
  /** Measured host copy cost, subtracted from the hold so the copy ends on time. */
  private copyNsPerByte = 0.1;

  /**
   * @param stopped true once the device must give up the descriptor it holds (a halt, a stop, exit);
   *   checked between sleeps, which any register write ends
   */
  constructor(
    private readonly r: Int32Array,
    private readonly emu: EmulatorWords,
    private readonly timing: TimingWords,
    private readonly stopped: () => boolean,
  ) {}

  /** What the profile says a descriptor of `len` bytes takes, in ns (0 at host speed). */
  modelNs(len: number): number {
    const bw = Atomics.load(this.r, this.timing.bandwidthMBps) >>> 0;
    const lat = Atomics.load(this.r, this.timing.latencyNs) >>> 0;
    return lat + (bw ? (len * 1000) / bw : 0);
  }

  /**
   * Holds a descriptor of `len` bytes until its copy should start to end `modelNs` after the device
   * got free; false if the device was stopped meanwhile (the descriptor is abandoned, nothing copied).
   */
  hold(modelNs: number, len: number): boolean {
    const { r, emu } = this;
    const start = Math.max(nowNs(), this.busyUntil);
    this.busyUntil = start + modelNs;
    const landAt = this.busyUntil - len * this.copyNsPerByte;
    for (;;) {
      const now = nowNs();
      if (now >= landAt) return true;
      if (this.stopped()) {
        this.busyUntil = now;
        return false;
      }
      const left = landAt - now;
      if (left > SLEEP_ABOVE_NS) {
        const seq = Atomics.load(r, emu.mmioSeq);
        Atomics.store(r, emu.sleeping, 1);
        Atomics.wait(r, emu.mmioSeq, seq, (left - SLEEP_ABOVE_NS / 2) / 1e6);
        Atomics.store(r, emu.sleeping, 0);
      }
    }
  }

  /** A copy of `len` bytes took `tookNs` on the host. */
  copied(len: number, tookNs: number): void {
    if (len >= LEARN_BYTES) this.copyNsPerByte = 0.8 * this.copyNsPerByte + (0.2 * tookNs) / len;
  }
}
