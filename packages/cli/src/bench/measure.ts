import type { Machine, MigrationPhases } from '@pagemig/core';
import { median } from '@pagemig-tools/bench';
import type { Drivers } from '../drivers.js';
import {
  type MigrationOutcome,
  type MigrationSpec,
  type Reference,
  runMigration,
} from '../scenarios/migration.js';
import { benchCase } from '../timeline.js';
import type { MigrationStats } from './schema.js';
import type { Variant } from './variants.js';

/** Registers the variant's migrator (none for the kernel) for every reason while `fn` runs. */
export async function withVariant<T>(
  m: Machine,
  drivers: Drivers,
  v: Variant,
  fn: () => Promise<T>,
): Promise<T> {
  if (v.migrator === 'none') return fn();
  const mig = await drivers.load(v.migrator, v.options);
  await m.offload.register(mig, 'all');
  try {
    return await fn();
  } finally {
    await m.offload.unregister(mig);
  }
}

let seed = 1;
const PHASES: (keyof MigrationPhases)[] = ['unmap', 'flush', 'batchCopy', 'fallbackCopy', 'move'];

/**
 * `runs` verified migrations of the same shape; medians of each figure. `caseId` names the case for
 * `bench --timeline`, which records its runs.
 */
export async function measure(
  m: Machine,
  spec: Omit<MigrationSpec, 'seed'>,
  runs: number,
  ref: Reference,
  caseId?: string,
): Promise<MigrationStats> {
  const out: MigrationOutcome[] = [];
  const all = async () => {
    for (let i = 0; i < runs; i++) out.push(await runMigration(m, { ...spec, seed: seed++ }, ref));
  };
  await (caseId === undefined ? all() : benchCase(m, caseId, all));
  const med = (f: (o: MigrationOutcome) => number) => median(out.map(f));
  const phases = Object.fromEntries(
    PHASES.map((k) => [k, med((o) => o.result.phases[k])]),
  ) as unknown as MigrationPhases;
  return {
    bytes: spec.total,
    folioBytes: spec.folio,
    folios: spec.total / spec.folio,
    runs,
    bytesPerSec: med((o) => o.bytesPerSec),
    rawBytesPerSec: med((o) => o.rawBytesPerSec),
    ratio: med((o) => o.ratio),
    wallSeconds: med((o) => o.result.wallSeconds),
    cpuSeconds: med((o) => o.result.cpuSeconds),
    phases,
    offloadedFolios: med((o) => o.result.offload.foliosCopied),
  };
}

export const MIGRATE = { from: 0, to: 1, mode: 'MIGRATE_SYNC', reason: 'syscall_or_cpuset' } as const;
