/**
 * The options every emulated DMA driver's `createMigrator` shares, as entries of a spec for
 * `checkMigratorOptions` of @pagemig/core (which checks keys, types, ranges and defaults the same
 * way for every driver). Errors are ERR_MIGRATOR_OPTION and name the driver.
 */
import { type CustomOptionSpec, PagemigError } from '@pagemig/core';
import { type DcbmKnobs, MAX_DMA_CHANNELS } from './dcbm_params.js';

/** ERR_MIGRATOR_OPTION, naming the migrator. */
export function migratorOptionError(who: string, message: string): PagemigError {
  return new PagemigError('ERR_MIGRATOR_OPTION', `${who}: ${message}`);
}

/** `channels`: devices or contexts, one dmaengine channel each, 1..MAX_DMA_CHANNELS, default 1. */
export const channelsSpec = { type: 'integer', min: 1, max: MAX_DMA_CHANNELS, default: 1 } as const;

/** An idle spin in µs, 0..1 s, `def` when absent. */
export function spinUsSpec(def: number) {
  return { type: 'number', min: 0, max: 1e6, default: def, unit: 'µs' } as const;
}

/** An idle spin in µs as the whole nanoseconds the emulators' registers hold. */
export function spinNs(us: number): number {
  return Math.round(us * 1000);
}

/** A dcbm knob taken as given: `createDmaMigrator` parses it as the kernel parses the parameter. */
function knobSpec<K extends keyof DcbmKnobs>(): CustomOptionSpec<DcbmKnobs[K]> {
  return { type: 'custom', expected: `a value of dcbm's parameter`, parse: (v) => v as DcbmKnobs[K] };
}

/** The dcbm knobs a driver passes on to `createDmaMigrator` (sg_elems is the driver's own choice). */
export const dcbmKnobSpecs = {
  offloading: knobSpec<'offloading'>(),
  nr_dma_chan: knobSpec<'nr_dma_chan'>(),
  reason_mask: knobSpec<'reason_mask'>(),
};
