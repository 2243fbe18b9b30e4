/**
 * A client context as dmaengine sees it: a DmaDevice (its address space is the context's IOMMU
 * domain, which its AKey names) with one channel. The channel submits each issued memcpy as a
 * COPY with its own completion block and closes every submission with a fenced DSC_INTR, whose
 * MSI (on the function's interrupt line) runs `service`: descriptors complete in ring order as
 * their blocks reach 0; a context the function stopped in error fails the descriptor at its read
 * index with the error log's cause, skips the rest, and is stopped and restarted through the admin
 * context.
 */
import {
  type DmaCapability,
  type DmaDevice,
  DmaStatusCode,
  type DmaStatusCodeValue,
  type InterruptLine,
  type IommuDomain,
  type IrqSource,
  VirtDmaChannel,
  type VirtDmaTx,
} from '@pagemig/dmaengine';
import type { AdminQueue } from './admin.js';
import {
  cxtStartDescriptor,
  cxtStopDescriptor,
  intrDescriptor,
  publish,
  writeCopyDescriptor,
} from './descriptor.js';
import type { ErrlogEntry } from './errlog.js';
import type { Mmio } from './regs.js';
import type { ContextRing } from './ring.js';
import { deviceCodeOf, statusOfErrlog } from './status.js';
import { CXTV_ERR_FN } from './tables.js';

/** The AKey entry every client context uses for its buffers and its interrupt (as Linux does). */
export const DATA_AKEY = 0;

/** What a context needs from its function's driver. */
export interface ContextHost {
  readonly name: string;
  readonly mmio: Mmio;
  readonly admin: AdminQueue;
  readonly line: InterruptLine;
  readonly up: boolean;
  ref(): void;
  unref(): void;
  /** Error-log records of context `id` not yet taken (the log is drained first). */
  takeErrors(id: number): ErrlogEntry[];
  warn(message: string): void;
  /** Context `id`'s track on the machine's timeline, if the driver registered one. */
  trackOf?(id: number): number | undefined;
}

export class SdxiContext implements DmaDevice {
  readonly name: string;
  readonly channels: readonly [SdxiChannel];

  constructor(
    readonly host: ContextHost,
    readonly id: number,
    readonly ring: ContextRing,
    /** The context's address space: the driver maps buffers here before the function may touch them. */
    readonly iommu: IommuDomain,
  ) {
    this.name = `${host.name}c${id}`;
    this.channels = [new SdxiChannel(this, `${this.name}chan0`)];
  }
}

export class SdxiChannel extends VirtDmaChannel implements IrqSource {
  readonly capabilities: readonly DmaCapability[] = ['MEMCPY'];
  /** The size field is length − 1 in 32 bits: 1 B .. 4 GiB. */
  readonly maxSegmentBytes = 2 ** 32;
  /** What sits in each ring slot from `first` to the ring's write index (null: the DSC_INTR). */
  private readonly slots: (VirtDmaTx | null)[];
  private first = 0;
  private refd = false;
  private stopping = false;
  private dead = false;
  /** Settles when a stop/restart after an error is done. */
  private recovering: Promise<void> | null = null;
  /** Interrupts handled, and recoveries from an error state. */
  interrupts = 0;
  recoveries = 0;

  constructor(
    readonly device: SdxiContext,
    readonly name: string,
  ) {
    super();
    this.slots = new Array(device.ring.entries).fill(null);
  }

  protected override usable(): boolean {
    return this.device.host.up && !this.dead;
  }

  /** This context's track on the machine's timeline. */
  get timelineTrack(): number | undefined {
    return this.device.host.trackOf?.(this.device.id);
  }

  /** Completions signal the function's interrupt line. */
  get irqLine(): InterruptLine {
    return this.device.host.line;
  }

  private get ring(): ContextRing {
    return this.device.ring;
  }

  /** Everything issued that fits the ring (one slot for the DSC_INTR), in one doorbell. */
  protected kick(): void {
    if (this.dead || !this.device.host.up) {
      this.failIssued(DmaStatusCode.DEV_LINK_ERROR);
      return;
    }
    if (this.recovering || this.stopping) return;
    const r = this.ring;
    // Slots free for the device (its read index) and for this driver: a slot is reused only once
    // the descriptor in it has been retired here, so its callback cannot be lost.
    const free = Math.min(r.room(), r.entries - (r.write - this.first));
    const n = Math.min(free - 1, this.issuedCount);
    if (n <= 0) return;
    const start = r.reserve(n + 1);
    const words = r.ring;
    const mask = r.entries - 1;
    for (let i = 0; i < n; i++) {
      const tx = this.takeIssued()!;
      const idx = start + i;
      const at = r.at(idx);
      r.arm(idx);
      publish(
        words,
        at,
        writeCopyDescriptor(words, at, tx.dst, tx.src, tx.bytes, DATA_AKEY, r.cstOf(idx), false),
      );
      this.slots[idx & mask] = tx;
    }
    // Fenced: it runs once every copy before it completed, so its MSI means "look now".
    r.put(start + n, intrDescriptor(DATA_AKEY, { fence: true }));
    this.slots[(start + n) & mask] = null;
    r.ringDoorbell(this.device.host.mmio);
    this.arm();
  }

  private arm(): void {
    if (!this.refd) {
      this.refd = true;
      this.device.host.ref();
    }
    this.device.host.line.arm();
  }

  private settleRef(): void {
    if (this.refd && this.ring.write === this.first && !this.recovering && !this.stopping) {
      this.refd = false;
      this.device.host.unref();
    }
  }

  /** The interrupt line's call: complete what finished; true while descriptors are out. */
  service(): boolean {
    if (!this.refd) return false;
    this.interrupts++;
    this.retire();
    if (!this.recovering && !this.stopping && this.ring.state() === CXTV_ERR_FN) this.onError();
    if (this.issuedCount && !this.recovering && !this.stopping) this.kick();
    const busy = this.ring.write !== this.first || this.recovering !== null;
    if (!busy) this.settleRef();
    return busy;
  }

  /** Completes, in ring order, the descriptors whose blocks reached 0 without an error. */
  private retire(): void {
    const r = this.ring;
    const mask = r.entries - 1;
    while (this.first < r.write && r.pending(this.first) === 0n && !r.failed(this.first)) {
      const tx = this.slots[this.first & mask];
      this.slots[this.first & mask] = null;
      this.first++;
      if (tx) this.complete(tx, DmaStatusCode.SUCCESSFUL);
    }
  }

  /** The function stopped the context at its read index: fail that one, skip the rest, restart. */
  private onError(): void {
    const r = this.ring;
    const at = r.readIndex();
    const errors = this.device.host.takeErrors(this.device.id);
    const e = errors.find((x) => x.dscIndex === BigInt(at)) ?? errors.at(-1);
    const status: DmaStatusCodeValue = e ? statusOfErrlog(e) : DmaStatusCode.ERROR_UNKNOWN;
    this.skip(at, status, e ? deviceCodeOf(e) : 0);
    this.recoveries++;
    this.recovering = this.restart(at);
  }

  /** Completes slots [first, write): the one at `failed` with `status`, the others NOT_ATTEMPTED. */
  private skip(failed: number, status: DmaStatusCodeValue, code: number): void {
    const r = this.ring;
    const mask = r.entries - 1;
    for (let i = this.first; i < r.write; i++) {
      const tx = this.slots[i & mask];
      this.slots[i & mask] = null;
      if (tx) this.complete(tx, i === failed ? status : DmaStatusCode.NOT_ATTEMPTED, i === failed ? code : 0);
    }
    this.first = r.write;
    this.failIssued(DmaStatusCode.NOT_ATTEMPTED);
  }

  /**
   * Stop (the function stops running the context), move the read index past everything written
   * (software owns CXT_STS while the context is stopped) and clear those slots, start again.
   */
  private async restart(from: number): Promise<void> {
    const host = this.device.host;
    const id = this.device.id;
    try {
      await host.admin.run([cxtStopDescriptor({ first: id, last: id })]);
      this.ring.invalidate(from, this.ring.write);
      this.ring.setReadIndex(this.ring.write);
      await host.admin.run([cxtStartDescriptor({ first: id, last: id })]);
    } catch (e) {
      this.lost(`restart failed: ${(e as Error).message}`);
    } finally {
      this.recovering = null;
    }
    if (this.issuedCount) this.kick();
    this.settleRef();
  }

  /** terminate_all: stop the context, complete what finished, skip the rest, start it again. */
  protected async stopHardware(): Promise<void> {
    const host = this.device.host;
    if (this.dead || !host.up) return;
    this.stopping = true;
    host.ref();
    try {
      if (this.recovering) await this.recovering;
      if (this.dead) return;
      const id = this.device.id;
      await host.admin.run([cxtStopDescriptor({ first: id, last: id })]);
      // Stopped: the function runs nothing of this context any more.
      this.retire();
      this.ring.invalidate(this.ring.readIndex(), this.ring.write);
      this.ring.setReadIndex(this.ring.write);
      await host.admin.run([cxtStartDescriptor({ first: id, last: id })]);
    } catch (e) {
      this.lost(`terminate failed: ${(e as Error).message}`);
    } finally {
      this.stopping = false;
      host.unref();
    }
  }

  protected takeInflight(): VirtDmaTx[] {
    const r = this.ring;
    const mask = r.entries - 1;
    const out: VirtDmaTx[] = [];
    for (let i = this.first; i < r.write; i++) {
      const tx = this.slots[i & mask];
      this.slots[i & mask] = null;
      if (tx) out.push(tx);
    }
    this.first = r.write;
    this.settleRef();
    return out;
  }

  /** The function is gone or the context cannot be restarted: nothing outstanding will complete. */
  lost(why: string): void {
    if (this.dead) return;
    this.dead = true;
    this.device.host.warn(`${this.name}: ${why}`);
    this.abortOutstanding(DmaStatusCode.DEV_LINK_ERROR);
    this.settleRef();
  }
}
