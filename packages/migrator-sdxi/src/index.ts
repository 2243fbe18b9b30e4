import { type MigratorContext, PagemigError } from '@pagemig/core';
import {
  createDmaMigrator,
  type DcbmKnobs,
  type DmaMigrator,
  type DmaProvider,
  InterruptLine,
  MAX_DMA_CHANNELS,
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

export interface SdxiOptions extends Omit<DcbmKnobs, 'sg_elems'> {
  /** Client contexts of the emulated function, one dmaengine channel each: 1..16. Default 1. */
  channels?: number;
  /** How long the idle function thread spins on its doorbells before it sleeps, in µs. Default 50. */
  deviceSpinUs?: number;
  /** How long the engine's thread spins on the interrupt word before it awaits, in µs. Default 0. */
  driverSpinUs?: number;
}

/**
 * The option keys `createMigrator` accepts. `@pagemig/registry` reads this export to check options
 * before it creates the migrator and to suggest the closest key for a typo.
 */
export const optionKeys = [
  'channels',
  'offloading',
  'nr_dma_chan',
  'reason_mask',
  'deviceSpinUs',
  'driverSpinUs',
] as const;
const OPTION_KEYS: readonly string[] = optionKeys;

/** The sdxi migrator: dcbm over the contexts of one SDXI function, plus the function for tests and tooling. */
export interface SdxiMigrator extends DmaMigrator {
  /** The function brought up at init (null before init and after dispose). */
  readonly function: SdxiFunction | null;
}

function optionError(message: string): PagemigError {
  return new PagemigError('ERR_MIGRATOR_OPTION', `sdxi: ${message}`);
}

function microseconds(name: string, v: unknown, def: number, max: number): number {
  if (v === undefined) return def;
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0 || v > max)
    throw optionError(`${name} must be a number of microseconds in 0..${max}, got ${JSON.stringify(v)}`);
  return v;
}

/** Brings up one SDXI function with `channels` client contexts for the machine the migrator runs on. */
class SdxiProvider implements DmaProvider {
  readonly name = 'sdxi';
  fn: SdxiFunction | null = null;

  constructor(
    readonly channels: number,
    private readonly deviceSpinNs: number,
    private readonly driverSpinNs: number,
  ) {}

  async probe(ctx: MigratorContext): Promise<SdxiContext[]> {
    const fn = new SdxiFunction({
      index: 0,
      ctx,
      contexts: this.channels,
      // The function's MSIs all go to one line: contexts finishing together wake the engine once.
      line: new InterruptLine(this.driverSpinNs),
      deviceSpinNs: this.deviceSpinNs,
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
  for (const key of Object.keys(options)) {
    if (!OPTION_KEYS.includes(key))
      throw optionError(`unknown option ${JSON.stringify(key)}; known: ${OPTION_KEYS.join(', ')}`);
  }
  const channels = options.channels ?? 1;
  if (!Number.isInteger(channels) || channels < 1 || channels > MAX_DMA_CHANNELS)
    throw optionError(
      `channels must be an integer in 1..${MAX_DMA_CHANNELS}, got ${JSON.stringify(channels)}`,
    );
  const deviceSpinNs = Math.round(microseconds('deviceSpinUs', options.deviceSpinUs, 50, 1e6) * 1000);
  const driverSpinNs = Math.round(microseconds('driverSpinUs', options.driverSpinUs, 0, 1e6) * 1000);

  const provider = new SdxiProvider(channels, deviceSpinNs, driverSpinNs);
  const mig = createDmaMigrator({
    name: 'sdxi',
    version: __PACKAGE_VERSION__,
    engines: { core: __CORE_RANGE__ },
    provider,
    offloading: options.offloading,
    nr_dma_chan: options.nr_dma_chan,
    reason_mask: options.reason_mask,
    manifest: {
      device: 'SNIA SDXI 1.0 function (emulated)',
      pciClass: '0x120100',
      contexts: channels,
      ringEntries: RING_ENTRIES,
      descriptorBytes: 64,
    },
  });
  Object.defineProperty(mig, 'function', { get: () => provider.fn, enumerable: false });
  return mig as SdxiMigrator;
}

export default createMigrator;
