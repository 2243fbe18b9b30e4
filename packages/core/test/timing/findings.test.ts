import { describe, expect, it } from 'vitest';
import { compareToMeasurements } from '../../src/timing/benchmark.js';
import { computeFindings } from '../../src/timing/findings.js';
import { loadProfile } from '../../src/timing/profile.js';
import { zen3CopyShare, zen3Published } from '../../src/timing/published.js';

// The fitted profile against the series' published data: every number below is computed by the
// model; the published side is read from the encoded tables.
const p = loadProfile('zen3-epyc-ptdma');
const f = computeFindings(p);
const pub = (table: string, row: string, column: string) =>
  zen3Published.find((m) => m.table === table && m.row === row && m.column === column)!.GBps;

describe('zen3-epyc-ptdma reproduces the published findings', () => {
  it('held-out cells (N = 2..16 threads and channels): median |error| <= 20%', () => {
    const c = compareToMeasurements(p, zen3Published);
    expect(c.cells.filter((x) => x.heldOut)).toHaveLength(80);
    expect(c.heldOutMedianAbsError).toBeLessThanOrEqual(0.2);
  });

  it('one DMA channel is slower than the CPU for 4K..1M folios, as in every published row', () => {
    for (const r of f.oneChannelVsCpu) {
      expect(r.ratio, `${r.folioBytes} B`).toBeLessThan(1);
      const col = r.folioBytes >= 1 << 20 ? '1M' : `${r.folioBytes / 1024}K`;
      expect(pub('7.4c', '1', col)).toBeLessThan(pub('7.4a', 'baseline', col));
    }
  });

  it('about 6x for 2 MiB folios at 16 channels (within 25% of the published ratio)', () => {
    const published = pub('7.4c', '16', '2M') / pub('7.4a', 'baseline', '2M');
    expect(f.dma16Speedup2M / published).toBeGreaterThan(0.75);
    expect(f.dma16Speedup2M / published).toBeLessThan(1.25);
  });

  it('about 3.4x for 16 copy threads on 2 MiB folios (within 25% of the published ratio)', () => {
    const published = pub('7.4b', '16', '2M') / pub('7.4a', 'baseline', '2M');
    expect(f.threads16Speedup2M / published).toBeGreaterThan(0.75);
    expect(f.threads16Speedup2M / published).toBeLessThan(1.25);
  });

  it('diminishing returns past 8-12 channels: a channel added beyond 12 gains under half of one below 8', () => {
    const gain = (a: number, b: number) =>
      (pub('7.4c', String(b), '2M') - pub('7.4c', String(a), '2M')) / (b - a);
    expect(gain(12, 16) / gain(1, 8)).toBeLessThan(0.5);
    expect(f.marginalGainRatio).toBeLessThan(0.5);
    const s = f.channelScaling.map((c) => c.GBps);
    for (let i = 1; i < s.length; i++) expect(s[i]).toBeGreaterThan(s[i - 1]!);
  });

  it('copy share: < 1% for one 4 KiB page; ~35% and ~97% within 5 points; ~66% within 15', () => {
    const [one4k, many4k, one2m, many2m] = f.copyShare;
    const off = (i: number) => Math.abs(f.copyShare[i]!.share - zen3CopyShare[i]!.share);
    expect(one4k!.share).toBeLessThan(0.01);
    expect(off(1), zen3CopyShare[1]!.printed).toBeLessThan(0.05);
    expect(off(3), zen3CopyShare[3]!.printed).toBeLessThan(0.05);
    // Known gap (README): the fitted per-call cost leaves one 2 MiB folio about 10 points short.
    expect(off(2), zen3CopyShare[2]!.printed).toBeLessThan(0.15);
    // The ordering the series draws its Amdahl argument from.
    expect(one4k!.share).toBeLessThan(many4k!.share);
    expect(many4k!.share).toBeLessThan(one2m!.share);
    expect(one2m!.share).toBeLessThan(many2m!.share);
  });
});
