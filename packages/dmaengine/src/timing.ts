/**
 * The `timing` option of emulated DMA drivers: a device's speed as bandwidth and a fixed cost per
 * descriptor, resolved to what the device's emulator registers hold. Errors are
 * ERR_MIGRATOR_OPTION and name the driver.
 */
import { migratorOptionError } from './driver_options.js';

/** A device's speed: bytes per second and a fixed cost per descriptor. Omitted = host speed. */
export interface DeviceTiming {
  /** Bytes per second, as a number or a string such as '4GB/s', '800MB/s', '2GiB/s'. */
  bandwidth?: number | string;
  /** Microseconds per descriptor (fetch, setup, completion), on top of the transfer time. */
  latencyUs?: number;
}

/** What the device's emulator registers hold. */
export interface ResolvedTiming {
  /** MB/s (10^6 bytes per second); 0 = host speed. */
  bandwidthMBps: number;
  latencyNs: number;
}

/** Host speed: no throttle. */
export const HOST_TIMING: ResolvedTiming = Object.freeze({ bandwidthMBps: 0, latencyNs: 0 });

const UNITS: Record<string, number> = {
  '': 1,
  k: 1e3,
  m: 1e6,
  g: 1e9,
  t: 1e12,
  ki: 1024,
  mi: 1024 ** 2,
  gi: 1024 ** 3,
  ti: 1024 ** 4,
};

const bad = (driver: string, message: string) => migratorOptionError(driver, `timing: ${message}`);

/** Bytes per second from a number or '<n> [k|M|G|T][i]B/s'. */
export function parseBandwidth(driver: string, v: number | string): number {
  if (typeof v === 'number') {
    if (!Number.isFinite(v) || v <= 0)
      throw bad(driver, `bandwidth must be a positive number of bytes/s, got ${v}`);
    return v;
  }
  const m = typeof v === 'string' ? /^\s*([\d.]+)\s*([kmgt]i?)?b(?:\/s|ps)\s*$/i.exec(v) : null;
  const unit = UNITS[(m?.[2] ?? '').toLowerCase()];
  const n = m ? Number(m[1]) : Number.NaN;
  if (!m || unit === undefined || !Number.isFinite(n) || n <= 0)
    throw bad(driver, `bandwidth ${JSON.stringify(v)} is not a rate like '4GB/s', '800MB/s' or '2GiB/s'`);
  return n * unit;
}

/** One `timing` profile (undefined = host speed), checked and resolved for the registers. */
export function timingOption(driver: string, t: DeviceTiming | undefined): ResolvedTiming {
  if (t === undefined) return HOST_TIMING;
  if (typeof t !== 'object' || t === null || Array.isArray(t))
    throw bad(driver, 'expected { bandwidth?, latencyUs? }');
  for (const k of Object.keys(t)) {
    if (k !== 'bandwidth' && k !== 'latencyUs')
      throw bad(driver, `unknown field ${JSON.stringify(k)}; known: bandwidth, latencyUs`);
  }
  const bw = t.bandwidth === undefined ? 0 : parseBandwidth(driver, t.bandwidth);
  const lat = t.latencyUs ?? 0;
  if (typeof lat !== 'number' || !Number.isFinite(lat) || lat < 0 || lat > 4e6)
    throw bad(driver, `latencyUs must be 0..4000000, got ${JSON.stringify(lat)}`);
  const mbps = bw ? Math.max(1, Math.round(bw / 1e6)) : 0;
  if (mbps > 0xffffffff) throw bad(driver, 'bandwidth is too large');
  return { bandwidthMBps: mbps, latencyNs: Math.round(lat * 1000) };
}

/** How a migrator's manifest shows a resolved profile. */
export function timingManifest(
  t: ResolvedTiming,
): { bandwidthBytesPerSec: number; latencyUs: number } | 'host' {
  return t.bandwidthMBps || t.latencyNs
    ? { bandwidthBytesPerSec: t.bandwidthMBps * 1e6, latencyUs: t.latencyNs / 1000 }
    : 'host';
}
