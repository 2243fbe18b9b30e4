import { DmaStatusCode, type DmaStatusCodeValue } from '@pagemig/dmaengine';
import { BUF_DST, BUF_SRC, ErrClass, type ErrlogEntry, ErrStep, ErrSubStep } from './errlog.js';

// Kept apart from errlog.ts so the function thread, which writes records, never loads dmaengine's
// driver side (and @pagemig/core with it).

/** The dmaengine outcome of a descriptor whose failure the error log describes. */
export function statusOfErrlog(e: ErrlogEntry): DmaStatusCodeValue {
  switch (e.step) {
    case ErrStep.DATA_BUFFER:
    case ErrStep.AKEY:
      if (e.subStep === ErrSubStep.ACCESS)
        return e.buf === BUF_SRC ? DmaStatusCode.BUS_READ_ERROR : DmaStatusCode.BUS_WRITE_ERROR;
      if (e.errClass === ErrClass.OVERLAP) return DmaStatusCode.INVALID_ADDR;
      if (e.buf === BUF_SRC) return DmaStatusCode.INVALID_SRC_ADDR;
      if (e.buf === BUF_DST) return DmaStatusCode.INVALID_DST_ADDR;
      return DmaStatusCode.INVALID_ADDR;
    case ErrStep.RKEY:
      return DmaStatusCode.INVALID_ADDR;
    case ErrStep.DESCRIPTOR:
      if (e.subStep !== ErrSubStep.VALIDATION) return DmaStatusCode.DESCRIPTOR_READ_ERROR;
      if (e.errClass === ErrClass.LENGTH) return DmaStatusCode.INVALID_LENGTH;
      if (e.errClass === ErrClass.OVERLAP) return DmaStatusCode.INVALID_ADDR;
      return DmaStatusCode.INVALID_OPCODE;
    case ErrStep.CST_BLK:
      return DmaStatusCode.BUS_WRITE_ERROR;
    default:
      return DmaStatusCode.ERROR_UNKNOWN;
  }
}

/** The function's own code of a failure, for DmaTxResult.deviceCode: step << 8 | sub_step << 4 | err_class. */
export function deviceCodeOf(e: ErrlogEntry): number {
  return (e.step << 8) | (e.subStep << 4) | (e.errClass & 0xf);
}
