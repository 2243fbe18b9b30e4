import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  copyDescriptor,
  csbAddress,
  cxtStartDescriptor,
  DMAB_COPY,
  decodeDescriptor,
  decodeErrlog,
  encodeDescriptor,
  encodeErrlog,
  publish,
  type SdxiDescriptor,
  TYPE_DMAB,
  writeCopyDescriptor,
} from '../dist/index.js';

const u32 = fc.nat({ max: 0xffffffff });
const addr = fc.nat({ max: 2 ** 52 });
const descriptorArb: fc.Arbitrary<SdxiDescriptor> = fc.record({
  valid: fc.boolean(),
  sequential: fc.boolean(),
  fence: fc.boolean(),
  chain: fc.boolean(),
  csr: fc.boolean(),
  rb: fc.boolean(),
  type: fc.nat({ max: 0x7ff }),
  subtype: fc.nat({ max: 0xff }),
  dw0Reserved: fc.constantFrom(0, 0x40, 0x80, 0x08000000, 0xf80000c0),
  body: fc.array(u32, { minLength: 13, maxLength: 13 }),
  csbPtr: fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }),
});

describe('64-byte descriptor encoding', () => {
  it('decode(encode(d)) is d for every field value', () => {
    fc.assert(
      fc.property(descriptorArb, (d) => {
        const w = new Int32Array(16);
        encodeDescriptor(d, w);
        expect(decodeDescriptor(w)).toEqual(d);
      }),
      { numRuns: 2000 },
    );
  });

  it('encode(decode(words)) reproduces any 64 bytes', () => {
    fc.assert(
      fc.property(fc.array(u32, { minLength: 16, maxLength: 16 }), (words) => {
        const out = new Uint32Array(16);
        encodeDescriptor(decodeDescriptor(Uint32Array.from(words)), out);
        expect([...out]).toEqual(words);
      }),
      { numRuns: 2000 },
    );
  });

  it("the driver's fast path writes what copyDescriptor encodes", () => {
    fc.assert(
      fc.property(
        addr,
        addr,
        fc.integer({ min: 1, max: 2 ** 32 }),
        fc.nat(0xffff),
        fc.boolean(),
        (dst, src, len, key, fence) => {
          const csb = 0x10_0000 + 32 * 7;
          const a = new Int32Array(16).fill(-1);
          publish(a, 0, writeCopyDescriptor(a, 0, dst, src, len, key, csb, fence));
          const b = new Int32Array(16);
          encodeDescriptor(copyDescriptor({ dst, src, len, akeySrc: key, akeyDst: key }, { fence, csb }), b);
          expect([...a]).toEqual([...b]);
        },
      ),
      { numRuns: 1000 },
    );
  });

  it('lays a copy out as SDXI does: size − 1, keys, addr0 and addr1, vl in bit 0, the CST_BLK in 63:5', () => {
    const w = new Uint32Array(16);
    const d = copyDescriptor(
      { dst: 0x1234_5678_9000, src: 0xabc_0000_1000, len: 4096, akeySrc: 2, akeyDst: 3 },
      { csb: 0x4000_0020 },
    );
    encodeDescriptor(d, w);
    expect([...w]).toEqual([
      1 | (DMAB_COPY << 8) | (TYPE_DMAB << 16),
      4095,
      0,
      2 | (3 << 16),
      0x0000_1000,
      0xabc,
      0x5678_9000,
      0x1234,
      0,
      0,
      0,
      0,
      0,
      0,
      0x4000_0020,
      0,
    ]);
    expect(csbAddress(d)).toBe(0x4000_0020);
    expect(csbAddress(copyDescriptor({ dst: 0, src: 4096, len: 1 }))).toBeNull();
  });

  it('encodes admin starts fenced, with the context range and the doorbell value', () => {
    const d = cxtStartDescriptor({ first: 1, last: 5, doorbell: 2 ** 33 + 7 });
    expect(d.fence).toBe(true);
    expect(d.body.slice(0, 5)).toEqual([1 << 14, 1 | (5 << 16), 0, 7, 2]);
  });

  it('round-trips error-log records, 64-bit descriptor index included', () => {
    const rec = fc.record({
      step: fc.nat(63),
      subStep: fc.nat(15),
      reaction: fc.nat(7),
      cxt: fc.option(fc.nat(0xffff), { nil: null }),
      dscIndex: fc.option(fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }), { nil: null }),
      buf: fc.option(fc.nat(7), { nil: null }),
      errClass: fc.nat(0xffff),
    });
    fc.assert(
      fc.property(rec, (e) => {
        const w = new Int32Array(16);
        encodeErrlog(e, w);
        expect(decodeErrlog(w)).toEqual(e);
      }),
      { numRuns: 1000 },
    );
  });
});
