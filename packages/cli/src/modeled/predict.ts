import { readFileSync } from 'node:fs';
import {
  assumptionsOf,
  type Copier,
  type HardwareProfile,
  loadProfile,
  modeledRunTime,
  parseProfileJson,
  parseSize,
  type RunShape,
} from '@pagemig/core';
import { usageError } from '../exit_codes.js';
import { renderTable } from '../table.js';
import { defaultIo, emit, type ModeledIo, runModeled, share } from './output.js';

/** Predictions the series never measured, runnable by name. */
export const SCENARIOS: Readonly<Record<string, { about: string; options: Partial<PredictOptions> }>> = {
  'mthp-sdxi': {
    about: '64 KiB mTHP promoted from the CXL tier with SDXI at 8 contexts',
    options: {
      profile: 'dram-cxl',
      folio: '64K',
      total: '1G',
      copier: 'dma',
      engine: 'sdxi',
      channels: 8,
      from: 1,
      to: 0,
    },
  },
  'cxl-compaction': {
    about: 'compaction inside the CXL tier: 4 KiB folios in 512-page batches, SDXI at 4 contexts',
    options: {
      profile: 'dram-cxl',
      folio: '4K',
      total: '64M',
      copier: 'dma',
      engine: 'sdxi',
      channels: 4,
      from: 1,
      to: 1,
    },
  },
};

export interface PredictOptions {
  scenario?: string;
  profile: string;
  folio: string;
  total: string;
  copier: 'kernel' | 'threads' | 'dma';
  threads: number;
  placement: 'spread' | 'packed';
  engine?: string;
  channels: number;
  batchPages: number;
  from: number;
  to: number;
  json: boolean;
}

function shapeOf(p: HardwareProfile, o: PredictOptions): RunShape {
  const folioBytes = parseSize(o.folio, '--folio');
  const total = parseSize(o.total, '--total');
  if (folioBytes < 4096 || folioBytes % 4096 || total % folioBytes) {
    throw usageError(`--folio ${o.folio} must be a multiple of 4KiB that divides --total ${o.total}`);
  }
  const engine = o.engine ?? Object.keys(p.dma)[0];
  const copier: Copier =
    o.copier === 'dma'
      ? { kind: 'dma', engine: engine ?? '', channels: o.channels }
      : o.copier === 'threads'
        ? { kind: 'threads', threads: o.threads, placement: o.placement }
        : { kind: 'kernel' };
  const pages = folioBytes / 4096;
  return {
    folios: [{ pages, count: total / folioBytes, pmdMapped: pages === 512 }],
    batchPages: o.batchPages,
    from: o.from,
    to: o.to,
    copier,
  };
}

/** `pagemig predict`: one modeled migration, its phases, the kernel-copy reference and its assumptions. */
export async function runPredict(opts: PredictOptions, io: ModeledIo = defaultIo()): Promise<number> {
  return runModeled(io, 'predict', opts.json, () => {
    let o = opts;
    if (opts.scenario) {
      const s = SCENARIOS[opts.scenario];
      if (!s)
        throw usageError(
          `unknown scenario ${JSON.stringify(opts.scenario)}; known: ${Object.keys(SCENARIOS).join(', ')}`,
        );
      o = { ...opts, ...s.options };
    }
    const p = o.profile.endsWith('.json')
      ? parseProfileJson(readFileSync(o.profile, 'utf8'), o.profile)
      : loadProfile(o.profile);
    const shape = shapeOf(p, o);
    const t = modeledRunTime(p, shape);
    const ref = modeledRunTime(p, { ...shape, copier: { kind: 'kernel' } });
    const assumptions = assumptionsOf(p, shape);
    if (opts.json) {
      emit(io, 'predict', {
        ok: true,
        clock: 'modeled',
        scenario: opts.scenario ?? null,
        shape,
        modeled: t,
        kernelCopy: ref,
        assumptions,
      });
      return 0;
    }
    const us = (s: number) => (s * 1e6).toFixed(1);
    const rows = Object.entries(t.phases).map(([phase, s]) => [phase, us(s), share(s / t.totalSeconds)]);
    rows.push(['total', us(t.totalSeconds), '100%']);
    io.stdout.write(
      `pagemig predict, MODELED clock (profile ${p.name}; a prediction, never measured)${opts.scenario ? `: ${SCENARIOS[opts.scenario]!.about}` : ''}\n` +
        renderTable(
          ['phase', { header: 'modeled us', align: 'right' }, { header: 'share', align: 'right' }],
          rows,
        ) +
        `modeled throughput ${t.GBps.toFixed(2)} GB/s; the kernel's own copy would take ${(ref.totalSeconds * 1e6).toFixed(1)} us (${ref.GBps.toFixed(2)} GB/s), ${(ref.totalSeconds / t.totalSeconds).toFixed(2)}x\n` +
        `assumptions:\n${assumptions.map((a) => `  - ${a}`).join('\n')}\n`,
    );
    return 0;
  });
}
