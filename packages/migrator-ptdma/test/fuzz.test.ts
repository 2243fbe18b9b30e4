import { changedPages, type DmaTarget, fillMemory, mapDmaWindows, snapshotMemory } from '@pagemig/testkit';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { memcpyDescriptor, type PtdmaDescriptor, raisedCodes, regs } from '../dist/index.js';
import { descriptorArb } from './arbitraries.js';
import { QCONTROL, RING_PFN, Rig, slot } from './rig.js';

const r = regs;
const PAGES = 2048; // 8 MiB
const P = 4096;

let rig: Rig;
beforeAll(async () => {
  rig = await Rig.create('8MiB');
  fillMemory(rig.m);
});
afterAll(async () => {
  await rig.close();
});

const whereArb: fc.Arbitrary<DmaTarget> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.record({ kind: fc.constant('win' as const), idx: fc.nat(3), off: fc.nat(40 * P) }),
  },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('ram' as const), addr: fc.nat(PAGES * P - 1) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('wild' as const), addr: fc.nat(2 ** 48 - 1) }) },
);
const lengthArb = fc.oneof(
  { weight: 6, arbitrary: fc.integer({ min: 1, max: 3 * P }) },
  { weight: 1, arbitrary: fc.constant(0) },
  { weight: 1, arbitrary: fc.nat({ max: 0xffffffff }) },
);
/** Mostly plausible copies (some with one field spoiled), sometimes 32 random bytes. */
const descArb = fc.oneof(
  {
    weight: 8,
    arbitrary: fc.record({
      src: whereArb,
      dst: whereArb,
      len: lengthArb,
      ioc: fc.boolean(),
      soc: fc.nat(15).map((x) => x === 0),
      patch: fc.oneof(
        { weight: 6, arbitrary: fc.constant({}) },
        { weight: 1, arbitrary: fc.record({ engine: fc.nat(15) }) },
        { weight: 1, arbitrary: fc.record({ function: fc.nat(0x7fff) }) },
        { weight: 1, arbitrary: fc.record({ srcMemType: fc.nat(3), dstMemType: fc.nat(3) }) },
        { weight: 1, arbitrary: fc.record({ lsbCtxId: fc.nat(255) }) },
        { weight: 1, arbitrary: fc.record({ dw7: fc.nat({ max: 0xffffffff }) }) },
      ),
    }),
  },
  { weight: 1, arbitrary: descriptorArb.map((d) => ({ raw: d })) },
);
const windowArb = fc.record({
  pfn: fc.nat(PAGES - 1),
  nr: fc.integer({ min: 1, max: 40 }),
  dir: fc.constantFrom(1 as const, 2 as const, 3 as const),
});
const writeArb = fc.oneof(
  fc.record({ off: fc.constant(r.CMD_TIMEOUT_OFFSET), v: fc.nat(2000) }),
  fc.record({ off: fc.constant(r.EMU_BW_MBPS), v: fc.constantFrom(0, 1000, 20000) }),
  fc.record({ off: fc.constant(r.Q_INT_ENABLE), v: fc.nat(15) }),
  fc.record({
    off: fc.constant(r.Q_HEAD_LO),
    v: fc.oneof(fc.nat(31).map(slot), fc.nat({ max: 0xffffffff })),
  }),
  fc.record({ off: fc.constant(r.Q_INTERRUPT_STATUS), v: fc.nat(15) }),
);
const controlArb = fc.oneof(
  { weight: 8, arbitrary: fc.constant(QCONTROL | r.CMD_Q_RUN) },
  { weight: 1, arbitrary: fc.nat({ max: 0xffffffff }) },
  { weight: 1, arbitrary: fc.nat(31).map((code) => (code << r.CMD_Q_SIZE_SHIFT) | r.CMD_Q_RUN) },
);
const runArb = fc.record({
  windows: fc.array(windowArb, { maxLength: 4 }),
  ringMapped: fc.nat(9).map((x) => x > 0),
  descs: fc.integer({ min: 1, max: 31 }).chain((n) => fc.array(descArb, { minLength: n, maxLength: n })),
  writes: fc.array(writeArb, { maxLength: 3 }),
  control: controlArb,
});

/** Where the device may write: the pages mapped for DMA_FROM_DEVICE. */
function writable(pfn: number): boolean {
  return (rig.iommu.permissions(pfn) & 2) !== 0;
}

describe('PTDMA under random descriptors and register writes (fast-check)', () => {
  // Hundreds of runs, each with its own hang check: minutes on a loaded two-core host, not hung.
  it('never hangs, never writes outside its windows, and always reports a status', async () => {
    let descriptors = 0;
    const raised = new Set<number>();
    await fc.assert(
      fc.asyncProperty(runArb, async (run) => {
        // A clean queue at slot 0, then this run's windows.
        rig.iommu.unmapAll();
        rig.bringUp();
        rig.write(r.CMD_TIMEOUT_OFFSET, 0);
        rig.write(r.EMU_BW_MBPS, 0);
        await rig.idle();
        rig.write(r.Q_INTERRUPT_STATUS, r.ALL_INTERRUPTS);
        if (!run.ringMapped) rig.iommu.unmap(RING_PFN, 1);
        const at = mapDmaWindows(rig.iommu, run.windows, { pages: PAGES, keepClear: RING_PFN });
        run.descs.forEach((d, i) => {
          const desc: PtdmaDescriptor =
            'raw' in d
              ? d.raw
              : { ...memcpyDescriptor(at(d.dst), at(d.src), d.len, d.ioc), soc: d.soc, ...d.patch };
          rig.put(i, desc);
        });
        descriptors += run.descs.length;
        const snapshot = snapshotMemory(rig.m);
        for (const w of run.writes) rig.write(w.off, w.v);
        rig.write(r.Q_TAIL_LO, slot(run.descs.length));
        rig.write(r.Q_CONTROL, run.control);

        await rig.idle(3000); // never hangs

        // No byte changed outside the pages mapped for writing.
        const [stray] = changedPages(rig.m, snapshot, writable);
        if (stray !== undefined)
          throw new Error(`the device wrote pfn ${stray}, which is not mapped for writing`);

        // A status: drained, stopped with a known error code, stopped on completion, or not started.
        const st = rig.read(r.Q_INTERRUPT_STATUS);
        const ctrl = rig.read(r.Q_CONTROL);
        const drained = rig.read(r.Q_HEAD_LO) === rig.read(r.Q_TAIL_LO);
        if (st & r.INT_ERROR) {
          const code = r.qError(rig.read(r.Q_STATUS));
          expect(raisedCodes).toContain(code);
          raised.add(code);
        } else if (!drained) {
          const notStarted = !(ctrl & r.CMD_Q_RUN) || ctrl & r.CMD_Q_HALT;
          expect(notStarted || (st & r.INT_QUEUE_STOPPED) !== 0).toBeTruthy();
        }
      }),
      { numRuns: 250 },
    );
    // The device is still alive and correct after all of that.
    rig.iommu.unmapAll();
    rig.bringUp();
    rig.write(r.CMD_TIMEOUT_OFFSET, 0);
    rig.write(r.EMU_BW_MBPS, 0);
    await rig.idle();
    rig.write(r.Q_INTERRUPT_STATUS, r.ALL_INTERRUPTS);
    rig.iommu.map(10, 1, 1);
    rig.iommu.map(20, 1, 2);
    rig.copy(0, 20 * P, 10 * P, P);
    rig.ring(1);
    await rig.idle();
    expect(Buffer.compare(rig.bytes(20), rig.bytes(10))).toBe(0);
    expect(descriptors).toBeGreaterThan(2000);
    expect(raised.size).toBeGreaterThan(8);
  }, 120_000);
});
