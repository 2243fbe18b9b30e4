import { type MigrationBatch, type Migrator, type MigratorContext, PAGE_SIZE } from '@pagemig/core';
import { batchOf, createMockMigrator } from '../src/index.js';

/** Which rows a gated migrator takes: by folio size and the batch's reason. */
export type Takes = (nrPages: number, reason: number) => boolean;

export interface GatedOptions {
  /** Claims rows it never copies: marks them and scribbles on their destinations. */
  corrupt?: 'taken' | 'declined';
}

/**
 * The mock migrator behind a gate of its own: `shouldOffload` accepts a batch whose largest folio
 * it takes, and `copyBatch` copies only the rows it takes, leaving the rest to the engine (every
 * fault site is the mock's). `corrupt` turns it into a liar the suite must fail.
 */
export function gatedMigrator(name: string, takes: Takes, opts: GatedOptions = {}): Migrator {
  const mock = createMockMigrator({ name, shouldOffload: (info) => takes(info.maxFolioPages, info.reason) });
  let ram: Uint8Array[] = [];
  let shift = 0;
  const scribble = (batch: MigrationBatch, i: number) => {
    const dst = batch.dst(i);
    const at = (dst & ((1 << shift) - 1)) * PAGE_SIZE;
    ram[dst >>> shift]!.fill(0x5a, at, at + batch.nrPages(i) * PAGE_SIZE);
    batch.markCopied(i);
  };
  return {
    ...mock,
    init(c: MigratorContext) {
      ram = c.sections.map((s) => new Uint8Array(s));
      shift = c.sectionPfnShift;
      return mock.init(c);
    },
    async copyBatch(batch: MigrationBatch, o: { signal: AbortSignal }) {
      const rows = [...Array(batch.rows).keys()];
      const taken = rows.filter((i) => takes(batch.nrPages(i), batch.reason));
      if (opts.corrupt) {
        const claimed = opts.corrupt === 'taken' ? taken : rows.filter((i) => !taken.includes(i));
        for (const i of claimed) scribble(batch, i);
        if (opts.corrupt === 'taken') return;
      }
      const sub = batchOf(
        taken.map((i) => [batch.src(i), batch.dst(i), batch.nrPages(i)] as const),
        batch.reason,
        batch.mode,
      );
      await mock.copyBatch(sub, o);
      taken.forEach((i, j) => {
        if (sub.isCopied(j)) batch.markCopied(i);
      });
    },
  };
}

/** Folios of 64 KiB and more (16 base pages). */
export const atLeast64KiB: Takes = (nrPages) => nrPages * PAGE_SIZE >= 64 << 10;
