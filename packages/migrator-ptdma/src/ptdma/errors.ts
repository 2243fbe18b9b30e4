/** Q_STATUS error codes (bits 5:0), with the names of the driver's message table. */
export const PtdmaError = {
  ILLEGAL_ENGINE: 1,
  ILLEGAL_FUNCTION_TYPE: 3,
  ILLEGAL_FUNCTION_MODE: 4,
  ILLEGAL_FUNCTION_SIZE: 6,
  ILLEGAL_FUNCTION_RSVD: 8,
  ILLEGAL_BUFFER_LENGTH: 9,
  VLSB_FAULT: 10,
  ILLEGAL_MEM_ADDR: 11,
  ILLEGAL_MEM_SEL: 12,
  ILLEGAL_CONTEXT_ID: 13,
  CMD_TIMEOUT: 18,
  IDMA0_AXI_SLVERR: 19,
  IDMA0_AXI_DECERR: 20,
  IDMA1_AXI_SLAVE_FAULT: 22,
  IDMA1_AXI_DECERR: 23,
  ODMA0_AXI_SLVERR: 38,
  ODMA0_AXI_DECERR: 39,
  ODMA1_AXI_SLVERR: 41,
  ODMA1_AXI_DECERR: 42,
  LSB_PARITY_ERR: 43,
} as const;
export type PtdmaErrorName = keyof typeof PtdmaError;

const names = new Map<number, string>(Object.entries(PtdmaError).map(([k, v]) => [v, k]));

/**
 * The name of a code, looked up by value (the Linux driver indexes a compacted string table with
 * the raw code, so its messages do not line up; this does not reproduce that quirk).
 */
export function ptdmaErrorName(code: number): string {
  return names.get(code) ?? (code === 0 ? 'OK' : `RESERVED_${code}`);
}

/**
 * What the emulated device raises, and for what (the hardware's exact causes are not public; these
 * are the emulator's rules, checked in this order):
 *  22/23  the descriptor fetch: ring slot not mapped in the IOMMU / not RAM
 *  11     head or tail is not a slot of the ring, or an address range passes 2^48
 *   8     a reserved bit is set (dw0 bit 2 or 31:25, function bits 14:7, dw3 30:26, dw5 30:18, dw6, dw7)
 *   1     engine is not PASSTHRU (5)
 *   3     a bitwise function (needs an LSB mask PTDMA does not have)
 *   4     reflect, byteswap code 3, or a "fixed" (non-incrementing) address
 *  13     a non-zero LSB context id
 *  10     memory type SB (PTDMA has no storage block)
 *  12     memory type local (2) or 3
 *   9     length 0
 *   6     a byteswap whose length is not a multiple of its unit (4 or 32 bytes)
 *  20/39  source / destination is not RAM (decode error)
 *  19/38  source / destination is not mapped in the IOMMU for that direction (I/O page fault)
 *  18     CMD_TIMEOUT is set and the timing profile says the descriptor takes longer
 * Codes 41, 42 and 43 are only raised by fault injection (EMU_INJECT).
 */
export const raisedCodes: readonly number[] = [1, 3, 4, 6, 8, 9, 10, 11, 12, 13, 18, 19, 20, 22, 23, 38, 39];
