import fc from 'fast-check';
import type { PtdmaDescriptor } from '../dist/index.js';

export const u32 = fc.nat({ max: 0xffffffff });
export const addr = fc.nat({ max: 2 ** 48 - 1 });
export const descriptorArb: fc.Arbitrary<PtdmaDescriptor> = fc.record({
  soc: fc.boolean(),
  ioc: fc.boolean(),
  init: fc.boolean(),
  eom: fc.boolean(),
  prot: fc.boolean(),
  function: fc.nat({ max: 0x7fff }),
  engine: fc.nat({ max: 15 }),
  dw0Reserved: fc.constantFrom(0, 4, 0x02000000, 0xfe000000, 0xfe000004),
  length: u32,
  src: addr,
  dst: addr,
  srcMemType: fc.nat({ max: 3 }),
  dstMemType: fc.nat({ max: 3 }),
  lsbCtxId: fc.nat({ max: 255 }),
  srcFixed: fc.boolean(),
  dstFixed: fc.boolean(),
  dw3Reserved: fc.nat({ max: 31 }).map((v) => (v << 26) >>> 0),
  dw5Reserved: fc.nat({ max: 0x1fff }).map((v) => (v << 18) >>> 0),
  dw6: u32,
  dw7: u32,
});
