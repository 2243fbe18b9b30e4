import { expect, it } from 'vitest';
import { runMemoryTiering } from '../src/main.js';

it('kswapd demotes, mode-2 NUMA balancing promotes, every copy on the DMA engine, every byte kept', async () => {
  const r = await runMemoryTiering();
  expect(r.pages).toBe(6144);
  // The region is 24 MiB, DRAM 16 MiB: after the writes (and kswapd) pages are on both tiers.
  const [dram, cxl] = r.placement.afterFill;
  expect(dram + cxl).toBe(6144);
  expect(dram).toBeGreaterThan(0);
  expect(cxl).toBeGreaterThan(0);
  expect(r.placement.afterWorkload[0] + r.placement.afterWorkload[1]).toBe(6144);
  expect(r.verified).toBe(true);
  const c = r.counters;
  // Demotions by kswapd (or direct reclaim), promotions only by mode 2's hinting faults.
  expect(c.pgdemote_kswapd + c.pgdemote_direct).toBeGreaterThan(0);
  expect(c.pgpromote_success).toBeGreaterThan(0);
  expect(c.pgpromote_candidate).toBeGreaterThanOrEqual(c.pgpromote_success);
  // Every misplaced migration here is a promotion (the only CPUs are on the top tier).
  expect(c.numa_pages_migrated).toBe(c.pgpromote_success);
  // Nothing else migrated; the DMA engine copied every folio that moved (all 4 KiB) and never failed.
  const moved = c.pgdemote_kswapd + c.pgdemote_direct + c.pgpromote_success;
  expect(c.pgmigrate_success).toBe(moved);
  // A promotion is started only while DRAM has room for it and every promotion in flight.
  expect(c.pgmigrate_fail).toBe(0);
  expect(r.dma).toMatchObject({ name: 'ptdma', foliosCopied: moved, failures: 0 });
  // Both engines took a share of the bytes (demotions come in batches sliced across channels).
  expect(r.dma.channels).toHaveLength(2);
  expect(r.dma.channels.reduce((s, ch) => s + ch.bytes, 0)).toBe(moved * 4096);
  for (const ch of r.dma.channels) expect(ch.bytes).toBeGreaterThan(0);
  expect(r.hotSet.moves).toBeGreaterThanOrEqual(3);
  expect(r.hotSet.pages).toBe(512);
}, 60_000);
