import { createHash } from 'node:crypto';
import { createMachine, type Machine } from '@pagemig/core';
import { DMA_BIDIRECTIONAL, DMA_FROM_DEVICE, DMA_TO_DEVICE, IommuDomain } from '@pagemig/dmaengine';
import {
  decodeErrlog,
  type ErrlogEntry,
  encodeDescriptor,
  type LaunchedFunction,
  launchFunction,
  regs,
  type SdxiDescriptor,
  tables,
} from '../dist/index.js';

const r = regs;
const t = tables;
export const P = 4096;
/** Fixed places of the hand-built structures (pfns): L2, L1, error log, then 32 pages per context. */
export const L2_PFN = 1;
export const L1_PFN = 2;
export const LOG_PFN = 3;
export const CONTEXTS = 4; // admin + 3 clients
export const ctxPfn = (c: number) => 32 * (c + 1);
export const ENTRIES = 1024;
/** Pages the function may write besides data buffers (excluded from data checksums). */
export const isControlPage = (pfn: number) =>
  (pfn >= L2_PFN && pfn <= LOG_PFN) || (pfn >= ctxPfn(0) && pfn < ctxPfn(CONTEXTS));

/** A machine's RAM with one bare SDXI function on it, and a test acting as its driver by hand. */
export class Rig {
  readonly w32: Int32Array;
  readonly w64: BigInt64Array;
  /** Software's write index per context. */
  readonly write = new Array<number>(CONTEXTS).fill(0);

  private constructor(
    readonly m: Machine,
    readonly fnDomain: IommuDomain,
    /** Address spaces by PASID: 1..3 belong to contexts 1..3. */
    readonly spaces: IommuDomain[],
    readonly dev: LaunchedFunction,
  ) {
    this.w32 = new Int32Array(m.kernel.mem.sections[0]!);
    this.w64 = new BigInt64Array(m.kernel.mem.sections[0]!);
  }

  static async create(memory = '8MiB', spinNs = 20_000): Promise<Rig> {
    const m = await createMachine({ nodes: [{ memory }], sectionSize: '4MiB', prefault: false });
    const k = m.kernel;
    const fnDomain = new IommuDomain(k.nrPages);
    const spaces = [1, 2, 3].map(() => new IommuDomain(k.nrPages));
    const dev = launchFunction({
      name: 'sdxi-test',
      sections: k.mem.sections,
      sectionPfnShift: k.mem.pagesPerSectionShift,
      nrPages: k.nrPages,
      iommu: fnDomain,
      addressSpaces: [null, ...spaces],
      spinNs,
    });
    await dev.ready;
    return new Rig(m, fnDomain, spaces, dev);
  }

  get mmio() {
    return this.dev.mmio;
  }
  read(off: number): number {
    return this.dev.mmio.read(off);
  }
  write64(off: number, v: number | bigint): void {
    this.dev.mmio.write(off, v);
  }
  bytes(pfn: number, nr = 1): Uint8Array {
    return this.m.kernel.mem.view(pfn, nr);
  }
  u32(addr: number): number {
    return Atomics.load(this.w32, addr >>> 2) >>> 0;
  }
  setU32(addr: number, v: number): void {
    Atomics.store(this.w32, addr >>> 2, v | 0);
  }
  u64(addr: number): bigint {
    return BigInt.asUintN(64, Atomics.load(this.w64, addr >>> 3));
  }
  setU64(addr: number, v: number | bigint): void {
    Atomics.store(this.w64, addr >>> 3, BigInt.asIntN(64, BigInt(v)));
  }

  // Where context c's structures live.
  ring(c: number) {
    return ctxPfn(c) * P;
  }
  cst(c: number, i: number) {
    return ctxPfn(c) * P + 16 * P + (i % ENTRIES) * 32;
  }
  ctl(c: number) {
    return ctxPfn(c) * P + 24 * P;
  }
  sts(c: number) {
    return this.ctl(c) + 64;
  }
  wi(c: number) {
    return this.ctl(c) + 80;
  }
  akeys(c: number) {
    return ctxPfn(c) * P + 25 * P;
  }
  l1(c: number) {
    return L1_PFN * P + c * 32;
  }

  state(c: number): number {
    return this.u32(this.sts(c)) & 0xf;
  }
  readIndex(c: number): bigint {
    return this.u64(this.sts(c) + 8);
  }
  setAkey(c: number, i: number, e: Partial<tables.AkeyEntry>): void {
    const w = new Int32Array(this.m.kernel.mem.sections[0]!, this.akeys(c), 1024);
    t.writeAkey(w, i, { valid: true, interrupt: true, vector: c, targetSfunc: 0, pasid: c, ...e });
  }

  /**
   * Function activation by hand: reset, CTL2 from CAP1, fresh zeroed tables, the error log, every
   * context (admin + 3 clients) described in L1 and set running by software, then ACTIVE.
   */
  async activate(opts: { ctl2?: number; clientsRunning?: boolean } = {}): Promise<void> {
    this.write64(r.MMIO_CTL0, r.GSR_RESET);
    await this.waitGsv(r.GSV_STOP);
    this.fnDomain.unmapAll();
    for (const s of this.spaces) s.unmapAll();
    this.bytes(L2_PFN, 3).fill(0);
    this.bytes(ctxPfn(0), 32 * CONTEXTS).fill(0);
    const cap1 = this.read(r.MMIO_CAP1);
    this.write64(r.MMIO_CTL2, opts.ctl2 ?? ((cap1 % 2 ** 32) & 0xfffff00f) + r.opbOf(cap1) * 2 ** 32);
    this.fnDomain.map(L2_PFN, 2, DMA_TO_DEVICE);
    this.fnDomain.map(LOG_PFN, 1, DMA_FROM_DEVICE);
    this.write64(r.MMIO_CXT_L2, L2_PFN * P);
    this.setU64(L2_PFN * P, L1_PFN * P + t.L2_VL);
    this.write64(r.MMIO_ERR_CFG, 0);
    this.write64(r.MMIO_ERR_STS, 0xb);
    this.write64(r.MMIO_ERR_CTL, r.ERR_CTL_INTR);
    this.write64(r.MMIO_ERR_RD, this.read(r.MMIO_ERR_WRT));
    this.write64(r.MMIO_ERR_CFG, LOG_PFN * P + (1 << 1) + r.ERR_CFG_EN);
    for (let c = 0; c < CONTEXTS; c++) {
      this.fnDomain.map(ctxPfn(c), 25, DMA_BIDIRECTIONAL);
      this.fnDomain.map(ctxPfn(c) + 25, 1, DMA_TO_DEVICE);
      this.setU32(this.ctl(c) + t.CTL_DS_RING_SZ, ENTRIES);
      this.setU64(this.ctl(c) + t.CTL_CXT_STS_PTR, this.sts(c));
      this.setU64(this.ctl(c) + t.CTL_WRITE_INDEX_PTR, this.wi(c));
      this.setU64(this.ctl(c) + t.CTL_DS_RING_PTR, this.ring(c) + t.CTL_RING_VL);
      this.setAkey(c, 0, c === 0 ? { interrupt: false, pasid: 0 } : {});
      this.setU64(this.l1(c) + t.L1_AKEY_PTR, this.akeys(c));
      const opb = c === 0 ? r.OPB_ADMIN | r.OPB_DMAB | r.OPB_INTR : r.OPB_DMAB | r.OPB_INTR;
      this.setU32(this.l1(c) + t.L1_OPB_ENB, opb);
      this.setU64(this.l1(c) + t.L1_CXT_CTL_PTR, this.ctl(c) + t.L1_VL);
      this.write[c] = 0;
      if (c === 0 || (opts.clientsRunning ?? true)) this.setU32(this.sts(c), t.CXTV_RUN);
    }
    this.write64(r.MMIO_CTL0, r.GSR_ACTIVE);
    await this.waitGsv(r.GSV_ACTIVE);
  }

  async waitGsv(want: number, timeoutMs = 2000): Promise<void> {
    const t0 = performance.now();
    while ((this.read(r.MMIO_STS0) & 7) !== want) {
      if (want === r.GSV_ACTIVE && (this.read(r.MMIO_STS0) & 7) === r.GSV_ERROR)
        throw new Error('fn_gsv went to 5 (error)');
      if (performance.now() - t0 > timeoutMs) throw new Error(`fn_gsv stayed ${this.read(r.MMIO_STS0) & 7}`);
      await new Promise((res) => setImmediate(res));
    }
  }

  /** Writes `d` at context c's next index (its own CST_BLK unless `csb` says otherwise); returns the index. */
  put(c: number, d: SdxiDescriptor, csb: number | null | 'own' = 'own'): number {
    const i = this.write[c]!++;
    this.putAt(c, i, d, csb);
    return i;
  }

  putAt(c: number, i: number, d: SdxiDescriptor, csb: number | null | 'own' = 'own'): void {
    const at = csb === 'own' ? this.cst(c, i) : csb;
    if (at !== null && at === this.cst(c, i)) {
      this.setU64(at, 1);
      this.setU32(at + 8, 0);
    }
    const words = new Int32Array(this.m.kernel.mem.sections[0]!, this.ring(c) + (i % ENTRIES) * 64, 16);
    encodeDescriptor({ ...d, csbPtr: at === null ? 1n : BigInt(at) }, words);
  }

  /** Write_Index := software's, then the doorbell. */
  doorbell(c: number): void {
    this.setU64(this.wi(c), this.write[c]!);
    this.mmio.doorbell(c, this.write[c]!);
  }

  /** Resolves when the function has acted on every write and is idle; throws if it hangs. */
  async idle(timeoutMs = 3000): Promise<void> {
    const i32 = this.mmio.i32;
    const t0 = performance.now();
    for (;;) {
      const seq = Atomics.load(i32, r.EMU_MMIO_SEQ >>> 2);
      if (Atomics.load(i32, r.EMU_SEEN_SEQ >>> 2) === seq) return;
      if (performance.now() - t0 > timeoutMs)
        throw new Error(`the function did not go idle within ${timeoutMs} ms`);
      await new Promise((res) => setImmediate(res));
    }
  }

  /** Consumes the error log the driver's way; returns the new records. */
  drainLog(): ErrlogEntry[] {
    const out: ErrlogEntry[] = [];
    let rd = this.read(r.MMIO_ERR_RD);
    this.write64(r.MMIO_ERR_STS, this.read(r.MMIO_ERR_STS));
    const wrt = this.read(r.MMIO_ERR_WRT);
    const log = new Int32Array(this.m.kernel.mem.sections[0]!, LOG_PFN * P, 1024);
    for (; rd < wrt; rd++) {
      const e = decodeErrlog(log, (rd % 64) * 16);
      if (e) out.push(e);
    }
    this.write64(r.MMIO_ERR_RD, rd);
    return out;
  }

  msis(vector: number): number {
    return Atomics.load(this.mmio.i32, (r.EMU_MSI_VECTORS >>> 2) + vector);
  }

  /** SHA-256 of the machine's whole RAM, with the byte ranges `except` ([address, length]) zeroed. */
  checksum(except: readonly [number, number][] = []): string {
    const h = createHash('sha256');
    const sections = this.m.kernel.mem.sections;
    const size = sections[0]!.byteLength;
    sections.forEach((sec, i) => {
      const copy = Buffer.from(new Uint8Array(sec));
      for (const [addr, len] of except) {
        const lo = Math.max(addr - i * size, 0);
        const hi = Math.min(addr + len - i * size, size);
        if (lo < hi) copy.fill(0, lo, hi);
      }
      h.update(copy);
    });
    return h.digest('hex');
  }

  async close(): Promise<void> {
    this.mmio.write(r.EMU_EXIT, 1);
    await this.dev.worker.terminate();
    await this.m.close();
  }
}
