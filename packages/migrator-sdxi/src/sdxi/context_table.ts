/**
 * The function's walk from a context id to its control block: MMIO_CXT_L2 → L2 entry → L1 entry →
 * CXT_CTL → CXT_STS and Write_Index. Every pointer is checked against the function's own address
 * space before it is followed; a failure fills `fault` with the step, sub-step and the reaction the
 * function takes (informative while the context's status cannot be reached, context stopped after).
 */
import { DMA_BIDIRECTIONAL, DMA_TO_DEVICE, type IommuView } from '@pagemig/dmaengine/device';
import { ErrClass, ErrReaction, ErrStep, ErrSubStep } from './errlog.js';
import type { Phys } from './phys.js';
import { EMU_MAX_RING_CODE } from './regs.js';
import {
  CTL_CXT_STS_PTR,
  CTL_DS_RING_PTR,
  CTL_DS_RING_SZ,
  CTL_RING_VL,
  CTL_WRITE_INDEX_PTR,
  CXT_CTL_BYTES,
  CXT_STS_BYTES,
  L1_AKEY_PTR,
  L1_CXT_CTL_PTR,
  L1_ENT_BYTES,
  L1_OPB_ENB,
  L1_VL,
  L2_ENT_BYTES,
  L2_VL,
  l1IndexOf,
  l2IndexOf,
  MIN_RING_ENTRIES,
} from './tables.js';

/** What went wrong, for the error log. */
export class Fault {
  step = 0;
  subStep = 0;
  errClass = 0;
  reaction = 0;
  /** BUF_SRC / BUF_DST, or null. */
  buf: number | null = null;

  clear(): void {
    this.step = 0;
  }

  set(step: number, subStep: number, errClass: number, buf: number | null = null): false {
    this.step = step;
    this.subStep = subStep;
    this.errClass = errClass;
    this.buf = buf;
    this.reaction = ErrReaction.CONTEXT_STOPPED;
    return false;
  }
}

/** A context as the function found it in the tables. */
export interface ContextInfo {
  id: number;
  ring: number;
  entries: number;
  sts: number;
  writeIndex: number;
  akeyTable: number;
  akeyCode: number;
  opbEnb: number;
}

const MAX_RING = MIN_RING_ENTRIES * 2 ** EMU_MAX_RING_CODE;
/** Bits 63:n of a pointer qword read as a number. */
const ptr = (v: number, lowBits: number): number => v - (v % 2 ** lowBits);

/**
 * Walks the tables for context `id`. Null with `fault` set: the context cannot be reached (the
 * reaction is informative, or function-stopped when the L2 table itself is gone). The context with
 * `fault` set: it can be reached but not run (the function stops it).
 */
export function lookupContext(
  phys: Phys,
  space: IommuView,
  l2Reg: number,
  id: number,
  fault: Fault,
): ContextInfo | null {
  fault.clear();
  const informative = (step: number, sub: number, cls: number = ErrClass.ADDRESS): null => {
    fault.set(step, sub, cls);
    fault.reaction = ErrReaction.INFORMATIVE;
    return null;
  };
  const l2e = ptr(l2Reg, 12) + l2IndexOf(id) * L2_ENT_BYTES;
  let sub = phys.reach(space, l2e, L2_ENT_BYTES, DMA_TO_DEVICE);
  if (sub) {
    // The root of every context is gone: the function stops.
    fault.set(ErrStep.L2_ENTRY, sub, ErrClass.ADDRESS);
    fault.reaction = ErrReaction.FUNCTION_STOPPED;
    return null;
  }
  const l2v = phys.load64(l2e);
  if (l2v % 2 !== L2_VL) return informative(ErrStep.L2_ENTRY, ErrSubStep.VALIDATION, ErrClass.CONTEXT);
  const l1e = ptr(l2v, 12) + l1IndexOf(id) * L1_ENT_BYTES;
  sub = phys.reach(space, l1e, L1_ENT_BYTES, DMA_TO_DEVICE);
  if (sub) return informative(ErrStep.L1_ENTRY, sub);
  const ctlPtr = phys.load64(l1e + L1_CXT_CTL_PTR);
  if (ctlPtr % 2 !== L1_VL) return informative(ErrStep.L1_ENTRY, ErrSubStep.VALIDATION, ErrClass.CONTEXT);
  const ctl = ptr(ctlPtr, 6);
  sub = phys.reach(space, ctl, CXT_CTL_BYTES, DMA_TO_DEVICE);
  if (sub) return informative(ErrStep.CXT_CTL, sub);
  const ringPtr = phys.load64(ctl + CTL_DS_RING_PTR);
  if (ringPtr % 2 !== CTL_RING_VL)
    return informative(ErrStep.CXT_CTL, ErrSubStep.VALIDATION, ErrClass.CONTEXT);
  const sts = ptr(phys.load64(ctl + CTL_CXT_STS_PTR), 4);
  sub = phys.reach(space, sts, CXT_STS_BYTES, DMA_BIDIRECTIONAL);
  if (sub) return informative(ErrStep.CXT_STS, sub);
  // From here the function can record the context's error state.
  const entries = phys.load32(ctl + CTL_DS_RING_SZ) >>> 0;
  const akeyPtr = phys.load64(l1e + L1_AKEY_PTR);
  const info: ContextInfo = {
    id,
    ring: ptr(ringPtr, 6),
    entries,
    sts,
    writeIndex: ptr(phys.load64(ctl + CTL_WRITE_INDEX_PTR), 3),
    akeyTable: ptr(akeyPtr, 12),
    akeyCode: akeyPtr % 16,
    opbEnb: phys.load32(l1e + L1_OPB_ENB) >>> 0,
  };
  if (entries < MIN_RING_ENTRIES || entries > MAX_RING || (entries & (entries - 1)) !== 0) {
    fault.set(ErrStep.CXT_CTL, ErrSubStep.VALIDATION, ErrClass.LENGTH);
    return info;
  }
  sub = phys.reach(space, info.writeIndex, 8, DMA_TO_DEVICE);
  if (sub) {
    fault.set(ErrStep.WRITE_INDEX, sub, ErrClass.ADDRESS);
    return info;
  }
  return info;
}
