/**
 * Descriptor validation: everything the function checks before a descriptor may touch memory —
 * reserved bits, operation group and subtype, the context's operation-group enables, sizes,
 * overlap, the CST_BLK, and every data buffer through its AKey's address space. A descriptor that
 * passes is an `Op` the function can run without failing; one that does not writes nothing.
 */
import { DMA_BIDIRECTIONAL, DMA_FROM_DEVICE, DMA_TO_DEVICE, type IommuView } from '@pagemig/dmaengine/device';
import type { ContextInfo, Fault } from './context_table.js';
import {
  ADM_CXT_START_NM,
  ADM_CXT_START_RS,
  ADM_CXT_STOP,
  ADM_DV,
  ADM_INTR,
  ADM_SYNC,
  CSB_NP,
  CSB_RSVD,
  DMAB_COPY,
  DMAB_NOP,
  DMAB_REPCOPY,
  DMAB_WRT_IMM,
  DW0_CSR,
  DW0_RB,
  DW0_RSVD,
  DW0_SUBTYPE_SHIFT,
  DW0_TYPE_SHIFT,
  INTR_INTR,
  REPCOPY_BLOCK,
  TYPE_ADMIN,
  TYPE_DMAB,
  TYPE_INTR,
  WRT_IMM_MAX,
} from './descriptor.js';
import { BUF_DST, BUF_SRC, ErrClass, ErrStep, ErrSubStep } from './errlog.js';
import type { Phys } from './phys.js';
import { EMU_MAX_AKEY_CODE } from './regs.js';
import {
  AKEY_ENT_BYTES,
  AKEY_IV,
  AKEY_PASID,
  AKEY_VECTOR_MASK,
  AKEY_VECTOR_SHIFT,
  AKEY_VL,
  akeyEntries,
  CST_BLK_BYTES,
  PASID_MASK,
} from './tables.js';

export const OP_NOP = 1;
export const OP_WRT_IMM = 2;
export const OP_COPY = 3;
export const OP_REPCOPY = 4;
export const OP_INTR = 5;
export const OP_ADMIN = 6;

/** A validated descriptor (one per window slot, reused). */
export class Op {
  kind = 0;
  /** Admin subtype. */
  sub = 0;
  /** The window slot that starts this descriptor's chain (itself when not chained). */
  unit = 0;
  /** CST_BLK address, or -1. */
  csb = -1;
  src = 0;
  dst = 0;
  /** Bytes written at dst (a repeat copy reads one 4 KiB block). */
  len = 0;
  /** MSI vector to raise, or -1. */
  vector = -1;
  /** Admin: the context range and the doorbell flag. */
  first = 0;
  last = 0;
  dv = false;
}

/** What validation needs from the function. */
export interface FunctionView {
  readonly phys: Phys;
  /** The function's own address space: control structures and CST_BLKs. */
  readonly space: IommuView;
  /** Data address spaces by PASID. */
  readonly spaces: readonly (IommuView | null)[];
  readonly sfunc: number;
  /** CTL2's enabled operation groups and highest context id. */
  readonly opbAvl: number;
  readonly maxCxt: number;
}

const HI = 2 ** 32;
const overlaps = (a: number, al: number, b: number, bl: number): boolean => a < b + bl && b < a + al;

function akeySpace(
  f: FunctionView,
  cx: ContextInfo,
  key: number,
  buf: number | null,
  fault: Fault,
): { space: IommuView | null; intr: number } | null {
  if (cx.akeyCode > EMU_MAX_AKEY_CODE || key >= akeyEntries(cx.akeyCode)) {
    fault.set(ErrStep.AKEY, ErrSubStep.VALIDATION, ErrClass.ADDRESS, buf);
    return null;
  }
  const at = cx.akeyTable + key * AKEY_ENT_BYTES;
  const sub = f.phys.reach(f.space, at, AKEY_ENT_BYTES, DMA_TO_DEVICE);
  if (sub) {
    fault.set(ErrStep.AKEY, sub, ErrClass.ADDRESS, buf);
    return null;
  }
  const dw0 = f.phys.load32(at);
  if (!(dw0 & AKEY_VL)) {
    fault.set(ErrStep.AKEY, ErrSubStep.VALIDATION, ErrClass.ADDRESS, buf);
    return null;
  }
  // Another function's memory needs its RKey table; this function has none.
  if (dw0 >>> 16 !== f.sfunc) {
    fault.set(ErrStep.RKEY, ErrSubStep.VALIDATION, ErrClass.ADDRESS, buf);
    return null;
  }
  const space = f.spaces[f.phys.load32(at + AKEY_PASID) & PASID_MASK] ?? null;
  return { space, intr: dw0 & AKEY_IV ? (dw0 >>> AKEY_VECTOR_SHIFT) & AKEY_VECTOR_MASK : -1 };
}

/** The data buffer [addr, addr + len) through AKey `key`, for `dir`. */
function buffer(
  f: FunctionView,
  cx: ContextInfo,
  key: number,
  addr: number,
  len: number,
  dir: typeof DMA_TO_DEVICE | typeof DMA_FROM_DEVICE,
  buf: number,
  fault: Fault,
): boolean {
  const k = akeySpace(f, cx, key, buf, fault);
  if (!k) return false;
  if (!k.space) return fault.set(ErrStep.AKEY, ErrSubStep.TRANSLATION, ErrClass.ADDRESS, buf);
  const sub = f.phys.reach(k.space, addr, len, dir);
  return sub ? fault.set(ErrStep.DATA_BUFFER, sub, ErrClass.ADDRESS, buf) : true;
}

/** Checks the descriptor at `w[at..at + 16)` of context `cx`; fills `op` or `fault`. */
export function validate(
  f: FunctionView,
  cx: ContextInfo,
  w: Int32Array,
  at: number,
  op: Op,
  fault: Fault,
): boolean {
  const dw0 = w[at]! >>> 0;
  const type = (dw0 >>> DW0_TYPE_SHIFT) & 0x7ff;
  const subtype = (dw0 >>> DW0_SUBTYPE_SHIFT) & 0xff;
  op.kind = 0;
  op.len = 0;
  op.csb = -1;
  op.vector = -1;
  const desc = (cls: number) => fault.set(ErrStep.DESCRIPTOR, ErrSubStep.VALIDATION, cls);
  // The completion block first: once it is known good, any later failure is reported in it (ER).
  const csbLo = w[at + 14]! >>> 0;
  if (csbLo & CSB_RSVD) return desc(ErrClass.RESERVED);
  if (!(csbLo & CSB_NP)) {
    const csb = (w[at + 15]! >>> 0) * HI + ((csbLo & ~0x1f) >>> 0);
    const sub = f.phys.reach(f.space, csb, CST_BLK_BYTES, DMA_BIDIRECTIONAL);
    if (sub) return fault.set(ErrStep.CST_BLK, sub, ErrClass.ADDRESS);
    op.csb = csb;
  }
  if (dw0 & (DW0_RSVD | DW0_CSR | DW0_RB)) return desc(ErrClass.RESERVED);
  const group = type < 32 ? 2 ** type : 0;
  if (!(f.opbAvl & group) || !(cx.opbEnb & group)) return desc(ErrClass.OPCODE);
  if (type === TYPE_ADMIN && cx.id !== 0) return desc(ErrClass.OPCODE);
  const zero = (from: number, to: number) => {
    for (let i = from; i <= to; i++) if (w[at + i] !== 0) return false;
    return true;
  };

  // Operation body.
  let key0 = -1;
  let key1 = -1;
  switch (type === TYPE_DMAB ? subtype : type === TYPE_INTR ? 0x100 | subtype : 0x200 | subtype) {
    case DMAB_NOP:
      if (!zero(1, 13)) return desc(ErrClass.RESERVED);
      op.kind = OP_NOP;
      break;
    case DMAB_COPY:
    case DMAB_REPCOPY: {
      if (!zero(2, 2) || !zero(8, 13)) return desc(ErrClass.RESERVED);
      op.kind = subtype === DMAB_COPY ? OP_COPY : OP_REPCOPY;
      op.len = (w[at + 1]! >>> 0) + 1;
      if (op.kind === OP_REPCOPY && op.len % REPCOPY_BLOCK) return desc(ErrClass.LENGTH);
      key0 = w[at + 3]! & 0xffff;
      key1 = w[at + 3]! >>> 16;
      op.src = (w[at + 5]! >>> 0) * HI + (w[at + 4]! >>> 0);
      op.dst = (w[at + 7]! >>> 0) * HI + (w[at + 6]! >>> 0);
      const srcLen = op.kind === OP_COPY ? op.len : REPCOPY_BLOCK;
      if (overlaps(op.src, srcLen, op.dst, op.len)) return desc(ErrClass.OVERLAP);
      break;
    }
    case DMAB_WRT_IMM:
      if (!zero(2, 2) || w[at + 3]! & 0xffff) return desc(ErrClass.RESERVED);
      op.kind = OP_WRT_IMM;
      op.len = (w[at + 1]! >>> 0) + 1;
      if (op.len > WRT_IMM_MAX) return desc(ErrClass.LENGTH);
      key1 = w[at + 3]! >>> 16;
      op.dst = (w[at + 5]! >>> 0) * HI + (w[at + 4]! >>> 0);
      break;
    case 0x100 | INTR_INTR:
    case 0x200 | ADM_INTR:
      if (!zero(1, 2) || w[at + 3]! >>> 16 || !zero(4, 13)) return desc(ErrClass.RESERVED);
      op.kind = OP_INTR;
      key0 = w[at + 3]! & 0xffff;
      break;
    case 0x200 | ADM_CXT_START_NM:
    case 0x200 | ADM_CXT_START_RS:
    case 0x200 | ADM_CXT_STOP:
    case 0x200 | ADM_SYNC: {
      const dw1 = w[at + 1]! >>> 0;
      const start = subtype === ADM_CXT_START_NM || subtype === ADM_CXT_START_RS;
      const allowed = (subtype === ADM_SYNC ? 7 : 0) | (start ? ADM_DV : 0);
      // No VF targets (vf, vf_num) on this function.
      if (dw1 & ~allowed) return desc(ErrClass.RESERVED);
      if (!start && !zero(4, 5)) return desc(ErrClass.RESERVED);
      if (!zero(6, 13) || (subtype !== ADM_SYNC && w[at + 3] !== 0)) return desc(ErrClass.RESERVED);
      op.kind = OP_ADMIN;
      op.sub = subtype;
      op.first = w[at + 2]! & 0xffff;
      op.last = w[at + 2]! >>> 16;
      op.dv = (dw1 & ADM_DV) !== 0;
      // The admin context cannot start or stop itself.
      if (op.first > op.last || op.last > f.maxCxt || (subtype !== ADM_SYNC && op.first === 0))
        return desc(ErrClass.CONTEXT);
      break;
    }
    default:
      return desc(ErrClass.OPCODE);
  }

  // The completion block must not overlap the buffers.
  if (op.csb >= 0 && (op.kind === OP_COPY || op.kind === OP_REPCOPY || op.kind === OP_WRT_IMM)) {
    const srcLen = op.kind === OP_COPY ? op.len : op.kind === OP_REPCOPY ? REPCOPY_BLOCK : 0;
    if (
      overlaps(op.csb, CST_BLK_BYTES, op.dst, op.len) ||
      (srcLen > 0 && overlaps(op.csb, CST_BLK_BYTES, op.src, srcLen))
    )
      return desc(ErrClass.OVERLAP);
  }

  // Keys and buffers.
  if (op.kind === OP_INTR) {
    const k = akeySpace(f, cx, key0, null, fault);
    if (!k) return false;
    op.vector = k.intr;
  } else if (op.kind === OP_COPY || op.kind === OP_REPCOPY) {
    const srcLen = op.kind === OP_COPY ? op.len : REPCOPY_BLOCK;
    if (!buffer(f, cx, key0, op.src, srcLen, DMA_TO_DEVICE, BUF_SRC, fault)) return false;
    if (!buffer(f, cx, key1, op.dst, op.len, DMA_FROM_DEVICE, BUF_DST, fault)) return false;
  } else if (op.kind === OP_WRT_IMM) {
    if (!buffer(f, cx, key1, op.dst, op.len, DMA_FROM_DEVICE, BUF_DST, fault)) return false;
  }
  return true;
}
