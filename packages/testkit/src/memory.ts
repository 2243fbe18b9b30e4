import { type Machine, PAGE_SIZE } from '@pagemig/core';
import { patternBytes } from './fixtures.js';

/**
 * Whole-RAM fixtures for tests that drive a device by hand: data in every page, so that a stray
 * write anywhere shows, and the pages whose bytes changed since a snapshot.
 */

/** Fills every page of the machine's RAM with `patternBytes`, a different pattern per page. */
export function fillMemory(m: Machine, seed = 1): void {
  const mem = m.kernel.mem;
  // 64 pages at a time: one view never spans two memory sections.
  for (let pfn = 0; pfn < m.kernel.nrPages; pfn += 64) {
    const nr = Math.min(64, m.kernel.nrPages - pfn);
    mem.view(pfn, nr).set(patternBytes(nr * PAGE_SIZE, seed + pfn));
  }
}

/** A copy of the machine's RAM (pfn n at byte n * PAGE_SIZE), for `changedPages`. */
export function snapshotMemory(m: Machine): Uint8Array {
  const mem = m.kernel.mem;
  const copy = new Uint8Array(m.kernel.nrPages * PAGE_SIZE);
  // 64 pages at a time, as fillMemory.
  for (let pfn = 0; pfn < m.kernel.nrPages; pfn += 64)
    copy.set(mem.view(pfn, Math.min(64, m.kernel.nrPages - pfn)), pfn * PAGE_SIZE);
  return copy;
}

/** The pfns whose bytes differ from `snapshot`, leaving out those `mayChange` allows; ascending. */
export function changedPages(
  m: Machine,
  snapshot: Uint8Array,
  mayChange: (pfn: number) => boolean = () => false,
): number[] {
  const mem = m.kernel.mem;
  const out: number[] = [];
  for (let pfn = 0; pfn < m.kernel.nrPages; pfn++) {
    if (mayChange(pfn)) continue;
    const before = snapshot.subarray(pfn * PAGE_SIZE, (pfn + 1) * PAGE_SIZE);
    if (Buffer.compare(mem.view(pfn), before) !== 0) out.push(pfn);
  }
  return out;
}
