import {
  type DmaCallback,
  type DmaCapability,
  type DmaChannel,
  type DmaChanStats,
  type DmaDevice,
  type DmaSegment,
  DmaStatus,
  DmaStatusCode,
  type DmaStatusCodeValue,
  type DmaStatusValue,
  type DmaTx,
  type DmaTxResult,
} from './channel.js';

/** A descriptor of a VirtDmaChannel: what the client prepared, and where it is in its life. */
export class VirtDmaTx implements DmaTx {
  cookie = 0;
  callback: DmaCallback | null = null;
  param: unknown = undefined;
  /** Set once, when the descriptor completes. */
  result: DmaTxResult | null = null;

  constructor(
    readonly chan: VirtDmaChannel,
    readonly dst: number,
    readonly src: number,
    readonly bytes: number,
    readonly flags: number,
    /** MEMCPY_SG segments, or null for a plain memcpy. */
    readonly segments: readonly DmaSegment[] | null,
  ) {}

  submit(): number {
    return this.chan.submitTx(this);
  }
}

/** Outcomes kept for txStatus() of failed cookies (successful ones are implied by the cookie order). */
const MAX_REMEMBERED_FAILURES = 4096;

/**
 * virt-dma: the bookkeeping every channel needs, so a driver only implements `kick()` (start
 * issued descriptors on the hardware) and `stopHardware()` (quiesce it for terminateAll). Keeps
 * cookies, the submitted and issued lists, completion callbacks, txStatus and the stats.
 */
export abstract class VirtDmaChannel implements DmaChannel {
  abstract readonly name: string;
  abstract readonly device: DmaDevice;
  abstract readonly capabilities: readonly DmaCapability[];
  abstract readonly maxSegmentBytes: number;
  readonly maxSgSegments: number = 0;

  private nextCookie = 1;
  private submitted: VirtDmaTx[] = [];
  /** Issued and not yet started by the driver: a queue with a moving head. */
  private issued: VirtDmaTx[] = [];
  private issuedHead = 0;
  /** Cookies handed to the hardware or queued, not yet completed. */
  private readonly outstanding = new Set<number>();
  private readonly failed = new Map<number, DmaStatusValue>();
  protected readonly counters: DmaChanStats = {
    submitted: 0,
    completed: 0,
    errors: 0,
    notAttempted: 0,
    aborted: 0,
    bytes: 0,
  };

  prepMemcpy(dst: number, src: number, len: number, flags = 0): DmaTx | null {
    if (!this.usable()) return null;
    if (!Number.isSafeInteger(dst) || !Number.isSafeInteger(src) || dst < 0 || src < 0) return null;
    if (!Number.isInteger(len) || len < 1 || len > this.maxSegmentBytes) return null;
    return new VirtDmaTx(this, dst, src, len, flags, null);
  }

  prepMemcpySg(segments: readonly DmaSegment[], flags = 0): DmaTx | null {
    if (!this.usable() || !this.capabilities.includes('MEMCPY_SG')) return null;
    if (segments.length < 1 || segments.length > this.maxSgSegments) return null;
    let bytes = 0;
    for (const s of segments) {
      if (!Number.isSafeInteger(s.dst) || !Number.isSafeInteger(s.src) || s.dst < 0 || s.src < 0) return null;
      if (!Number.isInteger(s.len) || s.len < 1 || s.len > this.maxSegmentBytes) return null;
      bytes += s.len;
    }
    const first = segments[0]!;
    return new VirtDmaTx(this, first.dst, first.src, bytes, flags, segments.slice());
  }

  /** tx_submit (called through tx.submit()). */
  submitTx(tx: VirtDmaTx): number {
    if (tx.cookie !== 0) return tx.cookie;
    tx.cookie = this.nextCookie++;
    if (this.nextCookie > 0x7fffffff) this.nextCookie = 1;
    this.submitted.push(tx);
    this.outstanding.add(tx.cookie);
    this.counters.submitted++;
    return tx.cookie;
  }

  issuePending(): void {
    if (this.submitted.length) {
      for (const tx of this.submitted) this.issued.push(tx);
      this.submitted = [];
    }
    if (this.issuedHead < this.issued.length) this.kick();
  }

  txStatus(cookie: number): DmaStatusValue {
    if (this.outstanding.has(cookie)) return DmaStatus.IN_PROGRESS;
    return this.failed.get(cookie) ?? DmaStatus.COMPLETE;
  }

  async terminateAll(): Promise<void> {
    await this.stopHardware();
    this.abortOutstanding(DmaStatusCode.USER_ABORT);
  }

  stats(): DmaChanStats {
    return { ...this.counters };
  }

  /** Descriptors issued but not yet taken by the driver. */
  protected get issuedCount(): number {
    return this.issued.length - this.issuedHead;
  }

  /** The next issued descriptor for the hardware, in submission order. */
  protected takeIssued(): VirtDmaTx | undefined {
    const tx = this.issued[this.issuedHead];
    if (!tx) return undefined;
    this.issued[this.issuedHead++] = undefined as unknown as VirtDmaTx;
    if (this.issuedHead === this.issued.length) {
      this.issued = [];
      this.issuedHead = 0;
    } else if (this.issuedHead > 1024 && this.issuedHead * 2 > this.issued.length) {
      this.issued = this.issued.slice(this.issuedHead);
      this.issuedHead = 0;
    }
    return tx;
  }

  /** Completes a descriptor and runs its callback (once). */
  protected complete(tx: VirtDmaTx, status: DmaStatusCodeValue, deviceCode = 0): void {
    if (tx.result) return;
    const ok = status === DmaStatusCode.SUCCESSFUL;
    tx.result = { status, residue: ok ? 0 : tx.bytes, deviceCode };
    this.outstanding.delete(tx.cookie);
    const c = this.counters;
    if (ok) {
      c.completed++;
      c.bytes += tx.bytes;
    } else {
      if (status === DmaStatusCode.USER_ABORT) c.aborted++;
      else if (status === DmaStatusCode.NOT_ATTEMPTED) c.notAttempted++;
      else c.errors++;
      if (this.failed.size >= MAX_REMEMBERED_FAILURES) {
        const oldest = this.failed.keys().next().value;
        if (oldest !== undefined) this.failed.delete(oldest);
      }
      this.failed.set(tx.cookie, DmaStatus.ERROR);
    }
    const cb = tx.callback;
    if (cb) cb(tx.result, tx);
  }

  /** Fails every issued descriptor the hardware has not taken (skip the rest of the queue). */
  protected failIssued(status: DmaStatusCodeValue): void {
    for (let tx = this.takeIssued(); tx; tx = this.takeIssued()) this.complete(tx, status);
  }

  /** Completes everything not yet completed (submitted, issued, on the hardware) with `status`. */
  protected abortOutstanding(status: DmaStatusCodeValue): void {
    for (const tx of this.takeInflight()) this.complete(tx, status);
    this.failIssued(status);
    const pending = this.submitted;
    this.submitted = [];
    for (const tx of pending) this.complete(tx, status);
  }

  /** False when the channel cannot take descriptors (device gone or being reset). */
  protected usable(): boolean {
    return true;
  }

  /** Start issued descriptors (takeIssued) on the hardware. */
  protected abstract kick(): void;
  /** Stop the hardware and wait until it no longer touches memory. */
  protected abstract stopHardware(): Promise<void>;
  /** Hand back (and forget) the descriptors the hardware holds, oldest first. */
  protected abstract takeInflight(): VirtDmaTx[];
}
