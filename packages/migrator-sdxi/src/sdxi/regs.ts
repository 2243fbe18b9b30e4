/**
 * The SDXI function's MMIO registers (SNIA SDXI 1.0, as the Linux driver's mmio.h names them): BAR 0
 * holds the control registers, BAR 2 one 64-bit doorbell per context at the doorbell stride. Both
 * BARs are SharedArrayBuffers shared by the driver (engine thread) and the function (its worker
 * thread). Every register is 64 bits wide; `Mmio` gives the driver the registers' semantics
 * (read-only, write-1-to-clear) with sequentially consistent accesses, so a doorbell write
 * publishes the descriptors written before it.
 */
import { type EmulatorWords, InterruptLine, wakeDevice } from '@pagemig/dmaengine/device';

// ---- BAR 0: control registers.
/** Bits 1:0 fn_gsr (requested state), 2 fn_pasid_vl, 4 fn_err_intr_en, 27:8 fn_pasid, 63:32 fn_grp_id. */
export const MMIO_CTL0 = 0x00000;
/** Bits 3:0 max_buffer, 15:12 max_akey_sz, 31:16 max_cxt, 63:32 opb_000_avl (enabled op groups). */
export const MMIO_CTL2 = 0x00010;
/** Read-only: bits 2:0 fn_gsv (the function's state). */
export const MMIO_STS0 = 0x00100;
/** Read-only: bits 15:0 sfunc id, 22:20 doorbell stride (4 KiB << n), 28:24 max ring size (1024 << n). */
export const MMIO_CAP0 = 0x00200;
/**
 * Read-only: bits 3:0 max_buffer, 4 rkey_cap, 5 rm, 6 mmio64, 11:8 max_errlog_sz, 15:12 max_akey_sz
 * (256 entries << n), 31:16 max_cxt (highest context id), 63:32 opb_000_cap (supported op groups).
 */
export const MMIO_CAP1 = 0x00208;
/** Read-only: bits 7:0 minor, 23:16 major. */
export const MMIO_VERSION = 0x00210;
/** Bits 63:12: the level-2 context table (4 KiB aligned). */
export const MMIO_CXT_L2 = 0x10000;
/** Bit 0 enable, 4:1 size code, 63:12 RKey table. Stored; this function has no RKey capability. */
export const MMIO_RKEY = 0x10100;
/** Bit 0: interrupt (vector 0) when ERR_STS.sts goes 0 → 1. */
export const MMIO_ERR_CTL = 0x20000;
/** Bit 0 sts (an error was logged or attempted), 1 ovf (log overflow), 3 err (logging failed); RW1C. */
export const MMIO_ERR_STS = 0x20008;
/** Bit 0 enable, 5:1 size (entries / 64), 63:12 the error-log ring (4 KiB aligned). */
export const MMIO_ERR_CFG = 0x20010;
/** Read-only: the error-log write index (the function's). */
export const MMIO_ERR_WRT = 0x20020;
/** The error-log read index (software's). */
export const MMIO_ERR_RD = 0x20028;

/** CTL0 / STS0 fields. */
export const CTL0_GSR_MASK = 0x3;
export const CTL0_PASID_VL = 1 << 2;
export const CTL0_ERR_INTR_EN = 1 << 4;
/** fn_gsr: the state software asks for. */
export const GSR_RESET = 0;
export const GSR_SOFT_STOP = 1;
export const GSR_HARD_STOP = 2;
export const GSR_ACTIVE = 3;
/** fn_gsv: the function's state. */
export const GSV_STOP = 0;
export const GSV_INIT = 1;
export const GSV_ACTIVE = 2;
export const GSV_SOFT_STOPPING = 3;
export const GSV_HARD_STOPPING = 4;
export const GSV_ERROR = 5;

export const ERR_STS_STS = 1 << 0;
export const ERR_STS_OVF = 1 << 1;
export const ERR_STS_ERR = 1 << 3;
export const ERR_CFG_EN = 1;
export const ERR_CTL_INTR = 1;

/** Operation groups (the descriptor's type field; bit n of opb_000_* enables group n). */
export const OPB_DMAB = 1 << 1;
export const OPB_ADMIN = 1 << 2;
export const OPB_ATOMIC = 1 << 3;
export const OPB_INTR = 1 << 4;

// ---- What the emulated function reports.
export const SDXI_VERSION_MAJOR = 1;
export const SDXI_VERSION_MINOR = 0;
/** Highest context id: contexts 0 (admin) .. 63. */
export const EMU_MAX_CXT = 63;
/** Doorbell stride code 0: 4 KiB per context. */
export const EMU_DB_STRIDE_CODE = 0;
/** Largest ring: 1024 << 6 = 65536 descriptors. */
export const EMU_MAX_RING_CODE = 6;
/** AKey tables of up to 256 << 0 entries. */
export const EMU_MAX_AKEY_CODE = 0;
/** max_buffer as the Linux driver programs it. */
export const EMU_MAX_BUFFER = 11;
/** DmaBaseGrp, AdminGrp and IntrGrp (no atomics, no RKeys). */
export const EMU_OPB_CAP = OPB_DMAB | OPB_ADMIN | OPB_INTR;

export const cap0Value = (sfunc: number): number =>
  (sfunc & 0xffff) + EMU_DB_STRIDE_CODE * 2 ** 20 + EMU_MAX_RING_CODE * 2 ** 24;
export const cap1Value = (): number =>
  EMU_MAX_BUFFER + EMU_MAX_AKEY_CODE * 2 ** 12 + EMU_MAX_CXT * 2 ** 16 + EMU_OPB_CAP * 2 ** 32;
export const versionValue = (): number => SDXI_VERSION_MINOR + SDXI_VERSION_MAJOR * 2 ** 16;
export const doorbellStride = (cap0: number): number => 4096 << ((cap0 >>> 20) & 7);
export const maxRingEntries = (cap0: number): number => 1024 * 2 ** ((cap0 >>> 24) & 0x1f);
export const maxCxtOf = (cap1OrCtl2: number): number => (cap1OrCtl2 >>> 16) & 0xffff;
export const opbOf = (cap1OrCtl2: number): number => Math.floor(cap1OrCtl2 / 2 ** 32) >>> 0;

// ---- BAR 0 past the error-log registers: the emulator block (no hardware counterpart). It
// carries what a bus would (an MMIO-write sequence the function sleeps on, doorbell-pending bits,
// MSI counters) plus test controls and counters. The driver touches it only through `Mmio`.
export const EMU_BASE = 0x20800;
/** Int32: bumped on every MMIO write the function acts on; the function thread waits on it. */
export const EMU_MMIO_SEQ = EMU_BASE + 0x00;
/** Int32: EMU_STATE_*. */
export const EMU_STATE = EMU_BASE + 0x04;
/** Int32: the EMU_MMIO_SEQ value the function has fully acted on (idle and caught up). */
export const EMU_SEEN_SEQ = EMU_BASE + 0x08;
/** Int32: write 1 to end the function thread. */
export const EMU_EXIT = EMU_BASE + 0x0c;
/** Int32: 1 while the function thread sleeps (or is about to) on EMU_MMIO_SEQ. */
export const EMU_SLEEPING = EMU_BASE + 0x10;
/** Int32: how long the idle function spins on EMU_MMIO_SEQ before it sleeps, in nanoseconds. */
export const EMU_SPIN_NS = EMU_BASE + 0x14;
/**
 * Int32: the order in which the function runs the unfenced descriptors it fetched together (a
 * window, up to the next fence): 0 in ring order, 1 last first. Chains keep their own order.
 */
export const EMU_ORDER = EMU_BASE + 0x18;
export const EMU_ORDER_RING = 0;
export const EMU_ORDER_REVERSE = 1;
/** Int32 counters: descriptors completed, descriptors failed, MSIs sent. */
export const EMU_DESCS = EMU_BASE + 0x1c;
export const EMU_ERRORS = EMU_BASE + 0x20;
export const EMU_MSIS = EMU_BASE + 0x24;
/** BigInt64: bytes written to data buffers; nanoseconds spent moving them. */
export const EMU_BYTES = EMU_BASE + 0x28;
export const EMU_COPY_NS = EMU_BASE + 0x30;
/**
 * Int32: the timing profile, for the whole function (its contexts share its data mover): bandwidth
 * in MB/s (10^6 bytes/s, 0 = host speed) and latency per copy or repeat-copy in nanoseconds.
 */
export const EMU_BW_MBPS = EMU_BASE + 0x38;
export const EMU_LATENCY_NS = EMU_BASE + 0x3c;
/** Int32 × 2: one doorbell-pending bit per context (the bus's record of doorbell writes). */
export const EMU_DB_PENDING = EMU_BASE + 0x40;
/** Int32: nonzero while the driver has a migration run going: the function polls between batches. */
export const EMU_RUN = EMU_BASE + 0x48;
/** Int32: how long the function polls after each batch while a run goes, in nanoseconds. */
export const EMU_RUN_SPIN_NS = EMU_BASE + 0x4c;
/** Int32: times the function thread went to sleep (each costs the next doorbell a wake-up). */
export const EMU_SLEEPS = EMU_BASE + 0x50;
/** Int32 × 64: MSIs sent per vector. */
export const EMU_MSI_VECTORS = EMU_BASE + 0x80;

export { EMU_STATE_BOOT, EMU_STATE_EXITED, EMU_STATE_READY } from '@pagemig/dmaengine/device';

/** The emulator words the function loop and the boot handshake use. */
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

/** Bytes of the emulated BAR 0. */
export const BAR0_BYTES = EMU_MSI_VECTORS + 4 * 64;
/** Bytes of the emulated BAR 2: one doorbell page per context. */
export const BAR2_BYTES = (EMU_MAX_CXT + 1) * 4096;

const READ_ONLY = new Set([MMIO_STS0, MMIO_CAP0, MMIO_CAP1, MMIO_VERSION, MMIO_ERR_WRT]);
const W1C = new Set([MMIO_ERR_STS]);
/** Writes the function must notice: they bump EMU_MMIO_SEQ and wake it. */
const WAKES = new Set([
  MMIO_CTL0,
  MMIO_ERR_CFG,
  EMU_EXIT,
  EMU_SPIN_NS,
  EMU_RUN_SPIN_NS,
  EMU_ORDER,
  EMU_BW_MBPS,
  EMU_LATENCY_NS,
]);

/**
 * The driver's window on an SDXI function: 64-bit ioread/iowrite on BAR 0 and the doorbells of
 * BAR 2. Values are numbers (every field this function uses fits 53 bits).
 */
export class Mmio {
  readonly i32: Int32Array;
  readonly r64: BigInt64Array;
  readonly db64: BigInt64Array;

  constructor(
    readonly bar0: SharedArrayBuffer,
    readonly bar2: SharedArrayBuffer,
  ) {
    this.i32 = new Int32Array(bar0);
    this.r64 = new BigInt64Array(bar0);
    this.db64 = new BigInt64Array(bar2);
  }

  read(offset: number): number {
    return Number(BigInt.asUintN(64, Atomics.load(this.r64, offset >>> 3)));
  }

  write(offset: number, value: number | bigint): void {
    if (offset >= EMU_BASE) {
      Atomics.store(this.i32, offset >>> 2, Number(value) | 0);
    } else if (!READ_ONLY.has(offset)) {
      const v = BigInt.asIntN(64, BigInt(value));
      if (W1C.has(offset)) Atomics.and(this.r64, offset >>> 3, ~v);
      else Atomics.store(this.r64, offset >>> 3, v);
    }
    if (WAKES.has(offset)) wakeDevice(this.i32, EMU_WORDS);
  }

  /** The context's doorbell (BAR 2 at `cxt × stride`): software writes the new write index. */
  doorbell(cxt: number, value: number | bigint, stride = 4096): void {
    Atomics.store(this.db64, (cxt * stride) >>> 3, BigInt.asIntN(64, BigInt(value)));
    Atomics.or(this.i32, (EMU_DB_PENDING >>> 2) + (cxt >>> 5), 1 << (cxt & 31));
    wakeDevice(this.i32, EMU_WORDS);
  }
}

/** Sends MSI `vector`: counted in the emulator block, delivered on the host's interrupt line if any. */
export function signalMsi(bar32: Int32Array, vector: number, line: Int32Array | null): void {
  Atomics.add(bar32, EMU_MSIS >>> 2, 1);
  Atomics.add(bar32, (EMU_MSI_VECTORS >>> 2) + (vector & 63), 1);
  if (line) InterruptLine.raise(line);
  else Atomics.notify(bar32, EMU_MSIS >>> 2);
}
