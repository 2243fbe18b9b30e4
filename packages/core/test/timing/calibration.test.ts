import { describe, expect, it } from 'vitest';
import { predictCase } from '../../src/timing/benchmark.js';
import { calibrate, getParam, setParam } from '../../src/timing/calibrate.js';
import { loadProfile } from '../../src/timing/profile.js';
import { type Measurement, zen3Published } from '../../src/timing/published.js';

const shipped = loadProfile('zen3-epyc-ptdma');

describe('calibration', () => {
  it('recovers known parameters from synthetic measurements', () => {
    const truth = [
      ['kernel.perFolioNs', 610],
      ['cpu.ccdGBps', 9.5],
      ['dma.ptdma.channelGBps', 16],
      ['dma.ptdma.perMappingNs', 300],
    ] as const;
    let t = shipped;
    for (const [path, v] of truth) t = setParam(t, path, v);
    // The fitted-side cases of the published set, "measured" on the true machine.
    const synthetic: Measurement[] = zen3Published
      .filter((m) => !m.heldOut && m.table !== '7.4d')
      .map((m) => ({ ...m, sd: 0, GBps: predictCase(t, m.case).GBps }));
    const fit = calibrate(shipped, synthetic, { free: truth.map(([path]) => path), tolerance: 1e-4 });
    for (const [path, v] of truth) expect(getParam(fit.profile, path) / v, path).toBeCloseTo(1, 2);
    expect(fit.rmsLogError).toBeLessThan(1e-3);
    expect(fit.rmsLogErrorBefore).toBeGreaterThan(0.05);
  });

  it('never uses held-out cells: perturbing them changes no fitted parameter, perturbing a fitted cell does', () => {
    const free = shipped.calibration!.free;
    const opts = { free, maxSweeps: 3 };
    const base = calibrate(shipped, zen3Published, opts);
    const heldOutDoubled = zen3Published.map((m) => (m.heldOut ? { ...m, GBps: m.GBps * 2 } : m));
    expect(calibrate(shipped, heldOutDoubled, opts).parameters).toEqual(base.parameters);
    const fittedDoubled = zen3Published.map((m) =>
      !m.heldOut && m.table === '7.4a' ? { ...m, GBps: m.GBps * 2 } : m,
    );
    expect(calibrate(shipped, fittedDoubled, opts).parameters).not.toEqual(base.parameters);
  });

  it('the shipped profile is the fit of the published data (refitting does not improve it)', () => {
    const fit = calibrate(shipped, zen3Published, { free: shipped.calibration!.free });
    expect(fit.cellsUsed).toBe(zen3Published.filter((m) => !m.heldOut).length);
    expect(fit.rmsLogErrorBefore - fit.rmsLogError).toBeLessThan(0.002);
  });

  it('keeps the held-out copy-share table out of the fit: the cold-start cost it hinges on is fixed, with a reason', () => {
    expect(shipped.calibration!.free).not.toContain('cpu.copyStartNs');
    expect(shipped.calibration!.fixed['cpu.copyStartNs']).toMatch(/DRAM access/);
  });

  it('explains what it cannot fit', () => {
    expect(() =>
      calibrate(
        shipped,
        zen3Published.filter((m) => m.heldOut),
        { free: ['cpu.ccdGBps'] },
      ),
    ).toThrow(/all held out/);
    expect(() => calibrate(shipped, zen3Published, { free: ['cpu.nope'] })).toThrow(
      /no numeric parameter cpu\.nope/,
    );
  });
});
