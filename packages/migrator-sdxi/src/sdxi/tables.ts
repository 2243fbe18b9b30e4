/**
 * The control structures software builds in host memory and the function reads (SDXI 1.0 §3, as
 * the Linux driver's hw.h lays them out): the two-level context table, the per-context control
 * block, context status, the AKey table and completion status blocks. Offsets are in bytes from
 * the structure; every multi-byte field is little-endian. Shared by the function model and the
 * driver, so both read the same layout.
 */

/** A context id's place in the tables: bits 15:7 index the L2 table, bits 6:0 the L1 table. */
export const l2IndexOf = (cxt: number): number => cxt >>> 7;
export const l1IndexOf = (cxt: number): number => cxt & 0x7f;

/** CXT_L2_ENT, 8 bytes: bit 0 vl, bits 63:12 the L1 table. 512 entries per 4 KiB table. */
export const L2_ENT_BYTES = 8;
export const L2_VL = 1;

/** CXT_L1_ENT, 32 bytes; 128 entries per 4 KiB table. */
export const L1_ENT_BYTES = 32;
/** Qword 0, cxt_ctl_ptr: bit 0 vl, 1 ka, 2 pv (PASID valid), 63:6 CXT_CTL. */
export const L1_CXT_CTL_PTR = 0;
export const L1_VL = 1 << 0;
export const L1_KA = 1 << 1;
export const L1_PV = 1 << 2;
/** Qword 1, akey_ptr: bits 3:0 size code (256 << n entries), 63:12 the AKey table. */
export const L1_AKEY_PTR = 8;
/** Dword 4, misc0: bits 19:0 context PASID, 23:20 max_buffer. */
export const L1_MISC0 = 16;
/** Dword 5: the operation groups this context may run (bit n = group n). */
export const L1_OPB_ENB = 20;

/** CXT_CTL, 64 bytes. */
export const CXT_CTL_BYTES = 64;
/** Qword 0, ds_ring_ptr: bit 0 vl, 3:2 qos, 4 se, 5 csa, 63:6 the descriptor ring. */
export const CTL_DS_RING_PTR = 0;
export const CTL_RING_VL = 1;
/** Dword 2: ring size in entries (a power of two, at least 1024). */
export const CTL_DS_RING_SZ = 8;
/** Qword 2: bits 63:4 CXT_STS. */
export const CTL_CXT_STS_PTR = 16;
/** Qword 3: bits 63:3 the Write_Index. */
export const CTL_WRITE_INDEX_PTR = 24;

/** CXT_STS, 16 bytes, written by the function: byte 0 bits 3:0 state, qword 1 the read index. */
export const CXT_STS_BYTES = 16;
export const STS_STATE = 0;
export const STS_READ_INDEX = 8;

/** Context states (CXT_STS byte 0). */
export const CXTV_STOP_SW = 0x0;
export const CXTV_RUN = 0x1;
export const CXTV_STOPG_SW = 0x2;
export const CXTV_STOP_FN = 0x4;
export const CXTV_STOPG_FN = 0x6;
export const CXTV_ERR_FN = 0xf;

const stateNames: Record<number, string> = {
  [CXTV_STOP_SW]: 'STOP_SW',
  [CXTV_RUN]: 'RUN',
  [CXTV_STOPG_SW]: 'STOPG_SW',
  [CXTV_STOP_FN]: 'STOP_FN',
  [CXTV_STOPG_FN]: 'STOPG_FN',
  [CXTV_ERR_FN]: 'ERR_FN',
};
export const contextStateName = (s: number): string => stateNames[s] ?? `STATE_${s}`;

/** The smallest descriptor ring. */
export const MIN_RING_ENTRIES = 1024;

/** AKEY_ENT, 16 bytes. */
export const AKEY_ENT_BYTES = 16;
/** u16 intr_num: bit 0 vl, 1 iv (interrupt valid), 14:4 interrupt vector. */
export const AKEY_INTR = 0;
export const AKEY_VL = 1 << 0;
export const AKEY_IV = 1 << 1;
export const AKEY_VECTOR_SHIFT = 4;
export const AKEY_VECTOR_MASK = 0x7ff;
/** u16: the function whose memory the key names (this function: its own sfunc id). */
export const AKEY_TGT_SFUNC = 2;
/** u32 bits 19:0: the address space (PASID). */
export const AKEY_PASID = 4;
export const PASID_MASK = 0xfffff;
/** u16 steering tag, u16 rkey (reserved here). */
export const AKEY_STAG = 8;
export const AKEY_RKEY = 12;
/** Entries of an AKey table of size code n. */
export const akeyEntries = (code: number): number => 256 << code;

/** CST_BLK, 32 bytes: u64 signal (decremented on completion), u32 flags (bit 31 ER). */
export const CST_BLK_BYTES = 32;
export const CST_SIGNAL = 0;
export const CST_FLAGS = 8;
export const CST_ER = 0x80000000;

/** An AKey entry as an object (tests and tools; the driver writes its one entry directly). */
export interface AkeyEntry {
  valid: boolean;
  /** Interrupt valid: DSC_INTR with this key raises `vector`. */
  interrupt: boolean;
  vector: number;
  targetSfunc: number;
  pasid: number;
}

/** Writes `e` as AKey entry `index` of the table viewed by `words` (4 dwords per entry). */
export function writeAkey(words: Int32Array, index: number, e: AkeyEntry): void {
  const at = index * 4;
  const intr =
    (e.valid ? AKEY_VL : 0) |
    (e.interrupt ? AKEY_IV : 0) |
    ((e.vector & AKEY_VECTOR_MASK) << AKEY_VECTOR_SHIFT);
  words[at] = intr | ((e.targetSfunc & 0xffff) << 16);
  words[at + 1] = e.pasid & PASID_MASK;
  words[at + 2] = 0;
  words[at + 3] = 0;
}
