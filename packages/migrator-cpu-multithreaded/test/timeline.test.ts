import { checkChromeTrace, type Machine } from '@pagemig/core';
import { createTestMachine, populateRegion } from '@pagemig/testkit';
import { afterEach, describe, expect, it } from 'vitest';
import { createMigrator } from '../dist/index.js';

let m: Machine | undefined;
afterEach(async () => {
  await m?.close();
  m = undefined;
});

describe('timeline of a migration on the worker pool', () => {
  it('one copy_share span per share, on a thread per copying thread, inside its batch copy', async () => {
    m = await createTestMachine({ migrationBatchPages: 256 });
    const mig = createMigrator({ threads: 2, inlineBelow: 0, minChunk: 64 << 10, adaptive: false });
    await m.offload.register(mig, 'all');
    const { p, addr, data, heads } = populateRegion(m, { bytes: 4 << 20, thp: 'never', seed: 7 });
    const before = mig.stats();
    m.timeline.start();
    const r = await m.migrateFolios(heads, { node: 1 });
    const cap = m.timeline.stop();
    expect(Buffer.compare(p.read(addr, data.length), data)).toBe(0);
    expect(checkChromeTrace(JSON.parse(cap.toChromeJson()))).toEqual([]);
    const copies = cap.find('batch_copy');
    expect(copies).toHaveLength(r.offload.batches);
    const shares = cap.find('copy_share');
    // One per share a worker copied, and one per share the engine's thread copied itself (during a
    // run it takes the shares no polling worker claimed first): thread 0 of the workers' track.
    const after = mig.stats();
    const callerShares = (after.threads.caller?.tasks ?? 0) - (before.threads.caller?.tasks ?? 0);
    expect(shares).toHaveLength(after.tasks - before.tasks + callerShares);
    const workers = new Set(shares.map((s) => cap.thread(s.tid)!));
    for (const w of workers) expect(w).toMatchObject({ process: 'cpu-multithreaded', kind: 'worker' });
    // Workers on 'worker-<threadId>', the engine's own shares on the track itself ('worker').
    expect([...workers].every((w) => /^worker(-\d+)?$/.test(w.name))).toBe(true);
    for (const s of shares) {
      expect(s.args.copied).toBe(s.args.pages);
      const bc = copies.find((c) => c.args.batch === s.args.batch)!;
      expect(s.ts).toBeGreaterThanOrEqual(bc.ts - 5);
      expect(s.ts + s.dur).toBeLessThanOrEqual(bc.ts + bc.dur + 5);
    }
    // Pages of the shares of a batch add up to the batch.
    for (const bc of copies)
      expect(
        shares.filter((s) => s.args.batch === bc.args.batch).reduce((n, s) => n + s.args.pages!, 0),
      ).toBe(bc.args.pages);
    expect(cap.flows().length).toBe(new Set(shares.map((s) => `${s.args.batch}:${s.tid}`)).size);
  });
});
