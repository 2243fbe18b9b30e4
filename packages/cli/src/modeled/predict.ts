import { readFileSync } from 'node:fs';
import { parseSize } from '@pagemig/core';
import {
  assumptionsOf,
  type Copier,
  type HardwareProfile,
  loadProfile,
  modeledRunTime,
  parseProfileJson,
  type RunShape,
} from '@pagemig/core/timing';
import { usageError } from '../exit_codes.js';
import { renderTable } from '../table.js';
import { defaultIo, emit, type ModeledIo, runModeled, share } from './output.js';

/** Predictions the series never measured, runnable by name. */
export const SCENARIOS: Readonly<Record<string, { about: string; options: Partial<PredictOptions> }>> = {
  'mthp-sdxi': {
    about: '64 KiB mTHP promoted from the CXL tier with SDXI at 8 contexts',
    options: {
      profile: 'dram-cxl',
      folio: '64KiB',
      total: '1GiB',
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
      folio: '4KiB',
      total: '64MiB',
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

function sizeOption(flag: string, value: string): number {
  try {
    return parseSize(value, flag);
  } catch (e) {
    throw usageError((e as Error).message);
  }
}

/** The run to model; every value is checked against the profile here, so core's model never sees a bad one. */
function shapeOf(p: HardwareProfile, o: PredictOptions, scenario: boolean): RunShape {
  const folioBytes = sizeOption('--folio', o.folio);
  const total = sizeOption('--total', o.total);
  if (folioBytes < 4096 || folioBytes > 2 << 20 || folioBytes & (folioBytes - 1))
    throw usageError(`--folio ${o.folio}: a folio is a power of two from 4KiB to 2MiB`);
  if (total === 0 || total % folioBytes)
    throw usageError(`--total ${o.total} must be a positive multiple of the folio size (--folio ${o.folio})`);
  const nodes = p.nodes.length;
  for (const [flag, n] of [
    ['--from', o.from],
    ['--to', o.to],
  ] as const) {
    if (n >= nodes)
      throw usageError(`${flag} ${n}: profile ${p.name} has no node ${n} (its nodes are 0..${nodes - 1})`);
  }
  // A named scenario may model a copy inside one node (compaction); flags describe a migration.
  if (o.from === o.to && !scenario)
    throw usageError(
      `--from and --to are both node ${o.from}: predict a migration between two nodes (compaction inside a node: --scenario cxl-compaction)`,
    );
  const engines = Object.keys(p.dma);
  const engine = o.engine ?? engines[0];
  if (o.copier === 'dma' && (engine === undefined || !engines.includes(engine)))
    throw usageError(
      engines.length
        ? `--engine ${engine}: profile ${p.name} has no such DMA engine; it has ${engines.join(', ')}`
        : `--copier dma: profile ${p.name} has no DMA engine; use --copier kernel or threads`,
    );
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

/** A shipped profile by name, or a profile file; a file that cannot be read is a usage error. */
export function profileOption(value: string): HardwareProfile {
  if (!value.endsWith('.json')) return loadProfile(value);
  let text: string;
  try {
    text = readFileSync(value, 'utf8');
  } catch (e) {
    throw usageError(`--profile ${value}: cannot read the file: ${(e as Error).message}`);
  }
  return parseProfileJson(text, value);
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
    const p = profileOption(o.profile);
    const shape = shapeOf(p, o, opts.scenario !== undefined);
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
