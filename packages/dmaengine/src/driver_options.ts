/**
 * The options every emulated DMA driver's `createMigrator` checks the same way: option keys, the
 * channel count and idle spins. Errors are ERR_MIGRATOR_OPTION and name the driver.
 */
import { MAX_DMA_CHANNELS, migratorOptionError } from './dcbm.js';

/** Throws on a key outside `keys` (the driver's `optionKeys`). */
export function checkOptionKeys(driver: string, options: object, keys: readonly string[]): void {
  for (const key of Object.keys(options)) {
    if (!keys.includes(key))
      throw migratorOptionError(driver, `unknown option ${JSON.stringify(key)}; known: ${keys.join(', ')}`);
  }
}

/** `channels`: 1..MAX_DMA_CHANNELS, default 1. */
export function channelsOption(driver: string, v: unknown): number {
  const channels = v ?? 1;
  if (
    typeof channels !== 'number' ||
    !Number.isInteger(channels) ||
    channels < 1 ||
    channels > MAX_DMA_CHANNELS
  )
    throw migratorOptionError(
      driver,
      `channels must be an integer in 1..${MAX_DMA_CHANNELS}, got ${JSON.stringify(channels)}`,
    );
  return channels;
}

/** An idle spin given in µs (0..1 s, `def` when absent), in whole nanoseconds. */
export function spinNsOption(driver: string, name: string, v: unknown, def: number): number {
  if (v === undefined) return def * 1000;
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0 || v > 1e6)
    throw migratorOptionError(
      driver,
      `${name} must be a number of microseconds in 0..1000000, got ${JSON.stringify(v)}`,
    );
  return Math.round(v * 1000);
}
