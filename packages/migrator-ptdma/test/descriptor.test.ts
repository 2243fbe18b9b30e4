import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  decodeDescriptor,
  encodeDescriptor,
  memcpyDescriptor,
  PT_DW0_MEMCPY,
  writeMemcpyDescriptor,
} from '../dist/index.js';
import { addr, descriptorArb, u32 } from './arbitraries.js';

describe('32-byte descriptor encoding', () => {
  it('decode(encode(d)) is d for every field value', () => {
    fc.assert(
      fc.property(descriptorArb, (d) => {
        const w = new Int32Array(8);
        encodeDescriptor(d, w);
        expect(decodeDescriptor(w)).toEqual({ ...d });
      }),
      { numRuns: 2000 },
    );
  });

  it('encode(decode(words)) reproduces any 32 bytes', () => {
    fc.assert(
      fc.property(fc.array(u32, { minLength: 8, maxLength: 8 }), (words) => {
        const w = Uint32Array.from(words);
        const out = new Uint32Array(8);
        encodeDescriptor(decodeDescriptor(w), out);
        expect([...out]).toEqual(words);
      }),
      { numRuns: 2000 },
    );
  });

  it("the driver's fast path writes what encodeDescriptor writes for a memcpy", () => {
    fc.assert(
      fc.property(addr, addr, u32, fc.boolean(), (dst, src, len, ioc) => {
        const a = new Int32Array(8);
        const b = new Int32Array(8);
        writeMemcpyDescriptor(a, 0, dst, src, len, ioc);
        encodeDescriptor(memcpyDescriptor(dst, src, len, ioc), b);
        expect([...a]).toEqual([...b]);
      }),
      { numRuns: 1000 },
    );
  });

  it('lays a memcpy out as Linux does: dw0 0x00500012, addresses split 32 + 16', () => {
    const w = new Uint32Array(8);
    encodeDescriptor(memcpyDescriptor(0x1234_5678_9abc, 0xabcd_0000_1000, 4096), w);
    expect(w[0]).toBe(PT_DW0_MEMCPY);
    expect([...w]).toEqual([0x00500012, 4096, 0x0000_1000, 0xabcd, 0x5678_9abc, 0x1234, 0, 0]);
  });
});
