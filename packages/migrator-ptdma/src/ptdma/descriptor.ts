/**
 * The 32-byte PTDMA descriptor (struct ptdma_desc, with the dword0 bitfield and the passthru
 * function layout it inherits from CCP v5). Little-endian dwords:
 *   dw0 control, dw1 length, dw2 src lo, dw3 src hi16 | src mem type | LSB ctx id | fixed,
 *   dw4 dst lo, dw5 dst hi16 | dst mem type | fixed, dw6 and dw7 reserved.
 */

export const DESC_BYTES = 32;
export const DESC_WORDS = 8;

/** Engine ids (CCP heritage); PTDMA implements only PASSTHRU. */
export const CCP_ENGINE_PASSTHRU = 5;

/** enum ccp_memtype. */
export const CCP_MEMTYPE_SYSTEM = 0;
export const CCP_MEMTYPE_SB = 1;
export const CCP_MEMTYPE_LOCAL = 2;

/** Passthru function sub-fields (union ccp_function .pt): byteswap 1:0, bitwise 4:2, reflect 6:5, rsvd 14:7. */
export const PT_BYTESWAP_NOOP = 0;
export const PT_BYTESWAP_32BIT = 1;
export const PT_BYTESWAP_256BIT = 2;
export const PT_BITWISE_NOOP = 0;

// dword0 bits.
export const DW0_SOC = 1 << 0;
export const DW0_IOC = 1 << 1;
export const DW0_RSVD_BIT2 = 1 << 2;
export const DW0_INIT = 1 << 3;
export const DW0_EOM = 1 << 4;
export const DW0_FUNCTION_SHIFT = 5;
export const DW0_FUNCTION_MASK = 0x7fff;
export const DW0_ENGINE_SHIFT = 20;
export const DW0_ENGINE_MASK = 0xf;
export const DW0_PROT = 1 << 24;
export const DW0_RSVD_HIGH = 0xfe000000; // bits 31:25

/** What the Linux driver writes: IOC, EOM, function 0 (plain copy), engine PASSTHRU. */
export const PT_DW0_MEMCPY = 0x00500012;

// dword3 / dword5 fields.
export const ADDR_HI_MASK = 0xffff;
export const MEMTYPE_SHIFT = 16;
export const MEMTYPE_MASK = 0x3;
export const LSB_CTX_SHIFT = 18;
export const LSB_CTX_MASK = 0xff;
export const DW3_RSVD = 0x7c000000; // bits 30:26
export const DW5_RSVD = 0x7ffc0000; // bits 30:18
export const FIXED_BIT = 0x80000000;

/** A decoded descriptor; every field, including the reserved ones, so nothing is lost. */
export interface PtdmaDescriptor {
  soc: boolean;
  ioc: boolean;
  init: boolean;
  eom: boolean;
  prot: boolean;
  /** 15-bit function field (passthru: byteswap | bitwise << 2 | reflect << 5 | rsvd << 7). */
  function: number;
  /** 4-bit engine id. */
  engine: number;
  /** dw0 bit 2 and bits 31:25, as they sit in the dword. */
  dw0Reserved: number;
  length: number;
  /** 48-bit bus addresses. */
  src: number;
  dst: number;
  srcMemType: number;
  dstMemType: number;
  lsbCtxId: number;
  srcFixed: boolean;
  dstFixed: boolean;
  /** dw3 bits 30:26 and dw5 bits 30:18, in place. */
  dw3Reserved: number;
  dw5Reserved: number;
  dw6: number;
  dw7: number;
}

const HI = 2 ** 32;

/** A plain copy as the Linux driver prepares it (pt_core_perform_passthru). */
export function memcpyDescriptor(dst: number, src: number, length: number, ioc = true): PtdmaDescriptor {
  return {
    soc: false,
    ioc,
    init: false,
    eom: true,
    prot: false,
    function: 0,
    engine: CCP_ENGINE_PASSTHRU,
    dw0Reserved: 0,
    length,
    src,
    dst,
    srcMemType: CCP_MEMTYPE_SYSTEM,
    dstMemType: CCP_MEMTYPE_SYSTEM,
    lsbCtxId: 0,
    srcFixed: false,
    dstFixed: false,
    dw3Reserved: 0,
    dw5Reserved: 0,
    dw6: 0,
    dw7: 0,
  };
}

/** Writes `d` as 8 dwords at `words[at..at + 8)`. */
export function encodeDescriptor(d: PtdmaDescriptor, words: Int32Array | Uint32Array, at = 0): void {
  const dw0 =
    (d.soc ? DW0_SOC : 0) |
    (d.ioc ? DW0_IOC : 0) |
    (d.init ? DW0_INIT : 0) |
    (d.eom ? DW0_EOM : 0) |
    ((d.function & DW0_FUNCTION_MASK) << DW0_FUNCTION_SHIFT) |
    ((d.engine & DW0_ENGINE_MASK) << DW0_ENGINE_SHIFT) |
    (d.prot ? DW0_PROT : 0) |
    (d.dw0Reserved & (DW0_RSVD_BIT2 | DW0_RSVD_HIGH));
  words[at] = dw0;
  words[at + 1] = d.length | 0;
  words[at + 2] = (d.src % HI) | 0;
  words[at + 3] =
    (Math.floor(d.src / HI) & ADDR_HI_MASK) |
    ((d.srcMemType & MEMTYPE_MASK) << MEMTYPE_SHIFT) |
    ((d.lsbCtxId & LSB_CTX_MASK) << LSB_CTX_SHIFT) |
    (d.dw3Reserved & DW3_RSVD) |
    (d.srcFixed ? FIXED_BIT : 0);
  words[at + 4] = (d.dst % HI) | 0;
  words[at + 5] =
    (Math.floor(d.dst / HI) & ADDR_HI_MASK) |
    ((d.dstMemType & MEMTYPE_MASK) << MEMTYPE_SHIFT) |
    (d.dw5Reserved & DW5_RSVD) |
    (d.dstFixed ? FIXED_BIT : 0);
  words[at + 6] = d.dw6 | 0;
  words[at + 7] = d.dw7 | 0;
}

/** Reads 8 dwords at `words[at..at + 8)`. */
export function decodeDescriptor(words: Int32Array | Uint32Array, at = 0): PtdmaDescriptor {
  const dw0 = words[at]! >>> 0;
  const dw3 = words[at + 3]! >>> 0;
  const dw5 = words[at + 5]! >>> 0;
  return {
    soc: (dw0 & DW0_SOC) !== 0,
    ioc: (dw0 & DW0_IOC) !== 0,
    init: (dw0 & DW0_INIT) !== 0,
    eom: (dw0 & DW0_EOM) !== 0,
    prot: (dw0 & DW0_PROT) !== 0,
    function: (dw0 >>> DW0_FUNCTION_SHIFT) & DW0_FUNCTION_MASK,
    engine: (dw0 >>> DW0_ENGINE_SHIFT) & DW0_ENGINE_MASK,
    dw0Reserved: (dw0 & (DW0_RSVD_BIT2 | DW0_RSVD_HIGH)) >>> 0,
    length: words[at + 1]! >>> 0,
    src: (dw3 & ADDR_HI_MASK) * HI + (words[at + 2]! >>> 0),
    dst: (dw5 & ADDR_HI_MASK) * HI + (words[at + 4]! >>> 0),
    srcMemType: (dw3 >>> MEMTYPE_SHIFT) & MEMTYPE_MASK,
    dstMemType: (dw5 >>> MEMTYPE_SHIFT) & MEMTYPE_MASK,
    lsbCtxId: (dw3 >>> LSB_CTX_SHIFT) & LSB_CTX_MASK,
    srcFixed: (dw3 & FIXED_BIT) !== 0,
    dstFixed: (dw5 & FIXED_BIT) !== 0,
    dw3Reserved: (dw3 & DW3_RSVD) >>> 0,
    dw5Reserved: (dw5 & DW5_RSVD) >>> 0,
    dw6: words[at + 6]! >>> 0,
    dw7: words[at + 7]! >>> 0,
  };
}

/** The driver's fast path: a plain copy written straight into a ring slot (no object). */
export function writeMemcpyDescriptor(
  words: Int32Array,
  at: number,
  dst: number,
  src: number,
  length: number,
  ioc: boolean,
): void {
  words[at] = ioc ? PT_DW0_MEMCPY : PT_DW0_MEMCPY & ~DW0_IOC;
  words[at + 1] = length | 0;
  words[at + 2] = (src % HI) | 0;
  words[at + 3] = Math.floor(src / HI) & ADDR_HI_MASK;
  words[at + 4] = (dst % HI) | 0;
  words[at + 5] = Math.floor(dst / HI) & ADDR_HI_MASK;
  words[at + 6] = 0;
  words[at + 7] = 0;
}
