import type { DmaDirection, IommuView, RamView } from '@pagemig/dmaengine/device';
import { ErrSubStep } from './errlog.js';

/**
 * The function's loads and stores to host memory by bus (= physical) address. Structures it reads
 * are naturally aligned, so none crosses a section; words the driver polls (CXT_STS, CST_BLK) are
 * written with Atomics.
 */
export class Phys {
  private readonly s32: Int32Array[];
  private readonly s64: BigInt64Array[];
  private readonly sb: number;

  constructor(readonly ram: RamView) {
    this.s32 = ram.words;
    this.s64 = ram.words.map((w) => new BigInt64Array(w.buffer as SharedArrayBuffer));
    this.sb = ram.sectionBytes;
  }

  /**
   * Can the function reach [addr, addr + len) for `dir` through `space`? 0 if so, else the error
   * log's sub-step: ACCESS (no memory there) or TRANSLATION (not mapped; the IOMMU counts a fault).
   */
  reach(space: IommuView, addr: number, len: number, dir: DmaDirection): number {
    if (!Number.isSafeInteger(addr) || !this.ram.contains(addr, len)) return ErrSubStep.ACCESS;
    return space.allows(addr, len, dir) ? 0 : ErrSubStep.TRANSLATION;
  }

  load32(addr: number): number {
    const s = Math.floor(addr / this.sb);
    return Atomics.load(this.s32[s]!, (addr - s * this.sb) >>> 2);
  }

  store32(addr: number, v: number): void {
    const s = Math.floor(addr / this.sb);
    Atomics.store(this.s32[s]!, (addr - s * this.sb) >>> 2, v);
  }

  or32(addr: number, v: number): void {
    const s = Math.floor(addr / this.sb);
    Atomics.or(this.s32[s]!, (addr - s * this.sb) >>> 2, v);
  }

  and32(addr: number, v: number): void {
    const s = Math.floor(addr / this.sb);
    Atomics.and(this.s32[s]!, (addr - s * this.sb) >>> 2, v);
  }

  /** An unsigned 64-bit field as a number (exact below 2^53). */
  load64(addr: number): number {
    return Number(this.load64n(addr));
  }

  load64n(addr: number): bigint {
    const s = Math.floor(addr / this.sb);
    return BigInt.asUintN(64, Atomics.load(this.s64[s]!, (addr - s * this.sb) >>> 3));
  }

  store64n(addr: number, v: bigint): void {
    const s = Math.floor(addr / this.sb);
    Atomics.store(this.s64[s]!, (addr - s * this.sb) >>> 3, BigInt.asIntN(64, v));
  }

  /** Decrements a CST_BLK signal and wakes whoever waits on it (Atomics.wait/waitAsync). */
  signal(addr: number): void {
    const s = Math.floor(addr / this.sb);
    const i = (addr - s * this.sb) >>> 3;
    Atomics.sub(this.s64[s]!, i, 1n);
    Atomics.notify(this.s64[s]!, i);
  }

  /** Copies 16 dwords at `addr` into `out[at..]`. */
  fetch16(addr: number, out: Int32Array, at: number): void {
    const s = Math.floor(addr / this.sb);
    const w = this.s32[s]!;
    const i = (addr - s * this.sb) >>> 2;
    for (let k = 0; k < 16; k++) out[at + k] = w[i + k]!;
  }
}
