import { HPAGE_PMD_NR, PAGE_SIZE } from '../mmzone.js';
import type { HardwareProfile } from './profile.js';
import type { BenchCase, Measurement } from './published.js';
import { type ModeledTime, modeledRunTime, type RunShape } from './run_time.js';

/** The run shape of a series benchmark case: move_pages() of node 0 memory to node 1. */
export function shapeOf(c: BenchCase, from = 0, to = 1): RunShape {
  const pages = c.folioBytes / PAGE_SIZE;
  if (!Number.isInteger(pages) || pages < 1)
    throw new RangeError(`folio size ${c.folioBytes} is not a multiple of ${PAGE_SIZE}`);
  return {
    folios: [{ pages, count: c.folios, pmdMapped: pages === HPAGE_PMD_NR }],
    batchPages: c.batchPages,
    from,
    to,
    copier: c.copier,
  };
}

export function predictCase(p: HardwareProfile, c: BenchCase): ModeledTime {
  return modeledRunTime(p, shapeOf(c));
}

export interface CellComparison extends Measurement {
  predictedGBps: number;
  /** predicted / published - 1. */
  error: number;
}

export interface Comparison {
  profile: string;
  cells: CellComparison[];
  /** Median |error| over held-out cells (null when there are none). */
  heldOutMedianAbsError: number | null;
  fittedMedianAbsError: number | null;
}

function median(values: readonly number[]): number | null {
  if (!values.length) return null;
  const s = [...values].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** The model's prediction for every measured cell, with its error. */
export function compareToMeasurements(p: HardwareProfile, cells: readonly Measurement[]): Comparison {
  const out = cells.map((m) => {
    const predictedGBps = predictCase(p, m.case).GBps;
    return { ...m, predictedGBps, error: predictedGBps / m.GBps - 1 };
  });
  const abs = (held: boolean) => out.filter((c) => c.heldOut === held).map((c) => Math.abs(c.error));
  return {
    profile: p.name,
    cells: out,
    heldOutMedianAbsError: median(abs(true)),
    fittedMedianAbsError: median(abs(false)),
  };
}
