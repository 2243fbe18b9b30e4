import { type Machine, PAGE_SIZE, type Process } from '@pagemig/core';
import { pageFlags, type Zone } from '@pagemig/core/internal';
import { expect } from 'vitest';

/** The bytes of `pages` pages where page j of chunk `seed` holds a value no other page holds. */
export function chunkBytes(seed: number, pages: number): Uint8Array {
  const out = new Uint8Array(pages * PAGE_SIZE);
  const words = new Uint32Array(out.buffer);
  const perPage = PAGE_SIZE / 4;
  for (let j = 0; j < pages; j++) {
    const v = (Math.imul(seed + 1, 0x9e3779b1) ^ Math.imul(j + 1, 0x85ebca6b)) >>> 0;
    words.fill(v, j * perPage, (j + 1) * perPage);
    // A second value per page so a page copied to the wrong place never matches by accident.
    words[j * perPage] = (seed << 16) | j;
  }
  return out;
}

export interface Fragmented {
  p: Process;
  /** Chunks still mapped: address, length in pages and seed. */
  kept: { addr: number; pages: number; seed: number }[];
  /** MemFree (pages) before the fill. */
  freeBefore: number;
  chunkPages: number;
}

/**
 * The compaction selftest's fragmentation on node `nid`: map `fill` of the free memory in chunks
 * of `chunkPages` (MAP_LOCKED when `mlock`), write a distinct value into every page, then unmap
 * every other chunk (the 1st, 3rd, ...).
 */
export function fragment(
  m: Machine,
  opts: { nid?: number; fill?: number; chunkPages?: number; mlock?: boolean; reserve?: number } = {},
): Fragmented {
  const nid = opts.nid ?? 0;
  const chunkPages = opts.chunkPages ?? 16;
  const freeBefore = m.freePages(nid);
  const target = Math.floor((freeBefore - (opts.reserve ?? 0)) * (opts.fill ?? 0.8));
  const p = m.spawn({ comm: 'compaction_test', node: nid, privileged: true });
  const chunks: { addr: number; pages: number; seed: number }[] = [];
  for (let mapped = 0, i = 0; mapped + chunkPages <= target; mapped += chunkPages, i++) {
    const addr = p.mmap(chunkPages * PAGE_SIZE, { node: nid, mlock: opts.mlock ?? false, thp: 'never' });
    p.write(addr, chunkBytes(i, chunkPages));
    chunks.push({ addr, pages: chunkPages, seed: i });
  }
  const kept: Fragmented['kept'] = [];
  chunks.forEach((c, i) => {
    if (i % 2 === 0) p.munmap(c.addr, c.pages * PAGE_SIZE);
    else kept.push(c);
  });
  return { p, kept, freeBefore, chunkPages };
}

/** Every kept page still holds its bytes; returns the number of pages checked. */
export function verifyBytes(f: Fragmented): number {
  let pages = 0;
  for (const c of f.kept) {
    const got = f.p.read(c.addr, c.pages * PAGE_SIZE);
    const want = chunkBytes(c.seed, c.pages);
    if (Buffer.compare(Buffer.from(got.buffer, got.byteOffset, got.length), Buffer.from(want.buffer)) !== 0)
      throw new Error(`chunk ${c.seed} at 0x${c.addr.toString(16)} does not hold its bytes`);
    pages += c.pages;
  }
  return pages;
}

/** The pfn behind every kept page, in order. */
export function keptPfns(f: Fragmented): number[] {
  const out: number[] = [];
  for (const c of f.kept)
    for (let j = 0; j < c.pages; j++) out.push(f.p.pageInfo(c.addr + j * PAGE_SIZE)!.pfn);
  return out;
}

/** The counters this package touches, as a delta from `before`. */
export function delta(
  m: Machine,
  before: Record<string, number>,
  names: readonly (typeof compactCounters)[number][],
): Record<(typeof compactCounters)[number], number> {
  const now = m.vmstat() as Record<string, number>;
  return Object.fromEntries(names.map((n) => [n, now[n]! - before[n]!])) as Record<
    (typeof compactCounters)[number],
    number
  >;
}

export const compactCounters = [
  'compact_migrate_scanned',
  'compact_free_scanned',
  'compact_isolated',
  'compact_stall',
  'compact_fail',
  'compact_success',
  'compact_daemon_wake',
  'compact_daemon_migrate_scanned',
  'compact_daemon_free_scanned',
  'pgmigrate_success',
  'pgmigrate_fail',
] as const;

/** Takes every free page of the zone (as order-0 folios), then frees exactly `blocks`. */
export function shapeFreeLists(mach: Machine, zone: Zone, blocks: [pfn: number, order: number][]): void {
  const k = mach.kernel;
  for (let pfn = zone.startPfn; pfn < zone.endPfn; pfn++) {
    if (k.pages.flags[pfn]! & pageFlags.PG_buddy) {
      const o = zone.takeFreeBlock(pfn);
      for (let j = 0; j < 1 << o; j++) k.prepNewFolio(pfn + j, 0);
    }
  }
  expect(zone.freePages).toBe(0);
  for (const [pfn, order] of blocks) {
    k.prepNewFolio(pfn, order);
    k.freeFolio(pfn);
  }
}
