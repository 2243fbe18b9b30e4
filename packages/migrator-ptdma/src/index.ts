import { checkMigratorOptions, type MigratorContext, type MigratorOptionsSpec } from '@pagemig/core';
import {
  channelsSpec,
  createDmaMigrator,
  type DcbmKnobs,
  DEFAULT_RUN_SPIN_US,
  type DeviceTiming,
  type DmaMigrator,
  type DmaProvider,
  dcbmKnobSpecs,
  devicePollers,
  HOST_TIMING,
  InterruptLine,
  migratorOptionError,
  minBatchPagesSpec,
  parseBandwidth as parseRate,
  type ResolvedTiming,
  spinNs,
  spinUsSpec,
  timingManifest,
  timingOption,
} from '@pagemig/dmaengine';
import { PtdmaEngine } from './ptdma/driver.js';

export type { ResolvedTiming } from '@pagemig/dmaengine';
export * from './ptdma/descriptor.js';
export type { PtdmaDeviceInit } from './ptdma/device.js';
export {
  deviceUrl,
  type LaunchedDevice,
  type LaunchOptions,
  launchDevice,
  PtdmaChannel,
  type PtdmaDeviceCounters,
  PtdmaEngine,
} from './ptdma/driver.js';
export {
  PtdmaError,
  type PtdmaErrorName,
  ptdmaErrorName,
  raisedCodes,
} from './ptdma/errors.js';
export * as regs from './ptdma/regs.js';
export { Mmio } from './ptdma/regs.js';
export { statusOfCode } from './ptdma/status.js';

/** A PTDMA engine's speed (dmaengine's `DeviceTiming`). */
export type PtdmaTiming = DeviceTiming;

/** Bytes per second from a number or '<n> [k|M|G|T][i]B/s'. */
export const parseBandwidth = (v: number | string): number => parseRate('ptdma', v);

/** A profile as the engine's emulator registers hold it. */
export const resolveTiming = (t: PtdmaTiming | undefined): ResolvedTiming => timingOption('ptdma', t);

export interface PtdmaOptions extends Omit<DcbmKnobs, 'sg_elems'> {
  /** Emulated PTDMA engines, one channel and one worker thread each: 1..16. Default 1. */
  channels?: number;
  /** Throttle every engine (one profile) or each engine (an array) to a device's speed. Default: host speed. */
  timing?: PtdmaTiming | readonly PtdmaTiming[];
  /** How long an idle device thread spins on its doorbell before it sleeps, in µs. Default 50. */
  deviceSpinUs?: number;
  /**
   * How long a device polls for the next doorbell after each batch while a migration run goes, in
   * µs (it stops early when the run ends or when the scheduler gave its core to another thread for
   * a millisecond). Default 1000.
   */
  runSpinUs?: number;
  /** Batches of fewer base pages are left to the CPU (counted in `stats().declined.small`). Default 0. */
  minBatchPages?: number;
  /** How long the engine's thread spins on the interrupt word before it awaits, in µs. Default 0. */
  driverSpinUs?: number;
  /** How long terminate waits for a queue to stop before it resets the engine, in ms. Default 20. */
  resetTimeoutMs?: number;
}

const optionSpec = {
  channels: channelsSpec,
  timing: {
    type: 'custom',
    expected: 'a timing profile or an array of one per engine',
    // Each profile resolved here; whether there is one per channel is checked once channels is known.
    parse: (v: unknown) => (Array.isArray(v) ? v : [v]).map((p: PtdmaTiming | undefined) => resolveTiming(p)),
    default: [HOST_TIMING],
  },
  ...dcbmKnobSpecs,
  deviceSpinUs: spinUsSpec(50),
  runSpinUs: spinUsSpec(DEFAULT_RUN_SPIN_US),
  minBatchPages: minBatchPagesSpec(0),
  driverSpinUs: spinUsSpec(0),
  resetTimeoutMs: { type: 'integer', min: 1, max: 600_000, default: 20, unit: 'ms' },
} as const satisfies MigratorOptionsSpec;

/**
 * The option keys `createMigrator` accepts. `@pagemig/registry` reads this export to check options
 * before it creates the migrator and to suggest the closest key for a typo.
 */
export const optionKeys = Object.keys(optionSpec) as readonly (keyof typeof optionSpec)[];

/** The ptdma migrator: dcbm over PTDMA channels, plus its devices for tests and tooling. */
export interface PtdmaMigrator extends DmaMigrator {
  /** The PTDMA engines brought up at init (empty before init and after dispose). */
  readonly devices: readonly PtdmaEngine[];
}

/** Probes `channels` PTDMA engines for the machine the migrator is initialised on. */
class PtdmaProvider implements DmaProvider {
  readonly name = 'ptdma';
  engines: PtdmaEngine[] = [];

  constructor(
    readonly channels: number,
    private readonly timings: readonly ResolvedTiming[],
    private readonly deviceSpinNs: number,
    private readonly runSpinNs: number,
    private readonly driverSpinNs: number,
    private readonly resetTimeoutMs: number,
  ) {}

  /** Engines polling for the run in progress (the first ones, as many as devicePollers allows). */
  private polling: PtdmaEngine[] = [];

  /** A migration run begins: the first engines poll for doorbells between batches. */
  runStart(): number {
    this.polling = this.engines.slice(0, devicePollers());
    for (const e of this.polling) e.setRun(true);
    return this.polling.length;
  }

  /** The last run ended: the engines sleep once idle. */
  runEnd(): void {
    for (const e of this.polling) e.setRun(false);
    this.polling = [];
  }

  /** The engines' MSIs all go to one line: N channels finishing together wake the engine once. */
  line: InterruptLine | null = null;

  async probe(ctx: MigratorContext): Promise<PtdmaEngine[]> {
    const engines: PtdmaEngine[] = [];
    const line = new InterruptLine(this.driverSpinNs);
    this.line = line;
    try {
      for (let i = 0; i < this.channels; i++) {
        engines.push(
          new PtdmaEngine({
            index: i,
            ctx,
            timing: this.timings[i] ?? this.timings[0]!,
            deviceSpinNs: this.deviceSpinNs,
            runSpinNs: this.runSpinNs,
            line,
            resetTimeoutMs: this.resetTimeoutMs,
          }),
        );
      }
      await Promise.all(engines.map((e) => e.start()));
    } catch (e) {
      await Promise.allSettled(engines.map((x) => x.remove()));
      throw e;
    }
    this.engines = engines;
    return engines;
  }

  async remove(): Promise<void> {
    const engines = this.engines;
    this.engines = [];
    await Promise.all(engines.map((e) => e.remove()));
  }
}

/**
 * A migrator that copies migration batches on emulated AMD PTDMA engines: `channels` devices, each
 * in its own worker thread with its register file, 32-entry ring and IOMMU domain, driven through
 * @pagemig/dmaengine by the generic batch-copy migrator (dcbm). The registry loads it as `ptdma`.
 */
export function createMigrator(options: PtdmaOptions = {}): PtdmaMigrator {
  const o = checkMigratorOptions('ptdma', options, optionSpec);
  const { channels, timing: timings } = o;
  if (Array.isArray(options.timing) && timings.length !== channels)
    throw migratorOptionError(
      'ptdma',
      `timing has ${timings.length} profiles for ${channels} channels; give one profile or one per channel`,
    );
  const provider = new PtdmaProvider(
    channels,
    timings,
    spinNs(o.deviceSpinUs),
    spinNs(o.runSpinUs),
    spinNs(o.driverSpinUs),
    o.resetTimeoutMs,
  );
  const mig = createDmaMigrator({
    name: 'ptdma',
    version: __PACKAGE_VERSION__,
    engines: { core: __CORE_RANGE__ },
    provider,
    offloading: o.offloading,
    nr_dma_chan: o.nr_dma_chan,
    reason_mask: o.reason_mask,
    minBatchPages: o.minBatchPages,
    manifest: {
      device: 'AMD PTDMA (emulated)',
      pciId: '1022:1498',
      queueDepth: 32,
      descriptorBytes: 32,
      timing: timings.map(timingManifest),
    },
  });
  Object.defineProperty(mig, 'devices', { get: () => provider.engines, enumerable: false });
  return mig as PtdmaMigrator;
}

export default createMigrator;
