import { expect, it } from 'vitest';
import { runMemoryTiering } from '../src/main.js';

it('demotes the cold pages to CXL and promotes the new hot set, every copy on the DMA engine', async () => {
  const r = await runMemoryTiering();
  expect(r.pages).toBe(4096);
  // Period 1 used the first quarter: the other 3072 pages went to CXL, copied by ptdma.
  expect(r.steps[0]).toEqual({
    step: 'demote',
    pages: 3072,
    copiedBy: 'ptdma',
    foliosCopied: 3072,
    placement: [1024, 3072],
  });
  // Period 2 used the last quarter (on CXL by then): its 1024 pages came back to DRAM.
  expect(r.steps[1]).toEqual({
    step: 'promote',
    pages: 1024,
    copiedBy: 'ptdma',
    foliosCopied: 1024,
    placement: [2048, 2048],
  });
  expect(r.verified).toBe(true);
  expect(r.counters).toEqual({
    pgdemote_kswapd: 3072,
    pgpromote_success: 1024,
    numa_pages_migrated: 1024,
    pgmigrate_success: 4096,
  });
  expect(r.dma).toMatchObject({ name: 'ptdma', foliosCopied: 4096, failures: 0 });
  // Both engines took a share of every byte that moved.
  expect(r.dma.channels).toHaveLength(2);
  expect(r.dma.channels.reduce((s, c) => s + c.bytes, 0)).toBe(4096 * 4096);
  for (const c of r.dma.channels) expect(c.bytes).toBeGreaterThan(0);
});
