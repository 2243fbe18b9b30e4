/**
 * The PTDMA register file (drivers/dma/amd/ptdma/ptdma.h), offsets from BAR2. The emulated BAR is a
 * SharedArrayBuffer shared by the driver (main thread) and the device (its worker thread); `Mmio`
 * gives the driver the access semantics of the real registers (write-1-to-clear, read-only).
 */
import { type EmulatorWords, InterruptLine, wakeDevice } from '@pagemig/dmaengine/device';

/** Bytes of the emulated BAR: the hardware registers, then the emulator block at EMU_BASE. */
export const PT_BAR_BYTES = 0x8000;

// Global registers.
export const CMD_QUEUE_PRIO_OFFSET = 0x000;
export const CMD_REQID_CONFIG_OFFSET = 0x004;
/** Command timeout; 0 disables it (the driver writes 0). The emulator counts it in microseconds. */
export const CMD_TIMEOUT_OFFSET = 0x008;
/** Read-only: bits 5:0 version, bits 18:15 number of queues (VQMs). */
export const CMD_PT_VERSION = 0x010;
export const IRQ_MASK_REG = 0x040;
export const IRQ_STATUS_REG = 0x200;
export const CMD_CONFIG_OFFSET = 0x1120;
export const CMD_CLK_GATE_CTL_OFFSET = 0x6004;

// Per-queue block (queue 0 only: MAX_HW_QUEUES = 1).
export const CMD_Q_STATUS_INCR = 0x1000;
export const CMD_Q_CONTROL_BASE = 0x0000;
/** Low 32 bits of the bus address of the next free ring slot: the doorbell. */
export const CMD_Q_TAIL_LO_BASE = 0x0004;
/** Low 32 bits of the bus address of the next descriptor the engine fetches. */
export const CMD_Q_HEAD_LO_BASE = 0x0008;
export const CMD_Q_INT_ENABLE_BASE = 0x000c;
/** Pending interrupt bits; write the read value back to acknowledge (W1C). */
export const CMD_Q_INTERRUPT_STATUS_BASE = 0x0010;
/** Read-only: bits 5:0 the error code of the failed command. */
export const CMD_Q_STATUS_BASE = 0x0100;
export const CMD_Q_INT_STATUS_BASE = 0x0104;
/**
 * Read-only. Linux defines it and never reads it; the emulator reports the engine state here:
 * bit 0 the queue is running, bit 1 a descriptor is in progress (see Q_DMA_BUSY).
 */
export const CMD_Q_DMA_STATUS_BASE = 0x0108;
export const CMD_Q_DMA_READ_STATUS_BASE = 0x010c;
export const CMD_Q_DMA_WRITE_STATUS_BASE = 0x0110;
export const CMD_Q_ABORT_BASE = 0x0114;
export const CMD_Q_AX_CACHE_BASE = 0x0118;

/** Absolute offsets of queue 0's registers. */
export const Q_CONTROL = CMD_Q_STATUS_INCR + CMD_Q_CONTROL_BASE;
export const Q_TAIL_LO = CMD_Q_STATUS_INCR + CMD_Q_TAIL_LO_BASE;
export const Q_HEAD_LO = CMD_Q_STATUS_INCR + CMD_Q_HEAD_LO_BASE;
export const Q_INT_ENABLE = CMD_Q_STATUS_INCR + CMD_Q_INT_ENABLE_BASE;
export const Q_INTERRUPT_STATUS = CMD_Q_STATUS_INCR + CMD_Q_INTERRUPT_STATUS_BASE;
export const Q_STATUS = CMD_Q_STATUS_INCR + CMD_Q_STATUS_BASE;
export const Q_INT_STATUS = CMD_Q_STATUS_INCR + CMD_Q_INT_STATUS_BASE;
export const Q_DMA_STATUS = CMD_Q_STATUS_INCR + CMD_Q_DMA_STATUS_BASE;

// Q_CONTROL bits.
export const CMD_Q_RUN = 1 << 0;
export const CMD_Q_HALT = 1 << 1;
export const CMD_Q_MEM_LOCATION = 1 << 2;
export const CMD_Q_SIZE_SHIFT = 3;
export const CMD_Q_SIZE_MASK = 0x1f;
/** Bits 31:16 of Q_CONTROL hold bits 47:32 of the ring's bus address. */
export const CMD_Q_BASE_HI_SHIFT = 16;

// Interrupt bits (Q_INT_ENABLE and Q_INTERRUPT_STATUS).
export const INT_COMPLETION = 1 << 0;
export const INT_ERROR = 1 << 1;
export const INT_QUEUE_STOPPED = 1 << 2;
export const INT_EMPTY_QUEUE = 1 << 3;
/** What the Linux driver enables. */
export const SUPPORTED_INTERRUPTS = INT_COMPLETION | INT_ERROR;
export const ALL_INTERRUPTS = INT_COMPLETION | INT_ERROR | INT_QUEUE_STOPPED | INT_EMPTY_QUEUE;

// Q_DMA_STATUS bits (emulator-defined, see above).
export const Q_DMA_RUNNING = 1 << 0;
export const Q_DMA_BUSY = 1 << 1;

/** CMD_Q_ERROR(status). */
export const qError = (status: number): number => status & 0x3f;

// Bring-up values (pt_core_init).
export const CMD_CONFIG_VHBEN = 1;
export const CMD_QUEUE_PRIO = 0x6;
export const CMD_CLK_GATE_CONFIG = 0x1001;
export const CMD_TIMEOUT_DISABLE = 0;

/** CMD_Q_LEN: descriptors in the ring. */
export const CMD_Q_LEN = 32;
export const Q_DESC_SIZE = 32;
/** The queue-size code for CMD_Q_LEN entries: ffs(32) - 2 = 4 (entries = 2^(code + 1)). */
export const QUEUE_SIZE_VAL = 4;
/** Ring bytes of a queue-size code: 2^(code + 1) descriptors of 32 bytes. */
export const ringBytesOf = (code: number): number => 2 ** (code + 1) * Q_DESC_SIZE;

/** The emulated PTDMA's version register: version 1 with one queue. */
export const PT_EMU_VERSION = 1;
export const ptVersionValue = (queues: number): number => (PT_EMU_VERSION & 0x3f) | ((queues & 0xf) << 15);
export const versionOf = (v: number): number => v & 0x3f;
export const queuesOf = (v: number): number => (v >>> 15) & 0xf;

/**
 * The emulator block, past the hardware registers. It has no hardware counterpart: it carries what
 * a bus would (an MMIO-write doorbell the device thread sleeps on, an MSI word the driver waits on)
 * plus test controls. Drivers only use EMU_MMIO_SEQ and EMU_MSI (through `Mmio`).
 */
export const EMU_BASE = 0x7000;
/** Bumped on every MMIO write the device acts on; the device thread waits on it. */
export const EMU_MMIO_SEQ = EMU_BASE + 0x00;
/** Bumped by the device for each interrupt it raises (the MSI message); the driver waits on it. */
export const EMU_MSI = EMU_BASE + 0x04;
/** Device life: EMU_STATE_*. */
export const EMU_STATE = EMU_BASE + 0x08;
/** The EMU_MMIO_SEQ value the device has fully acted on (idle and caught up). */
export const EMU_SEEN_SEQ = EMU_BASE + 0x0c;
/** Write 1 to end the device thread. */
export const EMU_EXIT = EMU_BASE + 0x10;
/**
 * Fault injection: bits 5:0 an error code, bits 31:8 n; the n-th descriptor fetched from now on
 * (1 = the next one) fails with that code. With EMU_INJECT_WEDGE set instead, the engine wedges on
 * that descriptor: it stays busy and ignores every register until its thread is ended (a reset).
 * Cleared by the device when it fires.
 */
export const EMU_INJECT = EMU_BASE + 0x14;
export const EMU_INJECT_WEDGE = 1 << 7;
/** Timing profile: bandwidth in MB/s (10^6 bytes/s), 0 = host speed. */
export const EMU_BW_MBPS = EMU_BASE + 0x18;
/** Timing profile: latency per descriptor in nanoseconds. */
export const EMU_LATENCY_NS = EMU_BASE + 0x1c;
/** How long the idle device spins on EMU_MMIO_SEQ before it sleeps, in nanoseconds. */
export const EMU_SPIN_NS = EMU_BASE + 0x20;
/** Counters kept by the device: descriptors completed, descriptors failed. */
export const EMU_DESCS = EMU_BASE + 0x24;
export const EMU_ERRORS = EMU_BASE + 0x28;
/** Bytes copied (BigInt64 at this 8-aligned offset). */
export const EMU_BYTES = EMU_BASE + 0x30;
/**
 * 1 while the device thread sleeps (or is about to) on EMU_MMIO_SEQ. A write only pays for
 * Atomics.notify — a thread wake-up, ~10 µs of the writer's CPU here — when the device sleeps.
 */
export const EMU_SLEEPING = EMU_BASE + 0x38;
/** Nanoseconds the device spent moving bytes (BigInt64): its busy time, for the benchmark. */
export const EMU_COPY_NS = EMU_BASE + 0x40;
/** Nonzero while the driver has a migration run going: the device polls between batches. */
export const EMU_RUN = EMU_BASE + 0x48;
/** How long the device polls after each batch while a run goes, in nanoseconds. */
export const EMU_RUN_SPIN_NS = EMU_BASE + 0x4c;
/** Times the device thread went to sleep (each costs the next doorbell a wake-up). */
export const EMU_SLEEPS = EMU_BASE + 0x50;

export { EMU_STATE_BOOT, EMU_STATE_EXITED, EMU_STATE_READY } from '@pagemig/dmaengine/device';

/** The emulator words the device loop and the boot handshake use. */
export const EMU_WORDS: EmulatorWords = {
  mmioSeq: EMU_MMIO_SEQ >>> 2,
  seenSeq: EMU_SEEN_SEQ >>> 2,
  sleeping: EMU_SLEEPING >>> 2,
  spinNs: EMU_SPIN_NS >>> 2,
  state: EMU_STATE >>> 2,
  exit: EMU_EXIT >>> 2,
  run: EMU_RUN >>> 2,
  runSpinNs: EMU_RUN_SPIN_NS >>> 2,
  sleeps: EMU_SLEEPS >>> 2,
};

/** Registers whose writes the device must see: they bump EMU_MMIO_SEQ and wake it. */
const DOORBELL_REGS = new Set([
  Q_CONTROL,
  Q_TAIL_LO,
  Q_HEAD_LO,
  CMD_TIMEOUT_OFFSET,
  EMU_EXIT,
  EMU_INJECT,
  EMU_BW_MBPS,
  EMU_LATENCY_NS,
  EMU_SPIN_NS,
  EMU_RUN_SPIN_NS,
]);
const READ_ONLY = new Set([CMD_PT_VERSION, Q_STATUS, Q_INT_STATUS, Q_DMA_STATUS]);
const W1C = new Set([Q_INTERRUPT_STATUS]);

/**
 * The driver's window on a PTDMA BAR: ioread32/iowrite32 with the registers' semantics. Reads and
 * writes are sequentially consistent (Atomics), so a tail write publishes the descriptor bytes
 * written before it, as the driver's wmb() does.
 */
export class Mmio {
  readonly i32: Int32Array;
  private readonly line: Int32Array | null;

  /** @param irqLine where the device's MSI goes (absent: only EMU_MSI is signalled) */
  constructor(
    readonly bar: SharedArrayBuffer,
    irqLine?: SharedArrayBuffer,
  ) {
    this.i32 = new Int32Array(bar);
    this.line = irqLine ? new Int32Array(irqLine) : null;
  }

  read(offset: number): number {
    return Atomics.load(this.i32, offset >>> 2) >>> 0;
  }

  write(offset: number, value: number): void {
    const i = offset >>> 2;
    if (READ_ONLY.has(offset)) return;
    if (W1C.has(offset)) Atomics.and(this.i32, i, ~value);
    else Atomics.store(this.i32, i, value | 0);
    // MSI pending bit: an interrupt raised while masked is sent when unmasked. The device ORs the
    // status and then reads the enable; here the enable is stored and then the status is read, so
    // one side sees the other and a completion that lands during the handler is never lost.
    if (offset === Q_INT_ENABLE && Atomics.load(this.i32, Q_INTERRUPT_STATUS >>> 2) & value)
      signalMsi(this.i32, this.line);
    if (DOORBELL_REGS.has(offset)) wakeDevice(this.i32, EMU_WORDS);
  }
}

/** Sends the queue's MSI: counted in EMU_MSI, delivered on the host's interrupt line if it has one. */
export function signalMsi(bar32: Int32Array, line: Int32Array | null): void {
  Atomics.add(bar32, EMU_MSI >>> 2, 1);
  if (line) InterruptLine.raise(line);
  else Atomics.notify(bar32, EMU_MSI >>> 2);
}
