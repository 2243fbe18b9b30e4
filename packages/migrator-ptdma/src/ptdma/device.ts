/**
 * The emulated PTDMA engine: the worker entry (dist/ptdma-device.js) and the device model. It owns
 * nothing but what hardware would see: its BAR (a SharedArrayBuffer at PTDMA's offsets), the RAM
 * sections (bus addresses = physical addresses) and its IOMMU domain. Everything it reads from the
 * driver — registers, ring slots, descriptors — is validated before use.
 */
import { isMainThread, workerData } from 'node:worker_threads';
import {
  DeviceClock,
  DMA_FROM_DEVICE,
  DMA_TO_DEVICE,
  IommuView,
  RamView,
  runDeviceLoop,
  type TimelineHandle,
  TimelineWriter,
  TL_DMA_COMPLETION,
  TL_DMA_DESC,
} from '@pagemig/dmaengine/device';
import {
  CCP_ENGINE_PASSTHRU,
  CCP_MEMTYPE_LOCAL,
  CCP_MEMTYPE_SB,
  DESC_WORDS,
  DW0_ENGINE_MASK,
  DW0_ENGINE_SHIFT,
  DW0_FUNCTION_MASK,
  DW0_FUNCTION_SHIFT,
  DW0_IOC,
  DW0_RSVD_BIT2,
  DW0_RSVD_HIGH,
  DW0_SOC,
  DW3_RSVD,
  DW5_RSVD,
  FIXED_BIT,
  LSB_CTX_MASK,
  LSB_CTX_SHIFT,
  MEMTYPE_MASK,
  MEMTYPE_SHIFT,
  PT_BYTESWAP_32BIT,
  PT_BYTESWAP_256BIT,
} from './descriptor.js';
import { PtdmaError } from './errors.js';
import {
  CMD_PT_VERSION,
  CMD_Q_HALT,
  CMD_Q_RUN,
  CMD_Q_SIZE_MASK,
  CMD_Q_SIZE_SHIFT,
  CMD_TIMEOUT_OFFSET,
  EMU_BW_MBPS,
  EMU_BYTES,
  EMU_COPY_NS,
  EMU_DESCS,
  EMU_ERRORS,
  EMU_EXIT,
  EMU_INJECT,
  EMU_INJECT_WEDGE,
  EMU_LATENCY_NS,
  EMU_WORDS,
  INT_COMPLETION,
  INT_EMPTY_QUEUE,
  INT_ERROR,
  INT_QUEUE_STOPPED,
  ptVersionValue,
  Q_CONTROL,
  Q_DMA_BUSY,
  Q_DMA_RUNNING,
  Q_DMA_STATUS,
  Q_HEAD_LO,
  Q_INT_ENABLE,
  Q_INT_STATUS,
  Q_INTERRUPT_STATUS,
  Q_STATUS,
  Q_TAIL_LO,
  signalMsi,
} from './regs.js';

/** What the driver hands a device thread at start. */
export interface PtdmaDeviceInit {
  kind: 'pagemig.ptdma';
  name: string;
  bar: SharedArrayBuffer;
  sections: readonly SharedArrayBuffer[];
  sectionPfnShift: number;
  nrPages: number;
  iommu: SharedArrayBuffer;
  /** Where the MSI goes: the host's interrupt line (absent: only EMU_MSI is signalled). */
  irqLine?: SharedArrayBuffer;
  /** The machine's timeline and this channel's track (a `dma_desc` span per descriptor). */
  timeline?: TimelineHandle;
}

const HI = 2 ** 32;
const ADDR_LIMIT = 2 ** 48;
const DESC_BYTES = 32;
/** A ring larger than 2^27 descriptors would not fit the 32-bit head/tail registers. */
const MAX_SIZE_CODE = 26;
/** Bytes copied between two looks at HALT. */
const COPY_CHUNK = 4 << 20;

const w = (offset: number): number => offset >>> 2;
const nowNs = (): number => performance.now() * 1e6;

/** Outcome of one descriptor besides an error code: done, or abandoned because of a HALT. */
const OK = 0;
const ABANDONED = -1;

export class PtdmaDeviceModel {
  private readonly r: Int32Array;
  private readonly bytes: BigInt64Array;
  private readonly copyNs: BigInt64Array;
  private readonly ram: RamView;
  private readonly mmu: IommuView;
  private readonly line: Int32Array | null;
  private readonly desc = new Int32Array(DESC_WORDS);
  /** The queue was runnable when last looked at (a HALT or RUN clear then raises QUEUE_STOPPED). */
  private running = false;
  private haltAcked = false;
  /** The timing profile (EMU_BW_MBPS, EMU_LATENCY_NS); a HALT abandons the descriptor it holds. */
  private readonly clock: DeviceClock;
  /** The timeline writer of this channel's track, or null. */
  private readonly tl: TimelineWriter | null;
  /** Bytes of the descriptor executed last (0 if it failed before its length was read). */
  private lastLen = 0;
  /** While recording: when the descriptor in progress started (µs; -1: not recording) and its batch. */
  private descBeginUs = -1;
  private descBatch = 0;

  constructor(init: PtdmaDeviceInit) {
    this.r = new Int32Array(init.bar);
    this.bytes = new BigInt64Array(init.bar, EMU_BYTES, 1);
    this.copyNs = new BigInt64Array(init.bar, EMU_COPY_NS, 1);
    this.ram = new RamView(init.sections, init.sectionPfnShift, init.nrPages);
    this.mmu = new IommuView(init.iommu, init.nrPages);
    this.line = init.irqLine ? new Int32Array(init.irqLine) : null;
    this.tl = init.timeline ? new TimelineWriter(init.timeline.buffer, init.timeline.track) : null;
    this.clock = new DeviceClock(
      this.r,
      EMU_WORDS,
      { bandwidthMBps: w(EMU_BW_MBPS), latencyNs: w(EMU_LATENCY_NS) },
      () => this.halted(),
    );
    Atomics.store(this.r, w(CMD_PT_VERSION), ptVersionValue(1));
  }

  /** The device thread: run descriptors while there are any, else spin briefly and sleep. */
  run(): void {
    runDeviceLoop(this.r, EMU_WORDS, () => this.step());
  }

  /** Handles the queue once: at most one descriptor. False when there was nothing to do. */
  step(): boolean {
    const r = this.r;
    // BUSY goes up before CONTROL is read: a driver that wrote HALT and then sees BUSY clear knows
    // no descriptor will start until HALT is cleared (both sides use sequentially consistent ops).
    Atomics.or(r, w(Q_DMA_STATUS), Q_DMA_BUSY);
    const ctrl = Atomics.load(r, w(Q_CONTROL));
    // The queue also holds while an ERROR interrupt is pending: the driver flushes before it acks.
    const runnable =
      (ctrl & CMD_Q_RUN) !== 0 &&
      (ctrl & CMD_Q_HALT) === 0 &&
      (Atomics.load(r, w(Q_INTERRUPT_STATUS)) & INT_ERROR) === 0;
    if (!runnable) {
      if (ctrl & CMD_Q_HALT) {
        if (!this.haltAcked || this.running) {
          this.haltAcked = true;
          this.running = false;
          Atomics.and(r, w(Q_DMA_STATUS), ~(Q_DMA_BUSY | Q_DMA_RUNNING));
          this.raise(INT_QUEUE_STOPPED);
          return false;
        }
      } else {
        this.haltAcked = false;
        if (this.running && !(ctrl & CMD_Q_RUN)) {
          this.running = false;
          Atomics.and(r, w(Q_DMA_STATUS), ~(Q_DMA_BUSY | Q_DMA_RUNNING));
          this.raise(INT_QUEUE_STOPPED);
          return false;
        }
      }
      Atomics.and(r, w(Q_DMA_STATUS), ~Q_DMA_BUSY);
      return false;
    }
    this.haltAcked = false;
    if (!this.running) {
      this.running = true;
      Atomics.or(r, w(Q_DMA_STATUS), Q_DMA_RUNNING);
    }
    const head = Atomics.load(r, w(Q_HEAD_LO)) >>> 0;
    const tail = Atomics.load(r, w(Q_TAIL_LO)) >>> 0;
    if (head === tail) {
      Atomics.and(r, w(Q_DMA_STATUS), ~Q_DMA_BUSY);
      return false;
    }
    this.execute(ctrl, head, tail);
    Atomics.and(r, w(Q_DMA_STATUS), ~Q_DMA_BUSY);
    return true;
  }

  /**
   * Runs the descriptor at `head`; while the timeline records, as a `dma_desc` span (batch from the
   * track's tag, bytes, the outcome: 0, an error code, or -1 abandoned).
   */
  private execute(ctrl: number, head: number, tail: number): number {
    const tl = this.tl;
    if (tl === null || !tl.on) return this.executeOne(ctrl, head, tail);
    this.descBeginUs = tl.now();
    // The batch it belongs to: read before the completion lets the driver move on to the next one.
    this.descBatch = tl.tag();
    this.lastLen = 0;
    const code = this.executeOne(ctrl, head, tail);
    // A descriptor that completed was recorded before its interrupt; one that failed is recorded now.
    if (this.descBeginUs >= 0)
      tl.span(TL_DMA_DESC, this.descBeginUs, tl.now(), this.descBatch, this.lastLen, code, 1);
    this.descBeginUs = -1;
    return code;
  }

  /** Fetches, validates and runs the descriptor at `head`; advances head or stops with a code. */
  private executeOne(ctrl: number, head: number, tail: number): number {
    const r = this.r;
    const code = (ctrl >>> CMD_Q_SIZE_SHIFT) & CMD_Q_SIZE_MASK;
    if (code > MAX_SIZE_CODE) return this.fail(PtdmaError.ILLEGAL_MEM_ADDR);
    // The ring is aligned to its size (as the coherent allocation is); head and tail are slots of it.
    const ringBytes = 2 ** (code + 1) * DESC_BYTES;
    const base = head - (head % ringBytes);
    if (head % DESC_BYTES || tail % DESC_BYTES || tail < base || tail >= base + ringBytes)
      return this.fail(PtdmaError.ILLEGAL_MEM_ADDR);
    const slot = ((ctrl >>> 16) & 0xffff) * HI + head;
    if (!this.ram.contains(slot, DESC_BYTES)) return this.fail(PtdmaError.IDMA1_AXI_DECERR);
    if (!this.mmu.allows(slot, DESC_BYTES, DMA_TO_DEVICE)) return this.fail(PtdmaError.IDMA1_AXI_SLAVE_FAULT);
    const d = this.desc;
    d.set(this.ram.words32(slot, DESC_WORDS));

    const inj = Atomics.load(r, w(EMU_INJECT));
    if (inj !== 0) {
      const n = inj >>> 8;
      if (n <= 1) {
        if (Atomics.compareExchange(r, w(EMU_INJECT), inj, 0) === inj) {
          if (inj & EMU_INJECT_WEDGE) this.wedge();
          return this.fail(inj & 0x3f);
        }
      } else Atomics.compareExchange(r, w(EMU_INJECT), inj, ((n - 1) << 8) | (inj & 0x3f));
    }

    const dw0 = d[0]! >>> 0;
    const len = d[1]! >>> 0;
    const dw3 = d[3]! >>> 0;
    const dw5 = d[5]! >>> 0;
    const fn = (dw0 >>> DW0_FUNCTION_SHIFT) & DW0_FUNCTION_MASK;
    const byteswap = fn & 3;
    const bitwise = (fn >>> 2) & 7;
    const reflect = (fn >>> 5) & 3;
    if (dw0 & (DW0_RSVD_BIT2 | DW0_RSVD_HIGH) || fn >>> 7 || dw3 & DW3_RSVD || dw5 & DW5_RSVD || d[6] || d[7])
      return this.fail(PtdmaError.ILLEGAL_FUNCTION_RSVD);
    if (((dw0 >>> DW0_ENGINE_SHIFT) & DW0_ENGINE_MASK) !== CCP_ENGINE_PASSTHRU)
      return this.fail(PtdmaError.ILLEGAL_ENGINE);
    if (bitwise) return this.fail(PtdmaError.ILLEGAL_FUNCTION_TYPE);
    if (reflect || byteswap === 3 || dw3 & FIXED_BIT || dw5 & FIXED_BIT)
      return this.fail(PtdmaError.ILLEGAL_FUNCTION_MODE);
    if ((dw3 >>> LSB_CTX_SHIFT) & LSB_CTX_MASK) return this.fail(PtdmaError.ILLEGAL_CONTEXT_ID);
    const srcType = (dw3 >>> MEMTYPE_SHIFT) & MEMTYPE_MASK;
    const dstType = (dw5 >>> MEMTYPE_SHIFT) & MEMTYPE_MASK;
    if (srcType === CCP_MEMTYPE_SB || dstType === CCP_MEMTYPE_SB) return this.fail(PtdmaError.VLSB_FAULT);
    if (srcType >= CCP_MEMTYPE_LOCAL || dstType >= CCP_MEMTYPE_LOCAL)
      return this.fail(PtdmaError.ILLEGAL_MEM_SEL);
    if (len === 0) return this.fail(PtdmaError.ILLEGAL_BUFFER_LENGTH);
    if ((byteswap === PT_BYTESWAP_32BIT && len % 4) || (byteswap === PT_BYTESWAP_256BIT && len % 32))
      return this.fail(PtdmaError.ILLEGAL_FUNCTION_SIZE);
    const src = (dw3 & 0xffff) * HI + (d[2]! >>> 0);
    const dst = (dw5 & 0xffff) * HI + (d[4]! >>> 0);
    if (src + len > ADDR_LIMIT || dst + len > ADDR_LIMIT) return this.fail(PtdmaError.ILLEGAL_MEM_ADDR);
    if (!this.ram.contains(src, len)) return this.fail(PtdmaError.IDMA0_AXI_DECERR);
    if (!this.ram.contains(dst, len)) return this.fail(PtdmaError.ODMA0_AXI_DECERR);
    if (!this.mmu.allows(src, len, DMA_TO_DEVICE)) return this.fail(PtdmaError.IDMA0_AXI_SLVERR);
    if (!this.mmu.allows(dst, len, DMA_FROM_DEVICE)) return this.fail(PtdmaError.ODMA0_AXI_SLVERR);

    this.lastLen = len;
    const modelNs = this.clock.modelNs(len);
    const timeoutUs = Atomics.load(r, w(CMD_TIMEOUT_OFFSET)) >>> 0;
    if (timeoutUs && modelNs > timeoutUs * 1000) return this.fail(PtdmaError.CMD_TIMEOUT);
    if (modelNs > 0 && !this.clock.hold(modelNs, len)) return ABANDONED;

    const t0 = nowNs();
    if (byteswap) this.swapCopy(dst, src, len, byteswap === PT_BYTESWAP_32BIT ? 4 : 32);
    else {
      // In chunks, so a HALT (terminate) takes effect within one chunk even for a 4 GiB descriptor.
      // An abandoned copy leaves a partly written destination, which only its owner looks at.
      for (let done = 0; done < len; done += COPY_CHUNK) {
        if (done && this.halted()) return ABANDONED;
        this.ram.copy(dst + done, src + done, Math.min(COPY_CHUNK, len - done));
      }
    }
    const took = nowNs() - t0;
    this.clock.copied(len, took);
    Atomics.add(this.copyNs, 0, BigInt(Math.round(took)));

    Atomics.add(r, w(EMU_DESCS), 1);
    Atomics.add(this.bytes, 0, BigInt(len));
    const next = base + ((head - base + DESC_BYTES) % ringBytes);
    Atomics.store(r, w(Q_HEAD_LO), next | 0);
    let bits = dw0 & DW0_IOC ? INT_COMPLETION : 0;
    if (next === tail) bits |= INT_EMPTY_QUEUE;
    if (dw0 & DW0_SOC) {
      // Stop on completion: the queue halts after this descriptor.
      Atomics.and(r, w(Q_CONTROL), ~CMD_Q_RUN);
      this.running = false;
      Atomics.and(r, w(Q_DMA_STATUS), ~Q_DMA_RUNNING);
      bits |= INT_QUEUE_STOPPED;
    }
    // Recorded before the interrupt: once the driver sees it, the batch (and the capture) may end.
    if (this.descBeginUs >= 0) {
      const tl = this.tl!;
      const done = tl.now();
      tl.span(TL_DMA_DESC, this.descBeginUs, done, this.descBatch, len, OK, 1);
      if (bits & INT_COMPLETION) tl.record(TL_DMA_COMPLETION, tl.track, done, done, this.descBatch);
      this.descBeginUs = -1;
    }
    if (bits) this.raise(bits);
    return OK;
  }

  /** A wedged engine: busy forever, deaf to HALT; only ending the thread (or EMU_EXIT) gets out. */
  private wedge(): void {
    const r = this.r;
    while (!Atomics.load(r, w(EMU_EXIT))) Atomics.wait(r, w(EMU_EXIT), 0, 50);
  }

  /** Byteswap passthru: reverses each `unit`-byte group (32-bit words or 256-bit blocks). */
  private swapCopy(dst: number, src: number, len: number, unit: number): void {
    const buf = this.ram.read(src, len);
    for (let o = 0; o < len; o += unit) buf.subarray(o, o + unit).reverse();
    this.ram.write(dst, buf);
  }

  /** The driver stopped the queue (RUN cleared or HALT) or ends the thread. */
  private halted(): boolean {
    const ctrl = Atomics.load(this.r, w(Q_CONTROL));
    return !(ctrl & CMD_Q_RUN) || (ctrl & CMD_Q_HALT) !== 0 || Atomics.load(this.r, w(EMU_EXIT)) !== 0;
  }

  /** Latches `code`, stops the queue as the hardware does, and raises ERROR | QUEUE_STOPPED. */
  private fail(code: number): number {
    const r = this.r;
    Atomics.store(r, w(Q_STATUS), code & 0x3f);
    Atomics.and(r, w(Q_CONTROL), ~CMD_Q_RUN);
    this.running = false;
    Atomics.and(r, w(Q_DMA_STATUS), ~Q_DMA_RUNNING);
    Atomics.add(r, w(EMU_ERRORS), 1);
    this.raise(INT_ERROR | INT_QUEUE_STOPPED);
    return code;
  }

  /** Latches interrupt bits and sends the MSI if any of them is enabled. */
  private raise(bits: number): void {
    const r = this.r;
    const now = Atomics.or(r, w(Q_INTERRUPT_STATUS), bits) | bits;
    Atomics.store(r, w(Q_INT_STATUS), now);
    if (Atomics.load(r, w(Q_INT_ENABLE)) & bits) signalMsi(r, this.line);
  }
}

if (!isMainThread && (workerData as PtdmaDeviceInit | undefined)?.kind === 'pagemig.ptdma') {
  new PtdmaDeviceModel(workerData as PtdmaDeviceInit).run();
}
