/**
 * The SDXI driver for one function (device.c, admin.c, error.c of the Linux driver): function
 * activation, the context tables, the admin context, client contexts started through it, the
 * error log and its interrupt, and removal. It talks to the function only through its registers
 * and the structures it allocated in emulated RAM.
 */
import type { MigratorContext } from '@pagemig/core';
import {
  DMA_FROM_DEVICE,
  DMA_TO_DEVICE,
  type InterruptLine,
  IommuDomain,
  type IrqSource,
  type ResolvedTiming,
  setDeviceRun,
} from '@pagemig/dmaengine';
import { AdminQueue } from './admin.js';
import { type ContextHost, DATA_AKEY, SdxiContext } from './channel.js';
import { cxtStartDescriptor } from './descriptor.js';
import { decodeErrlog, ERRLOG_ENT_WORDS, ERRLOG_ENTRIES_PER_UNIT, type ErrlogEntry } from './errlog.js';
import { type LaunchedFunction, launchFunction } from './launch.js';
import {
  CTL0_GSR_MASK,
  doorbellStride,
  EMU_BW_MBPS,
  EMU_BYTES,
  EMU_COPY_NS,
  EMU_DESCS,
  EMU_ERRORS,
  EMU_EXIT,
  EMU_LATENCY_NS,
  EMU_SLEEPING,
  EMU_SLEEPS,
  EMU_WORDS,
  ERR_CFG_EN,
  ERR_CTL_INTR,
  ERR_STS_ERR,
  ERR_STS_OVF,
  ERR_STS_STS,
  GSR_ACTIVE,
  GSR_RESET,
  GSV_ACTIVE,
  GSV_ERROR,
  GSV_STOP,
  MMIO_CAP0,
  MMIO_CAP1,
  MMIO_CTL0,
  MMIO_CTL2,
  MMIO_CXT_L2,
  MMIO_ERR_CFG,
  MMIO_ERR_CTL,
  MMIO_ERR_RD,
  MMIO_ERR_STS,
  MMIO_ERR_WRT,
  MMIO_STS0,
  MMIO_VERSION,
  type Mmio,
  maxCxtOf,
  maxRingEntries,
  OPB_ADMIN,
  OPB_DMAB,
  OPB_INTR,
  opbOf,
  SDXI_VERSION_MAJOR,
} from './regs.js';
import { ContextRing, RING_ENTRIES } from './ring.js';
import {
  CXTV_RUN,
  L1_CXT_CTL_PTR,
  L1_ENT_BYTES,
  L1_KA,
  L1_MISC0,
  L1_OPB_ENB,
  L1_VL,
  L2_VL,
} from './tables.js';

export interface SdxiFunctionOptions {
  /** Function index: its name (`sdxi<index>`) and sfunc id. */
  index: number;
  ctx: MigratorContext;
  /** Client contexts (1..n); context 0 is the admin context. */
  contexts: number;
  /** The interrupt line every MSI of the function goes to (its dispatcher runs on the engine's thread). */
  line: InterruptLine;
  /** The function's timing profile, shared by its contexts (default: host speed). */
  timing?: ResolvedTiming;
  /** Idle spin of the function thread before it sleeps (ns). */
  deviceSpinNs: number;
  /** How long the function polls after each batch while a migration run goes (ns). Default 0. */
  runSpinNs?: number;
}

type FunctionState = 'down' | 'up' | 'dead' | 'removed';
const PAGE = 4096;
const STATE_TIMEOUT_MS = 1000;
/** Error-log records kept for `errorLog()`. */
const LOG_HISTORY = 256;

/** Counters the function keeps in its emulator block. */
export interface SdxiDeviceCounters {
  descriptors: number;
  errors: number;
  bytes: number;
  /** Time the function spent moving bytes, in seconds. */
  copySeconds: number;
  /** Times the function thread went to sleep; each costs the next doorbell a thread wake-up. */
  sleeps: number;
}

export class SdxiFunction implements ContextHost, IrqSource {
  readonly name: string;
  /** The function's own domain (tables, rings, completion blocks, error log). */
  readonly iommu: IommuDomain;
  readonly contexts: SdxiContext[] = [];
  state: FunctionState = 'down';
  mmio!: Mmio;
  admin!: AdminQueue;
  private dev: LaunchedFunction | null = null;
  private refs = 0;
  private readonly spaces: IommuDomain[];
  private readonly pages: number[] = [];
  private rings: ContextRing[] = [];
  private logWords: Int32Array | null = null;
  private logEntries = 0;
  private readonly pendingErrors = new Map<number, ErrlogEntry[]>();
  private readonly history: ErrlogEntry[] = [];
  /** Each client context's track on the machine's timeline (by context id; -1: none). */
  private readonly tracks: number[] = [-1];

  constructor(private readonly o: SdxiFunctionOptions) {
    this.name = `sdxi${o.index}`;
    const tl = o.ctx.timeline;
    for (let id = 1; id <= o.contexts; id++)
      this.tracks.push(tl ? tl.track(`${this.name}c${id}chan0`, 'sdxi', 'dma') : -1);
    this.iommu = new IommuDomain(o.ctx.nrPages);
    // One address space per client context (PASID = context id), so contexts cannot reach each other.
    this.spaces = Array.from({ length: o.contexts }, () => new IommuDomain(o.ctx.nrPages));
    o.line.register(this);
  }

  get line(): InterruptLine {
    return this.o.line;
  }

  get up(): boolean {
    return this.state === 'up';
  }

  warn(message: string): void {
    this.o.ctx.logger.warn(message);
  }

  /** Context `id`'s track on the machine's timeline, if any. */
  trackOf(id: number): number | undefined {
    const t = this.tracks[id];
    return t === undefined || t < 0 ? undefined : t;
  }

  /** Starts the function thread, activates the function and starts its client contexts. */
  async start(): Promise<void> {
    const ctx = this.o.ctx;
    const dev = launchFunction({
      name: this.name,
      sfunc: this.o.index,
      sections: ctx.sections,
      sectionPfnShift: ctx.sectionPfnShift,
      nrPages: ctx.nrPages,
      iommu: this.iommu,
      addressSpaces: [null, ...this.spaces],
      timing: this.o.timing,
      spinNs: this.o.deviceSpinNs,
      runSpinNs: this.o.runSpinNs ?? 0,
      irqLine: this.o.line,
      ...(ctx.timeline ? { timeline: { buffer: ctx.timeline.buffer, tracks: this.tracks } } : {}),
    });
    this.dev = dev;
    this.mmio = dev.mmio;
    await dev.ready;
    dev.worker.on('exit', (code) => this.lost(`exited with code ${code}`));
    dev.worker.on('error', (e) => this.lost(`failed: ${e.message}`));
    this.ref();
    try {
      await this.activate();
    } finally {
      this.unref();
    }
  }

  /** "Activation of the SDXI Function by Software", then the client contexts through the admin context. */
  private async activate(): Promise<void> {
    const m = this.mmio;
    const ctx = this.o.ctx;
    m.write(MMIO_CTL0, GSR_RESET);
    await this.waitState(GSV_STOP);
    const major = (m.read(MMIO_VERSION) >>> 16) & 0xff;
    if (major !== SDXI_VERSION_MAJOR) throw new Error(`${this.name}: SDXI version ${major} is not supported`);
    const cap1 = m.read(MMIO_CAP1);
    if (maxCxtOf(cap1) < this.o.contexts)
      throw new Error(
        `${this.name}: the function has contexts 0..${maxCxtOf(cap1)}, ${this.o.contexts} asked for`,
      );
    const cap0 = m.read(MMIO_CAP0);
    // The rings and doorbells this driver builds: 1024 entries, doorbells 4 KiB apart.
    if (doorbellStride(cap0) !== PAGE || maxRingEntries(cap0) < RING_ENTRIES)
      throw new Error(
        `${this.name}: CAP0 ${cap0.toString(16)} offers no 4 KiB doorbell stride and ${RING_ENTRIES}-entry rings`,
      );
    // CTL2 <- what CAP1 offers: max_buffer, max_akey_sz, max_cxt, the operation groups.
    m.write(MMIO_CTL2, ((cap1 % 2 ** 32) & 0xffff_f00f) + opbOf(cap1) * 2 ** 32);

    const l2 = this.coherentPage(DMA_TO_DEVICE);
    const l1 = this.coherentPage(DMA_TO_DEVICE);
    m.write(MMIO_CXT_L2, l2 * PAGE);
    Atomics.store(new BigInt64Array(...this.page(l2), PAGE / 8), 0, BigInt(l1 * PAGE + L2_VL));
    const l1Words = new BigInt64Array(...this.page(l1), PAGE / 8);

    // Error log: disabled, status cleared, then a zeroed 64-entry ring and its interrupt.
    m.write(MMIO_ERR_CFG, 0);
    m.write(MMIO_ERR_STS, ERR_STS_STS | ERR_STS_OVF | ERR_STS_ERR);
    const log = this.coherentPage(DMA_FROM_DEVICE);
    this.logWords = new Int32Array(...this.page(log), PAGE / 4);
    this.logEntries = ERRLOG_ENTRIES_PER_UNIT;
    m.write(MMIO_ERR_CTL, ERR_CTL_INTR);
    m.write(MMIO_ERR_RD, m.read(MMIO_ERR_WRT));
    m.write(MMIO_ERR_CFG, log * PAGE + (1 << 1) + ERR_CFG_EN);

    // The admin context, running by software's hand before the function is activated.
    const admin = new ContextRing(ctx, this.iommu, 0);
    this.rings.push(admin);
    admin.setAkey(0, { valid: true, interrupt: false, vector: 0, targetSfunc: this.o.index, pasid: 0 });
    this.writeL1(l1Words, admin, OPB_ADMIN | OPB_DMAB | OPB_INTR, true);
    admin.setState(CXTV_RUN);
    m.write(MMIO_CTL0, GSR_ACTIVE);
    await this.waitState(GSV_ACTIVE);
    m.doorbell(0, 0); // jump start
    this.admin = new AdminQueue(admin, m, this);

    for (let id = 1; id <= this.o.contexts; id++) {
      const ring = new ContextRing(ctx, this.iommu, id);
      this.rings.push(ring);
      // One key for buffers and the interrupt: this function, the context's address space, its MSI.
      ring.setAkey(DATA_AKEY, {
        valid: true,
        interrupt: true,
        vector: id,
        targetSfunc: this.o.index,
        pasid: id,
      });
      this.writeL1(l1Words, ring, OPB_DMAB | OPB_INTR, false);
      const c = new SdxiContext(this, id, ring, this.spaces[id - 1]!);
      this.contexts.push(c);
      this.o.line.register(c.channels[0]);
    }
    this.state = 'up';
    await this.admin.run([cxtStartDescriptor({ first: 1, last: this.o.contexts })]);
  }

  /** L1 entry of `ring`'s context: AKey table, PASID/max_buffer, op-group enables, then CXT_CTL with vl. */
  private writeL1(l1: BigInt64Array, ring: ContextRing, opb: number, ka: boolean): void {
    const q = (ring.id * L1_ENT_BYTES) >>> 3;
    const w32 = new Int32Array(l1.buffer, l1.byteOffset, PAGE / 4);
    l1[q + 1] = BigInt(ring.akeyAddr); // size code 0: 256 entries
    w32[(ring.id * L1_ENT_BYTES + L1_MISC0) >>> 2] = 11 << 20;
    w32[(ring.id * L1_ENT_BYTES + L1_OPB_ENB) >>> 2] = opb;
    Atomics.store(l1, q + (L1_CXT_CTL_PTR >>> 3), BigInt(ring.ctlAddr + L1_VL + (ka ? L1_KA : 0)));
  }

  /** One zeroed page of coherent memory, mapped into the function's domain for `dir`. */
  private coherentPage(dir: typeof DMA_TO_DEVICE | typeof DMA_FROM_DEVICE): number {
    const pfn = this.o.ctx.allocCoherent(1);
    this.pages.push(pfn);
    this.iommu.map(pfn, 1, dir);
    return pfn;
  }

  /** Where page `pfn` lives: its section and byte offset. */
  private page(pfn: number): [SharedArrayBuffer, number] {
    const shift = this.o.ctx.sectionPfnShift;
    return [this.o.ctx.sections[pfn >>> shift]!, (pfn & ((1 << shift) - 1)) * PAGE];
  }

  /** Polls fn_gsv until it reads `want` (ERROR fails; the other states are transitional). */
  private async waitState(want: number): Promise<void> {
    const deadline = performance.now() + STATE_TIMEOUT_MS;
    for (;;) {
      const gsv = this.mmio.read(MMIO_STS0) & 7;
      if (gsv === want) return;
      if (gsv === GSV_ERROR && want !== GSV_STOP)
        throw new Error(
          `${this.name}: the function went to its error state (gsr ${this.mmio.read(MMIO_CTL0) & CTL0_GSR_MASK})`,
        );
      if (performance.now() > deadline)
        throw new Error(`${this.name}: fn_gsv stayed ${gsv}, expected ${want}`);
      await new Promise((r) => setTimeout(r, 0));
    }
  }

  /** The error vector's handler (every MSI comes through the one line): drain the log if it has news. */
  service(): boolean {
    if (this.state === 'up' && this.mmio.read(MMIO_ERR_STS) & (ERR_STS_STS | ERR_STS_OVF | ERR_STS_ERR))
      this.drainErrorLog();
    return false;
  }

  /** error.c: note ERR_STS, read ERR_RD, clear ERR_STS, read ERR_WRT, consume rd..wrt−1, write ERR_RD. */
  drainErrorLog(): ErrlogEntry[] {
    const m = this.mmio;
    const words = this.logWords;
    if (!words) return [];
    const st = m.read(MMIO_ERR_STS);
    if (st & ERR_STS_ERR) this.warn(`${this.name}: the function could not write its error log`);
    if (st & ERR_STS_OVF) this.warn(`${this.name}: error-log records were lost (overflow)`);
    let rd = m.read(MMIO_ERR_RD);
    m.write(MMIO_ERR_STS, st);
    const wrt = m.read(MMIO_ERR_WRT);
    const out: ErrlogEntry[] = [];
    for (; rd < wrt; rd++) {
      const at = (rd % this.logEntries) * ERRLOG_ENT_WORDS;
      const e = decodeErrlog(words, at);
      Atomics.and(words, at, ~1); // consumed
      if (!e) continue;
      out.push(e);
      this.history.push(e);
      if (e.cxt !== null) {
        const list = this.pendingErrors.get(e.cxt) ?? [];
        list.push(e);
        this.pendingErrors.set(e.cxt, list);
      }
    }
    if (this.history.length > LOG_HISTORY) this.history.splice(0, this.history.length - LOG_HISTORY);
    m.write(MMIO_ERR_RD, rd);
    return out;
  }

  takeErrors(id: number): ErrlogEntry[] {
    this.drainErrorLog();
    const list = this.pendingErrors.get(id) ?? [];
    this.pendingErrors.delete(id);
    return list;
  }

  /** The last records drained from the error log (up to 256), oldest first. */
  errorLog(): readonly ErrlogEntry[] {
    if (this.state === 'up') this.drainErrorLog();
    return this.history;
  }

  /** Keeps the process alive while the driver waits for this function (refcounted). */
  ref(): void {
    if (this.refs++ === 0) this.dev?.worker.ref();
  }

  unref(): void {
    if (--this.refs === 0) this.dev?.worker.unref();
  }

  /** The driver's side of a migration run: on at its start (wakes a sleeping function), off at its end. */
  setRun(on: boolean): void {
    if (this.dev && this.state === 'up') setDeviceRun(this.mmio.i32, EMU_WORDS, on);
  }

  /** Whether the function thread sleeps (or is about to) on its doorbells. */
  get sleeping(): boolean {
    return Atomics.load(this.mmio.i32, EMU_SLEEPING >>> 2) !== 0;
  }

  /** Changes the function's timing profile (its contexts share it). */
  setTiming(t: ResolvedTiming): void {
    this.mmio.write(EMU_BW_MBPS, t.bandwidthMBps);
    this.mmio.write(EMU_LATENCY_NS, t.latencyNs);
  }

  deviceCounters(): SdxiDeviceCounters {
    const m = this.mmio;
    return {
      descriptors: Atomics.load(m.i32, EMU_DESCS >>> 2) >>> 0,
      errors: Atomics.load(m.i32, EMU_ERRORS >>> 2) >>> 0,
      bytes: Number(Atomics.load(m.r64, EMU_BYTES >>> 3)),
      copySeconds: Number(Atomics.load(m.r64, EMU_COPY_NS >>> 3)) / 1e9,
      sleeps: Atomics.load(m.i32, EMU_SLEEPS >>> 2) >>> 0,
    };
  }

  /** The function thread ended on its own: nothing outstanding will complete. */
  private lost(why: string): void {
    if (this.state !== 'up') return;
    this.state = 'dead';
    this.o.ctx.logger.error(`${this.name}: function thread ${why}`);
    for (const c of this.contexts) c.channels[0].lost(`function thread ${why}`);
  }

  /** Ends the function thread and frees everything it was given; idempotent. */
  async remove(): Promise<void> {
    if (this.state === 'removed') return;
    const wasUp = this.state === 'up';
    this.state = 'removed';
    const dev = this.dev;
    this.dev = null;
    if (dev) {
      if (wasUp) this.mmio.write(MMIO_CTL0, GSR_RESET);
      this.mmio.write(EMU_EXIT, 1);
      await dev.worker.terminate();
    }
    this.o.line.unregister(this);
    for (const c of this.contexts) this.o.line.unregister(c.channels[0]);
    // The thread is gone: nothing reads these any more.
    for (const r of this.rings) r.free();
    for (const pfn of this.pages) {
      this.iommu.unmap(pfn, 1);
      this.o.ctx.freeCoherent(pfn);
    }
    this.rings = [];
    this.pages.length = 0;
    this.iommu.unmapAll();
    for (const s of this.spaces) s.unmapAll();
  }
}
