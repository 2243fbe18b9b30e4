import {
  BATCH_DST,
  BATCH_NR,
  BATCH_ROW_INTS,
  BATCH_SRC,
  defineMigrator,
  EINVAL,
  formatReasonMask,
  kernelError,
  MIGRATOR_API_VERSION,
  type MigrationBatch,
  type Migrator,
  type MigratorContext,
  type OffloadInfo,
  PagemigError,
  parseReasonMask,
  REASON_MASK_ALL,
} from '@pagemig/core';
import {
  DMA_PREP_INTERRUPT,
  type DmaChannel,
  type DmaChanStats,
  type DmaDevice,
  DmaEngine,
  type DmaSegment,
  DmaStatusCode,
  type DmaTx,
  type DmaTxResult,
  dmaStatusCodeName,
} from './channel.js';
import { DMA_FROM_DEVICE, DMA_TO_DEVICE } from './iommu.js';

/** MAX_DMA_CHANNELS of the series' dcbm. */
export const MAX_DMA_CHANNELS = 16;
const PAGE_SHIFT = 12;

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
}

/** dcbm's module parameters, as options. */
export interface DcbmKnobs {
  /** Offer batches to the DMA engines (1) or decline every batch (0). Default 1. */
  offloading?: boolean | 0 | 1;
  /** Most channels one batch is sliced across, 1..16. Default: every channel the provider offers. */
  nr_dma_chan?: number;
  /** Reasons offloaded: names ('compaction,demotion'), 'all', 'none' or a number. Default 'all'. */
  reason_mask?: string | number | readonly string[];
  /** Segments per MEMCPY_SG descriptor on channels that offer it. Default 32 (the later tree's sg_elems). */
  sg_elems?: number;
}

export const dcbmKnobKeys = ['offloading', 'nr_dma_chan', 'reason_mask', 'sg_elems'] as const;

export interface DmaMigratorConfig extends DcbmKnobs {
  name: string;
  version: string;
  /** Semver range of @pagemig/core. Default: ^ the core it was built against. */
  engines?: { core: string };
  provider: DmaProvider;
  /** Extra, JSON-serialisable manifest fields (device model, queue depth, ...). */
  manifest?: Record<string, unknown>;
}

export type DcbmStats = {
  batches: number;
  folios_migrated: number;
  folios_failures: number;
  /** Descriptors submitted, and those that did not succeed. */
  descriptors: number;
  descriptorFailures: number;
  bytes: number;
  /** Batches aborted by the engine's timeout (channels terminated and reset). */
  timeouts: number;
  /** Segments whose IOMMU mapping failed (left to the CPU). */
  mapFailures: number;
  channels: (DmaChanStats & { name: string })[];
};

/** A dcbm migrator: the Migrator contract plus its parameters and the channels it holds. */
export interface DmaMigrator extends Migrator {
  /** /sys/module/dcbm/parameters: get/set with the kernel's parsing; counters reset on any write. */
  readonly params: DcbmParams;
  /** The channels taken at init (dma_request_chan_by_mask), in slice order. */
  readonly channels: readonly DmaChannel[];
  stats(): DcbmStats;
}

type ParamName =
  | 'offloading'
  | 'nr_dma_chan'
  | 'reason_mask'
  | 'sg_elems'
  | 'folios_migrated'
  | 'folios_failures';
const paramNames: readonly ParamName[] = [
  'offloading',
  'nr_dma_chan',
  'reason_mask',
  'sg_elems',
  'folios_migrated',
  'folios_failures',
];

/** ERR_MIGRATOR_OPTION, naming the migrator. */
export function migratorOptionError(who: string, message: string): PagemigError {
  return new PagemigError('ERR_MIGRATOR_OPTION', `${who}: ${message}`);
}

function parseBool(v: unknown): boolean | undefined {
  if (v === true || v === 1 || v === '1' || v === 'y' || v === 'Y') return true;
  if (v === false || v === 0 || v === '0' || v === 'n' || v === 'N') return false;
  return undefined;
}

function parseIntIn(v: unknown, lo: number, hi: number): number | undefined {
  const n = typeof v === 'string' && /^\s*\d+\s*$/.test(v) ? Number(v) : v;
  return typeof n === 'number' && Number.isInteger(n) && n >= lo && n <= hi ? n : undefined;
}

/** dcbm's parameters with the kernel's text in and out (param_set_bool, param_set_uint, ...). */
export class DcbmParams {
  /** @internal */
  constructor(private readonly s: DcbmState) {}

  get(name: ParamName): string {
    const s = this.s;
    switch (name) {
      case 'offloading':
        return s.offloading ? '1' : '0';
      case 'nr_dma_chan':
        return String(s.nrDmaChan);
      case 'reason_mask':
        return s.reasonMask === REASON_MASK_ALL ? 'all' : formatReasonMask(s.reasonMask);
      case 'sg_elems':
        return String(s.sgElems);
      case 'folios_migrated':
        return String(s.foliosMigrated);
      case 'folios_failures':
        return String(s.foliosFailures);
      default:
        throw kernelError(
          EINVAL,
          `dcbm: unknown parameter ${JSON.stringify(name)}; known: ${paramNames.join(', ')}`,
        );
    }
  }

  /** Writes a parameter; a bad value throws EINVAL and changes nothing. */
  set(name: ParamName, value: string | number | boolean | readonly string[]): void {
    const s = this.s;
    switch (name) {
      case 'offloading': {
        const b = parseBool(typeof value === 'string' ? value.trim() : value);
        if (b === undefined)
          throw kernelError(EINVAL, `dcbm: offloading must be 0 or 1, got ${JSON.stringify(value)}`);
        s.offloading = b;
        return;
      }
      case 'nr_dma_chan': {
        const n = parseIntIn(value, 1, MAX_DMA_CHANNELS);
        if (n === undefined)
          throw kernelError(
            EINVAL,
            `dcbm: nr_dma_chan must be 1..${MAX_DMA_CHANNELS}, got ${JSON.stringify(value)}`,
          );
        s.nrDmaChan = n;
        return;
      }
      case 'reason_mask':
        s.reasonMask = parseReasonMask(value as string | number | readonly string[]);
        return;
      case 'sg_elems': {
        const n = parseIntIn(value, 1, 1024);
        if (n === undefined)
          throw kernelError(EINVAL, `dcbm: sg_elems must be 1..1024, got ${JSON.stringify(value)}`);
        s.sgElems = n;
        return;
      }
      case 'folios_migrated':
        s.foliosMigrated = 0;
        return;
      case 'folios_failures':
        s.foliosFailures = 0;
        return;
      default:
        throw kernelError(
          EINVAL,
          `dcbm: unknown parameter ${JSON.stringify(name)}; known: ${paramNames.join(', ')}`,
        );
    }
  }

  /** Every parameter as the kernel prints it. */
  list(): Record<ParamName, string> {
    return Object.fromEntries(paramNames.map((n) => [n, this.get(n)])) as Record<ParamName, string>;
  }
}

interface DcbmState {
  offloading: boolean;
  nrDmaChan: number;
  reasonMask: number;
  sgElems: number;
  foliosMigrated: number;
  foliosFailures: number;
}

/** Growable Int32 scratch arrays reused across batches: no per-folio objects on the hot path. */
class Plan {
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

/**
 * The generic batch-copy DMA migrator (the series' dcbm): slices each batch into near-equal
 * contiguous parts (by pages, in batch order) across up to `nr_dma_chan` channels (never more than
 * the batch has folios), merges
 * physically contiguous runs of a part into one descriptor (as dma_map_sgtable would), maps every
 * run into the channel's IOMMU domain, submits and issues, waits for each descriptor's own
 * completion (engines may complete out of order), marks exactly the rows whose every descriptor
 * succeeded, and unmaps. A folio that straddles two parts is split at a page boundary.
 * When the engine's timeout aborts the batch, the channels are terminated (and reset by their
 * drivers) and no row is marked: the CPU copies them all.
 */
export function createDmaMigrator(config: DmaMigratorConfig): DmaMigrator {
  const who = config.name;
  const provider = config.provider;
  if (!provider || typeof provider.probe !== 'function' || typeof provider.remove !== 'function')
    throw migratorOptionError(who, 'provider must have probe(ctx) and remove()');
  const state: DcbmState = {
    offloading: true,
    nrDmaChan: Math.min(Math.max(provider.channels, 1), MAX_DMA_CHANNELS),
    reasonMask: REASON_MASK_ALL,
    sgElems: 32,
    foliosMigrated: 0,
    foliosFailures: 0,
  };
  const params = new DcbmParams(state);
  for (const key of dcbmKnobKeys) {
    const v = config[key];
    if (v === undefined) continue;
    try {
      params.set(key, v);
    } catch (e) {
      throw migratorOptionError(who, (e as Error).message.replace(/^E[A-Z]+: dcbm: /, ''));
    }
  }

  let ctx: MigratorContext | null = null;
  let dmaengine: DmaEngine | null = null;
  let taken: DmaChannel[] = [];
  let queue: Promise<unknown> = Promise.resolve();
  let disposed: Promise<void> | null = null;
  const plan = new Plan();
  const counters = {
    batches: 0,
    descriptors: 0,
    descriptorFailures: 0,
    bytes: 0,
    timeouts: 0,
    mapFailures: 0,
  };

  async function copy(batch: MigrationBatch, signal: AbortSignal): Promise<void> {
    if (signal.aborted || !state.offloading || !ctx) return;
    const nrChan = Math.min(state.nrDmaChan, taken.length);
    const rows = batch.rows;
    if (!rows || !nrChan) return;
    counters.batches++;
    const t = batch.table;
    const nrPages = ctx.nrPages;
    plan.rows(rows);
    const rowNeed = plan.rowNeed;
    const rowOk = plan.rowOk;

    // Rows a device could never copy (bad pfns) stay with the CPU: they get no piece.
    let total = 0;
    for (let r = 0; r < rows; r++) {
      const o = r * BATCH_ROW_INTS;
      const src = t[o + BATCH_SRC]!;
      const dst = t[o + BATCH_DST]!;
      const nr = t[o + BATCH_NR]!;
      if (nr >= 1 && src >= 0 && dst >= 0 && src + nr <= nrPages && dst + nr <= nrPages) total += nr;
      else rowNeed[r] = -1;
    }
    // As the series: never more channels than folios (a lone folio is not worth two devices' wake-ups),
    // but parts are balanced by pages, so a big folio next to small ones may be split.
    let folios = 0;
    for (let r = 0; r < rows; r++) if (rowNeed[r] !== -1) folios++;
    const k = Math.min(nrChan, total, folios);
    let nSeg = 0;
    let nPiece = 0;
    if (k > 0) {
      // Slice: part c is pages [floor(total*c/k), floor(total*(c+1)/k)) of the batch, in row order.
      let r = 0;
      let off = 0;
      while (r < rows && rowNeed[r] === -1) r++;
      for (let c = 0; c < k; c++) {
        let left = Math.floor((total * (c + 1)) / k) - Math.floor((total * c) / k);
        const maxPages = Math.max(1, Math.floor(taken[c]!.maxSegmentBytes / (1 << PAGE_SHIFT)));
        let open = -1; // the segment still growing on this channel
        while (left > 0) {
          const o = r * BATCH_ROW_INTS;
          const take = Math.min(t[o + BATCH_NR]! - off, left, maxPages);
          const src = t[o + BATCH_SRC]! + off;
          const dst = t[o + BATCH_DST]! + off;
          plan.pieces(nPiece + 1);
          plan.pieceRow[nPiece] = r;
          rowNeed[r]!++;
          if (
            open >= 0 &&
            plan.segSrc[open]! + plan.segPages[open]! === src &&
            plan.segDst[open]! + plan.segPages[open]! === dst &&
            plan.segPages[open]! + take <= maxPages
          ) {
            plan.segPages[open]! += take;
            plan.segPiece1[open] = nPiece + 1;
          } else {
            plan.segments(nSeg + 1);
            open = nSeg++;
            plan.segSrc[open] = src;
            plan.segDst[open] = dst;
            plan.segPages[open] = take;
            plan.segChan[open] = c;
            plan.segPiece0[open] = nPiece;
            plan.segPiece1[open] = nPiece + 1;
            plan.segState[open] = 0;
          }
          nPiece++;
          left -= take;
          off += take;
          if (off === t[o + BATCH_NR]!) {
            off = 0;
            r++;
            while (r < rows && rowNeed[r] === -1) r++;
          }
        }
      }
    }

    // Map, prepare and submit every run; a run that cannot be mapped or prepared stays with the CPU.
    let outstanding = 0;
    let nDescs = 0;
    let failedDescs = 0;
    // The first real error (skipped and aborted descriptors only follow from it) is what gets logged.
    let firstFailure: DmaTxResult | null = null;
    let settle: ((aborted: boolean) => void) | null = null;
    const used = new Set<DmaChannel>();
    const onDone = (res: DmaTxResult, tx: DmaTx) => {
      const s0 = tx.param as number;
      if (res.status === DmaStatusCode.SUCCESSFUL) {
        const s1 = plan.segTxEnd[s0]!;
        for (let s = s0; s < s1; s++) {
          for (let p = plan.segPiece0[s]!; p < plan.segPiece1[s]!; p++) rowOk[plan.pieceRow[p]!]!++;
        }
        counters.bytes += tx.bytes;
      } else {
        failedDescs++;
        const follow = res.status === DmaStatusCode.NOT_ATTEMPTED || res.status === DmaStatusCode.USER_ABORT;
        if (
          !firstFailure ||
          (!follow && (firstFailure as DmaTxResult).status === DmaStatusCode.NOT_ATTEMPTED)
        )
          firstFailure = res;
      }
      if (--outstanding === 0 && settle) settle(false);
    };
    const segs: DmaSegment[] = [];
    let aborted = false;
    try {
      for (let s = 0; s < nSeg; s++) {
        const ch = taken[plan.segChan[s]!]!;
        const mmu = ch.device.iommu;
        const pages = plan.segPages[s]!;
        try {
          mmu.map(plan.segSrc[s]!, pages, DMA_TO_DEVICE);
          plan.segState[s]! |= 1;
          mmu.map(plan.segDst[s]!, pages, DMA_FROM_DEVICE);
          plan.segState[s]! |= 2;
        } catch (e) {
          counters.mapFailures++;
          ctx.logger.warn(`dma map failed, ${pages} pages left to the CPU: ${(e as Error).message}`);
        }
      }
      for (let s = 0; s < nSeg; ) {
        const c = plan.segChan[s]!;
        const ch = taken[c]!;
        const sg = ch.prepMemcpySg && ch.maxSgSegments > 1 && state.sgElems > 1;
        const max = sg ? Math.min(state.sgElems, ch.maxSgSegments) : 1;
        // A descriptor takes consecutive mapped runs of one channel (up to `max`).
        let e = s;
        while (e < nSeg && e - s < max && plan.segChan[e] === c && plan.segState[e] === 3) e++;
        if (e === s) {
          s++;
          continue;
        }
        let tx: DmaTx | null;
        const last = e === nSeg || plan.segChan[e] !== c;
        const flags = last ? DMA_PREP_INTERRUPT : 0;
        if (sg) {
          segs.length = 0;
          for (let i = s; i < e; i++) {
            const len = plan.segPages[i]! << PAGE_SHIFT;
            segs.push({ dst: plan.segDst[i]! * 4096, src: plan.segSrc[i]! * 4096, len });
          }
          tx = ch.prepMemcpySg!(segs, flags);
        } else {
          tx = ch.prepMemcpy(
            plan.segDst[s]! * 4096,
            plan.segSrc[s]! * 4096,
            plan.segPages[s]! << PAGE_SHIFT,
            flags,
          );
        }
        if (tx) {
          plan.segTxEnd[s] = e;
          for (let i = s; i < e; i++) plan.segState[i]! |= 4;
          tx.param = s;
          tx.callback = onDone;
          outstanding++;
          nDescs++;
          counters.descriptors++;
          tx.submit();
          used.add(ch);
        }
        s = e;
      }
      if (outstanding > 0) {
        let onAbort: (() => void) | undefined;
        aborted = await new Promise<boolean>((resolve) => {
          settle = resolve;
          onAbort = () => resolve(true);
          signal.addEventListener('abort', onAbort, { once: true });
          for (const ch of used) ch.issuePending();
        });
        signal.removeEventListener('abort', onAbort!);
      }
    } finally {
      if (outstanding > 0) {
        // Timed out (or threw): stop the channels before unmapping, so no late write can land.
        if (aborted) counters.timeouts++;
        const results = await Promise.allSettled([...used].map((ch) => ch.terminateAll()));
        for (const r of results) {
          if (r.status === 'rejected') ctx.logger.error(`terminate failed: ${String(r.reason)}`);
        }
        aborted = true;
      }
      for (let s = 0; s < nSeg; s++) {
        const st = plan.segState[s]!;
        const ch = taken[plan.segChan[s]!]!;
        if (st & 1) ch.device.iommu.unmap(plan.segSrc[s]!, plan.segPages[s]!);
        if (st & 2) ch.device.iommu.unmap(plan.segDst[s]!, plan.segPages[s]!);
      }
    }

    let migrated = 0;
    if (!aborted) {
      for (let r = 0; r < rows; r++) {
        const need = rowNeed[r]!;
        if (need > 0 && rowOk[r] === need) {
          batch.markCopied(r);
          migrated++;
        }
      }
    }
    counters.descriptorFailures += failedDescs;
    const failures = rows - migrated;
    state.foliosMigrated += migrated;
    state.foliosFailures += failures;
    if (migrated) ctx.count('folios_migrated', migrated);
    if (failures) ctx.count('folios_failures', failures);
    if (failedDescs && firstFailure && !aborted) {
      const f = firstFailure as DmaTxResult;
      ctx.logger.warn(
        `${failedDescs} of ${nDescs} descriptors did not complete (first ${dmaStatusCodeName(f.status)}, device code ${f.deviceCode}); ${failures} of ${rows} folios left to the CPU`,
      );
    }
  }

  const migrator: DmaMigrator = defineMigrator({
    apiVersion: MIGRATOR_API_VERSION,
    name: config.name,
    version: config.version,
    engines: config.engines ?? { core: __CORE_RANGE__ },
    capabilities: {
      offloadsCpu: true,
      channels: provider.channels,
      maxInFlightBatches: 1,
      needsSharedMemory: true,
      dmaengine: { provider: provider.name, maxChannels: MAX_DMA_CHANNELS },
      ...config.manifest,
    },
    params,

    get channels(): readonly DmaChannel[] {
      return taken;
    },

    async init(c: MigratorContext) {
      if (ctx) throw new PagemigError('ERR_MIGRATOR_STATE', `${who}: already initialised`);
      if (disposed) throw new PagemigError('ERR_MIGRATOR_STATE', `${who}: disposed`);
      ctx = c;
      dmaengine = new DmaEngine();
      try {
        const devices = await provider.probe(c);
        for (const d of devices) dmaengine.registerDevice(d);
        for (let i = 0; i < MAX_DMA_CHANNELS; i++) {
          const ch = dmaengine.requestChannel('MEMCPY');
          if (!ch) break;
          taken.push(ch);
        }
      } catch (e) {
        await provider.remove();
        ctx = null;
        throw e;
      }
      if (!taken.length) c.logger.warn('no MEMCPY channel; every batch goes to the CPU');
    },

    shouldOffload(info: OffloadInfo) {
      return state.offloading && taken.length > 0 && (state.reasonMask & (1 << info.reason)) !== 0;
    },

    copyBatch(batch: MigrationBatch, { signal }: { signal: AbortSignal }) {
      // One batch at a time: each page is mapped at most once per device.
      const run = queue.then(() => copy(batch, signal));
      queue = run.catch(() => {});
      return run;
    },

    dispose() {
      disposed ??= (async () => {
        await queue;
        for (const ch of taken) dmaengine?.releaseChannel(ch);
        taken = [];
        await provider.remove();
        ctx = null;
      })();
      return disposed;
    },

    async [Symbol.asyncDispose]() {
      await migrator.dispose();
    },

    stats(): DcbmStats {
      return {
        batches: counters.batches,
        folios_migrated: state.foliosMigrated,
        folios_failures: state.foliosFailures,
        descriptors: counters.descriptors,
        descriptorFailures: counters.descriptorFailures,
        bytes: counters.bytes,
        timeouts: counters.timeouts,
        mapFailures: counters.mapFailures,
        channels: taken.map((ch) => ({ name: ch.name, ...ch.stats() })),
      };
    },
  });
  return migrator;
}
