import { afterEach, describe, expect, it } from 'vitest';
import { parallelRawCopier } from '../src/index.mjs';

const workerHandles = () =>
  process.getActiveResourcesInfo().filter((r) => /Worker|MessagePort/i.test(r)).length;
const closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const close of closers.splice(0)) await close();
});

async function copier(bytes: number, threads: number) {
  const c = await parallelRawCopier(bytes, threads);
  closers.push(() => c.close());
  return c;
}

describe('parallelRawCopier', () => {
  it('copies every piece with 1..threads threads, whole or batch by batch, for pieces that do not divide the bytes evenly', async () => {
    // 5 MiB + 3 pages: the last piece is short, and the runs of 3 threads are uneven.
    const bytes = (5 << 20) + 3 * 4096;
    const c = await copier(bytes, 3);
    expect(c).toMatchObject({ bytes, threads: 3 });
    for (const chunk of [4096, 65536, 1 << 20, bytes]) {
      for (const n of [1, 2, 3]) {
        // pass() throws if any page did not land, so a finite time means every page was copied.
        for (const seconds of [c.pass(chunk, n), c.passBatched(chunk, n)]) {
          expect(seconds).toBeGreaterThan(0);
          expect(seconds).toBeLessThan(10);
        }
      }
    }
  });

  it('rejects bad sizes, thread counts and chunk sizes with a RangeError', async () => {
    await expect(parallelRawCopier(0, 2)).rejects.toThrow(RangeError);
    await expect(parallelRawCopier(4096, 0)).rejects.toThrow(/threads must be a positive integer/);
    const c = await copier(1 << 20, 2);
    expect(() => c.pass(0)).toThrow(/chunk must be an integer in 1..bytes/);
    expect(() => c.pass((1 << 20) + 1)).toThrow(RangeError);
    expect(() => c.pass(4096, 3)).toThrow(/n must be an integer in 1..2/);
    expect(() => c.pass(4096, 0)).toThrow(RangeError);
    expect(() => c.passBatched(0)).toThrow(/chunk must be an integer in 1..bytes/);
    expect(() => c.passBatched(4096, 3)).toThrow(/n must be an integer in 1..2/);
  });

  it('close() ends its worker threads', async () => {
    const before = workerHandles();
    const c = await parallelRawCopier(1 << 20, 3);
    c.pass(65536);
    await c.close();
    expect(workerHandles()).toBe(before);
  });
});
