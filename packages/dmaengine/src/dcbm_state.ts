// What one dcbm instance keeps between calls (the skeleton driver's `struct skeldma_hw`): its
// parameters, the machine and channels it runs on, its counters and the reusable batch plan.
import { type MigratorContext, REASON_MASK_ALL } from '@pagemig/core';
import type { DmaChannel, DmaDevice, DmaEngine } from './channel.js';
import { type DcbmParamValues, MAX_DMA_CHANNELS } from './dcbm_params.js';

/** What a DMA driver package hands the generic migrator: it probes devices and removes them. */
export interface DmaProvider {
  /** Driver name, shown in the manifest. */
  readonly name: string;
  /** Channels `probe` will offer (known before init, for the manifest). */
  readonly channels: number;
  /** Brings the devices up (workers, rings, IOMMU domains) for the machine of `ctx`. */
  probe(ctx: MigratorContext): DmaDevice[] | Promise<DmaDevice[]>;
  /** Tears every device down; must be idempotent. */
  remove(): void | Promise<void>;
  /**
   * A migration run the dcbm offloads begins (the first of overlapping ones): devices poll for
   * doorbells between batches instead of sleeping, as hardware does. Returns how many channels
   * (the first ones probed) poll: no more than the host has cores beside the engine's thread (see
   * `devicePollers`), since pollers beyond that take the core the engine needs. Optional.
   */
  runStart?(): number;
  /** The last such run ended: the devices may sleep once idle. Optional. */
  runEnd?(): void;
}

/** Growable Int32 scratch arrays reused across batches: no per-folio objects on the hot path. */
export class Plan {
  rowNeed = new Int32Array(0);
  rowOk = new Int32Array(0);
  pieceRow = new Int32Array(0);
  segSrc = new Int32Array(0);
  segDst = new Int32Array(0);
  segPages = new Int32Array(0);
  segChan = new Int32Array(0);
  segPiece0 = new Int32Array(0);
  segPiece1 = new Int32Array(0);
  /** 1: source mapped, 2: destination mapped, 4: submitted. */
  segState = new Int32Array(0);
  /** For the first segment of a descriptor: one past its last segment. */
  segTxEnd = new Int32Array(0);

  rows(n: number): void {
    if (this.rowNeed.length < n) {
      this.rowNeed = new Int32Array(n);
      this.rowOk = new Int32Array(n);
    } else {
      this.rowNeed.fill(0, 0, n);
      this.rowOk.fill(0, 0, n);
    }
  }

  pieces(n: number): void {
    if (this.pieceRow.length < n) this.pieceRow = grow(this.pieceRow, n);
  }

  segments(n: number): void {
    if (this.segSrc.length >= n) return;
    this.segSrc = grow(this.segSrc, n);
    this.segDst = grow(this.segDst, n);
    this.segPages = grow(this.segPages, n);
    this.segChan = grow(this.segChan, n);
    this.segPiece0 = grow(this.segPiece0, n);
    this.segPiece1 = grow(this.segPiece1, n);
    this.segState = grow(this.segState, n);
    this.segTxEnd = grow(this.segTxEnd, n);
  }
}

function grow(a: Int32Array<ArrayBuffer>, n: number): Int32Array<ArrayBuffer> {
  const b = new Int32Array(Math.max(n, a.length * 2, 64));
  b.set(a);
  return b;
}

/** Why `shouldOffload` declined a batch (the CPU copied it), as `stats().declined` keys. */
export const DECLINE_REASONS = ['offloading', 'no_channel', 'reason_mask', 'small'] as const;
export type DeclineReason = (typeof DECLINE_REASONS)[number];

/** Counters of `stats()` that are not module parameters. */
export interface DcbmCounters {
  batches: number;
  /** Migration runs the devices stayed awake for (runStart of a run the dcbm offloads). */
  runs: number;
  descriptors: number;
  descriptorFailures: number;
  bytes: number;
  timeouts: number;
  mapFailures: number;
}

export interface DcbmState extends DcbmParamValues {
  /** The migrator's name: errors and logs carry it. */
  readonly name: string;
  readonly provider: DmaProvider;
  /** The machine between init and dispose. */
  ctx: MigratorContext | null;
  dmaengine: DmaEngine | null;
  /** The channels taken at init, in slice order. */
  taken: DmaChannel[];
  /** The batch in progress: batches run one at a time, so a page is mapped at most once per device. */
  queue: Promise<unknown>;
  /** Batches that did not end within their copyBatch call and have not settled yet. */
  inFlight: number;
  /** Batches of fewer base pages go to the CPU (pagemig's own knob, not a module parameter). */
  readonly minBatchPages: number;
  /** The runs in progress the devices stay awake for (their runStart infos). */
  readonly awake: Set<object>;
  /** While runs keep devices awake: how many channels (the first taken) poll. */
  awakeChannels: number;
  /** Batches and pages `shouldOffload` declined, by why. */
  readonly declined: Record<DeclineReason, { batches: number; pages: number }>;
  disposed: Promise<void> | null;
  readonly plan: Plan;
  readonly counters: DcbmCounters;
}

/** A fresh instance: offloading every reason on every channel the provider offers (at most 16). */
export function createDcbmState(name: string, provider: DmaProvider, minBatchPages: number): DcbmState {
  return {
    offloading: true,
    nrDmaChan: Math.min(Math.max(provider.channels, 1), MAX_DMA_CHANNELS),
    reasonMask: REASON_MASK_ALL,
    sgElems: 32,
    foliosMigrated: 0,
    foliosFailures: 0,
    name,
    provider,
    ctx: null,
    dmaengine: null,
    taken: [],
    queue: Promise.resolve(),
    inFlight: 0,
    minBatchPages,
    awake: new Set(),
    awakeChannels: 0,
    declined: Object.fromEntries(DECLINE_REASONS.map((r) => [r, { batches: 0, pages: 0 }])) as Record<
      DeclineReason,
      { batches: number; pages: number }
    >,
    disposed: null,
    plan: new Plan(),
    counters: {
      batches: 0,
      runs: 0,
      descriptors: 0,
      descriptorFailures: 0,
      bytes: 0,
      timeouts: 0,
      mapFailures: 0,
    },
  };
}
