import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MAX_SEGMENTS_PER_LANE, makespan, segmentsOf } from '../../src/timing/bandwidth_sharing.js';
import { batchesOf } from '../../src/timing/kernel_overhead.js';
import { loadProfile } from '../../src/timing/profile.js';
import { modeledRunTime, type RunShape } from '../../src/timing/run_time.js';
import { cpuPlace, placeThreads } from '../../src/timing/topology.js';

const GB = 1e9;

describe('bandwidth sharing (discrete-event)', () => {
  it('one lane alone: latency plus bytes at the soft minimum of its limits', () => {
    const t = makespan(
      [
        { name: 'a', capacity: 10 * GB },
        { name: 'b', capacity: 10 * GB },
      ],
      [
        {
          start: 1e-3,
          path: [
            { resource: 0, weight: 1 },
            { resource: 1, weight: 1 },
          ],
          segments: [{ latency: 2e-3, bytes: 1e9 }],
        },
      ],
      2,
    );
    // (10^-2 + 10^-2)^(-1/2) GB/s = 7.07 GB/s.
    expect(t).toBeCloseTo(3e-3 + 1e9 / ((10 * GB) / Math.SQRT2), 9);
  });

  it('property: lanes sharing one resource never beat its capacity, and sharp sharing reaches it', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 12 }), fc.integer({ min: 1, max: 4 }), (lanes, weight) => {
        const res = [{ name: 'link', capacity: 20 * GB }];
        const bytes = 1e8;
        const ls = Array.from({ length: lanes }, () => ({
          start: 0,
          path: [{ resource: 0, weight }],
          segments: segmentsOf(5, 0, bytes / 5),
        }));
        const floor = (lanes * bytes * weight) / (20 * GB);
        expect(makespan(res, ls, 2)).toBeGreaterThanOrEqual(floor * (1 - 1e-9));
        expect(makespan(res, ls, 32)).toBeCloseTo(floor, 9);
      }),
    );
  });

  it('a lane waiting on latency leaves the shared bandwidth to the others', () => {
    const res = [{ name: 'link', capacity: 10 * GB }];
    const xfer = { start: 0, path: [{ resource: 0, weight: 1 }], segments: [{ latency: 0, bytes: 1e9 }] };
    const waiting = { start: 0, path: [{ resource: 0, weight: 1 }], segments: [{ latency: 1, bytes: 1 }] };
    // While the second lane waits its 1 s, the first has the whole link: 0.1 s.
    expect(makespan(res, [xfer, waiting], 32)).toBeCloseTo(1 + 1 / (10 * GB), 6);
    expect(makespan(res, [xfer, { ...waiting, segments: [{ latency: 0, bytes: 1e9 }] }], 32)).toBeCloseTo(
      0.2,
      9,
    );
  });

  it('segmentsOf keeps totals and bounds the event count', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 100_000 }), (chunks) => {
        const s = segmentsOf(chunks, 1e-7, 4096);
        expect(s.length).toBeLessThanOrEqual(MAX_SEGMENTS_PER_LANE);
        expect(s.reduce((a, x) => a + x.bytes, 0)).toBe(chunks * 4096);
        expect(s.reduce((a, x) => a + x.latency, 0)).toBeCloseTo(chunks * 1e-7, 9);
      }),
    );
  });
});

describe('batching and placement', () => {
  it('property: batches cover every folio once, and each reaches the limit only with its last folio', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.record({ pages: fc.constantFrom(1, 4, 16, 512), count: fc.integer({ min: 1, max: 3000 }) }),
          { minLength: 1, maxLength: 5 },
        ),
        fc.integer({ min: 1, max: 1024 }),
        (groups, batchPages) => {
          const runs = batchesOf(groups, batchPages);
          let pages = 0;
          runs.forEach((r, i) => {
            const bp = r.folios.reduce((s, g) => s + g.pages * g.count, 0);
            const last = r.folios.at(-1)!;
            if (i < runs.length - 1) expect(bp).toBeGreaterThanOrEqual(batchPages);
            expect(bp - last.pages).toBeLessThan(batchPages);
            pages += bp * r.repeat;
          });
          expect(pages).toBe(groups.reduce((s, g) => s + g.pages * g.count, 0));
        },
      ),
    );
  });

  it('spread puts one thread per CCD, packed fills a CCD first; SMT siblings share a core', () => {
    const p = loadProfile('zen3-epyc-ptdma');
    expect(placeThreads(p, 8, 'spread').map((c) => cpuPlace(p, c).ccd)).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    expect(new Set(placeThreads(p, 8, 'packed').map((c) => cpuPlace(p, c).ccd))).toEqual(new Set([0]));
    const spread16 = placeThreads(p, 16, 'spread').map((c) => cpuPlace(p, c).core);
    expect(new Set(spread16).size).toBe(8);
  });
});

describe('modeledRunTime', () => {
  const p = loadProfile('zen3-epyc-ptdma');
  const shape = (copier: RunShape['copier'], pages = 512, count = 64): RunShape => ({
    folios: [{ pages, count, pmdMapped: pages === 512 }],
    batchPages: 512,
    from: 0,
    to: 1,
    copier,
  });

  it('is deterministic and its phases add up to the total', () => {
    const a = modeledRunTime(p, shape({ kind: 'dma', engine: 'ptdma', channels: 4 }));
    const b = modeledRunTime(p, shape({ kind: 'dma', engine: 'ptdma', channels: 4 }));
    expect(a).toEqual(b);
    expect(Object.values(a.phases).reduce((s, v) => s + v, 0)).toBeCloseTo(a.totalSeconds, 12);
    expect(a.GBps).toBeCloseTo((64 * 2 ** 21) / a.totalSeconds / 1e9, 9);
  });

  it('charges the kernel copy to fallbackCopy and an offloaded copy to batchCopy', () => {
    const k = modeledRunTime(p, shape({ kind: 'kernel' }));
    const t = modeledRunTime(p, shape({ kind: 'threads', threads: 4, placement: 'spread' }));
    expect(k.phases.batchCopy).toBe(0);
    expect(k.phases.fallbackCopy).toBeGreaterThan(0);
    expect(t.phases.fallbackCopy).toBe(0);
    expect(t.phases.batchCopy).toBeGreaterThan(0);
    expect(t.phases.unmap).toBe(k.phases.unmap);
  });

  it('a cold start per folio slows only the kernel copier, and in its copy phase', () => {
    const cold = { ...p, cpu: { ...p.cpu, copyStartNs: p.cpu.copyStartNs + 1000 } };
    const small = (copier: RunShape['copier']) => shape(copier, 1, 512);
    const k0 = modeledRunTime(p, small({ kind: 'kernel' })).phases;
    const k1 = modeledRunTime(cold, small({ kind: 'kernel' })).phases;
    expect(k1.fallbackCopy - k0.fallbackCopy).toBeCloseTo(512 * 1000e-9, 9);
    expect(k1.move).toBe(k0.move);
    const threads = small({ kind: 'threads', threads: 1, placement: 'spread' });
    expect(modeledRunTime(cold, threads)).toEqual(modeledRunTime(p, threads));
  });

  it('a DMA batch ends its completion latency after the last channel, once per batch', () => {
    const dma = shape({ kind: 'dma', engine: 'ptdma', channels: 4 }, 512, 8);
    const e = p.dma.ptdma!;
    const slow = { ...p, dma: { ptdma: { ...e, completionUs: e.completionUs + 100 } } };
    const batches = 8; // one 2 MiB folio per 512-page batch
    expect(modeledRunTime(slow, dma).phases.batchCopy - modeledRunTime(p, dma).phases.batchCopy).toBeCloseTo(
      batches * 100e-6,
      9,
    );
  });

  it('a node behind a CXL link is slower to copy from than local DRAM, and a copy inside it slower still', () => {
    const c = loadProfile('dram-cxl');
    const run = (from: number, to: number) =>
      modeledRunTime(c, { ...shape({ kind: 'kernel' }), from, to }).phases.fallbackCopy;
    expect(run(0, 0)).toBeLessThan(run(1, 0));
    expect(run(1, 0)).toBeLessThan(run(1, 1));
  });

  it('refuses a DMA engine or node the profile does not have', () => {
    expect(() => modeledRunTime(p, shape({ kind: 'dma', engine: 'sdxi', channels: 1 }))).toThrow(
      /no DMA engine sdxi \(has: ptdma\)/,
    );
    expect(() => modeledRunTime(p, { ...shape({ kind: 'kernel' }), to: 2 })).toThrow(/no node 2/);
  });
});
