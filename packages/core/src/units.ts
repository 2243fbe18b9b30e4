import { PagemigError } from './errno.js';
import { show } from './show.js';

const UNITS: Readonly<Record<string, number>> = {
  '': 1,
  B: 1,
  K: 1024,
  KB: 1024,
  KIB: 1024,
  M: 1024 ** 2,
  MB: 1024 ** 2,
  MIB: 1024 ** 2,
  G: 1024 ** 3,
  GB: 1024 ** 3,
  GIB: 1024 ** 3,
  T: 1024 ** 4,
  TB: 1024 ** 4,
  TIB: 1024 ** 4,
};

export type Size = number | string;

/**
 * Parses a byte size: a non-negative integer, or a string such as `'512MiB'`, `'2GiB'`, `'64k'`.
 * Binary units throughout (the kernel's convention: 1K = 1024).
 */
export function parseSize(value: Size, field = 'size'): number {
  if (typeof value === 'number') {
    if (Number.isSafeInteger(value) && value >= 0) return value;
    throw new PagemigError(
      'ERR_INVALID_SIZE',
      `${field}: expected a non-negative integer byte count, got ${value}`,
    );
  }
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$/.exec(value);
  const unit = m ? UNITS[m[2]!.toUpperCase()] : undefined;
  if (!m || unit === undefined) {
    throw new PagemigError(
      'ERR_INVALID_SIZE',
      `${field}: cannot parse ${show(value)}; use a byte count or a number with one of B, KiB, MiB, GiB, TiB (e.g. '512MiB')`,
    );
  }
  const bytes = Number(m[1]) * unit;
  if (!Number.isSafeInteger(bytes)) {
    throw new PagemigError('ERR_INVALID_SIZE', `${field}: ${show(value)} is not a whole number of bytes`);
  }
  return bytes;
}

/** Formats bytes with the largest binary unit that divides them exactly ('2MiB', '4KiB', '1536B'). */
export function formatSize(bytes: number): string {
  for (const [unit, mult] of [
    ['TiB', 1024 ** 4],
    ['GiB', 1024 ** 3],
    ['MiB', 1024 ** 2],
    ['KiB', 1024],
  ] as const) {
    if (bytes >= mult && bytes % mult === 0) return `${bytes / mult}${unit}`;
  }
  return `${bytes}B`;
}
