/**
 * The 64-byte SDXI descriptor (SDXI 1.0 §4, as the Linux driver's descriptor.c encodes it), as 16
 * little-endian dwords:
 *   dw0      bit 0 vl (valid), 1 se, 2 fe (fence), 3 ch (chain), 4 csr, 5 rb, 15:8 subtype,
 *            26:16 type (operation group); bits 7:6 and 31:27 reserved
 *   dw1-13   the operation body (52 bytes)
 *   dw14-15  csb_ptr: bit 0 np (no completion block), 4:1 reserved, 63:5 the CST_BLK address
 * Sizes are encoded as length − 1. Software writes dw1..15 first and sets vl last behind a barrier.
 */

export const DESC_BYTES = 64;
export const DESC_WORDS = 16;

export const DW0_VL = 1 << 0;
export const DW0_SE = 1 << 1;
export const DW0_FE = 1 << 2;
export const DW0_CH = 1 << 3;
export const DW0_CSR = 1 << 4;
export const DW0_RB = 1 << 5;
export const DW0_SUBTYPE_SHIFT = 8;
export const DW0_TYPE_SHIFT = 16;
export const DW0_RSVD = 0xf80000c0; // bits 31:27 and 7:6
export const CSB_NP = 1;
export const CSB_RSVD = 0x1e; // bits 4:1

/** Operation groups (type). */
export const TYPE_DMAB = 0x001;
export const TYPE_ADMIN = 0x002;
export const TYPE_ATOMIC = 0x003;
export const TYPE_INTR = 0x004;

/** DmaBaseGrp subtypes. */
export const DMAB_NOP = 0x01;
export const DMAB_WRT_IMM = 0x02;
export const DMAB_COPY = 0x03;
export const DMAB_REPCOPY = 0x04;
/** AdminGrp subtypes (context 0 only). */
export const ADM_CXT_START_NM = 0x03;
export const ADM_CXT_STOP = 0x04;
export const ADM_INTR = 0x05;
export const ADM_SYNC = 0x06;
export const ADM_CXT_START_RS = 0x08;
/** IntrGrp subtype. */
export const INTR_INTR = 0x00;

/** Largest write-immediate payload, and the repeat-copy block. */
export const WRT_IMM_MAX = 32;
export const REPCOPY_BLOCK = 4096;

/** Admin vflags (dw1 bit 14): the doorbell value is valid. Bit 15 (vf) and 31:16 name VFs, which this function does not have. */
export const ADM_DV = 1 << 14;

const HI = 2 ** 32;

/** Every field of a descriptor, the reserved ones included, so encode(decode(x)) is x. */
export interface SdxiDescriptor {
  valid: boolean;
  sequential: boolean;
  fence: boolean;
  chain: boolean;
  csr: boolean;
  rb: boolean;
  type: number;
  subtype: number;
  /** dw0 bits 7:6 and 31:27, in place. */
  dw0Reserved: number;
  /** dw1..dw13 as unsigned dwords. */
  body: number[];
  /** The csb_ptr qword as written: np in bit 0, reserved bits 4:1, the CST_BLK address in 63:5. */
  csbPtr: bigint;
}

/** The CST_BLK a descriptor names, or null with np. */
export function csbAddress(d: SdxiDescriptor): number | null {
  return d.csbPtr & 1n ? null : Number(d.csbPtr & ~0x1fn);
}

const csbPtrOf = (csb: number | null | undefined): bigint =>
  csb === null || csb === undefined ? BigInt(CSB_NP) : BigInt(csb - (csb % 32));

export function encodeDescriptor(d: SdxiDescriptor, words: Int32Array | Uint32Array, at = 0): void {
  for (let i = 0; i < 13; i++) words[at + 1 + i] = (d.body[i] ?? 0) | 0;
  words[at + 14] = Number(BigInt.asIntN(32, d.csbPtr));
  words[at + 15] = Number(BigInt.asIntN(32, d.csbPtr >> 32n));
  words[at] =
    (d.valid ? DW0_VL : 0) |
    (d.sequential ? DW0_SE : 0) |
    (d.fence ? DW0_FE : 0) |
    (d.chain ? DW0_CH : 0) |
    (d.csr ? DW0_CSR : 0) |
    (d.rb ? DW0_RB : 0) |
    ((d.subtype & 0xff) << DW0_SUBTYPE_SHIFT) |
    ((d.type & 0x7ff) << DW0_TYPE_SHIFT) |
    (d.dw0Reserved & DW0_RSVD);
}

export function decodeDescriptor(words: Int32Array | Uint32Array, at = 0): SdxiDescriptor {
  const dw0 = words[at]! >>> 0;
  return {
    valid: (dw0 & DW0_VL) !== 0,
    sequential: (dw0 & DW0_SE) !== 0,
    fence: (dw0 & DW0_FE) !== 0,
    chain: (dw0 & DW0_CH) !== 0,
    csr: (dw0 & DW0_CSR) !== 0,
    rb: (dw0 & DW0_RB) !== 0,
    type: (dw0 >>> DW0_TYPE_SHIFT) & 0x7ff,
    subtype: (dw0 >>> DW0_SUBTYPE_SHIFT) & 0xff,
    dw0Reserved: (dw0 & DW0_RSVD) >>> 0,
    body: Array.from({ length: 13 }, (_, i) => words[at + 1 + i]! >>> 0),
    csbPtr: (BigInt(words[at + 15]! >>> 0) << 32n) | BigInt(words[at + 14]! >>> 0),
  };
}

/** Flags every builder takes. */
export interface DescFlags {
  fence?: boolean;
  chain?: boolean;
  /** CST_BLK address, or null/absent for none. */
  csb?: number | null;
  /** Build it valid (default true; the driver's fast path sets vl separately). */
  valid?: boolean;
}

function frame(type: number, subtype: number, body: number[], f: DescFlags): SdxiDescriptor {
  return {
    valid: f.valid ?? true,
    sequential: false,
    fence: f.fence ?? false,
    chain: f.chain ?? false,
    csr: false,
    rb: false,
    type,
    subtype,
    dw0Reserved: 0,
    body,
    csbPtr: csbPtrOf(f.csb),
  };
}

const lo32 = (x: number): number => (x % HI) >>> 0;
const hi32 = (x: number): number => Math.floor(x / HI) >>> 0;
const zeros = (n: number): number[] => Array.from({ length: n }, () => 0);

/** DSC_DMAB_NOP: does nothing but complete (and order, with fe). */
export function nopDescriptor(f: DescFlags = {}): SdxiDescriptor {
  return frame(TYPE_DMAB, DMAB_NOP, zeros(13), f);
}

export interface CopyArgs {
  dst: number;
  src: number;
  len: number;
  /** AKey indexes of the source (akey0) and destination (akey1). Default 0. */
  akeySrc?: number;
  akeyDst?: number;
}

/** The copy body: size − 1 in dw1, attributes in dw2 (0: memory), keys in dw3, addr0/addr1 in dw4..7. */
function copyBody(a: CopyArgs): number[] {
  const b = zeros(13);
  b[0] = (a.len - 1) >>> 0;
  b[2] = ((a.akeySrc ?? 0) & 0xffff) | (((a.akeyDst ?? 0) & 0xffff) << 16);
  b[3] = lo32(a.src);
  b[4] = hi32(a.src);
  b[5] = lo32(a.dst);
  b[6] = hi32(a.dst);
  return b.map((x) => x >>> 0);
}

/** DSC_DMAB_COPY: `len` bytes (1 B .. 4 GiB) from src to dst; the buffers must not overlap. */
export function copyDescriptor(a: CopyArgs, f: DescFlags = {}): SdxiDescriptor {
  return frame(TYPE_DMAB, DMAB_COPY, copyBody(a), f);
}

/**
 * DSC_DMAB_REPCOPY: replicates the 4 KiB block at src into `len / 4096` consecutive 4 KiB blocks at
 * dst (`len` is the destination length, a multiple of 4 KiB).
 */
export function repCopyDescriptor(a: CopyArgs, f: DescFlags = {}): SdxiDescriptor {
  return frame(TYPE_DMAB, DMAB_REPCOPY, copyBody(a), f);
}

/**
 * DSC_DMAB_WRT_IMM: writes up to 32 bytes carried in the descriptor. The layout is this emulator's
 * (the public sources do not give it): size − 1 in dw1, destination key in dw3 31:16, address in
 * dw4..5 (bits 191:128), the payload in dw6..13.
 */
export function writeImmDescriptor(
  a: { dst: number; data: Uint8Array; akeyDst?: number },
  f: DescFlags = {},
): SdxiDescriptor {
  const b = zeros(13);
  b[0] = (a.data.length - 1) >>> 0;
  b[2] = ((a.akeyDst ?? 0) & 0xffff) << 16;
  b[3] = lo32(a.dst);
  b[4] = hi32(a.dst);
  const payload = new Uint8Array(WRT_IMM_MAX);
  payload.set(a.data.subarray(0, WRT_IMM_MAX));
  const w = new Uint32Array(payload.buffer);
  for (let i = 0; i < 8; i++) b[5 + i] = w[i]!;
  return frame(
    TYPE_DMAB,
    DMAB_WRT_IMM,
    b.map((x) => x >>> 0),
    f,
  );
}

/** DSC_INTR: raises the interrupt named by AKey `akey` (its iv and vector). */
export function intrDescriptor(akey: number, f: DescFlags = {}): SdxiDescriptor {
  const b = zeros(13);
  b[2] = akey & 0xffff;
  return frame(TYPE_INTR, INTR_INTR, b, f);
}

export interface AdminRange {
  /** First and last context (inclusive). */
  first: number;
  last: number;
}

function adminBody(r: AdminRange): number[] {
  const b = zeros(13);
  b[1] = ((r.first & 0xffff) | ((r.last & 0xffff) << 16)) >>> 0;
  return b;
}

/**
 * DSC_CXT_START_NM (normal) or _RS (restart, also accepted for a context in error): the contexts
 * run from the read index in their CXT_STS; with `doorbell` they also act as if rung with it.
 * Always fenced, as the driver encodes it.
 */
export function cxtStartDescriptor(
  r: AdminRange & { doorbell?: number; restart?: boolean },
  f: DescFlags = {},
): SdxiDescriptor {
  const b = adminBody(r);
  if (r.doorbell !== undefined) {
    b[0] = ADM_DV;
    b[3] = lo32(r.doorbell);
    b[4] = hi32(r.doorbell);
  }
  return frame(TYPE_ADMIN, r.restart ? ADM_CXT_START_RS : ADM_CXT_START_NM, b, { fence: true, ...f });
}

/** DSC_CXT_STOP: the contexts stop (STOP_SW) once their current work is done. Always fenced. */
export function cxtStopDescriptor(r: AdminRange, f: DescFlags = {}): SdxiDescriptor {
  return frame(TYPE_ADMIN, ADM_CXT_STOP, adminBody(r), { fence: true, ...f });
}

/** DSC_SYNC: completes once every earlier operation on the contexts is done (filter bits 2:0 of dw1). */
export function syncDescriptor(r: AdminRange & { filter?: number }, f: DescFlags = {}): SdxiDescriptor {
  const b = adminBody(r);
  b[0] = (r.filter ?? 0) & 7;
  return frame(TYPE_ADMIN, ADM_SYNC, b, f);
}

/** DSC_ADM_INTR: the admin context's interrupt, named by an AKey of context 0. */
export function adminIntrDescriptor(akey: number, f: DescFlags = {}): SdxiDescriptor {
  const b = zeros(13);
  b[2] = akey & 0xffff;
  return frame(TYPE_ADMIN, ADM_INTR, b, f);
}

/**
 * The driver's fast path: a copy written straight into a ring slot (no object), everything but vl;
 * `publish` then sets vl.
 */
export function writeCopyDescriptor(
  words: Int32Array,
  at: number,
  dst: number,
  src: number,
  len: number,
  akey: number,
  csb: number,
  fence: boolean,
): number {
  words[at + 1] = len - 1;
  words[at + 2] = 0;
  words[at + 3] = (akey & 0xffff) | (akey << 16);
  words[at + 4] = src % HI;
  words[at + 5] = Math.floor(src / HI);
  words[at + 6] = dst % HI;
  words[at + 7] = Math.floor(dst / HI);
  words.fill(0, at + 8, at + 14);
  words[at + 14] = csb % HI;
  words[at + 15] = Math.floor(csb / HI);
  return (TYPE_DMAB << DW0_TYPE_SHIFT) | (DMAB_COPY << DW0_SUBTYPE_SHIFT) | (fence ? DW0_FE : 0);
}

/** Sets vl last: the Atomics store orders the plain writes of the body before it (the wmb()). */
export function publish(words: Int32Array, at: number, dw0: number): void {
  Atomics.store(words, at, dw0 | DW0_VL);
}
