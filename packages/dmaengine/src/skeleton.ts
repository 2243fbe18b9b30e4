import type { MigratorContext } from '@pagemig/core';
import { type DmaCapability, type DmaDevice, DmaStatusCode, type DmaStatusCodeValue } from './channel.js';
import type { DmaProvider } from './dcbm_state.js';
import { DMA_FROM_DEVICE, DMA_TO_DEVICE, IommuDomain } from './iommu.js';
import { RamView } from './ram.js';
import { VirtDmaChannel, type VirtDmaTx } from './virt_dma.js';

/** The order in which a skeleton channel completes the descriptors it runs together. */
export type SkeletonOrder = 'fifo' | 'lifo' | 'random';

export interface SkeletonOptions {
  /** Channels (one device each). Default 1. */
  channels?: number;
  /** Completion order of descriptors issued together. Default 'fifo'. */
  order?: SkeletonOrder;
  /** Seed of the 'random' order. */
  seed?: number;
  /** Offer MEMCPY_SG with this many segments per descriptor (0 = no SG). Default 0. */
  sgSegments?: number;
  /** Largest descriptor in bytes. Default 1 GiB. */
  maxSegmentBytes?: number;
  /** Milliseconds before issued work runs (default: the next macrotask). */
  delayMs?: number;
  /**
   * Fault injection: called for each descriptor the channel runs (index counts per channel from 0);
   * a status fails it without copying, 'hang' makes it never complete (a stuck device).
   */
  inject?: (channel: number, index: number) => DmaStatusCodeValue | 'hang' | undefined;
}

/**
 * A software DMA device in the spirit of DPDK's dma_skeleton: it runs on the caller's thread (on a
 * later macrotask), checks every access against its IOMMU domain, and can complete out of order and
 * inject faults. It is the reference for the channel contract and the test double of the dcbm.
 */
export class SkeletonDevice implements DmaDevice {
  readonly iommu: IommuDomain;
  readonly channels: SkeletonChannel[];

  constructor(
    readonly name: string,
    ram: RamView,
    nrPages: number,
    index: number,
    opts: SkeletonOptions,
  ) {
    this.iommu = new IommuDomain(nrPages);
    this.channels = [new SkeletonChannel(this, `${name}chan0`, ram, index, opts)];
  }
}

export class SkeletonChannel extends VirtDmaChannel {
  readonly capabilities: readonly DmaCapability[];
  readonly maxSegmentBytes: number;
  override readonly maxSgSegments: number;
  private running: VirtDmaTx[] = [];
  private timer: ReturnType<typeof setTimeout> | ReturnType<typeof setImmediate> | null = null;
  private ran = 0;
  private seed: number;

  constructor(
    readonly device: SkeletonDevice,
    readonly name: string,
    private readonly ram: RamView,
    private readonly index: number,
    private readonly opts: SkeletonOptions,
  ) {
    super();
    this.maxSgSegments = opts.sgSegments ?? 0;
    this.maxSegmentBytes = opts.maxSegmentBytes ?? 1 << 30;
    this.capabilities = [
      'MEMCPY',
      ...(this.maxSgSegments > 0 ? (['MEMCPY_SG'] as const) : []),
      ...(opts.order && opts.order !== 'fifo' ? (['COMPLETION_NO_ORDER'] as const) : []),
    ];
    this.seed = (opts.seed ?? 1) >>> 0 || 1;
  }

  protected kick(): void {
    for (let tx = this.takeIssued(); tx; tx = this.takeIssued()) this.running.push(tx);
    if (this.timer || !this.running.length) return;
    const run = () => {
      this.timer = null;
      this.process();
    };
    this.timer = this.opts.delayMs === undefined ? setImmediate(run) : setTimeout(run, this.opts.delayMs);
  }

  private process(): void {
    const batch = this.running;
    this.running = [];
    const order = this.opts.order ?? 'fifo';
    if (order === 'lifo') batch.reverse();
    else if (order === 'random') {
      for (let i = batch.length - 1; i > 0; i--) {
        this.seed ^= this.seed << 13;
        this.seed ^= this.seed >>> 17;
        this.seed ^= this.seed << 5;
        const j = (this.seed >>> 0) % (i + 1);
        [batch[i], batch[j]] = [batch[j]!, batch[i]!];
      }
    }
    const hung: VirtDmaTx[] = [];
    for (const tx of batch) {
      const injected = this.opts.inject?.(this.index, this.ran++);
      if (injected === 'hang') {
        hung.push(tx);
        continue;
      }
      this.complete(tx, injected ?? this.execute(tx));
    }
    // A hung descriptor stays on the "hardware" until terminateAll takes it back.
    this.running.push(...hung);
  }

  /** Checks every segment against the IOMMU first, so a fault changes no byte. */
  private execute(tx: VirtDmaTx): DmaStatusCodeValue {
    const segs = tx.segments ?? [{ dst: tx.dst, src: tx.src, len: tx.bytes }];
    const mmu = this.device.iommu;
    for (const s of segs) {
      if (!this.ram.contains(s.src, s.len)) return DmaStatusCode.BUS_READ_ERROR;
      if (!this.ram.contains(s.dst, s.len)) return DmaStatusCode.BUS_WRITE_ERROR;
      if (!mmu.allows(s.src, s.len, DMA_TO_DEVICE)) return DmaStatusCode.INVALID_SRC_ADDR;
      if (!mmu.allows(s.dst, s.len, DMA_FROM_DEVICE)) return DmaStatusCode.INVALID_DST_ADDR;
    }
    for (const s of segs) this.ram.copy(s.dst, s.src, s.len);
    return DmaStatusCode.SUCCESSFUL;
  }

  protected async stopHardware(): Promise<void> {
    // Copies run synchronously on this thread: once the timer is cancelled nothing touches memory.
    if (this.timer) {
      clearTimeout(this.timer as ReturnType<typeof setTimeout>);
      clearImmediate(this.timer as ReturnType<typeof setImmediate>);
      this.timer = null;
    }
  }

  protected takeInflight(): VirtDmaTx[] {
    const r = this.running;
    this.running = [];
    return r;
  }
}

/** A DmaProvider of skeleton devices, for the dcbm: `createDmaMigrator({ provider: skeletonProvider() })`. */
export function skeletonProvider(opts: SkeletonOptions = {}): DmaProvider {
  const channels = opts.channels ?? 1;
  return {
    name: 'dma_skeleton',
    channels,
    probe(ctx: MigratorContext) {
      const ram = new RamView(ctx.sections, ctx.sectionPfnShift, ctx.nrPages);
      return Array.from(
        { length: channels },
        (_, i) => new SkeletonDevice(`skel${i}`, ram, ctx.nrPages, i, opts),
      );
    },
    remove() {},
  };
}
