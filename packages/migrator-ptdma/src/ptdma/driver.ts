/**
 * The PTDMA driver (ptdma-dev.c + ptdma-dmaengine.c): queue bring-up, submission through the ring
 * and the tail doorbell, the interrupt handler, terminate and reset. It talks to its device only
 * through the BAR (Mmio) and the ring in emulated RAM, and offers one dmaengine channel per engine.
 */
import type { MigratorContext, TimelineHandle } from '@pagemig/core';
import {
  type DeviceThread,
  DMA_PREP_INTERRUPT,
  DMA_TO_DEVICE,
  type DmaCapability,
  type DmaDevice,
  DmaStatusCode,
  type InterruptLine,
  IommuDomain,
  type IrqSource,
  type ResolvedTiming,
  setDeviceRun,
  startDeviceThread,
  VirtDmaChannel,
  type VirtDmaTx,
} from '@pagemig/dmaengine';
import { writeMemcpyDescriptor } from './descriptor.js';
import type { PtdmaDeviceInit } from './device.js';
import {
  ALL_INTERRUPTS,
  CMD_CLK_GATE_CONFIG,
  CMD_CLK_GATE_CTL_OFFSET,
  CMD_CONFIG_OFFSET,
  CMD_CONFIG_VHBEN,
  CMD_PT_VERSION,
  CMD_Q_BASE_HI_SHIFT,
  CMD_Q_HALT,
  CMD_Q_LEN,
  CMD_Q_RUN,
  CMD_Q_SIZE_SHIFT,
  CMD_QUEUE_PRIO,
  CMD_QUEUE_PRIO_OFFSET,
  CMD_REQID_CONFIG_OFFSET,
  CMD_TIMEOUT_DISABLE,
  CMD_TIMEOUT_OFFSET,
  EMU_BW_MBPS,
  EMU_BYTES,
  EMU_COPY_NS,
  EMU_DESCS,
  EMU_ERRORS,
  EMU_EXIT,
  EMU_INJECT,
  EMU_INJECT_WEDGE,
  EMU_LATENCY_NS,
  EMU_RUN_SPIN_NS,
  EMU_SLEEPING,
  EMU_SLEEPS,
  EMU_SPIN_NS,
  EMU_WORDS,
  INT_ERROR,
  INT_QUEUE_STOPPED,
  Mmio,
  PT_BAR_BYTES,
  Q_CONTROL,
  Q_DESC_SIZE,
  Q_DMA_BUSY,
  Q_DMA_STATUS,
  Q_HEAD_LO,
  Q_INT_ENABLE,
  Q_INT_STATUS,
  Q_INTERRUPT_STATUS,
  Q_STATUS,
  Q_TAIL_LO,
  QUEUE_SIZE_VAL,
  qError,
  queuesOf,
  SUPPORTED_INTERRUPTS,
} from './regs.js';
import { statusOfCode } from './status.js';

/** The device model's worker module, next to this file in dist/. */
export const deviceUrl: URL = new URL('./ptdma-device.js', import.meta.url);

const HI = 2 ** 32;

/** A device thread and its BAR, before any driver logic (also what register-level tests use). */
export interface LaunchedDevice extends DeviceThread {
  readonly bar: SharedArrayBuffer;
  readonly mmio: Mmio;
}

export interface LaunchOptions {
  name: string;
  sections: readonly SharedArrayBuffer[];
  sectionPfnShift: number;
  nrPages: number;
  iommu: IommuDomain;
  timing?: ResolvedTiming;
  /** Idle spin of the device thread before it sleeps (ns). */
  spinNs?: number;
  /** How long the device polls after each batch while a migration run goes (ns). */
  runSpinNs?: number;
  /** The host interrupt line the device signals its MSI on. */
  irqLine?: InterruptLine;
  /** The machine's timeline and the channel's track: the device records its descriptors there. */
  timeline?: TimelineHandle;
}

/** Starts one emulated PTDMA engine in its own worker thread (unref'd: it never keeps a process alive). */
export function launchDevice(o: LaunchOptions): LaunchedDevice {
  const bar = new SharedArrayBuffer(PT_BAR_BYTES);
  const mmio = new Mmio(bar, o.irqLine?.sab);
  const i32 = mmio.i32;
  // Emulator knobs are set before the device runs (plain stores: the worker start publishes them).
  i32[EMU_BW_MBPS >>> 2] = o.timing?.bandwidthMBps ?? 0;
  i32[EMU_LATENCY_NS >>> 2] = o.timing?.latencyNs ?? 0;
  i32[EMU_SPIN_NS >>> 2] = o.spinNs ?? 0;
  i32[EMU_RUN_SPIN_NS >>> 2] = o.runSpinNs ?? 0;
  const init: PtdmaDeviceInit = {
    kind: 'pagemig.ptdma',
    name: o.name,
    bar,
    sections: o.sections,
    sectionPfnShift: o.sectionPfnShift,
    nrPages: o.nrPages,
    iommu: o.iommu.sab,
    irqLine: o.irqLine?.sab,
    ...(o.timeline ? { timeline: o.timeline } : {}),
  };
  const thread = startDeviceThread({
    url: deviceUrl,
    workerData: init,
    regs: i32,
    words: EMU_WORDS,
    name: `ptdma device ${o.name}`,
  });
  return { ...thread, bar, mmio };
}

export interface PtdmaEngineOptions {
  index: number;
  ctx: MigratorContext;
  timing: ResolvedTiming;
  /** Device idle spin before sleeping (ns). */
  deviceSpinNs: number;
  /** Device poll after each batch while a migration run goes (ns). */
  runSpinNs: number;
  /** The interrupt line all engines of the driver signal (its dispatcher runs on the engine's thread). */
  line: InterruptLine;
  /** How long terminateAll waits for the device to stop before it resets it. */
  resetTimeoutMs: number;
}

type EngineState = 'down' | 'up' | 'resetting' | 'dead' | 'removed';

/** Device counters (emulator block): descriptors completed and failed, bytes copied. */
export interface PtdmaDeviceCounters {
  descriptors: number;
  errors: number;
  bytes: number;
  /** Time the device spent moving bytes, in seconds. */
  copySeconds: number;
  /** Times the device thread went to sleep; each costs the next doorbell a thread wake-up. */
  sleeps: number;
}

/** One emulated PTDMA engine (PCI function 1022:1498) with its driver state: a DmaDevice with one channel. */
export class PtdmaEngine implements DmaDevice {
  readonly name: string;
  readonly iommu: IommuDomain;
  readonly channels: readonly [PtdmaChannel];
  state: EngineState = 'down';
  mmio!: Mmio;
  /** The ring: CMD_Q_LEN descriptors in one page of coherent (Unmovable) memory. */
  readonly ringPfn: number;
  readonly ringAddr: number;
  readonly ring: Int32Array;
  /** Cached Q_CONTROL without RUN: size code and ring base bits 47:32. */
  readonly qcontrol: number;
  resets = 0;
  /** The channel's track on the machine's timeline (undefined on a host without one). */
  readonly timelineTrack: number | undefined;
  private dev: LaunchedDevice | null = null;
  private refs = 0;
  private timing: ResolvedTiming;

  constructor(private readonly o: PtdmaEngineOptions) {
    const ctx = o.ctx;
    this.name = `pt${o.index}`;
    this.timing = o.timing;
    this.iommu = new IommuDomain(ctx.nrPages);
    // dma_alloc_coherent: the ring lives in kernel memory the device reads through its IOMMU.
    this.ringPfn = ctx.allocCoherent(1);
    this.ringAddr = this.ringPfn * 4096;
    this.iommu.map(this.ringPfn, 1, DMA_TO_DEVICE);
    const shift = ctx.sectionPfnShift;
    const section = ctx.sections[this.ringPfn >>> shift]!;
    this.ring = new Int32Array(
      section,
      (this.ringPfn & ((1 << shift) - 1)) * 4096,
      (CMD_Q_LEN * Q_DESC_SIZE) / 4,
    );
    this.qcontrol =
      (QUEUE_SIZE_VAL << CMD_Q_SIZE_SHIFT) |
      ((Math.floor(this.ringAddr / HI) & 0xffff) << CMD_Q_BASE_HI_SHIFT);
    this.channels = [new PtdmaChannel(this, `${this.name}chan0`)];
    this.timelineTrack = ctx.timeline?.track(`${this.name}chan0`, 'ptdma', 'dma');
    o.line.register(this.channels[0]);
  }

  /** The interrupt line this engine's MSI goes to. */
  get line(): InterruptLine {
    return this.o.line;
  }

  /** How long terminateAll waits for the queue to stop before it resets the engine. */
  get resetTimeoutMs(): number {
    return this.o.resetTimeoutMs;
  }

  /** Low 32 bits of the bus address of ring slot `i` (what HEAD and TAIL hold). */
  slotLo(i: number): number {
    return (this.ringAddr + i * Q_DESC_SIZE) % HI;
  }

  /** Starts the device thread and runs pt_core_init. */
  async start(): Promise<void> {
    await this.launch();
    this.state = 'up';
  }

  private async launch(): Promise<void> {
    const ctx = this.o.ctx;
    const dev = launchDevice({
      name: this.name,
      sections: ctx.sections,
      sectionPfnShift: ctx.sectionPfnShift,
      nrPages: ctx.nrPages,
      iommu: this.iommu,
      timing: this.timing,
      spinNs: this.o.deviceSpinNs,
      runSpinNs: this.o.runSpinNs,
      irqLine: this.o.line,
      ...(this.timelineTrack !== undefined && ctx.timeline
        ? { timeline: { buffer: ctx.timeline.buffer, track: this.timelineTrack } }
        : {}),
    });
    this.dev = dev;
    this.mmio = dev.mmio;
    await dev.ready;
    dev.worker.on('exit', (code) => this.lost(dev, `exited with code ${code}`));
    dev.worker.on('error', (e) => this.lost(dev, `failed: ${e.message}`));
    if (this.refs > 0) dev.worker.ref();
    this.bringUp();
    // A reset during a run: the new device polls between batches as the old one did.
    if (this.runActive) setDeviceRun(this.mmio.i32, EMU_WORDS, true);
  }

  /** A migration run is going: the device polls for doorbells between batches instead of sleeping. */
  private runActive = false;

  /** The driver's side of a migration run: on at its start (wakes a sleeping device), off at its end. */
  setRun(on: boolean): void {
    this.runActive = on;
    if (this.dev && this.state !== 'removed') setDeviceRun(this.mmio.i32, EMU_WORDS, on);
  }

  /** Whether the device thread sleeps (or is about to) on its doorbell. */
  get sleeping(): boolean {
    return Atomics.load(this.mmio.i32, EMU_SLEEPING >>> 2) !== 0;
  }

  /** pt_core_init: global init, queue reset, ring base into head/tail/control, interrupts on. */
  private bringUp(): void {
    const m = this.mmio;
    if (queuesOf(m.read(CMD_PT_VERSION)) < 1) throw new Error(`${this.name}: the device reports no queue`);
    m.write(CMD_CONFIG_OFFSET, CMD_CONFIG_VHBEN);
    m.write(CMD_QUEUE_PRIO_OFFSET, CMD_QUEUE_PRIO);
    m.write(CMD_TIMEOUT_OFFSET, CMD_TIMEOUT_DISABLE);
    m.write(CMD_CLK_GATE_CTL_OFFSET, CMD_CLK_GATE_CONFIG);
    m.write(CMD_REQID_CONFIG_OFFSET, 0);
    m.write(Q_INT_ENABLE, 0);
    m.write(Q_CONTROL, 0);
    m.read(Q_INT_STATUS);
    m.read(Q_STATUS);
    m.write(Q_INTERRUPT_STATUS, ALL_INTERRUPTS);
    m.write(Q_TAIL_LO, this.slotLo(0));
    m.write(Q_HEAD_LO, this.slotLo(0));
    m.write(Q_CONTROL, this.qcontrol);
    m.write(Q_INT_ENABLE, SUPPORTED_INTERRUPTS);
    this.channels[0].ringReset();
  }

  /**
   * Function-level reset: the device thread is ended, and once that resolves the old device can no
   * longer touch memory; a fresh one then boots in the background on the same ring and IOMMU domain
   * (`revived` settles when it is up) and starts whatever was issued meanwhile. Outstanding
   * descriptors are the caller's to complete.
   */
  async reset(why: string): Promise<void> {
    if (this.state === 'removed') return;
    this.state = 'resetting';
    this.resets++;
    this.o.ctx.logger.warn(`${this.name}: resetting the engine: ${why}`);
    const old = this.dev;
    this.dev = null;
    if (old) await old.worker.terminate();
    this.revived = this.launch().then(
      () => {
        if (this.state !== 'resetting') return;
        this.state = 'up';
        this.channels[0].resume();
      },
      (e: Error) => {
        if (this.state !== 'resetting') return; // removed meanwhile
        this.state = 'dead';
        this.o.ctx.logger.error(`${this.name}: reset failed: ${e.message}`);
        this.channels[0].deviceLost();
      },
    );
  }

  /** Settles when the last reset's new device is up (or failed to come up). */
  revived: Promise<void> = Promise.resolve();

  /** The device thread ended on its own: fail its work, then try one reset. */
  private lost(dev: LaunchedDevice, why: string): void {
    if (dev !== this.dev || this.state !== 'up') return;
    this.state = 'dead';
    this.o.ctx.logger.error(`${this.name}: device thread ${why}`);
    this.channels[0].deviceLost();
    void this.reset(`device thread ${why}`);
  }

  /** Ends the device thread and frees the ring; idempotent. */
  async remove(): Promise<void> {
    if (this.state === 'removed') return;
    this.state = 'removed';
    const dev = this.dev;
    this.dev = null;
    if (dev) {
      dev.mmio.write(EMU_EXIT, 1);
      await dev.worker.terminate();
    }
    this.o.line.unregister(this.channels[0]);
    this.iommu.unmapAll();
    this.o.ctx.freeCoherent(this.ringPfn);
  }

  /** Keeps the process alive while the driver waits for this device (refcounted). */
  ref(): void {
    if (this.refs++ === 0) this.dev?.worker.ref();
  }

  unref(): void {
    if (--this.refs === 0) this.dev?.worker.unref();
  }

  /** Fault injection (emulator register): the `nth` descriptor fetched from now on fails with `code`. */
  injectError(code: number, nth = 1): void {
    if (
      !Number.isInteger(code) ||
      code < 1 ||
      code > 63 ||
      !Number.isInteger(nth) ||
      nth < 1 ||
      nth > 0xffffff
    )
      throw new RangeError(`injectError: code must be 1..63 and nth 1..2^24-1 (got ${code}, ${nth})`);
    this.mmio.write(EMU_INJECT, (nth << 8) | code);
  }

  /** Fault injection: the engine wedges on the `nth` descriptor fetched from now on (only a reset helps). */
  injectWedge(nth = 1): void {
    if (!Number.isInteger(nth) || nth < 1 || nth > 0xffffff)
      throw new RangeError(`injectWedge: nth must be 1..2^24-1`);
    this.mmio.write(EMU_INJECT, (nth << 8) | EMU_INJECT_WEDGE | 18);
  }

  /** Changes the timing profile (kept across resets). */
  setTiming(t: ResolvedTiming): void {
    this.timing = t;
    this.mmio.write(EMU_BW_MBPS, t.bandwidthMBps);
    this.mmio.write(EMU_LATENCY_NS, t.latencyNs);
  }

  /** Changes how long the idle device thread spins before it sleeps. */
  setDeviceSpin(ns: number): void {
    this.o.deviceSpinNs = ns;
    this.mmio.write(EMU_SPIN_NS, ns);
  }

  /** Changes how long the device polls after each batch while a run goes. */
  setRunSpin(ns: number): void {
    this.o.runSpinNs = ns;
    this.mmio.write(EMU_RUN_SPIN_NS, ns);
  }

  deviceCounters(): PtdmaDeviceCounters {
    const i32 = this.mmio.i32;
    return {
      descriptors: Atomics.load(i32, EMU_DESCS >>> 2) >>> 0,
      errors: Atomics.load(i32, EMU_ERRORS >>> 2) >>> 0,
      bytes: Number(Atomics.load(new BigInt64Array(this.mmio.bar, EMU_BYTES, 1), 0)),
      copySeconds: Number(Atomics.load(new BigInt64Array(this.mmio.bar, EMU_COPY_NS, 1), 0)) / 1e9,
      sleeps: Atomics.load(i32, EMU_SLEEPS >>> 2) >>> 0,
    };
  }
}

/**
 * The engine's dmaengine channel. Unlike Linux's glue (one descriptor in flight), it keeps up to
 * CMD_Q_LEN - 1 descriptors in the ring per doorbell, asks for an interrupt on the last one written
 * and at every half ring (so refills overlap the copy), and completes each descriptor as head
 * passes it.
 */
export class PtdmaChannel extends VirtDmaChannel implements IrqSource {
  readonly capabilities: readonly DmaCapability[] = ['MEMCPY', 'PRIVATE'];
  /** dword1 is a plain 32-bit byte count. */
  readonly maxSegmentBytes = 0xffffffff;
  /** Descriptors in the ring, oldest first; the oldest sits in slot `oldest`. */
  private inflight: VirtDmaTx[] = [];
  private qidx = 0;
  private oldest = 0;
  /** The engine is ref'd (keeps the process alive) while descriptors are out. */
  private refd = false;
  private stopping = false;
  /** Interrupts handled (tests and the benchmark look at it). */
  interrupts = 0;

  constructor(
    readonly device: PtdmaEngine,
    readonly name: string,
  ) {
    super();
  }

  /** The channel's timeline track: its engine's. */
  get timelineTrack(): number | undefined {
    return this.device.timelineTrack;
  }

  /** Completions signal the driver's interrupt line. */
  get irqLine(): InterruptLine {
    return this.device.line;
  }

  /** After bring-up: head = tail = slot 0. */
  ringReset(): void {
    this.qidx = 0;
    this.oldest = 0;
  }

  protected override usable(): boolean {
    const s = this.device.state;
    return s === 'up' || s === 'resetting';
  }

  /** pt_core_execute_cmd for as many issued descriptors as the ring has room for. */
  protected kick(): void {
    const e = this.device;
    if (e.state !== 'up' || this.stopping) {
      if (e.state === 'dead' || e.state === 'removed') this.failIssued(DmaStatusCode.DEV_LINK_ERROR);
      return;
    }
    const m = e.mmio;
    // An error is pending: the interrupt handler flushes the queue before anything new goes in.
    if (m.read(Q_INTERRUPT_STATUS) & INT_ERROR) {
      this.arm();
      return;
    }
    const n = Math.min(CMD_Q_LEN - 1 - this.inflight.length, this.issuedCount);
    if (n <= 0) return;
    const ring = e.ring;
    for (let i = 0; i < n; i++) {
      const tx = this.takeIssued()!;
      const ioc =
        i === n - 1 || (this.qidx + 1) % (CMD_Q_LEN / 2) === 0 || (tx.flags & DMA_PREP_INTERRUPT) !== 0;
      writeMemcpyDescriptor(ring, this.qidx * 8, tx.dst, tx.src, tx.bytes, ioc);
      this.inflight.push(tx);
      this.qidx = (this.qidx + 1) % CMD_Q_LEN;
    }
    // The tail store is sequentially consistent: it publishes the descriptors (the driver's wmb()).
    m.write(Q_TAIL_LO, e.slotLo(this.qidx));
    m.write(Q_CONTROL, e.qcontrol | CMD_Q_RUN);
    this.arm();
  }

  /** Work is out: keep the process alive and have the interrupt line's dispatcher listen. */
  private arm(): void {
    if (!this.refd) {
      this.refd = true;
      this.device.ref();
    }
    this.device.line.arm();
  }

  /** The interrupt line's call: handle what is pending; true while descriptors are still out. */
  service(): boolean {
    const e = this.device;
    if (!this.refd) return false;
    if (e.state === 'up') this.handleIrq();
    const busy =
      e.state === 'up' && (this.inflight.length > 0 || (e.mmio.read(Q_INTERRUPT_STATUS) & INT_ERROR) !== 0);
    if (!busy) {
      this.refd = false;
      e.unref();
    }
    return busy;
  }

  /** pt_core_irq_handler + pt_check_status_trans. */
  private handleIrq(): void {
    const e = this.device;
    const m = e.mmio;
    this.interrupts++;
    m.write(Q_INT_ENABLE, 0);
    const st = m.read(Q_INTERRUPT_STATUS);
    let code = -1;
    if (st) {
      const qs = m.read(Q_STATUS);
      m.read(Q_INT_STATUS);
      if (st & INT_ERROR) code = qError(qs);
      // Acknowledge; ERROR only after the flush below, since the device holds the queue until then.
      if (st & ~INT_ERROR) m.write(Q_INTERRUPT_STATUS, st & ~INT_ERROR);
    }
    this.retire();
    if (code >= 0) {
      // The device stopped at head on the failing descriptor: fail it, skip the rest of the queue.
      const bad = this.inflight.shift();
      if (bad) this.complete(bad, statusOfCode(code), code);
      this.flush(DmaStatusCode.NOT_ATTEMPTED);
      this.failIssued(DmaStatusCode.NOT_ATTEMPTED);
      m.write(Q_INTERRUPT_STATUS, INT_ERROR);
    }
    m.write(Q_INT_ENABLE, SUPPORTED_INTERRUPTS | (this.stopping ? INT_QUEUE_STOPPED : 0));
    if (this.issuedCount && !this.stopping) this.kick();
  }

  /** Completes the descriptors head has passed. */
  private retire(): void {
    const e = this.device;
    const head = e.mmio.read(Q_HEAD_LO);
    const idx = (((head - e.slotLo(0)) >>> 0) / Q_DESC_SIZE) % CMD_Q_LEN;
    const done = Math.min((idx - this.oldest + CMD_Q_LEN) % CMD_Q_LEN, this.inflight.length);
    if (!done) return;
    const finished = this.inflight.splice(0, done);
    this.oldest = (this.oldest + done) % CMD_Q_LEN;
    for (const tx of finished) this.complete(tx, DmaStatusCode.SUCCESSFUL);
  }

  /** HEAD := TAIL (the device must be stopped): whatever was still queued completes with `status`. */
  private flush(status: (typeof DmaStatusCode)[keyof typeof DmaStatusCode]): void {
    const e = this.device;
    e.mmio.write(Q_HEAD_LO, e.slotLo(this.qidx));
    this.oldest = this.qidx;
    const rest = this.inflight;
    this.inflight = [];
    for (const tx of rest) this.complete(tx, status);
  }

  /** terminate_all: HALT, wait until the device is idle (or reset it), skip the queue, re-arm. */
  protected async stopHardware(): Promise<void> {
    const e = this.device;
    if (e.state !== 'up') return;
    this.stopping = true;
    e.ref();
    try {
      const m = e.mmio;
      m.write(Q_INT_ENABLE, SUPPORTED_INTERRUPTS | INT_QUEUE_STOPPED);
      m.write(Q_CONTROL, e.qcontrol | CMD_Q_HALT);
      const deadline = performance.now() + e.resetTimeoutMs;
      while (m.read(Q_DMA_STATUS) & Q_DMA_BUSY) {
        if (performance.now() > deadline) {
          await e.reset('the queue did not stop after HALT');
          return;
        }
        await e.line.waitChange(e.line.count, 2);
      }
      // Idle, and it cannot start another descriptor while HALT is set: retire what it finished.
      this.retire();
      m.write(Q_HEAD_LO, e.slotLo(this.qidx));
      this.oldest = this.qidx;
      m.write(Q_INTERRUPT_STATUS, ALL_INTERRUPTS);
      m.write(Q_CONTROL, e.qcontrol);
      m.write(Q_INT_ENABLE, SUPPORTED_INTERRUPTS);
    } finally {
      this.stopping = false;
      e.unref();
    }
  }

  protected takeInflight(): VirtDmaTx[] {
    const r = this.inflight;
    this.inflight = [];
    this.oldest = this.qidx;
    return r;
  }

  /** After a reset: start whatever was issued while the engine was down. */
  resume(): void {
    if (this.issuedCount) this.kick();
  }

  /** The device thread is gone: nothing in the ring will complete. */
  deviceLost(): void {
    this.abortOutstanding(DmaStatusCode.DEV_LINK_ERROR);
  }
}
