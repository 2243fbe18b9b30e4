import { createHash } from 'node:crypto';
import { createMachine, type Machine } from '@pagemig/core';
import { DMA_TO_DEVICE, IommuDomain } from '@pagemig/dmaengine';
import {
  encodeDescriptor,
  type LaunchedDevice,
  launchDevice,
  memcpyDescriptor,
  type PtdmaDescriptor,
  regs,
} from '../dist/index.js';

const {
  ALL_INTERRUPTS,
  CMD_Q_RUN,
  CMD_Q_SIZE_SHIFT,
  EMU_EXIT,
  EMU_MMIO_SEQ,
  EMU_MSI,
  EMU_SEEN_SEQ,
  Q_CONTROL,
  Q_DMA_BUSY,
  Q_DMA_STATUS,
  Q_HEAD_LO,
  Q_INT_ENABLE,
  Q_INTERRUPT_STATUS,
  Q_TAIL_LO,
  QUEUE_SIZE_VAL,
  SUPPORTED_INTERRUPTS,
} = regs;

/** The page that holds the hand-built ring in these tests. */
export const RING_PFN = 4;
export const RING = RING_PFN * 4096;
export const QCONTROL = QUEUE_SIZE_VAL << CMD_Q_SIZE_SHIFT;
export const slot = (i: number) => RING + (i % 32) * 32;

/** A machine's RAM with one bare PTDMA device on it, and a test acting as its driver by hand. */
export class Rig {
  readonly ringWords: Int32Array;
  private constructor(
    readonly m: Machine,
    readonly iommu: IommuDomain,
    readonly dev: LaunchedDevice,
  ) {
    const k = m.kernel;
    this.ringWords = new Int32Array(k.mem.sections[0]!, RING, 256);
  }

  static async create(memory = '8MiB', spinNs = 20_000): Promise<Rig> {
    const m = await createMachine({ nodes: [{ memory }], sectionSize: '4MiB', prefault: false });
    const k = m.kernel;
    const iommu = new IommuDomain(k.nrPages);
    const dev = launchDevice({
      name: 'pt-test',
      sections: k.mem.sections,
      sectionPfnShift: k.mem.pagesPerSectionShift,
      nrPages: k.nrPages,
      iommu,
      spinNs,
    });
    await dev.ready;
    return new Rig(m, iommu, dev);
  }

  get mmio() {
    return this.dev.mmio;
  }
  read(off: number): number {
    return this.dev.mmio.read(off);
  }
  write(off: number, v: number): void {
    this.dev.mmio.write(off, v);
  }
  get msi(): number {
    return Atomics.load(this.dev.mmio.i32, EMU_MSI >>> 2);
  }
  bytes(pfn: number, nr = 1): Uint8Array {
    return this.m.kernel.mem.view(pfn, nr);
  }

  /** pt_core_init by hand: ring page mapped for the device, head = tail = slot 0, interrupts on. */
  bringUp(): void {
    if (!this.iommu.permissions(RING_PFN)) this.iommu.map(RING_PFN, 1, DMA_TO_DEVICE);
    this.write(Q_INT_ENABLE, 0);
    this.write(Q_CONTROL, 0);
    this.write(Q_INTERRUPT_STATUS, ALL_INTERRUPTS);
    this.write(Q_TAIL_LO, slot(0));
    this.write(Q_HEAD_LO, slot(0));
    this.write(Q_CONTROL, QCONTROL);
    this.write(Q_INT_ENABLE, SUPPORTED_INTERRUPTS);
  }

  /** Writes a descriptor into ring slot `i`. */
  put(i: number, d: PtdmaDescriptor): void {
    encodeDescriptor(d, this.ringWords, (i % 32) * 8);
  }

  copy(i: number, dst: number, src: number, len: number, patch: Partial<PtdmaDescriptor> = {}): void {
    this.put(i, { ...memcpyDescriptor(dst, src, len), ...patch });
  }

  /** The doorbell: tail to slot `end`, then RUN. */
  ring(end: number, control = QCONTROL | CMD_Q_RUN): void {
    this.write(Q_TAIL_LO, slot(end));
    this.write(Q_CONTROL, control);
  }

  /** Resolves when the device has acted on every register write and is idle; throws if it hangs. */
  async idle(timeoutMs = 3000): Promise<void> {
    const i32 = this.dev.mmio.i32;
    const t0 = performance.now();
    for (;;) {
      const seq = Atomics.load(i32, EMU_MMIO_SEQ >>> 2);
      if (Atomics.load(i32, EMU_SEEN_SEQ >>> 2) === seq && !(this.read(Q_DMA_STATUS) & Q_DMA_BUSY)) return;
      if (performance.now() - t0 > timeoutMs)
        throw new Error(`the device did not go idle within ${timeoutMs} ms`);
      await new Promise((r) => setImmediate(r));
    }
  }

  /** Clears an error the way the driver does: head := tail, acknowledge everything, RUN again. */
  recover(): void {
    this.write(Q_HEAD_LO, this.read(Q_TAIL_LO));
    this.write(Q_INTERRUPT_STATUS, ALL_INTERRUPTS);
    this.write(Q_CONTROL, QCONTROL | CMD_Q_RUN);
  }

  /** SHA-256 of the machine's whole RAM. */
  checksum(): string {
    const h = createHash('sha256');
    for (const s of this.m.kernel.mem.sections) h.update(new Uint8Array(s));
    return h.digest('hex');
  }

  async close(): Promise<void> {
    this.write(EMU_EXIT, 1);
    await this.dev.worker.terminate();
    await this.m.close();
  }
}
