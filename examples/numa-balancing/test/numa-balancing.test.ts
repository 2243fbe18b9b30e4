import { expect, it } from 'vitest';
import { runNumaBalancing } from '../src/main.js';

it('hinting faults move the remote pages the thread writes to its node; the other pages stay', async () => {
  const r = await runNumaBalancing();
  expect(r.hotPages).toBe(512); // every 8th of 4096 pages
  const [hotLocal, hotRemote] = r.before.hot;
  // Node 0 was full at fault time: most of the memory, hot pages included, started remote.
  expect(hotRemote).toBeGreaterThan(hotLocal);
  expect(r.before.cold[1]).toBeGreaterThan(0);

  expect(r.after.hot).toEqual([512, 0]);
  expect(r.after.cold).toEqual(r.before.cold);
  expect(r.verified).toBe(true);
  // One hinting fault and one migrate_misplaced_folio per remote hot page; the local ones are
  // never made PROT_NONE (a single-threaded process's pages on its own node are skipped).
  expect(r.counters).toMatchObject({
    numa_hint_faults_local: 0,
    numa_pages_migrated: hotRemote,
    pgmigrate_success: hotRemote,
    pgmigrate_fail: 0,
    pgpromote_success: 0, // DRAM to DRAM is not a promotion
  });
  expect(r.counters.numa_hint_faults).toBeGreaterThanOrEqual(hotRemote);
  expect(r.counters.numa_pte_updates).toBeGreaterThanOrEqual(r.before.hot[1] + r.before.cold[1]);
  // numa_maps: one area with the default policy, its pages per node before and after.
  const [local, remote] = [hotLocal + r.before.cold[0], hotRemote + r.before.cold[1]];
  expect(r.numaMapsBefore).toMatch(
    new RegExp(`^[0-9a-f]+ default anon=4096 dirty=4096 .*N0=${local} N1=${remote} kernelpagesize_kB=4\\n$`),
  );
  expect(r.numaMapsAfter).toMatch(
    new RegExp(
      `^[0-9a-f]+ default anon=4096 dirty=4096 .*N0=${local + hotRemote} N1=${remote - hotRemote} kernelpagesize_kB=4\\n$`,
    ),
  );
  expect(r.traceLine).toMatch(/nr_succeeded=1 .* mode=MIGRATE_ASYNC reason=numa_misplaced$/);
});
