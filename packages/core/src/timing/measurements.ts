import { z } from 'zod';
import { PagemigError } from '../errno.js';
import type { Measurement } from './published.js';

/** Format version of a measurements file (`pagemig calibrate --data`). */
export const MEASUREMENTS_SCHEMA_VERSION = 1;

const copierSchema = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('kernel') }).strict(),
  z
    .object({
      kind: z.literal('threads'),
      threads: z.number().int().positive(),
      placement: z.enum(['spread', 'packed']),
    })
    .strict(),
  z.object({ kind: z.literal('dma'), engine: z.string(), channels: z.number().int().positive() }).strict(),
]);

const measurementSchema = z
  .object({
    table: z.string(),
    row: z.string(),
    column: z.string(),
    case: z
      .object({
        folioBytes: z.number().int().positive().multipleOf(4096),
        folios: z.number().int().positive(),
        batchPages: z.number().int().positive(),
        copier: copierSchema,
      })
      .strict(),
    GBps: z.number().positive().finite(),
    sd: z.number().nonnegative().optional(),
    heldOut: z.boolean(),
  })
  .strict();

export const measurementsSchema = z
  .object({
    schemaVersion: z.literal(MEASUREMENTS_SCHEMA_VERSION),
    measurements: z.array(measurementSchema).min(1),
  })
  .strict();

/** Parses a measurements file; errors list every problem as `path: message`. */
export function parseMeasurementsJson(text: string, origin = 'measurements'): Measurement[] {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (e) {
    throw new PagemigError('ERR_INVALID_MEASUREMENTS', `${origin}: not JSON (${(e as Error).message})`);
  }
  const r = measurementsSchema.safeParse(data);
  if (!r.success) {
    const lines = r.error.issues.map((i) => `  ${i.path.length ? i.path.join('.') : '(root)'}: ${i.message}`);
    throw new PagemigError(
      'ERR_INVALID_MEASUREMENTS',
      `${origin}: invalid measurements\n${lines.join('\n')}`,
    );
  }
  return r.data.measurements;
}
