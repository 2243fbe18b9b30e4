import type { IommuDomain } from './iommu.js';
import type { InterruptLine } from './irq.js';

/**
 * The channel contract a DMA driver provides, after include/linux/dmaengine.h: a client requests a
 * channel by capability, prepares a descriptor (nothing touches the hardware), submits it (it gets
 * a cookie), issues pending work (the doorbell), and learns each descriptor's outcome from its own
 * completion callback. Outcomes use DPDK's rte_dma_status_code numbers, which say more than the
 * kernel's dmaengine_tx_result (which source or destination failed, or that a descriptor was never
 * attempted because an earlier one failed).
 */

/** dma_transaction_type: what a channel can do. */
export type DmaCapability =
  /** One contiguous source to one contiguous destination. */
  | 'MEMCPY'
  /** Several (source, destination, length) segments in one descriptor. */
  | 'MEMCPY_SG'
  /** A descriptor that only raises a completion. */
  | 'INTERRUPT'
  /** Only handed out on explicit request (AMD PTDMA sets it). */
  | 'PRIVATE'
  /** Descriptors of one channel may complete out of submission order. */
  | 'COMPLETION_NO_ORDER';

/** enum dma_ctrl_flags (the ones a memcpy client uses). */
export const DMA_PREP_INTERRUPT = 1 << 0;
export const DMA_CTRL_ACK = 1 << 1;
export const DMA_PREP_FENCE = 1 << 5;

/** enum dma_status: what `txStatus(cookie)` answers. */
export const DmaStatus = {
  COMPLETE: 0,
  IN_PROGRESS: 1,
  PAUSED: 2,
  ERROR: 3,
} as const;
export type DmaStatusValue = (typeof DmaStatus)[keyof typeof DmaStatus];

/** enum rte_dma_status_code: the outcome of one descriptor. */
export const DmaStatusCode = {
  SUCCESSFUL: 0,
  /** Terminated by the client (terminateAll) before it ran. */
  USER_ABORT: 1,
  /** Skipped because an earlier descriptor of the queue failed. */
  NOT_ATTEMPTED: 2,
  INVALID_SRC_ADDR: 3,
  INVALID_DST_ADDR: 4,
  INVALID_ADDR: 5,
  INVALID_LENGTH: 6,
  INVALID_OPCODE: 7,
  BUS_READ_ERROR: 8,
  BUS_WRITE_ERROR: 9,
  BUS_ERROR: 10,
  DATA_POISON: 11,
  DESCRIPTOR_READ_ERROR: 12,
  DEV_LINK_ERROR: 13,
  PAGE_FAULT: 14,
  ERROR_UNKNOWN: 0x100,
} as const;
export type DmaStatusCodeValue = (typeof DmaStatusCode)[keyof typeof DmaStatusCode];

const statusNames = new Map<number, string>(Object.entries(DmaStatusCode).map(([k, v]) => [v, k]));

/** The name of a status code, e.g. 'INVALID_DST_ADDR'. */
export function dmaStatusCodeName(code: number): string {
  return statusNames.get(code) ?? `STATUS_${code}`;
}

/** What a descriptor's completion callback receives. */
export interface DmaTxResult {
  readonly status: DmaStatusCodeValue;
  /** Bytes not transferred (0 on success). */
  readonly residue: number;
  /** The device's own error code (PTDMA: Q_STATUS bits 5:0); 0 when it reported none. */
  readonly deviceCode: number;
}

export type DmaCallback = (result: DmaTxResult, tx: DmaTx) => void;

/** One segment of a MEMCPY_SG descriptor (bus addresses). */
export interface DmaSegment {
  readonly dst: number;
  readonly src: number;
  readonly len: number;
}

/** struct dma_async_tx_descriptor. */
export interface DmaTx {
  /** dma_cookie_t: 0 until submitted, then increasing per channel. */
  readonly cookie: number;
  /** Bytes the descriptor moves. */
  readonly bytes: number;
  readonly flags: number;
  /** callback_result: runs once, when the descriptor completes, fails, is skipped or is terminated. */
  callback: DmaCallback | null;
  /** callback_param: free for the client. */
  param: unknown;
  /** tx_submit: queues the descriptor; nothing starts until the channel's issuePending(). */
  submit(): number;
}

/** Counters every channel keeps (dmadev's rte_dma_stats plus the failure split). */
export interface DmaChanStats {
  submitted: number;
  completed: number;
  errors: number;
  notAttempted: number;
  aborted: number;
  bytes: number;
}

export interface DmaChannel {
  /** e.g. 'pt0chan0'. */
  readonly name: string;
  readonly device: DmaDevice;
  readonly capabilities: readonly DmaCapability[];
  /** Largest byte count one descriptor (or one SG segment) can move. */
  readonly maxSegmentBytes: number;
  /** Most segments in one MEMCPY_SG descriptor; 0 without MEMCPY_SG. */
  readonly maxSgSegments: number;
  /** device_prep_dma_memcpy: null if the channel cannot take it (bad length, device gone). */
  prepMemcpy(dst: number, src: number, len: number, flags?: number): DmaTx | null;
  /** device_prep_dma_memcpy_sg, on channels with MEMCPY_SG. */
  prepMemcpySg?(segments: readonly DmaSegment[], flags?: number): DmaTx | null;
  /** dma_async_issue_pending: everything submitted so far may start. */
  issuePending(): void;
  /** dmaengine_tx_status. */
  txStatus(cookie: number): DmaStatusValue;
  /**
   * dmaengine_terminate_sync: stops the channel, waits until the device no longer touches memory,
   * completes every outstanding descriptor with USER_ABORT, and leaves the channel usable.
   */
  terminateAll(): Promise<void>;
  stats(): DmaChanStats;
  /**
   * The channel's track on the machine's timeline (`ctx.timeline.track(...)`), if its driver
   * registered one: dcbm tags it with the batch in progress and records the completion interrupts
   * on it; the device thread records its descriptors there.
   */
  readonly timelineTrack?: number;
  /**
   * The interrupt line the channel's completions signal, if its driver has one: a client may then
   * wait for a batch in place (service the line, sleep on it) instead of through the event loop.
   */
  readonly irqLine?: InterruptLine;
}

/** A DMA device: its channels share one IOMMU domain (the device's requester id). */
export interface DmaDevice {
  readonly name: string;
  readonly iommu: IommuDomain;
  readonly channels: readonly DmaChannel[];
}

/**
 * The dmaengine core's channel allocator: devices register their channels, clients request one by
 * capability (dma_request_chan_by_mask) and hold it exclusively until they release it.
 */
export class DmaEngine {
  private readonly devices: DmaDevice[] = [];
  private readonly taken = new Set<DmaChannel>();

  registerDevice(device: DmaDevice): void {
    if (!this.devices.includes(device)) this.devices.push(device);
  }

  unregisterDevice(device: DmaDevice): void {
    const i = this.devices.indexOf(device);
    if (i < 0) return;
    this.devices.splice(i, 1);
    for (const ch of device.channels) this.taken.delete(ch);
  }

  /** Every registered channel, taken or not. */
  channels(): DmaChannel[] {
    return this.devices.flatMap((d) => [...d.channels]);
  }

  /**
   * dma_request_chan_by_mask: the first free channel that has every capability in `caps` (and
   * passes `filter`), now taken by the caller; null when none is free.
   */
  requestChannel(
    caps: DmaCapability | readonly DmaCapability[],
    filter?: (ch: DmaChannel) => boolean,
  ): DmaChannel | null {
    const want = typeof caps === 'string' ? [caps] : caps;
    for (const ch of this.channels()) {
      if (this.taken.has(ch)) continue;
      if (!want.every((c) => ch.capabilities.includes(c))) continue;
      if (filter && !filter(ch)) continue;
      this.taken.add(ch);
      return ch;
    }
    return null;
  }

  /** dma_release_channel. */
  releaseChannel(ch: DmaChannel): void {
    this.taken.delete(ch);
  }

  isTaken(ch: DmaChannel): boolean {
    return this.taken.has(ch);
  }
}
