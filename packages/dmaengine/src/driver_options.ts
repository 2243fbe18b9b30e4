/**
 * The options every emulated DMA driver's `createMigrator` shares, as entries of a spec for
 * `checkMigratorOptions` of @pagemig/core (which checks keys, types, ranges and defaults the same
 * way for every driver). Errors are ERR_MIGRATOR_OPTION and name the driver.
 */
import { availableParallelism } from 'node:os';
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

/**
 * Default poll of an emulated device after each batch while a migration run goes (`runSpinUs`): a
 * millisecond covers the engine's own work between two batches of 2 MiB (tens of µs) and of 512
 * small folios (hundreds of µs); a device that is descheduled or sees the run end stops earlier.
 */
export const DEFAULT_RUN_SPIN_US = 1000;

/**
 * How many device threads may poll during a run: the host's cores but one, which the engine's
 * thread needs between batches (at least one). More pollers than that share a core with the engine
 * or with each other, and the scheduler's time slices (milliseconds) then delay both.
 */
export function devicePollers(): number {
  pollers ||= Math.max(1, availableParallelism() - 1);
  return pollers;
}
let pollers = 0;

/** `minBatchPages`: batches of fewer base pages go to the CPU; 0..262144, `def` when absent. */
export function minBatchPagesSpec(def: number) {
  return { type: 'integer', min: 0, max: 262144, default: def, unit: 'pages' } as const;
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
