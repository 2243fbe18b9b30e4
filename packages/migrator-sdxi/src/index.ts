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
  HOST_TIMING,
  InterruptLine,
  migratorOptionError,
  minBatchPagesSpec,
  type ResolvedTiming,
  spinNs,
  spinUsSpec,
  timingManifest,
  timingOption,
} from '@pagemig/dmaengine';
import type { SdxiContext } from './sdxi/channel.js';
import { SdxiFunction } from './sdxi/function.js';
import { RING_ENTRIES } from './sdxi/ring.js';

export { AdminQueue } from './sdxi/admin.js';
export { type ContextHost, DATA_AKEY, SdxiChannel, SdxiContext } from './sdxi/channel.js';
export * from './sdxi/descriptor.js';
export type { SdxiDeviceInit } from './sdxi/device.js';
export * from './sdxi/errlog.js';
export { type SdxiDeviceCounters, SdxiFunction, type SdxiFunctionOptions } from './sdxi/function.js';
export { deviceUrl, type LaunchedFunction, type LaunchOptions, launchFunction } from './sdxi/launch.js';
export * as regs from './sdxi/regs.js';
export { Mmio } from './sdxi/regs.js';
export { CONTEXT_BLOCK_PAGES, ContextRing, RING_ENTRIES } from './sdxi/ring.js';
export { deviceCodeOf, statusOfErrlog } from './sdxi/status.js';
export * as tables from './sdxi/tables.js';

/** The SDXI function's speed (dmaengine's `DeviceTiming`). */
export type SdxiTiming = DeviceTiming;

export interface SdxiOptions extends Omit<DcbmKnobs, 'sg_elems'> {
  /** Client contexts of the emulated function, one dmaengine channel each: 1..16. Default 1. */
  channels?: number;
  /** Throttle the function to a device's speed; its contexts share it. Default: host speed. */
  timing?: SdxiTiming;
  /** How long the idle function thread spins on its doorbells before it sleeps, in µs. Default 50. */
  deviceSpinUs?: number;
  /**
   * How long the function polls for the next doorbell after each batch while a migration run goes,
   * in µs (it stops early when the run ends or when the scheduler gave its core to another thread
   * for a millisecond). Default 1000.
   */
  runSpinUs?: number;
  /** Batches of fewer base pages are left to the CPU (counted in `stats().declined.small`). Default 0. */
  minBatchPages?: number;
  /** How long the engine's thread spins on the interrupt word before it awaits, in µs. Default 0. */
  driverSpinUs?: number;
}

const optionSpec = {
  channels: channelsSpec,
  timing: {
    type: 'custom',
    expected: 'one timing profile',
    parse: (v: unknown) => {
      if (Array.isArray(v))
        throw migratorOptionError(
          'sdxi',
          'timing: one profile for the function, whose contexts share it; got an array',
        );
      return timingOption('sdxi', v as SdxiTiming);
    },
    default: HOST_TIMING,
  },
  ...dcbmKnobSpecs,
  deviceSpinUs: spinUsSpec(50),
  runSpinUs: spinUsSpec(DEFAULT_RUN_SPIN_US),
  minBatchPages: minBatchPagesSpec(0),
  driverSpinUs: spinUsSpec(0),
} as const satisfies MigratorOptionsSpec;

/**
 * The option keys `createMigrator` accepts. `@pagemig/registry` reads this export to check options
 * before it creates the migrator and to suggest the closest key for a typo.
 */
export const optionKeys = Object.keys(optionSpec) as readonly (keyof typeof optionSpec)[];

/** The sdxi migrator: dcbm over the contexts of one SDXI function, plus the function for tests and tooling. */
export interface SdxiMigrator extends DmaMigrator {
  /** The function brought up at init (null before init and after dispose). */
  readonly function: SdxiFunction | null;
}

/** Brings up one SDXI function with `channels` client contexts for the machine the migrator runs on. */
class SdxiProvider implements DmaProvider {
  readonly name = 'sdxi';
  fn: SdxiFunction | null = null;

  constructor(
    readonly channels: number,
    private readonly timing: ResolvedTiming,
    private readonly deviceSpinNs: number,
    private readonly runSpinNs: number,
    private readonly driverSpinNs: number,
  ) {}

  /**
   * A migration run begins: the function polls between batches. It runs its contexts one window at
   * a time on one data mover (one thread), so a batch cut across contexts is copied no sooner: the
   * run's batches go to the first context only.
   */
  runStart(): number {
    this.fn?.setRun(true);
    return this.fn ? 1 : 0;
  }

  /** The last run ended: the function sleeps once idle. */
  runEnd(): void {
    this.fn?.setRun(false);
  }

  async probe(ctx: MigratorContext): Promise<SdxiContext[]> {
    const fn = new SdxiFunction({
      index: 0,
      ctx,
      contexts: this.channels,
      // The function's MSIs all go to one line: contexts finishing together wake the engine once.
      line: new InterruptLine(this.driverSpinNs),
      timing: this.timing,
      deviceSpinNs: this.deviceSpinNs,
      runSpinNs: this.runSpinNs,
    });
    try {
      await fn.start();
    } catch (e) {
      await fn.remove();
      throw e;
    }
    this.fn = fn;
    return fn.contexts;
  }

  async remove(): Promise<void> {
    const fn = this.fn;
    this.fn = null;
    await fn?.remove();
  }
}

/**
 * A migrator that copies migration batches on an emulated SNIA SDXI function: one worker thread
 * with SDXI's registers, context tables, 1024-entry rings of 64-byte descriptors and error log in
 * emulated RAM, one client context (and address space) per channel, driven through
 * @pagemig/dmaengine by the generic batch-copy migrator (dcbm). The registry loads it as `sdxi`.
 */
export function createMigrator(options: SdxiOptions = {}): SdxiMigrator {
  const o = checkMigratorOptions('sdxi', options, optionSpec);
  const { channels, timing } = o;
  const provider = new SdxiProvider(
    channels,
    timing,
    spinNs(o.deviceSpinUs),
    spinNs(o.runSpinUs),
    spinNs(o.driverSpinUs),
  );
  const mig = createDmaMigrator({
    name: 'sdxi',
    version: __PACKAGE_VERSION__,
    engines: { core: __CORE_RANGE__ },
    provider,
    offloading: o.offloading,
    nr_dma_chan: o.nr_dma_chan,
    reason_mask: o.reason_mask,
    minBatchPages: o.minBatchPages,
    manifest: {
      device: 'SNIA SDXI 1.0 function (emulated)',
      pciClass: '0x120100',
      contexts: channels,
      ringEntries: RING_ENTRIES,
      descriptorBytes: 64,
      timing: timingManifest(timing),
    },
  });
  Object.defineProperty(mig, 'function', { get: () => provider.fn, enumerable: false });
  return mig as SdxiMigrator;
}

export default createMigrator;
