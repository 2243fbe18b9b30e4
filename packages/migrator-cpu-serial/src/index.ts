import {
  checkMigratorOptions,
  defineMigrator,
  MIGRATOR_API_VERSION,
  type MigrationBatch,
  type Migrator,
  type MigratorContext,
  type MigratorOptionsSpec,
} from '@pagemig/core';

export interface CpuSerialOptions {
  /** Rows copied between checks of the abort signal. Default 64. */
  checkEvery?: number;
}

export interface CpuSerialStats {
  batches: number;
  folios: number;
  bytes: number;
}

const optionSpec = {
  checkEvery: { type: 'integer', min: 1, default: 64 },
} as const satisfies MigratorOptionsSpec;

/**
 * The option keys `createMigrator` accepts. `@pagemig/registry` reads this export to check options
 * before it creates the migrator and to suggest the closest key for a typo.
 */
export const optionKeys = Object.keys(optionSpec) as readonly (keyof typeof optionSpec)[];

/**
 * The reference migrator: copies each row of a batch with one TypedArray.set on the engine's own
 * thread and marks it copied. It frees no CPU (capabilities.offloadsCpu is false); it exists to
 * show the contract in its simplest form and to measure the cost of the hook itself.
 */
export function createMigrator(options: CpuSerialOptions = {}): Migrator & { stats(): CpuSerialStats } {
  const { checkEvery } = checkMigratorOptions('cpu-serial', options, optionSpec);
  let ram: Uint8Array[] = [];
  let shift = 0;
  let mask = 0;
  const stats: CpuSerialStats = { batches: 0, folios: 0, bytes: 0 };

  return defineMigrator({
    apiVersion: MIGRATOR_API_VERSION,
    name: 'cpu-serial',
    version: __PACKAGE_VERSION__,
    engines: { core: __CORE_RANGE__ },
    capabilities: { offloadsCpu: false, channels: 1, maxInFlightBatches: 1, needsSharedMemory: true },

    init(ctx: MigratorContext) {
      ram = ctx.sections.map((s) => new Uint8Array(s));
      shift = ctx.sectionPfnShift;
      mask = (1 << shift) - 1;
    },

    copyBatch(batch: MigrationBatch, { signal }: { signal: AbortSignal }) {
      stats.batches++;
      for (let i = 0; i < batch.rows; i++) {
        if (i % checkEvery === 0 && signal.aborted) return;
        const src = batch.src(i);
        const dst = batch.dst(i);
        const len = batch.nrPages(i) * 4096;
        const from = (src & mask) * 4096;
        ram[dst >>> shift]!.set(ram[src >>> shift]!.subarray(from, from + len), (dst & mask) * 4096);
        batch.markCopied(i);
        stats.folios++;
        stats.bytes += len;
      }
    },

    dispose() {
      ram = [];
    },

    stats: () => ({ ...stats }),
  });
}

export default createMigrator;
