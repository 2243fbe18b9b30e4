import { type AccessTrace, createMachine, PAGE_SIZE, replayAccessTrace } from '@pagemig/core';
import { createMigrator } from '@pagemig/migrator-cpu-serial';
import { attachNumaBalancing } from '@pagemig/numa-balancing';
import { afterEach, describe, expect, it } from 'vitest';
import { attachKswapd } from '../src/index.js';
import { nodesOf } from './helpers.js';

// H4's deterministic replay (core's replayAccessTrace) with the whole tiering loop: kswapd
// demoting to CXL and NUMA balancing mode 2 promoting hot pages back, stepped on a manual clock.

const cleanup: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (cleanup.length) await cleanup.pop()!();
});

/** A hot area of 64 pages that jumps every 200 ms over a 3072-page space (more than DRAM holds). */
function wanderingTrace(records: number): AccessTrace {
  const base = 0x7f0000000000;
  const pages = 3072;
  return {
    source: 'csv',
    records: Array.from({ length: records }, (_, i) => {
      const hot = ((i >> 1) * 977) % (pages - 64);
      const regions = [
        { start: base, end: base + hot * PAGE_SIZE, accesses: 0 },
        { start: base + hot * PAGE_SIZE, end: base + (hot + 64) * PAGE_SIZE, accesses: 4 },
        { start: base + (hot + 64) * PAGE_SIZE, end: base + pages * PAGE_SIZE, accesses: 0 },
      ].filter((g) => g.end > g.start);
      return { startMs: i * 100, endMs: (i + 1) * 100, regions };
    }),
  };
}

async function run(trace: AccessTrace) {
  const m = await createMachine({
    nodes: [{ memory: '8MiB' }, { memory: '16MiB', tier: 'cxl', cpus: 0 }],
    clock: 'manual',
  });
  cleanup.push(() => m.close());
  expect(m.sysctl.write('vm.watermark_scale_factor', '1000')).toBe(0);
  const copier = createMigrator({});
  await m.offload.register(copier, 'demotion,numa_misplaced');
  const ks = attachKswapd(m, { demotion: true, napMs: 1 });
  const nb = attachNumaBalancing(m, { scanDelayMs: 0 });
  cleanup.push(async () => {
    await nb.stop();
    await ks.stop();
  });
  expect(m.sysctl.write('kernel.numa_balancing', '2')).toBe(0);
  const p = m.spawn({ node: 0 });
  const pages = 3072;
  const a = p.mmap(pages * PAGE_SIZE, { thp: 'never' });
  for (let i = 0; i < pages; i += 256) {
    p.touch(a + i * PAGE_SIZE, 256 * PAGE_SIZE, 'write');
    await ks.settled();
  }
  const r = await replayAccessTrace(m, p, trace, {
    addr: a,
    bytes: pages * PAGE_SIZE,
    seed: 9,
    stepMs: 100,
    onStep: async () => {
      await nb.scanNow();
      await ks.settled();
    },
  });
  await ks.settled();
  m.checkInvariants();
  const v = m.vmstat();
  return {
    r,
    nodes: nodesOf(p, a, pages),
    counters: [v.pgpromote_success, v.pgdemote_kswapd, v.pgdemote_direct, v.numa_hint_faults],
  };
}

describe('replayAccessTrace with kswapd demotion and NUMA balancing mode 2', () => {
  it('the same trace and seed on two fresh machines place every page the same', async () => {
    const trace = wanderingTrace(12);
    const one = await run(trace);
    const two = await run(trace);
    // The loop ran: hot CXL pages were promoted and kswapd demoted cold DRAM pages to make room.
    expect(one.counters[0]).toBeGreaterThan(0);
    expect(one.counters[1]).toBeGreaterThan(0);
    expect(two.nodes).toEqual(one.nodes);
    expect(two.counters).toEqual(one.counters);
    expect(two.r).toEqual(one.r);
  }, 60_000);
});
