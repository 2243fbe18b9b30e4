import assert from 'node:assert/strict';

/**
 * The subset of `expect` the conformance suite uses. vitest's and jest's `expect` fit; for
 * node:test (which has none) the suite falls back to `assertExpect`, built on node:assert.
 */
export type ExpectLike = (actual: unknown) => {
  toBe(expected: unknown): void;
  toEqual(expected: unknown): void;
  toBeGreaterThan(n: number): void;
  toBeGreaterThanOrEqual(n: number): void;
  toBeLessThanOrEqual(n: number): void;
};

export const assertExpect: ExpectLike = (actual: unknown) => ({
  toBe: (expected) => assert.equal(actual, expected),
  toEqual: (expected) => assert.deepEqual(actual, expected),
  toBeGreaterThan: (n) => assert.ok((actual as number) > n, `expected ${String(actual)} > ${n}`),
  toBeGreaterThanOrEqual: (n) => assert.ok((actual as number) >= n, `expected ${String(actual)} >= ${n}`),
  toBeLessThanOrEqual: (n) => assert.ok((actual as number) <= n, `expected ${String(actual)} <= ${n}`),
});
