import { DmaStatusCode, type DmaStatusCodeValue } from '@pagemig/dmaengine';
import { PtdmaError } from './errors.js';

// Kept apart from errors.ts so the device thread, which needs the codes, never loads dmaengine's
// driver side (and @pagemig/core with it).

/** The dmaengine outcome of a descriptor that failed with `code`. */
export function statusOfCode(code: number): DmaStatusCodeValue {
  switch (code) {
    case PtdmaError.ILLEGAL_ENGINE:
    case PtdmaError.ILLEGAL_FUNCTION_TYPE:
    case PtdmaError.ILLEGAL_FUNCTION_MODE:
    case PtdmaError.ILLEGAL_FUNCTION_RSVD:
    case PtdmaError.ILLEGAL_CONTEXT_ID:
      return DmaStatusCode.INVALID_OPCODE;
    case PtdmaError.ILLEGAL_FUNCTION_SIZE:
    case PtdmaError.ILLEGAL_BUFFER_LENGTH:
      return DmaStatusCode.INVALID_LENGTH;
    case PtdmaError.VLSB_FAULT:
    case PtdmaError.ILLEGAL_MEM_ADDR:
    case PtdmaError.ILLEGAL_MEM_SEL:
      return DmaStatusCode.INVALID_ADDR;
    case PtdmaError.IDMA0_AXI_SLVERR:
      return DmaStatusCode.INVALID_SRC_ADDR;
    case PtdmaError.ODMA0_AXI_SLVERR:
      return DmaStatusCode.INVALID_DST_ADDR;
    case PtdmaError.IDMA0_AXI_DECERR:
      return DmaStatusCode.BUS_READ_ERROR;
    case PtdmaError.ODMA0_AXI_DECERR:
    case PtdmaError.ODMA1_AXI_SLVERR:
    case PtdmaError.ODMA1_AXI_DECERR:
      return DmaStatusCode.BUS_WRITE_ERROR;
    case PtdmaError.IDMA1_AXI_SLAVE_FAULT:
    case PtdmaError.IDMA1_AXI_DECERR:
      return DmaStatusCode.DESCRIPTOR_READ_ERROR;
    case PtdmaError.CMD_TIMEOUT:
      return DmaStatusCode.BUS_ERROR;
    case PtdmaError.LSB_PARITY_ERR:
      return DmaStatusCode.DATA_POISON;
    default:
      return DmaStatusCode.ERROR_UNKNOWN;
  }
}
