import { DMA_FROM_DEVICE, DMA_TO_DEVICE, DmaStatusCode } from '@pagemig/dmaengine';
import { fillMemory } from '@pagemig/testkit';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  copyDescriptor,
  cxtStartDescriptor,
  cxtStopDescriptor,
  ErrClass,
  type ErrlogEntry,
  ErrReaction,
  ErrStep,
  ErrSubStep,
  errStepName,
  intrDescriptor,
  regs,
  repCopyDescriptor,
  type SdxiDescriptor,
  statusOfErrlog,
  TYPE_ATOMIC,
  tables,
  writeImmDescriptor,
} from '../dist/index.js';
import { ctxPfn, LOG_PFN, P, Rig } from './rig.js';

const r = regs;
const t = tables;
const SRC = 400; // context 1 may read 4 pages
const DST = 600; // context 1 may write 4 pages
const RO = 700; // context 1 may only read
const OTHER = 800; // context 2's window
const BEYOND = 4096; // past the end of the 8 MiB of RAM
const { DESCRIPTOR, CST_BLK, AKEY, RKEY, DATA_BUFFER, WRITE_INDEX, CXT_CTL, L1_ENTRY, L2_ENTRY } = ErrStep;
const { TRANSLATION, ACCESS, VALIDATION } = ErrSubStep;

let rig: Rig;
beforeAll(async () => {
  rig = await Rig.create();
  // Every page of the machine holds data, so a stray write anywhere changes the checksum.
  fillMemory(rig.m);
});
afterAll(async () => {
  await rig.close();
});
beforeEach(async () => {
  await rig.activate();
  rig.spaces[0]!.map(SRC, 4, DMA_TO_DEVICE);
  rig.spaces[0]!.map(DST, 4, DMA_FROM_DEVICE);
  rig.spaces[0]!.map(RO, 1, DMA_TO_DEVICE);
  rig.spaces[1]!.map(OTHER, 1, DMA_FROM_DEVICE);
});

interface Case {
  why: string;
  /** Puts the bad descriptor (context 1, index 0 unless it says otherwise) and anything it needs. */
  arrange: () => { c?: number; idx?: number | null; bell?: () => void } | undefined;
  entry: Omit<ErrlogEntry, 'cxt' | 'dscIndex'> & { cxt?: number | null; dscIndex?: bigint | null };
  /** The CST_BLK gets ER (false when the function could not, or did not, reach it). */
  er?: boolean;
  faults?: number;
  status?: number;
}

const err = (
  step: number,
  subStep: number,
  errClass: number,
  buf: number | null = null,
  reaction: number = ErrReaction.CONTEXT_STOPPED,
) => ({ step, subStep, errClass, buf, reaction });
const put = (d: SdxiDescriptor, c = 1) => void rig.put(c, d);
const copy = (o: Partial<{ dst: number; src: number; len: number; akeySrc: number; akeyDst: number }> = {}) =>
  copyDescriptor({ dst: DST * P, src: SRC * P, len: 2 * P, ...o });
const patchBody = (d: SdxiDescriptor, i: number, v: number): SdxiDescriptor => {
  const body = [...d.body];
  body[i] = v;
  return { ...d, body };
};

const cases: Case[] = [
  {
    why: 'a reserved dw0 bit',
    arrange: () => put({ ...copy(), dw0Reserved: 0x40 }),
    entry: err(DESCRIPTOR, VALIDATION, ErrClass.RESERVED),
    er: true,
    status: DmaStatusCode.INVALID_OPCODE,
  },
  {
    why: 'csr, whose meaning is unverified and so not emulated',
    arrange: () => put({ ...copy(), csr: true }),
    entry: err(DESCRIPTOR, VALIDATION, ErrClass.RESERVED),
    er: true,
  },
  {
    why: 'reserved csb_ptr bits',
    arrange: () => {
      rig.put(1, copy());
      rig.setU32(rig.ring(1) + 56, rig.u32(rig.ring(1) + 56) | 4);
      return undefined;
    },
    entry: err(DESCRIPTOR, VALIDATION, ErrClass.RESERVED),
    er: false,
  },
  {
    why: 'a non-zero buffer attribute nibble',
    arrange: () => put(patchBody(copy(), 1, 0x10)),
    entry: err(DESCRIPTOR, VALIDATION, ErrClass.RESERVED),
    er: true,
  },
  {
    why: 'an unknown DmaBaseGrp subtype',
    arrange: () => put({ ...copy(), subtype: 9 }),
    entry: err(DESCRIPTOR, VALIDATION, ErrClass.OPCODE),
    er: true,
  },
  {
    why: 'AtomicGrp, which the function does not offer',
    arrange: () => put({ ...copy(), type: TYPE_ATOMIC, subtype: 1 }),
    entry: err(DESCRIPTOR, VALIDATION, ErrClass.OPCODE),
    er: true,
  },
  {
    why: 'an AdminGrp descriptor on a client context',
    arrange: () => put(cxtStopDescriptor({ first: 2, last: 2 })),
    entry: err(DESCRIPTOR, VALIDATION, ErrClass.OPCODE),
    er: true,
  },
  {
    why: 'IntrGrp on a context whose L1 entry does not enable it',
    arrange: () => {
      rig.setU32(rig.l1(3) + t.L1_OPB_ENB, r.OPB_DMAB);
      put(intrDescriptor(0), 3);
      return { c: 3 };
    },
    entry: err(DESCRIPTOR, VALIDATION, ErrClass.OPCODE),
    er: true,
  },
  {
    why: 'a write-immediate of 33 bytes',
    arrange: () => put(writeImmDescriptor({ dst: DST * P, data: new Uint8Array(33) })),
    entry: err(DESCRIPTOR, VALIDATION, ErrClass.LENGTH),
    er: true,
    status: DmaStatusCode.INVALID_LENGTH,
  },
  {
    why: 'a repeat-copy whose destination is not whole 4 KiB blocks',
    arrange: () => put(repCopyDescriptor({ dst: DST * P, src: SRC * P, len: 3 * P + 1 })),
    entry: err(DESCRIPTOR, VALIDATION, ErrClass.LENGTH),
    er: true,
  },
  {
    why: 'overlapping source and destination',
    arrange: () => put(copy({ dst: SRC * P + 100, len: P })),
    entry: err(DESCRIPTOR, VALIDATION, ErrClass.OVERLAP),
    er: true,
    status: DmaStatusCode.INVALID_ADDR,
  },
  {
    why: 'a destination that overlaps its own CST_BLK',
    arrange: () => {
      rig.spaces[0]!.map(ctxPfn(1) + 16, 1, DMA_FROM_DEVICE);
      put(copy({ dst: rig.cst(1, 0), len: 64 }));
      return undefined;
    },
    entry: err(DESCRIPTOR, VALIDATION, ErrClass.OVERLAP),
    er: true,
  },
  {
    why: 'an admin start of the admin context itself',
    arrange: () => {
      put(cxtStartDescriptor({ first: 0, last: 1 }), 0);
      return { c: 0 };
    },
    entry: err(DESCRIPTOR, VALIDATION, ErrClass.CONTEXT),
    er: true,
  },
  {
    why: 'an admin stop of contexts past CTL2.max_cxt',
    arrange: () => {
      put(cxtStopDescriptor({ first: 1, last: 64 }), 0);
      return { c: 0 };
    },
    entry: err(DESCRIPTOR, VALIDATION, ErrClass.CONTEXT),
    er: true,
  },
  {
    why: 'a normal start of a context in its error state (a restart is needed)',
    arrange: () => {
      rig.setU32(rig.sts(2), t.CXTV_ERR_FN);
      put(cxtStartDescriptor({ first: 2, last: 2 }), 0);
      return { c: 0 };
    },
    entry: err(DESCRIPTOR, VALIDATION, ErrClass.CONTEXT),
    er: true,
  },
  {
    why: 'a CST_BLK the function domain does not map',
    arrange: () => void rig.put(1, copy(), 1500 * P),
    entry: err(CST_BLK, TRANSLATION, ErrClass.ADDRESS),
    faults: 1,
  },
  {
    why: 'a CST_BLK past the end of RAM',
    arrange: () => void rig.put(1, copy(), BEYOND * P),
    entry: err(CST_BLK, ACCESS, ErrClass.ADDRESS),
  },
  {
    why: 'an AKey index past the AKey table',
    arrange: () => put(copy({ akeySrc: 300 })),
    entry: err(AKEY, VALIDATION, ErrClass.ADDRESS, 0),
    er: true,
    status: DmaStatusCode.INVALID_SRC_ADDR,
  },
  {
    why: 'an AKey entry that is not valid',
    arrange: () => put(copy({ akeyDst: 5 })),
    entry: err(AKEY, VALIDATION, ErrClass.ADDRESS, 1),
    er: true,
    status: DmaStatusCode.INVALID_DST_ADDR,
  },
  {
    why: 'an AKey naming an address space (PASID) the function does not have',
    arrange: () => {
      rig.setAkey(1, 2, { pasid: 9 });
      put(copy({ akeySrc: 2 }));
      return undefined;
    },
    entry: err(AKEY, TRANSLATION, ErrClass.ADDRESS, 0),
    er: true,
  },
  {
    why: "an AKey naming another function's memory (needs an RKey)",
    arrange: () => {
      rig.setAkey(1, 3, { targetSfunc: 7 });
      put(copy({ akeyDst: 3 }));
      return undefined;
    },
    entry: err(RKEY, VALIDATION, ErrClass.ADDRESS, 1),
    er: true,
  },
  {
    why: "a source outside the context's address space",
    arrange: () => put(copy({ src: 1000 * P })),
    entry: err(DATA_BUFFER, TRANSLATION, ErrClass.ADDRESS, 0),
    er: true,
    faults: 1,
    status: DmaStatusCode.INVALID_SRC_ADDR,
  },
  {
    why: 'a destination the address space maps only for reading',
    arrange: () => put(copy({ dst: RO * P, len: P })),
    entry: err(DATA_BUFFER, TRANSLATION, ErrClass.ADDRESS, 1),
    er: true,
    faults: 1,
    status: DmaStatusCode.INVALID_DST_ADDR,
  },
  {
    why: "a destination in another context's address space (isolation)",
    arrange: () => put(copy({ dst: OTHER * P, len: P })),
    entry: err(DATA_BUFFER, TRANSLATION, ErrClass.ADDRESS, 1),
    er: true,
    faults: 1,
  },
  {
    why: 'a source past the end of RAM',
    arrange: () => put(copy({ src: BEYOND * P })),
    entry: err(DATA_BUFFER, ACCESS, ErrClass.ADDRESS, 0),
    er: true,
    status: DmaStatusCode.BUS_READ_ERROR,
  },
  {
    why: 'a write-immediate past the end of RAM',
    arrange: () => put(writeImmDescriptor({ dst: BEYOND * P, data: new Uint8Array(8) })),
    entry: err(DATA_BUFFER, ACCESS, ErrClass.ADDRESS, 1),
    er: true,
    status: DmaStatusCode.BUS_WRITE_ERROR,
  },
  {
    why: 'a ring the function domain does not map (descriptor fetch)',
    arrange: () => {
      put(copy());
      rig.fnDomain.unmap(ctxPfn(1), 16);
      return undefined;
    },
    entry: err(DESCRIPTOR, TRANSLATION, ErrClass.ADDRESS),
    er: false,
    faults: 1,
    status: DmaStatusCode.DESCRIPTOR_READ_ERROR,
  },
  {
    why: 'a write index behind the read index',
    arrange: () => {
      rig.setU64(rig.sts(1) + 8, 5);
      rig.setU64(rig.wi(1), 2);
      return { idx: 5, bell: () => rig.mmio.doorbell(1, 2) };
    },
    entry: err(WRITE_INDEX, VALIDATION, ErrClass.INDEX),
  },
  {
    why: 'a write index more than a ring ahead of the read index',
    arrange: () => {
      rig.setU64(rig.wi(1), 1025);
      return { bell: () => rig.mmio.doorbell(1, 1025) };
    },
    entry: err(WRITE_INDEX, VALIDATION, ErrClass.INDEX),
  },
  {
    why: 'a ring size that is not a power of two of at least 1024',
    arrange: () => {
      rig.setU32(rig.ctl(1) + t.CTL_DS_RING_SZ, 1000);
      put(copy());
      return { idx: null };
    },
    entry: err(CXT_CTL, VALIDATION, ErrClass.LENGTH),
  },
  {
    why: 'a CXT_CTL the function domain does not map',
    arrange: () => {
      rig.setU64(rig.l1(1) + t.L1_CXT_CTL_PTR, 1500 * P + t.L1_VL);
      put(copy());
      return { idx: null };
    },
    entry: err(CXT_CTL, TRANSLATION, ErrClass.ADDRESS, null, ErrReaction.INFORMATIVE),
    faults: 1,
  },
  {
    why: 'a doorbell for a context with no L1 entry',
    arrange: () => {
      return { c: 9, idx: null, bell: () => rig.mmio.doorbell(9, 0) };
    },
    entry: err(L1_ENTRY, VALIDATION, ErrClass.CONTEXT, null, ErrReaction.INFORMATIVE),
  },
  {
    why: 'an L2 table past the end of RAM (the function stops)',
    arrange: () => {
      rig.write64(r.MMIO_CXT_L2, BEYOND * P);
      put(copy());
      return { idx: null };
    },
    entry: err(L2_ENTRY, ACCESS, ErrClass.ADDRESS, null, ErrReaction.FUNCTION_STOPPED),
  },
];

describe('SDXI errors: a record per failure, the context stopped, nothing else written anywhere', () => {
  it('covers every step and sub-step the function reports for a context', () => {
    const seen = new Set(cases.map((c) => `${errStepName(c.entry.step)}/${c.entry.subStep}`));
    for (const want of [
      'DESCRIPTOR/1',
      'DESCRIPTOR/3',
      'CST_BLK/1',
      'CST_BLK/2',
      'AKEY/1',
      'AKEY/3',
      'RKEY/3',
      'DATA_BUFFER/1',
      'DATA_BUFFER/2',
      'WRITE_INDEX/3',
      'CXT_CTL/1',
      'CXT_CTL/3',
      'L1_ENTRY/3',
      'L2_ENTRY/2',
    ])
      expect(seen).toContain(want);
  });

  it.each(cases.map((c) => [c.why, c] as const))('%s', async (_why, c) => {
    const got = c.arrange();
    const cxt = got?.c ?? 1;
    const idx = got?.idx === undefined ? 0 : got.idx;
    if (!got?.bell) rig.setU64(rig.wi(cxt), rig.write[cxt]!); // Write_Index before the snapshot
    // What the function may write: the next error-log record, the context's status if it stops
    // it, the failing descriptor's completion block if it reports ER there. Nothing else.
    const except: [number, number][] = [[LOG_PFN * P + (rig.read(r.MMIO_ERR_WRT) % 64) * 64, 64]];
    if (c.entry.reaction === ErrReaction.CONTEXT_STOPPED) except.push([rig.sts(cxt), 16]);
    if (c.er) except.push([rig.cst(cxt, idx ?? 0), 32]);
    const before = rig.checksum(except);
    const faults = rig.spaces[0]!.faults + rig.fnDomain.faults;
    (got?.bell ?? (() => rig.mmio.doorbell(cxt, rig.write[cxt]!)))();
    await rig.idle();
    const log = rig.drainLog();
    const entry = {
      cxt: c.entry.cxt === undefined ? cxt : c.entry.cxt,
      dscIndex: c.entry.dscIndex === undefined ? (idx === null ? null : BigInt(idx)) : c.entry.dscIndex,
      ...c.entry,
    };
    expect(log).toEqual([entry]);
    if (entry.reaction === ErrReaction.CONTEXT_STOPPED) {
      expect(rig.state(cxt)).toBe(t.CXTV_ERR_FN);
      if (idx !== null) expect(rig.readIndex(cxt)).toBe(BigInt(idx));
    }
    if (entry.reaction === ErrReaction.FUNCTION_STOPPED) expect(rig.read(r.MMIO_STS0)).toBe(r.GSV_ERROR);
    if (c.er !== undefined) {
      const blk = rig.cst(cxt, idx ?? 0);
      expect(rig.u32(blk + 8) & t.CST_ER ? 'ER' : 'no ER').toBe(c.er ? 'ER' : 'no ER');
      expect(rig.u64(blk)).toBe(c.er ? 0n : 1n);
    }
    expect(rig.spaces[0]!.faults + rig.fnDomain.faults - faults).toBe(c.faults ?? 0);
    if (c.status !== undefined) expect(statusOfErrlog(entry)).toBe(c.status);
    expect(rig.checksum(except)).toBe(before);
  });

  it('an activation that enables an operation group CAP1 does not offer puts the function in error', async () => {
    const cap1 = rig.read(r.MMIO_CAP1);
    const ctl2 = (cap1 % 2 ** 32) + (r.opbOf(cap1) | r.OPB_ATOMIC) * 2 ** 32;
    await expect(rig.activate({ ctl2 })).rejects.toThrow(/fn_gsv went to 5/);
    expect(rig.drainLog()).toEqual([
      {
        step: ErrStep.INTERNAL,
        subStep: VALIDATION,
        reaction: 2,
        cxt: null,
        dscIndex: null,
        buf: null,
        errClass: ErrClass.CONTEXT,
      },
    ]);
    await rig.activate(); // reset clears the error state
    expect(rig.read(r.MMIO_STS0)).toBe(r.GSV_ACTIVE);
  });
});
