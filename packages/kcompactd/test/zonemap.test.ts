import { createMachine, type Machine, MIGRATE_UNMOVABLE, PAGE_SIZE } from '@pagemig/core';
import { afterEach, describe, expect, it } from 'vitest';
import {
  BlockState,
  blockStateNames,
  compactNode,
  renderZoneMapsSvg,
  zoneMap,
  zoneMapCounts,
  zoneMapSvg,
  zoneMapText,
} from '../src/index.js';
import { fragment } from './helpers.js';

let m: Machine | undefined;
afterEach(async () => {
  await m?.close();
  m = undefined;
});

describe('zone map', () => {
  it('classifies each pageblock: free, movable, unmovable, mixed', async () => {
    m = await createMachine({ nodes: [{ memory: '8MiB' }], prefault: false });
    const k = m.kernel;
    const p = m.spawn();
    // Block 0: movable user pages only.
    const a = p.mmap(256 * PAGE_SIZE, { thp: 'never' });
    p.touch(a, 256 * PAGE_SIZE);
    // Block 1: more user pages, one of them pinned (compaction cannot move it): mixed.
    const b = p.mmap(300 * PAGE_SIZE, { thp: 'never' });
    p.touch(b, 300 * PAGE_SIZE);
    const unpin = m.pinFolio(p.pageInfo(b + 299 * PAGE_SIZE)!.pfn);
    // A kernel page: the Unmovable fallback claims the largest free block (pfn 1024): unmovable.
    const kernelPfn = k.allocFolio({ order: 0, nid: 0, mt: MIGRATE_UNMOVABLE });
    expect(kernelPfn).toBe(1024);
    const map = zoneMap(m, 0);
    expect(map.states.length).toBe(4);
    expect(map.used[0]).toBe(512);
    expect(Array.from(map.states)).toEqual([
      BlockState.MOVABLE,
      BlockState.MIXED,
      BlockState.UNMOVABLE,
      BlockState.FREE,
    ]);
    expect(Array.from(map.used)).toEqual([512, 44, 1, 0]);
    expect(Array.from(map.movable)).toEqual([512, 43, 0, 0]);
    expect(zoneMapText(map)).toBe('mxU.\n');
    unpin();
    expect(zoneMap(m, 0).states[1]).toBe(BlockState.MOVABLE);
    const counts = zoneMapCounts(map);
    expect(counts.free + counts.movable + counts.unmovable + counts.mixed).toBe(4);
  });

  it('renders an SVG grid: one cell per pageblock, coloured by state, with a legend and tooltips', async () => {
    m = await createMachine({ nodes: [{ memory: '64MiB' }] });
    fragment(m, { fill: 0.96 });
    const before = zoneMap(m, 0);
    await compactNode(m.kernel, 0);
    const after = zoneMap(m, 0);
    const svg = renderZoneMapsSvg([before, after], { titles: ['before compaction', 'after compaction'] });
    expect(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"')).toBe(true);
    expect(svg.trimEnd().endsWith('</svg>')).toBe(true);
    expect(svg.match(/<g class="pb /g)!.length).toBe(2 * 32);
    expect(svg).toContain('before compaction');
    expect(svg).toContain('after compaction');
    for (const name of blockStateNames) expect(svg).toContain(`>${name}</text>`);
    expect(svg).toMatch(/<title>pfn 0x0-0x1ff: \w+, \d+\/512 pages in use, \d+ movable<\/title>/);
    // Balanced tags (a cheap well-formedness check).
    const open = (svg.match(/<g[ >]/g) ?? []).length;
    expect((svg.match(/<\/g>/g) ?? []).length).toBe(open);
    // Compaction turned mixed-use blocks into free blocks at the bottom of the zone.
    expect(zoneMapCounts(after).free).toBeGreaterThan(zoneMapCounts(before).free);
    expect(after.freeHugeBlocks).toBeGreaterThan(before.freeHugeBlocks);
    expect(after.score).toBeLessThan(before.score);
    // The live form and its errors.
    expect(zoneMapSvg(m, 0)).toContain('Node 0, zone Normal');
    expect(() => zoneMap(m!, 3)).toThrow(/node 3/);
    expect(() => zoneMap(m!, 0, 'DMA32')).toThrow(/no DMA32 zone/);
    expect(() => renderZoneMapsSvg([])).toThrow(/no zone map/);
  });
});
