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

/** A copy of the machine's RAM, section by section, for `changedPages`. */
export function snapshotMemory(m: Machine): Uint8Array[] {
  return m.kernel.mem.sections.map((s) => new Uint8Array(s).slice());
}

/** The pfns whose bytes differ from `snapshot`, leaving out those `mayChange` allows; ascending. */
export function changedPages(
  m: Machine,
  snapshot: readonly Uint8Array[],
  mayChange: (pfn: number) => boolean = () => false,
): number[] {
  const sections = m.kernel.mem.sections;
  const perSection = sections[0]!.byteLength / PAGE_SIZE;
  const out: number[] = [];
  for (let pfn = 0; pfn < m.kernel.nrPages; pfn++) {
    if (mayChange(pfn)) continue;
    const s = Math.floor(pfn / perSection);
    const off = (pfn % perSection) * PAGE_SIZE;
    const now = new Uint8Array(sections[s]!, off, PAGE_SIZE);
    if (Buffer.compare(now, snapshot[s]!.subarray(off, off + PAGE_SIZE)) !== 0) out.push(pfn);
  }
  return out;
}
