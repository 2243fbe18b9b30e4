import os from 'node:os';
import { formatSize } from '../table.js';

export interface Preset {
  name: 'quick' | 'full';
  folioSizes: number[];
  /** Bytes migrated per run of the folio-size sweep. */
  folioSweepBytes: number;
  /** Threads / channels of the parallel migrators. */
  lanes: number[];
  reps: number;
  /** Default --max-total. */
  maxTotal: number;
  /** Node size of the busy-system compaction. */
  compactionNode: number;
  baselineMs: number;
}

const K = 1 << 10;
const M = 1 << 20;

export const PRESETS: Record<'quick' | 'full', Preset> = {
  quick: {
    name: 'quick',
    folioSizes: [4 * K, 64 * K, 2 * M],
    folioSweepBytes: 16 * M,
    lanes: [1, 2],
    reps: 1,
    maxTotal: 64 * M,
    compactionNode: 64 * M,
    baselineMs: 150,
  },
  full: {
    name: 'full',
    folioSizes: [4 * K, 16 * K, 64 * K, 128 * K, 256 * K, 512 * K, 1 * M, 2 * M],
    folioSweepBytes: 128 * M,
    lanes: [1, 2, 4],
    reps: 3,
    maxTotal: 1 << 30,
    compactionNode: 256 * M,
    baselineMs: 300,
  },
};

/** The series' total-size sweep, in 2 MiB folios. */
export const SERIES_FOLIO_COUNTS = [1, 8, 16, 32, 64, 256, 512, 2048, 8192];
export const THP = 2 * M;

/** Headroom per node beyond what a run maps (page tables, watermarks, the fragment of a THP). */
export const NODE_HEADROOM = 16 * M;

/**
 * RAM one run at `total` bytes needs: source and destination nodes, plus the reference copy's two
 * buffers (at most 256 MiB each).
 */
export function ramNeeded(total: number): number {
  return 2 * (total + NODE_HEADROOM) + 2 * Math.min(total, 256 * M);
}

/**
 * The largest total a run may migrate: the requested cap, lowered to what fits in half of the free
 * RAM (the box is shared), in whole 2 MiB folios. Returns the cap and a note saying why.
 */
export function capTotal(requested: number, freeBytes = os.freemem()): { bytes: number; note: string } {
  let bytes = Math.max(THP, Math.floor(requested / THP) * THP);
  const budget = freeBytes / 2;
  let lowered = false;
  while (bytes > THP && ramNeeded(bytes) > budget) {
    bytes = Math.max(THP, Math.floor(bytes / 2 / THP) * THP);
    lowered = true;
  }
  const series = 8192 * THP;
  const why = lowered
    ? `lowered from --max-total ${formatSize(requested)} to fit half of the ${formatSize(freeBytes)} of free RAM`
    : `--max-total ${formatSize(requested)}`;
  return {
    bytes,
    note:
      bytes >= series
        ? `total-size sweep runs the series' 1..8192 folios of 2MiB`
        : `total-size sweep capped at ${bytes / THP} folios of 2MiB (${formatSize(bytes)}; the series goes to 8192 = ${formatSize(series)}): ${why}; source and destination nodes both hold the run in RAM (${formatSize(ramNeeded(bytes))} with the reference buffers) on a ${formatSize(os.totalmem())} machine; raise the cap with --max-total`,
  };
}
