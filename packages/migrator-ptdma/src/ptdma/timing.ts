import { PagemigError } from '@pagemig/core';

/** A device's speed: bytes per second and a fixed cost per descriptor. Omitted = host speed. */
export interface PtdmaTiming {
  /** Bytes per second per engine, as a number or a string such as '4GB/s', '800MB/s', '2GiB/s'. */
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

function bad(message: string): PagemigError {
  return new PagemigError('ERR_MIGRATOR_OPTION', `ptdma: timing: ${message}`);
}

/** Bytes per second from a number or '<n> [k|M|G|T][i]B/s'. */
export function parseBandwidth(v: number | string): number {
  if (typeof v === 'number') {
    if (!Number.isFinite(v) || v <= 0) throw bad(`bandwidth must be a positive number of bytes/s, got ${v}`);
    return v;
  }
  const m = /^\s*([\d.]+)\s*([kmgt]i?)?b(?:\/s|ps)\s*$/i.exec(v);
  const unit = UNITS[(m?.[2] ?? '').toLowerCase()];
  const n = m ? Number(m[1]) : Number.NaN;
  if (!m || unit === undefined || !Number.isFinite(n) || n <= 0)
    throw bad(`bandwidth ${JSON.stringify(v)} is not a rate like '4GB/s', '800MB/s' or '2GiB/s'`);
  return n * unit;
}

export function resolveTiming(t: PtdmaTiming | undefined): ResolvedTiming {
  if (t === undefined) return { bandwidthMBps: 0, latencyNs: 0 };
  if (typeof t !== 'object' || t === null) throw bad('expected { bandwidth?, latencyUs? }');
  for (const k of Object.keys(t)) {
    if (k !== 'bandwidth' && k !== 'latencyUs')
      throw bad(`unknown field ${JSON.stringify(k)}; known: bandwidth, latencyUs`);
  }
  const bw = t.bandwidth === undefined ? 0 : parseBandwidth(t.bandwidth);
  const lat = t.latencyUs ?? 0;
  if (!Number.isFinite(lat) || lat < 0 || lat > 4e6) throw bad(`latencyUs must be 0..4000000, got ${lat}`);
  const mbps = bw ? Math.max(1, Math.round(bw / 1e6)) : 0;
  if (mbps > 0xffffffff) throw bad('bandwidth is too large');
  return { bandwidthMBps: mbps, latencyNs: Math.round(lat * 1000) };
}
