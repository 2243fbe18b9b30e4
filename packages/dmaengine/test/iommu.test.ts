import { PagemigError } from '@pagemig/core';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DMA_BIDIRECTIONAL, DMA_FROM_DEVICE, DMA_TO_DEVICE, IommuDomain } from '../src/index.js';

describe('IommuDomain', () => {
  it('maps frames for a direction, returns the bus address, and unmaps them', () => {
    const d = new IommuDomain(64);
    expect(d.map(10, 4, DMA_TO_DEVICE)).toBe(10 * 4096);
    expect(d.allows(10 * 4096, 4 * 4096, DMA_TO_DEVICE)).toBe(true);
    // Reading is allowed, writing is not.
    expect(d.allows(10 * 4096, 1, DMA_FROM_DEVICE)).toBe(false);
    // One byte past the window faults.
    expect(d.allows(10 * 4096, 4 * 4096 + 1, DMA_TO_DEVICE)).toBe(false);
    expect(d.faults).toBe(2);
    expect(d.lastFault).toEqual({ pfn: 14, dir: DMA_TO_DEVICE });
    d.unmap(10, 4);
    expect(d.allows(10 * 4096, 4096, DMA_TO_DEVICE)).toBe(false);
    expect(d.mappedPages()).toBe(0);
  });

  it('shares its table with the device side through the SharedArrayBuffer', () => {
    const d = new IommuDomain(16);
    const device = IommuDomain.attach(d.sab, 16);
    d.map(3, 2, DMA_BIDIRECTIONAL);
    expect(device.allows(3 * 4096 + 100, 8000, DMA_BIDIRECTIONAL)).toBe(true);
    expect(device.allows(0, 4096, DMA_TO_DEVICE)).toBe(false);
    expect(d.faults).toBe(1);
  });

  it('refuses double mappings and ranges outside the machine with coded errors', () => {
    const d = new IommuDomain(8);
    d.map(2, 2, DMA_FROM_DEVICE);
    const code = (f: () => unknown) => {
      try {
        f();
      } catch (e) {
        return PagemigError.isInstance(e) ? e.code : 'other';
      }
      return 'none';
    };
    expect(code(() => d.map(3, 1, DMA_TO_DEVICE))).toBe('EEXIST');
    expect(code(() => d.map(7, 2, DMA_TO_DEVICE))).toBe('EINVAL');
    expect(code(() => d.map(0, 1, 5 as never))).toBe('EINVAL');
    // Zero-length and negative accesses never pass.
    expect(d.allows(2 * 4096, 0, DMA_FROM_DEVICE)).toBe(false);
    expect(d.allows(-4096, 4096, DMA_FROM_DEVICE)).toBe(false);
  });

  it('agrees with a model under random map/unmap/access sequences', () => {
    const N = 100; // four bitmap words: ranges cross word boundaries
    const op = fc.oneof(
      fc.record({
        k: fc.constant('map' as const),
        pfn: fc.nat(N - 1),
        nr: fc.integer({ min: 1, max: 70 }),
        dir: fc.constantFrom(1, 2, 3),
      }),
      fc.record({
        k: fc.constant('unmap' as const),
        pfn: fc.nat(N - 1),
        nr: fc.integer({ min: 1, max: 70 }),
      }),
      fc.record({
        k: fc.constant('access' as const),
        addr: fc.integer({ min: -5000, max: N * 4096 + 5000 }),
        len: fc.integer({ min: 0, max: 20000 }),
        dir: fc.constantFrom(1, 2, 3),
      }),
    );
    fc.assert(
      fc.property(fc.array(op, { maxLength: 60 }), (ops) => {
        const d = new IommuDomain(N);
        const model = new Uint8Array(N);
        for (const o of ops) {
          if (o.k === 'map') {
            const clash = o.pfn + o.nr > N || model.subarray(o.pfn, o.pfn + o.nr).some((x) => x !== 0);
            let threw = false;
            try {
              d.map(o.pfn, o.nr, o.dir as 1 | 2 | 3);
            } catch {
              threw = true;
            }
            expect(threw).toBe(clash);
            if (!clash) model.fill(o.dir, o.pfn, o.pfn + o.nr);
          } else if (o.k === 'unmap') {
            if (o.pfn + o.nr > N) continue;
            d.unmap(o.pfn, o.nr);
            model.fill(0, o.pfn, o.pfn + o.nr);
          } else {
            let want = o.len > 0 && o.addr >= 0 && o.addr + o.len <= N * 4096;
            if (want) {
              for (let p = Math.floor(o.addr / 4096); p <= Math.floor((o.addr + o.len - 1) / 4096); p++)
                if ((model[p]! & o.dir) !== o.dir) want = false;
            }
            expect(d.allows(o.addr, o.len, o.dir as 1 | 2 | 3)).toBe(want);
          }
        }
      }),
      { numRuns: 300 },
    );
  });
});
