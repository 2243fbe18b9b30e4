import type { Findings, Measurement } from '@pagemig/core/timing';
import { zen3CopyShare } from '@pagemig/core/timing';
import type { Experiment } from '../bench/suite.js';
import { share, sizeLabel } from './output.js';

/** The series' findings beside the model's, for the experiments kept. */
export function findingsRows(
  f: Findings,
  measurements: readonly Measurement[],
  experiments: readonly Experiment[],
): string[][] {
  const pub = (table: string, row: string, col: string) =>
    measurements.find((c) => c.table === table && c.row === row && c.column === col)?.GBps;
  const base2M = pub('7.4a', 'baseline', '2M');
  const dma16 = pub('7.4c', '16', '2M');
  const mt16 = pub('7.4b', '16', '2M');
  const gain = (a: number, b: number) => {
    const hi = pub('7.4c', String(b), '2M');
    const lo = pub('7.4c', String(a), '2M');
    return hi !== undefined && lo !== undefined ? (hi - lo) / (b - a) : undefined;
  };
  const [late, early] = [gain(12, 16), gain(1, 8)];
  const publishedGainRatio = late !== undefined && early !== undefined ? late / early : undefined;
  const rows: string[][] = [];
  if (experiments.includes('folio'))
    rows.push(
      [
        '1 DMA channel vs CPU, 4K..1M folios',
        f.oneChannelVsCpu
          .map((r) => {
            const col = sizeLabel(r.folioBytes);
            const dma = pub('7.4c', '1', col);
            const cpu = pub('7.4a', 'baseline', col);
            return dma && cpu ? `${col} ${(dma / cpu).toFixed(2)}x` : col;
          })
          .join(', '),
        f.oneChannelVsCpu.map((r) => `${sizeLabel(r.folioBytes)} ${r.ratio.toFixed(2)}x`).join(', '),
      ],
      [
        '16 DMA channels, 2M folios',
        base2M && dma16 ? `${(dma16 / base2M).toFixed(2)}x ("~6x")` : '~6x',
        `${f.dma16Speedup2M.toFixed(2)}x`,
      ],
      [
        '16 copy threads, 2M folios',
        base2M && mt16 ? `${(mt16 / base2M).toFixed(2)}x ("3.4x")` : '3.4x',
        `${f.threads16Speedup2M.toFixed(2)}x`,
      ],
      [
        'gain per channel 12->16 / 1->8 (2M)',
        publishedGainRatio === undefined
          ? 'diminishing past 8-12'
          : `${publishedGainRatio.toFixed(2)} (diminishing past 8-12)`,
        `${f.marginalGainRatio.toFixed(2)} (${f.channelScaling.map((c) => `${c.channels}ch ${c.GBps.toFixed(1)}`).join(', ')})`,
      ],
    );
  if (experiments.includes('share'))
    rows.push(
      ...f.copyShare.map((c, i) => [
        `copy share, ${c.folios} x ${sizeLabel(c.folioBytes)}`,
        zen3CopyShare[i]!.printed,
        share(c.share),
      ]),
    );
  return rows;
}
