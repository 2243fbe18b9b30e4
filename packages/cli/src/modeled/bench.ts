import {
  type Comparison,
  compareToMeasurements,
  computeFindings,
  type Findings,
  loadProfile,
  publishedData,
  zen3CopyShare,
} from '@pagemig/core';
import { renderTable } from '../table.js';
import { defaultIo, emit, fixed2, type ModeledIo, pct, runModeled, share, sizeLabel } from './output.js';

const ACCEPTANCE = 0.2;

/** Rows of one published table: published, modeled and error lines per row label. */
function tableText(cmp: Comparison, table: string, title: string): string {
  const cells = cmp.cells.filter((c) => c.table === table);
  const columns = [...new Set(cells.map((c) => c.column))];
  const rows = [...new Set(cells.map((c) => c.row))];
  const lines: string[][] = [];
  for (const row of rows) {
    const of = (col: string) => cells.find((c) => c.row === row && c.column === col);
    const held = cells.some((c) => c.row === row && c.heldOut);
    lines.push([row, 'published', ...columns.map((col) => (of(col) ? fixed2(of(col)!.GBps) : ''))]);
    lines.push([
      '',
      held ? 'modeled (held out)' : 'modeled (fitted)',
      ...columns.map((col) => (of(col) ? fixed2(of(col)!.predictedGBps) : '')),
    ]);
    lines.push([
      '',
      'error',
      ...columns.map((col) => (of(col) ? `${pct(of(col)!.error)}${of(col)!.heldOut ? '*' : ''}` : '')),
    ]);
  }
  return `${table} ${title} (GB/s)\n${renderTable(['', '', ...columns.map((c) => ({ header: c, align: 'right' as const }))], lines)}`;
}

function findingsText(f: Findings, cmp: Comparison): string {
  const pub = (table: string, row: string, col: string) =>
    cmp.cells.find((c) => c.table === table && c.row === row && c.column === col)?.GBps;
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
  const rows: string[][] = [
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
    ...f.copyShare.map((c, i) => [
      `copy share, ${c.folios} x ${sizeLabel(c.folioBytes)}`,
      zen3CopyShare[i]!.printed,
      share(c.share),
    ]),
  ];
  return `Published findings, recomputed by the model\n${renderTable(['finding', 'published', 'modeled'], rows)}`;
}

/** `pagemig bench --clock modeled --profile P`: the model's predictions next to the published tables. */
export async function runModeledBench(
  opts: { profile: string; json: boolean },
  io: ModeledIo = defaultIo(),
): Promise<number> {
  return runModeled(io, 'bench', opts.json, () => {
    const p = loadProfile(opts.profile);
    const data = publishedData[p.name];
    const cmp = data ? compareToMeasurements(p, data.measurements) : null;
    const findings = data ? computeFindings(p) : null;
    if (opts.json) {
      emit(io, 'bench', {
        ok: true,
        clock: 'modeled',
        profile: p.name,
        note: 'modeled time from a hardware profile, not measured on this machine',
        heldOutMedianAbsError: cmp?.heldOutMedianAbsError ?? null,
        fittedMedianAbsError: cmp?.fittedMedianAbsError ?? null,
        cells: cmp?.cells ?? [],
        findings,
      });
      return 0;
    }
    let out = `pagemig bench, MODELED clock: profile ${p.name} - every GB/s below marked "modeled" is the timing model's prediction, not a measurement\n`;
    if (!cmp || !data || !findings) {
      io.stdout.write(
        `${out}No published measurements exist for profile ${p.name}; use \`pagemig predict --profile ${p.name}\`.\n`,
      );
      return 0;
    }
    out +=
      'published: kernel-series.md section 7; error = modeled / published - 1; * = held out (never fitted, predicted)\n\n';
    for (const t of data.tables) out += `${tableText(cmp, t.id, `${t.title}, ${t.source}`)}\n`;
    out += findingsText(findings, cmp);
    const held = cmp.cells.filter((c) => c.heldOut).length;
    out += `\nheld-out cells: ${held}, median |error| of the modeled values ${share(cmp.heldOutMedianAbsError ?? 0)} (acceptance <= ${share(ACCEPTANCE)})\n`;
    out += `fitted cells: ${cmp.cells.length - held}, median |error| ${share(cmp.fittedMedianAbsError ?? 0)}\n`;
    io.stdout.write(out);
    return 0;
  });
}
