import { predictCase } from './benchmark.js';
import { type HardwareProfile, parseProfile } from './profile.js';
import type { Measurement } from './published.js';

/**
 * Calibration: fits free profile parameters (dotted paths such as 'kernel.perFolioNs' or
 * 'dma.ptdma.channelGBps') to measurements by least squares on the log of predicted/measured
 * throughput, with a deterministic coordinate descent in log-parameter space. Held-out cells are
 * dropped before the objective is built, so they cannot influence the fit.
 */

export interface FitOptions {
  free: readonly string[];
  /** Stop when every parameter's multiplicative step is below exp(tolerance). Default 0.01. */
  tolerance?: number;
  /** Upper bound on sweeps over all parameters. Default 80. */
  maxSweeps?: number;
}

export interface FittedParameter {
  path: string;
  initial: number;
  fitted: number;
}

export interface FitResult {
  profile: HardwareProfile;
  parameters: FittedParameter[];
  cellsUsed: number;
  /** Weighted root mean square of ln(predicted / measured) over the cells used, before and after. */
  rmsLogErrorBefore: number;
  rmsLogError: number;
  sweeps: number;
}

/** Bounds beyond positivity, from the schema. */
const BOUNDS: Readonly<Record<string, readonly [number, number]>> = {
  'contention.sharpness': [1, 32],
  'cpu.writeLinkFactor': [1, 4],
  'kernel.unmapShare': [0.01, 1],
};

export function getParam(p: HardwareProfile, path: string): number {
  let o: unknown = p;
  for (const k of path.split('.')) o = (o as Record<string, unknown> | undefined)?.[k];
  if (typeof o !== 'number') throw new RangeError(`profile ${p.name} has no numeric parameter ${path}`);
  return o;
}

export function setParam(p: HardwareProfile, path: string, value: number): HardwareProfile {
  const copy = structuredClone(p);
  const keys = path.split('.');
  let o = copy as unknown as Record<string, unknown>;
  for (const k of keys.slice(0, -1)) o = o[k] as Record<string, unknown>;
  o[keys.at(-1)!] = value;
  return copy;
}

/**
 * Relative noise floor: a cell weighs 1 / max(NOISE_FLOOR, sd / mean)^2, so a cell published as
 * 7.96 ± 2.22 counts far less than 10.84 ± 0.18, and no cell counts more than a 5% one.
 */
export const NOISE_FLOOR = 0.05;

/** Cell weights: noise weight, divided by the table's fitted cell count so each table counts once. */
function weightsOf(cells: readonly Measurement[]): number[] {
  const perTable = new Map<string, number>();
  for (const c of cells) perTable.set(c.table, (perTable.get(c.table) ?? 0) + 1);
  return cells.map((m) => 1 / Math.max(NOISE_FLOOR, (m.sd ?? 0) / m.GBps) ** 2 / perTable.get(m.table)!);
}

/** Weighted root mean square of ln(predicted / measured). */
function rmsLog(p: HardwareProfile, cells: readonly Measurement[], weights: readonly number[]): number {
  let s = 0;
  let w = 0;
  cells.forEach((c, i) => {
    s += weights[i]! * Math.log(predictCase(p, c.case).GBps / c.GBps) ** 2;
    w += weights[i]!;
  });
  return Math.sqrt(s / w);
}

export function calibrate(
  start: HardwareProfile,
  measurements: readonly Measurement[],
  opts: FitOptions,
): FitResult {
  const cells = measurements.filter((m) => !m.heldOut);
  if (!cells.length) throw new RangeError('calibrate: no measurements to fit (all held out)');
  const tol = opts.tolerance ?? 0.01;
  const maxSweeps = opts.maxSweeps ?? 80;
  const initial = opts.free.map((path) => {
    const v = getParam(start, path);
    if (!(v > 0)) throw new RangeError(`calibrate: ${path} must start positive to be fitted (is ${v})`);
    return v;
  });
  const weights = weightsOf(cells);
  let p = start;
  let best = rmsLog(p, cells, weights);
  const before = best;
  // One log-step per parameter: grows after a success, halves after a failure in both directions.
  const steps = opts.free.map(() => Math.log(2));
  let sweeps = 0;
  while (steps.some((s) => s > tol) && sweeps < maxSweeps) {
    sweeps++;
    opts.free.forEach((path, i) => {
      if (steps[i]! <= tol) return;
      const v = getParam(p, path);
      const [lo, hi] = BOUNDS[path] ?? [0, Number.POSITIVE_INFINITY];
      for (const dir of [1, -1]) {
        const nv = Math.min(hi, Math.max(lo, v * Math.exp(dir * steps[i]!)));
        if (nv === v) continue;
        const cand = setParam(p, path, nv);
        const e = rmsLog(cand, cells, weights);
        if (e < best - 1e-12) {
          p = cand;
          best = e;
          steps[i] = Math.min(steps[i]! * 1.5, Math.log(4));
          return;
        }
      }
      steps[i] = steps[i]! / 2;
    });
  }
  return {
    profile: parseProfile(p, `fitted ${p.name}`),
    parameters: opts.free.map((path, i) => ({ path, initial: initial[i]!, fitted: getParam(p, path) })),
    cellsUsed: cells.length,
    rmsLogErrorBefore: before,
    rmsLogError: best,
    sweeps,
  };
}
