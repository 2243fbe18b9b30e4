// The generic batch-copy DMA migrator (the series' dcbm): its contract, its lifecycle ops, and the
// migrator built from them. The batch copy itself is dcbm_copy.ts.
import {
  defineMigrator,
  MIGRATOR_API_VERSION,
  type MigrateReasonValue,
  type MigrationRunInfo,
  type Migrator,
  type MigratorContext,
  type OffloadInfo,
  PagemigError,
} from '@pagemig/core';
import { type DmaChannel, type DmaChanStats, DmaEngine } from './channel.js';
import { dcbmCopyBatch } from './dcbm_copy.js';
import { type DcbmKnobs, DcbmParams, dcbmKnobKeys, MAX_DMA_CHANNELS } from './dcbm_params.js';
import { createDcbmState, type DcbmState, type DeclineReason, type DmaProvider } from './dcbm_state.js';
import { migratorOptionError } from './driver_options.js';

export interface DmaMigratorConfig extends DcbmKnobs {
  name: string;
  version: string;
  /** Semver range of @pagemig/core. Default: ^ the core it was built against. */
  engines?: { core: string };
  provider: DmaProvider;
  /** Extra, JSON-serialisable manifest fields (device model, queue depth, ...). */
  manifest?: Record<string, unknown>;
  /**
   * pagemig's own knob (not a module parameter): `shouldOffload` declines batches of fewer base
   * pages, and runs of fewer keep no device awake; the CPU copies them. Default 0 (offload all).
   */
  minBatchPages?: number;
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
  /** Migration runs the devices stayed awake for (runStart .. runEnd). */
  runs: number;
  /** Batches and base pages `shouldOffload` declined (the CPU copied them), by why. */
  declined: Record<DeclineReason, { batches: number; pages: number }>;
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

/** Probes the provider's devices and takes up to MAX_DMA_CHANNELS MEMCPY channels from them. */
async function dcbmInit(state: DcbmState, ctx: MigratorContext): Promise<void> {
  if (state.ctx) throw new PagemigError('ERR_MIGRATOR_STATE', `${state.name}: already initialised`);
  if (state.disposed) throw new PagemigError('ERR_MIGRATOR_STATE', `${state.name}: disposed`);
  state.ctx = ctx;
  const dmaengine = new DmaEngine();
  state.dmaengine = dmaengine;
  try {
    const devices = await state.provider.probe(ctx);
    for (const d of devices) dmaengine.registerDevice(d);
    for (let i = 0; i < MAX_DMA_CHANNELS; i++) {
      const ch = dmaengine.requestChannel('MEMCPY');
      if (!ch) break;
      state.taken.push(ch);
    }
  } catch (e) {
    await state.provider.remove();
    state.ctx = null;
    throw e;
  }
  if (!state.taken.length) ctx.logger.warn('no MEMCPY channel; every batch goes to the CPU');
}

/** Why a batch (or run) of `reason` and `pages` would go to the CPU, or null if the dcbm takes it. */
function declineReason(state: DcbmState, reason: MigrateReasonValue, pages: number): DeclineReason | null {
  if (!state.offloading) return 'offloading';
  if (state.taken.length === 0) return 'no_channel';
  if ((state.reasonMask & (1 << reason)) === 0) return 'reason_mask';
  if (pages < state.minBatchPages) return 'small';
  return null;
}

/** The per-batch gate: declines cost two comparisons and a count, and show in `stats().declined`. */
function dcbmShouldOffload(state: DcbmState, info: OffloadInfo): boolean {
  const why = declineReason(state, info.reason, info.pages);
  if (why === null) return true;
  const d = state.declined[why];
  d.batches++;
  d.pages += info.pages;
  return false;
}

/**
 * Runs smaller than this (base pages) keep no device awake: waking one costs its driver more than
 * the run's one batch saves (compaction migrates 32 folios per run). Their batches still go to the
 * devices, which idle-spin and sleep as outside a run.
 */
export const RUN_AWAKE_MIN_PAGES = 512;

/** A run it will offload: the first of overlapping ones keeps the devices polling between batches. */
function dcbmRunStart(state: DcbmState, info: MigrationRunInfo): void {
  if (!state.ctx || info.pages < RUN_AWAKE_MIN_PAGES) return;
  if (declineReason(state, info.reason, info.pages) !== null) return;
  state.awake.add(info);
  state.counters.runs++;
  if (state.awake.size === 1) state.awakeChannels = state.provider.runStart?.() ?? 0;
}

/** The run ended: once none is left, the devices sleep when idle. Nothing after dispose. */
function dcbmRunEnd(state: DcbmState, info: MigrationRunInfo): void {
  if (!state.awake.delete(info) || state.awake.size > 0 || !state.ctx) return;
  state.awakeChannels = 0;
  state.provider.runEnd?.();
}

/** Waits for the batch in progress, releases the channels and removes the devices; idempotent. */
function dcbmDispose(state: DcbmState): Promise<void> {
  state.disposed ??= (async () => {
    await state.queue;
    state.awake.clear();
    for (const ch of state.taken) state.dmaengine?.releaseChannel(ch);
    state.taken = [];
    await state.provider.remove();
    state.ctx = null;
  })();
  return state.disposed;
}

function dcbmStats(state: DcbmState): DcbmStats {
  const c = state.counters;
  return {
    batches: c.batches,
    folios_migrated: state.foliosMigrated,
    folios_failures: state.foliosFailures,
    descriptors: c.descriptors,
    descriptorFailures: c.descriptorFailures,
    bytes: c.bytes,
    timeouts: c.timeouts,
    mapFailures: c.mapFailures,
    runs: c.runs,
    declined: Object.fromEntries(
      Object.entries(state.declined).map(([k, v]) => [k, { ...v }]),
    ) as DcbmStats['declined'],
    channels: state.taken.map((ch) => ({ name: ch.name, ...ch.stats() })),
  };
}

/** The ops every dcbm instance shares, each taking the instance's state first (as DPDK's skeldma_ops). */
const dcbmOps = {
  init: dcbmInit,
  shouldOffload: dcbmShouldOffload,
  runStart: dcbmRunStart,
  runEnd: dcbmRunEnd,
  copyBatch: dcbmCopyBatch,
  dispose: dcbmDispose,
  stats: dcbmStats,
} as const;

/**
 * The generic batch-copy DMA migrator (the series' dcbm): slices each batch into near-equal
 * contiguous parts (by pages, in batch order) across up to `nr_dma_chan` channels (never more than
 * the batch has folios), merges physically contiguous runs of a part into one descriptor (as
 * dma_map_sgtable would), maps every run into the channel's IOMMU domain, submits and issues,
 * waits for each descriptor's own completion (engines may complete out of order), marks exactly
 * the rows whose every descriptor succeeded, and unmaps. A folio that straddles two parts is split
 * at a page boundary. When the engine's timeout aborts the batch, the channels are terminated (and
 * reset by their drivers) and no row is marked: the CPU copies them all.
 */
export function createDmaMigrator(config: DmaMigratorConfig): DmaMigrator {
  const who = config.name;
  const provider = config.provider;
  if (!provider || typeof provider.probe !== 'function' || typeof provider.remove !== 'function')
    throw migratorOptionError(who, 'provider must have probe(ctx) and remove()');
  const minBatchPages = config.minBatchPages ?? 0;
  if (!Number.isInteger(minBatchPages) || minBatchPages < 0)
    throw migratorOptionError(who, `minBatchPages must be an integer >= 0, got ${String(minBatchPages)}`);
  const state = createDcbmState(who, provider, minBatchPages);
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
  return defineMigrator({
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
      return state.taken;
    },
    init: (ctx: MigratorContext) => dcbmOps.init(state, ctx),
    shouldOffload: (info: OffloadInfo) => dcbmOps.shouldOffload(state, info),
    runStart: (info: MigrationRunInfo) => dcbmOps.runStart(state, info),
    runEnd: (info: MigrationRunInfo) => dcbmOps.runEnd(state, info),
    copyBatch: (batch, opts) => dcbmOps.copyBatch(state, batch, opts),
    dispose: () => dcbmOps.dispose(state),
    [Symbol.asyncDispose]: () => dcbmOps.dispose(state),
    stats: () => dcbmOps.stats(state),
  } satisfies DmaMigrator);
}
