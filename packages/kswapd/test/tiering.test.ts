import {
  MPOL_BIND,
  MPOL_F_NUMA_BALANCING,
  PAGE_SIZE,
  type PatternResult,
  verifyPattern,
} from '@pagemig/core';
import { createMigrator } from '@pagemig/migrator-cpu-serial';
import { attachNumaBalancing } from '@pagemig/numa-balancing';
import { afterEach, describe, expect, it } from 'vitest';
import { attachKswapd } from '../src/index.js';
import { nodesOf, tierMachine } from './helpers.js';

const cleanup: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (cleanup.length) await cleanup.pop()!();
});

/**
 * A user thread writes a region half as large again as DRAM, bound to the DRAM
 * node: its faults only succeed because reclaim demotes the region's colder pages to
 * CXL, for `passes` passes. Returns what the thread saw and the pages' nodes at the end, after checking every word.
 */
async function largerThanDram(tiering: boolean, passes: number) {
  const m = await tierMachine(8, 16);
  cleanup.push(() => m.close());
  const copier = createMigrator({});
  await m.offload.register(copier, 'demotion,numa_misplaced');
  const ks = attachKswapd(m, { demotion: true, napMs: 1 });
  const nb = tiering ? attachNumaBalancing(m, { scanDelayMs: 0, scanPeriodMs: 20, scanSizeMb: 4 }) : null;
  if (tiering) expect(m.sysctl.write('kernel.numa_balancing', '2')).toBe(0);
  const p = m.spawn({ comm: 'big', node: 0 });
  const pages = 3 * 1024;
  const addr = p.mmap(pages * PAGE_SIZE, { thp: 'never' });
  // MPOL_BIND to DRAM; MPOL_F_NUMA_BALANCING lets NUMA balancing scan the area (vma_policy_mof).
  const bound = await p.mbind(addr, pages * PAGE_SIZE, MPOL_BIND | MPOL_F_NUMA_BALANCING, [0], 0);
  expect(bound.ret).toBe(0);
  // Every 16th word is the thread's (a pass is quick); the others must stay zero.
  const workload = {
    kind: 'pattern' as const,
    addr,
    bytes: pages * PAGE_SIZE,
    lanes: 1,
    lane: 0,
    strideWords: 16,
    passes,
  };
  const t = p.spawnThread<PatternResult>({ workload, node: 0 });
  const r = await t.join();
  expect(r.errors, JSON.stringify(r.firstErrors)).toBe(0);
  expect(r.passes).toBe(passes);
  await nb?.stop();
  await ks.settled();
  // Every byte of every page is what the thread wrote last, wherever the page is now.
  const check = verifyPattern((a, n) => p.read(a, n), workload, [r]);
  expect(check.mismatches).toBe(0);
  expect(check.checked).toBe(pages * 64);
  const words = new Uint32Array(p.read(addr, pages * PAGE_SIZE).buffer);
  let stray = 0;
  for (let i = 0; i < words.length; i++) if (i % 16 !== 0 && words[i] !== 0) stray++;
  expect(stray).toBe(0);
  const nodes = nodesOf(p, addr, pages);
  expect(nodes.every((n) => n === 0 || n === 1)).toBe(true);
  m.checkInvariants();
  const v = m.vmstat();
  const s = ks.stats();
  await ks.stop();
  await m.offload.unregister(copier);
  return { v, s, nodes };
}

describe('a workload larger than DRAM', () => {
  it('keeps every byte across demotion, through the migrator routed for demotion', async () => {
    const { v, s, nodes } = await largerThanDram(false, 3);
    expect(nodes.filter((n) => n === 1).length).toBeGreaterThanOrEqual(1024);
    expect(v.pgdemote_kswapd + v.pgdemote_direct).toBeGreaterThanOrEqual(1024);
    expect(s.demotion.pagesDemoted).toBe(v.pgdemote_kswapd + v.pgdemote_direct);
    expect(s.demotion.migrator).toBe('cpu-serial');
    expect(s.demotion.foliosCopied).toBe(s.demotion.pagesDemoted);
    expect(v.pgpromote_success).toBe(0);
  });

  it('keeps every byte across demotion and promotion (kernel.numa_balancing=2)', async () => {
    const { v, nodes } = await largerThanDram(true, 3);
    expect(nodes.filter((n) => n === 1).length).toBeGreaterThanOrEqual(1024);
    expect(v.pgdemote_kswapd + v.pgdemote_direct).toBeGreaterThan(1024);
    expect(v.pgpromote_success).toBeGreaterThan(0);
    expect(v.pgpromote_candidate).toBeGreaterThanOrEqual(v.pgpromote_success);
  });
});
