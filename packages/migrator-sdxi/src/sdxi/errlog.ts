/**
 * The function's error log (SDXI 1.0 §3, ERRLOG_HD_ENT as the Linux driver's error.c decodes it): a
 * ring of 64-byte records in host memory, written by the function at MMIO_ERR_WRT and consumed by
 * software up to it (MMIO_ERR_RD). Dwords of a record:
 *   dw0   bit 0 vl, 13:8 step, 26:16 type
 *   dw1   bit 0 cv (context valid), 1 div (descriptor index valid), 2 bv (buffer valid), 6:4 buf,
 *         11:8 sub_step, 14:12 re (reaction), 31:16 cxt_num
 *   dw2-3 dsc_index (64-bit)
 *   dw11  bits 15:0 err_class
 */

export const ERRLOG_ENT_BYTES = 64;
export const ERRLOG_ENT_WORDS = 16;
/** Entries per unit of ERR_CFG's size field. */
export const ERRLOG_ENTRIES_PER_UNIT = 64;
/** The record type of an error-log header entry (this emulator's value; the driver skips others). */
export const ERRLOG_TYPE_ERR = 0x1;

/** Where in processing the error happened. */
export const ErrStep = {
  INTERNAL: 1,
  L2_ENTRY: 2,
  L1_ENTRY: 3,
  CXT_CTL: 4,
  CXT_STS: 5,
  WRITE_INDEX: 6,
  DESCRIPTOR: 7,
  CST_BLK: 8,
  ATOMIC_RETURN: 9,
  DATA_BUFFER: 10,
  AKEY: 11,
  RKEY: 12,
} as const;
export type ErrStepName = keyof typeof ErrStep;

export const ErrSubStep = {
  OTHER: 0,
  /** The address could not be translated (IOMMU window, AKey naming no address space). */
  TRANSLATION: 1,
  /** The access itself failed (no memory there). */
  ACCESS: 2,
  /** The value read is not valid (reserved bits, bad opcode, bad size, overlap, wrong state). */
  VALIDATION: 3,
} as const;

export const ErrReaction = {
  /** Nothing stopped. */
  INFORMATIVE: 0,
  CONTEXT_STOPPED: 1,
  FUNCTION_STOPPED: 2,
} as const;

/**
 * err_class: this emulator's cause, finer than step and sub-step (the spec's class values are not
 * in the public sources).
 */
export const ErrClass = {
  NONE: 0,
  /** Unknown type or subtype, an operation group not enabled, AdminGrp outside context 0. */
  OPCODE: 1,
  /** A reserved bit or field is set. */
  RESERVED: 2,
  /** A size out of range for the operation. */
  LENGTH: 3,
  /** Source, destination and CST_BLK overlap. */
  OVERLAP: 4,
  /** An admin operation names a context that does not exist or is in the wrong state. */
  CONTEXT: 5,
  /** The write index is behind the read index or more than a ring ahead of it. */
  INDEX: 6,
  /** A structure (ring, table, CST_BLK, data buffer) is not reachable. */
  ADDRESS: 7,
} as const;

/** Buffer numbers of a data-buffer error (buf): 0 source, 1 destination. */
export const BUF_SRC = 0;
export const BUF_DST = 1;

/** One decoded error-log record. */
export interface ErrlogEntry {
  step: number;
  subStep: number;
  reaction: number;
  /** The context, or null when cv is clear. */
  cxt: number | null;
  /** The failing descriptor's index (the context's 64-bit ring index), or null when div is clear. */
  dscIndex: bigint | null;
  /** The buffer (BUF_SRC / BUF_DST), or null when bv is clear. */
  buf: number | null;
  errClass: number;
}

const stepNames = new Map<number, string>(Object.entries(ErrStep).map(([k, v]) => [v, k]));
export const errStepName = (step: number): string => stepNames.get(step) ?? `STEP_${step}`;

export function encodeErrlog(e: ErrlogEntry, words: Int32Array, at = 0): void {
  words.fill(0, at + 1, at + ERRLOG_ENT_WORDS);
  words[at + 1] =
    (e.cxt !== null ? 1 : 0) |
    (e.dscIndex !== null ? 2 : 0) |
    (e.buf !== null ? 4 : 0) |
    (((e.buf ?? 0) & 7) << 4) |
    ((e.subStep & 0xf) << 8) |
    ((e.reaction & 7) << 12) |
    (((e.cxt ?? 0) & 0xffff) << 16);
  const idx = e.dscIndex ?? 0n;
  words[at + 2] = Number(BigInt.asIntN(32, idx));
  words[at + 3] = Number(BigInt.asIntN(32, idx >> 32n));
  words[at + 11] = e.errClass & 0xffff;
  // vl last: a reader that sees it sees the record.
  Atomics.store(words, at, 1 | ((e.step & 0x3f) << 8) | (ERRLOG_TYPE_ERR << 16));
}

/** The record at `words[at..]`, or null if vl is clear or it is not an error record. */
export function decodeErrlog(words: Int32Array, at = 0): ErrlogEntry | null {
  const dw0 = Atomics.load(words, at);
  if (!(dw0 & 1) || ((dw0 >>> 16) & 0x7ff) !== ERRLOG_TYPE_ERR) return null;
  const dw1 = words[at + 1]!;
  return {
    step: (dw0 >>> 8) & 0x3f,
    subStep: (dw1 >>> 8) & 0xf,
    reaction: (dw1 >>> 12) & 7,
    cxt: dw1 & 1 ? (dw1 >>> 16) & 0xffff : null,
    dscIndex: dw1 & 2 ? (BigInt(words[at + 3]! >>> 0) << 32n) | BigInt(words[at + 2]! >>> 0) : null,
    buf: dw1 & 4 ? (dw1 >>> 4) & 7 : null,
    errClass: words[at + 11]! & 0xffff,
  };
}
