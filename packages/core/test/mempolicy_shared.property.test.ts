import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { mpolSetSharedPolicy, mpolSharedPolicyLookup } from '../src/mempolicy_shared.js';
import { MPOL_BIND, MPOL_F_SHARED, type Mpol } from '../src/mempolicy_struct.js';
import type { Vma } from '../src/mm.js';
import { Mapping } from '../src/rmap.js';

/**
 * The shmem object's policy tree (shared_policy_replace, sp_lookup) against a reference model: a
 * sorted array of disjoint ranges rebuilt on every replace, as shared_policy_replace describes it
 * (ranges overlapping the new one are cut, one spanning it split in two, nothing merged).
 */

interface Range {
  start: number;
  end: number;
  policy: Mpol;
}

function referenceReplace(ranges: Range[], start: number, end: number, pol: Mpol | null): Range[] {
  const out: Range[] = [];
  for (const n of ranges) {
    if (n.end <= start || n.start >= end) out.push(n);
    else {
      if (n.start < start) out.push({ start: n.start, end: start, policy: n.policy });
      if (n.end > end) out.push({ start: end, end: n.end, policy: n.policy });
    }
  }
  if (pol) out.push({ start, end, policy: { ...pol, flags: pol.flags | MPOL_F_SHARED } });
  return out.sort((a, b) => a.start - b.start);
}

function referenceLookup(ranges: readonly Range[], index: number): Mpol | null {
  for (const n of ranges) if (index >= n.start && index < n.end) return n.policy;
  return null;
}

/** The part of a VMA mpolSetSharedPolicy reads: the object and the page offsets the area maps. */
const area = (mapping: Mapping, pgoff: number, npages: number) => ({ mapping, pgoff, npages }) as Vma;

/** Offsets [0, SPAN) are replaced at random; lookups also cover offsets just past them. */
const SPAN = 96;
const offsets = Array.from({ length: SPAN + 48 }, (_, i) => i);

const op = fc.record({
  start: fc.integer({ min: 0, max: SPAN - 1 }),
  len: fc.integer({ min: 1, max: 40 }),
  // null removes the policy there (mbind MPOL_DEFAULT).
  remove: fc.boolean(),
});

describe('shared policy tree (mpol_set_shared_policy, mpol_shared_policy_lookup)', () => {
  it('answers every lookup as the reference model does after each replace or remove', () => {
    fc.assert(
      fc.property(fc.array(op, { minLength: 1, maxLength: 60 }), (ops) => {
        const mapping = new Mapping(1, 'shmem');
        let ref: Range[] = [];
        ops.forEach(({ start, len, remove }, i) => {
          // Policies differ by their node list, so a lookup shows which replace set the offset.
          const pol = remove ? null : { mode: MPOL_BIND, flags: 0, nodes: [i], userNodes: [] };
          mpolSetSharedPolicy(area(mapping, start, len), pol);
          ref = referenceReplace(ref, start, start + len, pol);
          const got = offsets.map((index) => mpolSharedPolicyLookup(mapping, index));
          expect(got).toEqual(offsets.map((index) => referenceLookup(ref, index)));
          expect(got.every((p) => p === null || Object.isFrozen(p))).toBe(true);
        });
      }),
      { numRuns: 300 },
    );
  });

  it('keeps each object its own ranges and leaves the caller its policy unmarked', () => {
    const a = new Mapping(1, 'shmem');
    const b = new Mapping(2, 'shmem');
    const pol: Mpol = { mode: MPOL_BIND, flags: 0, nodes: [1], userNodes: [] };
    mpolSetSharedPolicy(area(a, 0, 8), pol);
    // A split of the middle: [0, 3) and [5, 8) keep the policy, [3, 5) has none.
    mpolSetSharedPolicy(area(a, 3, 2), null);
    expect([0, 2, 3, 4, 5, 7, 8].map((i) => mpolSharedPolicyLookup(a, i)?.nodes ?? null)).toEqual([
      [1],
      [1],
      null,
      null,
      [1],
      [1],
      null,
    ]);
    expect(mpolSharedPolicyLookup(a, 0)!.flags).toBe(MPOL_F_SHARED);
    expect(pol.flags).toBe(0);
    expect(mpolSharedPolicyLookup(b, 0)).toBeNull();
  });
});
