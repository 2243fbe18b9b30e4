import type { Drivers } from '../drivers.js';
import { openMachine } from '../machine.js';
import { Reference } from '../scenarios/migration.js';
import { formatSize } from '../table.js';
import { caseId } from '../timeline.js';
import { MIGRATE, measure, withVariant } from './measure.js';
import { NODE_HEADROOM, THP } from './presets.js';
import type { CopyShareRow, SweepRow } from './schema.js';
import { type Variant, variantInfo } from './variants.js';

export interface SweepContext {
  drivers: Drivers;
  variants: Variant[];
  batchPages: number;
  reps: number;
  /** Called after each measured point. */
  step(label: string): void;
}

async function twoNodes(bytes: number, batchPages: number) {
  const memory = Math.ceil((bytes + NODE_HEADROOM) / THP) * THP;
  return openMachine({ nodes: [{ memory }, { memory }], migrationBatchPages: batchPages });
}

/** Runs `points` for every variant on one machine, with an untimed warm-up run per variant. */
async function sweep<P>(
  ctx: SweepContext,
  machineBytes: number,
  points: P[],
  run: (m: Awaited<ReturnType<typeof twoNodes>>, v: Variant, p: P, ref: Reference) => Promise<SweepRow>,
  warm: { total: number; folio: number },
): Promise<SweepRow[]> {
  const m = await twoNodes(machineBytes, ctx.batchPages);
  const ref = new Reference();
  const rows: SweepRow[] = [];
  try {
    for (const v of ctx.variants) {
      await withVariant(m, ctx.drivers, v, async () => {
        await measure(m, { ...MIGRATE, ...warm }, 1, ref);
        for (const p of points) rows.push(await run(m, v, p, ref));
      });
    }
  } finally {
    await m.close();
  }
  return rows;
}

/** Throughput against folio size, each variant, `bytes` per run. */
export function folioSweep(ctx: SweepContext, sizes: number[], bytes: number): Promise<SweepRow[]> {
  return sweep(
    ctx,
    bytes,
    sizes,
    async (m, v, folio, ref) => {
      const row = {
        ...variantInfo(v),
        ...(await measure(
          m,
          { ...MIGRATE, total: bytes, folio },
          ctx.reps,
          ref,
          caseId('folio', v.label, `${formatSize(bytes)}-${formatSize(folio)}`),
        )),
      };
      ctx.step(`folio ${v.label}`);
      return row;
    },
    { total: Math.min(bytes, 8 << 20), folio: sizes[0]! },
  );
}

/** Throughput against the number of 2 MiB folios, one lane per migrator (the series' table d). */
export function sizeSweep(ctx: SweepContext, counts: number[]): Promise<SweepRow[]> {
  const max = Math.max(...counts) * THP;
  return sweep(
    { ...ctx, variants: ctx.variants.filter((v) => v.lanes === 1) },
    max,
    counts,
    async (m, v, n, ref) => {
      const row = {
        ...variantInfo(v),
        ...(await measure(
          m,
          { ...MIGRATE, total: n * THP, folio: THP },
          ctx.reps,
          ref,
          caseId('size', v.label, `${n}x2MiB`),
        )),
      };
      ctx.step(`size ${v.label}`);
      return row;
    },
    { total: THP, folio: THP },
  );
}

/**
 * The share of copying in migrate_pages() for 1 and 512 folios of 4 KiB and 2 MiB (512 x 2 MiB
 * lowered to what `maxTotal` allows). Tiny runs are repeated more: one 4 KiB folio takes microseconds.
 */
export async function copyShare(ctx: SweepContext, maxTotal: number): Promise<CopyShareRow[]> {
  const big = Math.min(512, Math.floor(maxTotal / THP));
  const points = [
    { folio: 4096, n: 1 },
    { folio: 4096, n: 512 },
    { folio: THP, n: 1 },
    ...(big > 1 ? [{ folio: THP, n: big }] : []),
  ];
  const rows = await sweep(
    { ...ctx, variants: ctx.variants.filter((v) => v.lanes === 1) },
    big * THP,
    points,
    async (m, v, p, ref) => {
      const total = p.folio * p.n;
      const reps = total < 4 << 20 ? Math.max(ctx.reps, 15) : ctx.reps;
      const row = {
        ...variantInfo(v),
        ...(await measure(
          m,
          { ...MIGRATE, total, folio: p.folio },
          reps,
          ref,
          caseId('share', v.label, `${p.n}x${formatSize(p.folio)}`),
        )),
      };
      ctx.step(`copy share ${v.label}`);
      return row;
    },
    { total: THP, folio: 4096 },
  );
  return rows.map((r) => ({ ...r, copyShare: (r.phases.batchCopy + r.phases.fallbackCopy) / r.wallSeconds }));
}
