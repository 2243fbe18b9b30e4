import { createRequire } from 'node:module';
import {
  defineMigrator,
  InjectedFault,
  MIGRATOR_API_VERSION,
  type MigrationBatch,
  type Migrator,
  type MigratorContext,
  type OffloadInfo,
  PagemigError,
} from '@pagemig/core';

// Read at run time, from dist/ or src/ alike: package.json ships in every tarball, and a JSON
// import would inline all of it into dist (a named one does not typecheck under NodeNext).
const { version } = createRequire(import.meta.url)('../package.json') as { version: string };

export interface YieldingOptions {
  /** Bytes copied between two yields to the event loop. Default 1 MiB. */
  sliceBytes?: number;
  /** Batches with fewer base pages are left to the engine's own CPU copy. Default 1 (take all). */
  minBatchPages?: number;
}

export interface YieldingStats {
  batches: number;
  declined: number;
  rowsCopied: number;
  yields: number;
}

/** The option keys createMigrator accepts; @pagemig/registry checks them (with "did you mean"). */
export const optionKeys = ['sliceBytes', 'minBatchPages'] as const;

function optionError(message: string): PagemigError {
  return new PagemigError('ERR_MIGRATOR_OPTION', `yielding: ${message}`);
}

/** A macrotask boundary: timers, I/O and other drivers' interrupt handlers run here. */
const yieldToEventLoop = () => new Promise<void>((resolve) => setImmediate(resolve));

/**
 * A migrator that copies on the engine's thread, like cpu-serial, but returns to the event loop
 * after every `sliceBytes`, so a large migration does not stall the rest of the process.
 */
export function createMigrator(options: YieldingOptions = {}): Migrator & { stats(): YieldingStats } {
  for (const key of Object.keys(options)) {
    if (!(optionKeys as readonly string[]).includes(key))
      throw optionError(`unknown option ${JSON.stringify(key)}; known: ${optionKeys.join(', ')}`);
  }
  const sliceBytes = options.sliceBytes ?? 1 << 20;
  const minBatchPages = options.minBatchPages ?? 1;
  if (!Number.isInteger(sliceBytes) || sliceBytes < 4096)
    throw optionError(`sliceBytes must be an integer >= 4096, got ${sliceBytes}`);
  if (!Number.isInteger(minBatchPages) || minBatchPages < 1)
    throw optionError(`minBatchPages must be a positive integer, got ${minBatchPages}`);

  // Set by init, dropped by dispose: creating the migrator has no side effects (the registry's
  // list() creates one just to read its capabilities).
  let ctx: MigratorContext | null = null;
  let ram: Uint8Array[] = [];
  const stats: YieldingStats = { batches: 0, declined: 0, rowsCopied: 0, yields: 0 };

  return defineMigrator({
    apiVersion: MIGRATOR_API_VERSION,
    name: 'yielding',
    version,
    engines: { core: '^0.1.0' },
    capabilities: {
      offloadsCpu: false, // the copy still runs on the engine's thread
      channels: 1,
      maxInFlightBatches: 4, // batches of concurrent migrations interleave at the yields
      needsSharedMemory: true,
      faultSites: ['copy_batch', 'copy_row'],
      sliceBytes,
    },

    init(c: MigratorContext) {
      ctx = c;
      ram = c.sections.map((s) => new Uint8Array(s));
    },

    shouldOffload(info: OffloadInfo) {
      if (info.pages >= minBatchPages) return true;
      stats.declined++;
      return false;
    },

    async copyBatch(batch: MigrationBatch, { signal }: { signal: AbortSignal }) {
      if (!ctx) throw new PagemigError('ERR_MIGRATOR_STATE', 'yielding: copyBatch before init');
      const { pageSize, sectionPfnShift: shift, faults } = ctx;
      const mask = (1 << shift) - 1;
      stats.batches++;
      // Tests inject faults through the machine's plan (null in production). A failed batch is
      // harmless: the engine copies every unmarked row on the CPU.
      const failed = faults?.hit('copy_batch', { migrator: 'yielding' });
      if (failed) throw new InjectedFault('copy_batch', `yielding: injected ${failed.action ?? 'throw'}`);
      let sinceYield = 0;
      for (let i = 0; i < batch.rows; i++) {
        // Stop at once when the engine gives up: unmarked rows are copied by the engine.
        if (signal.aborted) return;
        const src = batch.src(i);
        const dst = batch.dst(i);
        const len = batch.nrPages(i) * pageSize;
        const to = (dst & mask) * pageSize;
        const fault = faults?.hit('copy_row', { row: i, migrator: 'yielding' });
        if (fault?.action === 'garbage') ram[dst >>> shift]!.fill(0xa5, to, to + len);
        if (fault) continue; // not copied, so never marked
        const from = (src & mask) * pageSize;
        ram[dst >>> shift]!.set(ram[src >>> shift]!.subarray(from, from + len), to);
        batch.markCopied(i);
        stats.rowsCopied++;
        sinceYield += len;
        if (sinceYield >= sliceBytes && i + 1 < batch.rows) {
          sinceYield = 0;
          stats.yields++;
          await yieldToEventLoop();
        }
      }
    },

    dispose() {
      ctx = null;
      ram = [];
    },

    stats: () => ({ ...stats }),
  });
}

export default createMigrator;
