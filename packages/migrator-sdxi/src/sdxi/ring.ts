/**
 * A context's memory as the driver allocates it (one coherent block in emulated RAM) and the
 * driver's side of the ring protocol: 64-bit indexes that never wrap, reservation by the capacity
 * rule, descriptors published with vl last, the Write_Index and the doorbell.
 *
 * Block layout (32 pages): ring (RING_ENTRIES × 64 B) at page 0, one CST_BLK per ring slot (× 32 B)
 * at page 16, CXT_CTL / CXT_STS / Write_Index on page 24, the AKey table on page 25.
 */
import type { MigratorContext } from '@pagemig/core';
import { DMA_BIDIRECTIONAL, DMA_TO_DEVICE, type IommuDomain } from '@pagemig/dmaengine';
import { DESC_WORDS, DW0_VL, encodeDescriptor, publish, type SdxiDescriptor } from './descriptor.js';
import type { Mmio } from './regs.js';
import {
  type AkeyEntry,
  CST_BLK_BYTES,
  CST_ER,
  CST_FLAGS,
  CST_SIGNAL,
  CTL_CXT_STS_PTR,
  CTL_DS_RING_PTR,
  CTL_DS_RING_SZ,
  CTL_RING_VL,
  CTL_WRITE_INDEX_PTR,
  STS_READ_INDEX,
  STS_STATE,
  writeAkey,
} from './tables.js';

export const RING_ENTRIES = 1024;
export const CONTEXT_BLOCK_PAGES = 32;
const PAGE = 4096;
const CST_PAGE = 16;
const CTL_PAGE = 24;
const AKEY_PAGE = 25;
const STS_OFF = 64;
const WI_OFF = 80;

export class ContextRing {
  readonly pfn: number;
  readonly ringAddr: number;
  readonly cstAddr: number;
  readonly ctlAddr: number;
  readonly stsAddr: number;
  readonly writeIndexAddr: number;
  readonly akeyAddr: number;
  readonly entries = RING_ENTRIES;
  /** The ring's dwords. */
  readonly ring: Int32Array;
  private readonly cst64: BigInt64Array;
  private readonly cst32: Int32Array;
  private readonly ctl32: Int32Array;
  private readonly ctl64: BigInt64Array;
  readonly akeys: Int32Array;
  /** Software's Write_Index: the next index to fill. */
  write = 0;

  constructor(
    private readonly ctx: MigratorContext,
    private readonly domain: IommuDomain,
    readonly id: number,
  ) {
    // dma_alloc_coherent: kernel memory the function reaches through its own domain.
    this.pfn = ctx.allocCoherent(CONTEXT_BLOCK_PAGES);
    const base = this.pfn * PAGE;
    this.ringAddr = base;
    this.cstAddr = base + CST_PAGE * PAGE;
    this.ctlAddr = base + CTL_PAGE * PAGE;
    this.stsAddr = this.ctlAddr + STS_OFF;
    this.writeIndexAddr = this.ctlAddr + WI_OFF;
    this.akeyAddr = base + AKEY_PAGE * PAGE;
    domain.map(this.pfn, AKEY_PAGE, DMA_BIDIRECTIONAL);
    domain.map(this.pfn + AKEY_PAGE, 1, DMA_TO_DEVICE);
    const shift = ctx.sectionPfnShift;
    const section = ctx.sections[this.pfn >>> shift]!;
    const off = (this.pfn & ((1 << shift) - 1)) * PAGE;
    this.ring = new Int32Array(section, off, RING_ENTRIES * DESC_WORDS);
    this.cst64 = new BigInt64Array(section, off + CST_PAGE * PAGE, (RING_ENTRIES * CST_BLK_BYTES) / 8);
    this.cst32 = new Int32Array(section, off + CST_PAGE * PAGE, (RING_ENTRIES * CST_BLK_BYTES) / 4);
    this.ctl32 = new Int32Array(section, off + CTL_PAGE * PAGE, 32);
    this.ctl64 = new BigInt64Array(section, off + CTL_PAGE * PAGE, 16);
    this.akeys = new Int32Array(section, off + AKEY_PAGE * PAGE, PAGE / 4);
    // CXT_CTL: everything, then the ring pointer with vl (the allocation is zeroed: stopped, R = W = 0).
    this.ctl32[CTL_DS_RING_SZ >>> 2] = RING_ENTRIES;
    this.ctl64[CTL_CXT_STS_PTR >>> 3] = BigInt(this.stsAddr);
    this.ctl64[CTL_WRITE_INDEX_PTR >>> 3] = BigInt(this.writeIndexAddr);
    Atomics.store(this.ctl64, CTL_DS_RING_PTR >>> 3, BigInt(this.ringAddr + CTL_RING_VL));
  }

  /** Installs AKey entry `index` of this context. */
  setAkey(index: number, e: AkeyEntry): void {
    writeAkey(this.akeys, index, e);
  }

  /** CXT_STS state (bits 3:0). */
  state(): number {
    return Atomics.load(this.ctl32, (STS_OFF + STS_STATE) >>> 2) & 0xf;
  }

  /** Software writes the state only while the function does not run the context (bring-up). */
  setState(state: number): void {
    const i = (STS_OFF + STS_STATE) >>> 2;
    Atomics.store(this.ctl32, i, (Atomics.load(this.ctl32, i) & ~0xf) | state);
  }

  readIndex(): number {
    return Number(Atomics.load(this.ctl64, (STS_OFF + STS_READ_INDEX) >>> 3));
  }

  /** Only while the context is stopped: where it resumes. */
  setReadIndex(v: number): void {
    Atomics.store(this.ctl64, (STS_OFF + STS_READ_INDEX) >>> 3, BigInt(v));
  }

  /**
   * Reserves `k` slots (ring.c's capacity rule: (W + k) − R ≤ N): the first index, or -1 when the
   * ring is too full. R > W is a corrupted state.
   */
  reserve(k: number): number {
    const r = this.readIndex();
    if (r > this.write)
      throw new Error(`sdxi context ${this.id}: read index ${r} is past write index ${this.write}`);
    if (k < 1 || k > this.entries || this.write + k - r > this.entries) return -1;
    const first = this.write;
    this.write += k;
    return first;
  }

  /** Free slots. */
  room(): number {
    return this.entries - (this.write - this.readIndex());
  }

  /** Dword offset of index `i`'s slot in `ring`. */
  at(i: number): number {
    return (i & (this.entries - 1)) * DESC_WORDS;
  }

  cstOf(i: number): number {
    return this.cstAddr + (i & (this.entries - 1)) * CST_BLK_BYTES;
  }

  /** Arms index `i`'s CST_BLK: signal 1, no error. */
  arm(i: number): void {
    const s = i & (this.entries - 1);
    this.cst32[(s * CST_BLK_BYTES + CST_FLAGS) >>> 2] = 0;
    Atomics.store(this.cst64, (s * CST_BLK_BYTES + CST_SIGNAL) >>> 3, 1n);
  }

  /** 0 when index `i` completed, else what is left of its signal. */
  pending(i: number): bigint {
    return Atomics.load(this.cst64, ((i & (this.entries - 1)) * CST_BLK_BYTES + CST_SIGNAL) >>> 3);
  }

  failed(i: number): boolean {
    return (
      (Atomics.load(this.cst32, ((i & (this.entries - 1)) * CST_BLK_BYTES + CST_FLAGS) >>> 2) & CST_ER) !== 0
    );
  }

  /** The CST signal word of index `i` and its index, for Atomics.wait(Async). */
  signalWord(i: number): [BigInt64Array, number] {
    return [this.cst64, ((i & (this.entries - 1)) * CST_BLK_BYTES + CST_SIGNAL) >>> 3];
  }

  /** Writes `d` (with a CST_BLK of its own, armed) at index `i`, vl last. */
  put(i: number, d: SdxiDescriptor): void {
    this.arm(i);
    encodeDescriptor({ ...d, valid: false, csbPtr: BigInt(this.cstOf(i)) }, this.ring, this.at(i));
    publish(this.ring, this.at(i), this.ring[this.at(i)]!);
  }

  /** Clears vl of indexes [from, to): skipped slots must not run when the ring comes round. */
  invalidate(from: number, to: number): void {
    for (let i = from; i < to; i++) Atomics.and(this.ring, this.at(i), ~DW0_VL);
  }

  /** Write_Index := W in memory, then the doorbell with it. */
  ringDoorbell(mmio: Mmio): void {
    Atomics.store(this.ctl64, WI_OFF >>> 3, BigInt(this.write));
    mmio.doorbell(this.id, this.write);
  }

  /** Frees the block (the function must no longer run the context). */
  free(): void {
    this.domain.unmap(this.pfn, AKEY_PAGE + 1);
    this.ctx.freeCoherent(this.pfn);
  }
}
