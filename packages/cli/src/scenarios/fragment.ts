import { type Machine, PAGE_SIZE } from '@pagemig/core';
import { CliError, ExitCode } from '../exit_codes.js';

export interface Fragmented {
  /** Chunks still mapped (half of them), each with its own bytes. */
  chunks: number;
  /** Checks every kept chunk's bytes; throws a verification error naming the first bad one. */
  verify(): void;
  release(): void;
}

function chunkBytes(c: number, chunkPages: number): Uint8Array {
  const b = new Uint8Array(chunkPages * PAGE_SIZE);
  const w = new Uint32Array(b.buffer);
  for (let j = 0; j < chunkPages; j++)
    w.fill(Math.imul(c * chunkPages + j + 1, 0x9e3779b1) >>> 0, j * 1024, (j + 1) * 1024);
  return b;
}

/**
 * Maps `fill` of node `nid`'s free memory in chunks of `chunkPages` pages (distinct bytes per
 * page, so a misplaced page never matches) and unmaps every other chunk: the zone ends up half
 * used with no free pageblock, what compaction exists for.
 */
export function fragmentNode(
  m: Machine,
  nid: number,
  opts: { chunkPages?: number; fill?: number } = {},
): Fragmented {
  const chunkPages = opts.chunkPages ?? 16;
  const p = m.spawn({ comm: 'fragment', node: nid, memsAllowed: [nid] });
  const target = Math.floor(m.freePages(nid) * (opts.fill ?? 0.9));
  const kept: [number, number][] = [];
  const dropped: number[] = [];
  for (let c = 0; (c + 1) * chunkPages <= target; c++) {
    const a = p.mmap(chunkPages * PAGE_SIZE, { node: nid, thp: 'never' });
    p.write(a, chunkBytes(c, chunkPages));
    if (c % 2) kept.push([a, c]);
    else dropped.push(a);
  }
  // Unmapped only once all are mapped, so no chunk reuses a dropped one's frames.
  for (const a of dropped) p.munmap(a, chunkPages * PAGE_SIZE);
  return {
    chunks: kept.length,
    verify() {
      for (const [a, c] of kept) {
        if (Buffer.compare(p.read(a, chunkPages * PAGE_SIZE), chunkBytes(c, chunkPages)) !== 0)
          throw new CliError(
            `verification failed: chunk ${c} lost its bytes in compaction`,
            ExitCode.FAILURE,
            'ERR_VERIFY',
          );
      }
    },
    release: () => p.exit(),
  };
}
