import { type Machine, type Migrator, PAGE_SIZE } from '@pagemig/core';
import { batchOf, markedRows, patternBytes } from './fixtures.js';

/**
 * Fills the source pages of each row with a pattern, then hands the same rows to
 * `migrator.copyBatch` `rounds` times in a row (5 s each at most): the stress of ring wrap-around
 * and refill. Returns the problems: a round that left rows unmarked, a destination unlike its
 * source afterwards.
 */
export async function copyBatchRounds(
  m: Machine,
  migrator: Pick<Migrator, 'copyBatch'>,
  rows: readonly (readonly [src: number, dst: number, nrPages: number])[],
  rounds: number,
): Promise<string[]> {
  const mem = m.kernel.mem;
  const problems: string[] = [];
  for (const [s, , n] of rows) mem.view(s, n).set(patternBytes(n * PAGE_SIZE, s));
  for (let round = 0; round < rounds; round++) {
    const batch = batchOf(rows);
    await migrator.copyBatch(batch, { signal: AbortSignal.timeout(5000) });
    const marked = markedRows(batch).length;
    if (marked !== rows.length) problems.push(`round ${round}: ${marked} of ${rows.length} rows marked`);
  }
  for (const [s, d, n] of rows)
    if (Buffer.compare(mem.view(d, n), mem.view(s, n)) !== 0)
      problems.push(`pfn ${d} differs from its source ${s}`);
  return problems;
}
