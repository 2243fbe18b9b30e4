import { expect, it } from 'vitest';
import { runNumaBalancing } from '../src/main.js';

it('promotes the remote hot pages to the local node and leaves cold pages alone', async () => {
  const r = await runNumaBalancing();
  expect(r.hotPages).toBe(512); // every 8th of 4096 pages
  const [hotLocal, hotRemote] = r.before.hot;
  // Node 0 was full at fault time: most of the memory, hot pages included, started remote.
  expect(hotRemote).toBeGreaterThan(hotLocal);
  expect(r.before.cold[1]).toBeGreaterThan(0);

  expect(r.after.hot).toEqual([512, 0]);
  expect(r.after.cold).toEqual(r.before.cold);
  expect(r.migrated).toBe(hotRemote);
  expect(r.verified).toBe(true);
  expect(r.counters).toEqual({
    numa_pages_migrated: hotRemote,
    pgmigrate_success: hotRemote,
    pgmigrate_fail: 0,
    pgpromote_success: 0, // DRAM to DRAM is not a promotion
  });
  expect(r.traceLine).toMatch(
    new RegExp(`nr_succeeded=${hotRemote} .* mode=MIGRATE_ASYNC reason=numa_misplaced$`),
  );
});
