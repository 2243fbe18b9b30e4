import { changedPages, type DmaTarget, mapDmaWindows, patternBytes, snapshotMemory } from '@pagemig/testkit';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  copyDescriptor,
  decodeDescriptor,
  errStepName,
  intrDescriptor,
  nopDescriptor,
  regs,
  repCopyDescriptor,
  type SdxiDescriptor,
  tables,
  writeImmDescriptor,
} from '../dist/index.js';
import { ENTRIES, isControlPage, P, Rig } from './rig.js';

const r = regs;
const t = tables;
const PAGES = 2048; // 8 MiB

let rig: Rig;
beforeAll(async () => {
  rig = await Rig.create('8MiB');
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
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('wild' as const), addr: fc.nat({ max: 2 ** 52 }) }) },
);
const lenArb = fc.oneof(
  { weight: 6, arbitrary: fc.integer({ min: 1, max: 3 * P }) },
  { weight: 1, arbitrary: fc.integer({ min: 1, max: 2 ** 32 }) },
);
const opArb = fc.record({
  kind: fc.constantFrom('copy', 'copy', 'copy', 'wrt', 'rep', 'nop', 'intr'),
  src: whereArb,
  dst: whereArb,
  len: lenArb,
  blocks: fc.integer({ min: 1, max: 4 }),
  key0: fc.oneof(
    { weight: 8, arbitrary: fc.constant(0) },
    { weight: 1, arbitrary: fc.constantFrom(1, 2, 300) },
  ),
  key1: fc.oneof(
    { weight: 8, arbitrary: fc.constant(0) },
    { weight: 1, arbitrary: fc.constantFrom(1, 2, 300) },
  ),
  fence: fc.nat(4).map((x) => x === 0),
  chain: fc.nat(5).map((x) => x === 0),
  csb: fc.oneof(
    { weight: 8, arbitrary: fc.constant('own' as const) },
    { weight: 1, arbitrary: fc.constant(null) },
    { weight: 1, arbitrary: fc.nat(PAGES * P - 1).map((a) => a - (a % 32)) },
    { weight: 1, arbitrary: fc.nat({ max: 2 ** 40 }) },
  ),
});
const rawArb = fc
  .array(fc.nat({ max: 0xffffffff }), { minLength: 16, maxLength: 16 })
  .map((w) => decodeDescriptor(Uint32Array.from(w)));
const descArb = fc.oneof(
  { weight: 9, arbitrary: opArb.map((o) => ({ op: o })) },
  { weight: 1, arbitrary: rawArb.map((d) => ({ raw: d })) },
);
const runArb = fc.record({
  windows: fc.array(
    fc.record({
      pfn: fc.integer({ min: 200, max: PAGES - 1 }),
      nr: fc.integer({ min: 1, max: 40 }),
      dir: fc.constantFrom(1 as const, 2 as const, 3 as const),
    }),
    { maxLength: 4 },
  ),
  key1: fc.record({
    valid: fc.boolean(),
    pasid: fc.constantFrom(0, 1, 2, 9),
    targetSfunc: fc.constantFrom(0, 0, 3),
  }),
  reverse: fc.boolean(),
  descs: fc.array(descArb, { minLength: 1, maxLength: 40, size: 'medium' }),
});

describe('SDXI under random descriptors (fast-check)', () => {
  // Hundreds of runs, each with its own hang check: minutes on a loaded two-core host, not hung.
  it('never hangs, never writes outside its address space, and always leaves a status', async () => {
    const seen = new Set<string>();
    let descriptors = 0;
    await fc.assert(
      fc.asyncProperty(runArb, async (run) => {
        await rig.activate();
        rig.mmio.write(r.EMU_ORDER, run.reverse ? r.EMU_ORDER_REVERSE : r.EMU_ORDER_RING);
        const space = rig.spaces[0]!;
        const at = mapDmaWindows(space, run.windows, { pages: PAGES });
        rig.setAkey(1, 1, run.key1);
        const list: SdxiDescriptor[] = run.descs.map((d) => {
          if ('raw' in d) return d.raw;
          const o = d.op;
          const f = { fence: o.fence, chain: o.chain };
          const keys = { akeySrc: o.key0, akeyDst: o.key1 };
          switch (o.kind) {
            case 'copy':
              return copyDescriptor({ dst: at(o.dst), src: at(o.src), len: o.len, ...keys }, f);
            case 'rep':
              return repCopyDescriptor({ dst: at(o.dst), src: at(o.src), len: o.blocks * P, ...keys }, f);
            case 'wrt':
              return writeImmDescriptor(
                { dst: at(o.dst), data: patternBytes(1 + (o.len % 32), o.len), akeyDst: o.key1 },
                f,
              );
            case 'nop':
              return nopDescriptor(f);
            default:
              return intrDescriptor(o.key0 % 3, f);
          }
        });
        list.forEach((d, i) => {
          const o = run.descs[i]!;
          rig.put(1, d, 'op' in o ? o.op.csb : 'own');
        });
        descriptors += list.length;
        const snapshot = snapshotMemory(rig.m);
        rig.doorbell(1);
        await rig.idle(3000); // never hangs

        // No byte changed outside the pages the context may write (and the function's own structures).
        const mayWrite = (pfn: number) => (space.permissions(pfn) & 2) !== 0 || isControlPage(pfn);
        const [stray] = changedPages(rig.m, snapshot, mayWrite);
        if (stray !== undefined)
          throw new Error(`the function wrote pfn ${stray}, which context 1 may not write`);

        // A status: drained; or waiting at an invalid slot or an unfinished chain; or stopped in
        // error with one record naming the context and a descriptor from its read index on.
        expect(rig.read(r.MMIO_STS0)).toBe(r.GSV_ACTIVE);
        const rd = Number(rig.readIndex(1));
        const wr = list.length;
        const log = rig.drainLog();
        for (let i = 0; i < rd; i++) expect(rig.u32(rig.ring(1) + (i % ENTRIES) * 64) & 1).toBe(0);
        if (rig.state(1) === t.CXTV_ERR_FN) {
          expect(log.length).toBe(1);
          const e = log[0]!;
          expect(e).toMatchObject({ cxt: 1, reaction: 1 });
          const idx = Number(e.dscIndex);
          expect(idx).toBeGreaterThanOrEqual(rd);
          expect(idx).toBeLessThan(wr);
          seen.add(`${errStepName(e.step)}/${e.subStep}`);
        } else {
          expect(rig.state(1)).toBe(t.CXTV_RUN);
          expect(log).toEqual([]);
          let end = rd;
          while (end < wr && list[end]!.valid) end++;
          // Whatever was not run is an unfinished chain.
          for (let i = rd; i < end; i++) expect(list[i]!.chain).toBe(true);
          if (end === wr && rd < wr) expect(list[wr - 1]!.chain).toBe(true);
        }
      }),
      { numRuns: 300 },
    );
    expect(descriptors).toBeGreaterThan(3000);
    expect(seen.size).toBeGreaterThanOrEqual(6);
  }, 120_000);
});
