import {
  createMachine,
  type Machine,
  MIGRATE_MOVABLE,
  MIGRATE_TYPES,
  MIGRATE_UNMOVABLE,
  PAGE_SIZE,
  PAGEBLOCK_NR_PAGES,
} from '@pagemig/core';
import { afterEach, describe, expect, it } from 'vitest';
import { BlockState, compactNode, compactZone, zoneCompactState, zoneMap } from '../src/index.js';
import {
  chunkBytes,
  compactCounters,
  delta,
  fragment,
  keptPfns,
  shapeFreeLists,
  verifyBytes,
} from './helpers.js';

let m: Machine | undefined;
afterEach(async () => {
  await m?.close();
  m = undefined;
});

const hex = (n: number) => `0x${n.toString(16)}`;
const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);

describe('compact_zone: the scanners', () => {
  it('migrate scanner up, free scanner down, until they meet: every byte and invariant holds', async () => {
    m = await createMachine({ nodes: [{ memory: '64MiB' }] });
    const f = fragment(m, { fill: 0.97, chunkPages: 16 });
    const zone = m.kernel.zones[0]!;
    const before = m.vmstat() as Record<string, number>;
    m.trace.clear();
    const { zones } = await compactNode(m.kernel, 0);
    const r = zones[0]!;
    expect(r.status).toBe('complete');
    expect(r.mode).toBe('MIGRATE_SYNC');
    // They met: the free scanner's block is at or below the migrate scanner's.
    expect(r.freePfn >> 9).toBeLessThanOrEqual(r.migratePfn >> 9);
    // Below the meeting point nothing is left in use (but the last batch, which found no free
    // target once the scanners met); the freed blocks merged to order 9 and up.
    const meet = r.migratePfn >> 9;
    const map = zoneMap(m, 0);
    for (let b = 0; b < meet - 1; b++) expect(map.states[b], `pageblock ${b}`).toBe(BlockState.FREE);
    expect(map.used[meet - 1]).toBe(r.isolatedMigrate - r.pagesMigrated);
    expect(map.freeHugeBlocks).toBeGreaterThanOrEqual(meet - 1);
    // Half of the mapped memory had to move: 64 MiB · 0.97 / 2 pages, less what the top held.
    expect(r.pagesMigrated).toBeGreaterThan(3000);
    expect(r.pagesFailed).toBeLessThanOrEqual(1);
    expect(verifyBytes(f)).toBe(f.kept.length * 16);
    m.checkInvariants();

    // Counters: the run's own numbers, and what the tracepoints add up to.
    const d = delta(m, before, compactCounters);
    expect(d).toEqual({
      compact_migrate_scanned: r.migrateScanned,
      compact_free_scanned: r.freeScanned,
      compact_isolated: r.isolatedMigrate + r.isolatedFree,
      compact_stall: 0,
      compact_fail: 0,
      compact_success: 0,
      compact_daemon_wake: 0,
      compact_daemon_migrate_scanned: 0,
      compact_daemon_free_scanned: 0,
      pgmigrate_success: r.pagesMigrated,
      pgmigrate_fail: r.pagesFailed,
    });
    const iso = m.trace.events('mm_compaction_isolate_migratepages');
    const isf = m.trace.events('mm_compaction_isolate_freepages');
    const mig = m.trace.events('mm_compaction_migratepages');
    expect(sum(iso.map((e) => e.fields.nr_scanned as number))).toBe(r.migrateScanned);
    expect(sum(isf.map((e) => e.fields.nr_scanned as number))).toBe(r.freeScanned);
    expect(sum([...iso, ...isf].map((e) => e.fields.nr_taken as number))).toBe(d.compact_isolated);
    expect(sum(mig.map((e) => e.fields.nr_migrated as number))).toBe(r.pagesMigrated);
    expect(mig.length).toBe(r.migrateCalls);
    expect(zone.freePages).toBe(m.freePages(0));
  });

  it('prints the compaction tracepoints with the kernel text', async () => {
    m = await createMachine({ nodes: [{ memory: '64MiB' }] });
    fragment(m, { fill: 0.97, chunkPages: 16 });
    m.trace.clear();
    const r = (await compactNode(m.kernel, 0)).zones[0]!;
    const ev = m.trace.events('compaction');
    const text = (name: string) => ev.filter((e) => e.event === name).map((e) => e.text);
    // 64 MiB = 0x4000 pages; the free scanner starts at the last pageblock.
    expect(text('mm_compaction_begin')).toEqual([
      'zone_start=0x0 migrate_pfn=0x0 free_pfn=0x3e00 zone_end=0x4000, mode=sync',
    ]);
    expect(text('mm_compaction_end')).toEqual([
      `zone_start=0x0 migrate_pfn=${hex(r.migratePfn)} free_pfn=${hex(r.freePfn)} zone_end=0x4000, mode=sync status=complete`,
    ]);
    // Chunk 0 (pfn 0x0-0xf) was unmapped, chunk 1 kept, ...: 16 free, 16 in use, and so on. The
    // kernel's last_migrated_pfn starts at 0, so in a zone starting at pfn 0 the first block is
    // finished in one go (finish_pageblock) instead of COMPACT_CLUSTER_MAX pages at a time.
    expect(text('mm_compaction_isolate_migratepages')[0]).toBe(
      'range=(0x0 ~ 0x200) nr_scanned=512 nr_taken=256',
    );
    expect(text('mm_compaction_migratepages')[0]).toBe('nr_migrated=256 nr_failed=0');
    // Then, in the next block, COMPACT_CLUSTER_MAX (32) pages and the rest of the block.
    expect(text('mm_compaction_isolate_migratepages').slice(1, 3)).toEqual([
      'range=(0x200 ~ 0x240) nr_scanned=64 nr_taken=32',
      'range=(0x240 ~ 0x400) nr_scanned=448 nr_taken=224',
    ]);
    const finished = text('mm_compaction_finished');
    expect(finished[0]).toBe('node=0 zone=Normal   order=-1 ret=continue');
    expect(finished.at(-1)).toBe('node=0 zone=Normal   order=-1 ret=complete');
    for (const t of text('mm_compaction_isolate_freepages'))
      expect(t).toMatch(/^range=\(0x[0-9a-f]+ ~ 0x[0-9a-f]+\) nr_scanned=\d+ nr_taken=\d+$/);
    // The free scanner works from the top down; the last pageblock is one free order-9 block,
    // which it leaves alone (no point breaking up what compaction is trying to create).
    expect(m.kernel.zones[0]!.nrFree(9)).toBeGreaterThanOrEqual(1);
    const firstFree = ev.find((e) => e.event === 'mm_compaction_isolate_freepages')!;
    expect(firstFree.fields.start_pfn).toBeGreaterThanOrEqual(0x3c00);
    expect(firstFree.fields.start_pfn).toBeLessThan(0x3e00);
    // Each batch is one migrate_pages() with reason compaction in the run's mode.
    const starts = m.trace.events('mm_migrate_pages_start').map((e) => e.text);
    expect(new Set(starts)).toEqual(new Set(['mode=MIGRATE_SYNC reason=compaction']));
    expect(starts.length).toBe(r.migrateCalls);
    const lines = m.trace.lines('mm_compaction_begin');
    expect(lines[0]).toMatch(/ mm_compaction_begin: zone_start=0x0 migrate_pfn=0x0 /);
  });

  it.each([
    ['MIGRATE_ASYNC', 'async'],
    ['MIGRATE_SYNC_LIGHT', 'sync'],
    ['MIGRATE_SYNC', 'sync'],
  ] as const)('mode %s: stops as soon as an order-9 block is free', async (mode, printed) => {
    m = await createMachine({ nodes: [{ memory: '64MiB' }] });
    const f = fragment(m, { fill: 0.98, chunkPages: 16 });
    const zone = m.kernel.zones[0]!;
    expect(zone.nrFree(9) + zone.nrFree(10)).toBe(0);
    m.trace.clear();
    const r = await compactZone(m.kernel, zone, { order: 9, mode });
    expect(r.status).toBe('success');
    expect(r.mode).toBe(mode);
    expect(m.trace.events('mm_compaction_begin')[0]!.text).toMatch(new RegExp(`, mode=${printed}$`));
    expect(new Set(m.trace.events('mm_migrate_pages_start').map((e) => e.text))).toEqual(
      new Set([`mode=${mode} reason=compaction`]),
    );
    expect(m.trace.events('mm_compaction_end')[0]!.text).toMatch(/ status=success$/);
    // An order-9 block on the MOVABLE list, and only part of the zone was scanned.
    expect(
      zone.nrFreeList[9 * MIGRATE_TYPES + MIGRATE_MOVABLE]! +
        zone.nrFreeList[10 * MIGRATE_TYPES + MIGRATE_MOVABLE]!,
    ).toBeGreaterThan(0);
    expect(r.migrateScanned).toBeLessThan(zone.spanned / 2);
    expect(m.kernel.allocFolio({ order: 9, nid: 0 })).toBeGreaterThanOrEqual(0);
    // The cached positions let the next run continue where this one stopped: block 0 was
    // finished whole, so the next run starts after it (update_cached_migrate: pageblock_end_pfn).
    const s = zoneCompactState(zone);
    expect(s.cachedMigratePfn[0]).toBe(2 * PAGEBLOCK_NR_PAGES);
    expect(s.cachedMigratePfn[1]).toBe(mode === 'MIGRATE_ASYNC' ? 0 : 2 * PAGEBLOCK_NR_PAGES);
    expect(verifyBytes(f)).toBeGreaterThan(0);
    m.checkInvariants();
  });

  it('never moves unmovable, pinned or PMD-size folios; migrates mTHP folios whole', async () => {
    m = await createMachine({ nodes: [{ memory: '32MiB' }] });
    const k = m.kernel;
    const p = m.spawn();
    // A pinned order-0 page, an unmovable kernel page and a PMD-mapped THP, low in the zone.
    const thp = p.mmap(2 << 20, { thp: 'always' });
    p.write(thp, chunkBytes(101, 512));
    const thpPfn = p.pageInfo(thp)!.headPfn;
    const pinnedAddr = p.mmap(PAGE_SIZE, { thp: 'never' });
    p.write(pinnedAddr, chunkBytes(100, 1));
    const pinnedPfn = p.pageInfo(pinnedAddr)!.pfn;
    const unpin = m.pinFolio(pinnedPfn);
    const kernelPfn = k.allocFolio({ order: 0, nid: 0, mt: MIGRATE_UNMOVABLE });
    // Then 128 KiB chunks of 64 KiB folios (order 4) over the rest, every other one unmapped.
    const chunks: number[] = [];
    while (m.freePages(0) > 700) {
      const a = p.mmap(128 << 10, { thp: '64KiB' });
      p.write(a, chunkBytes(chunks.length, 32));
      chunks.push(a);
    }
    for (let i = 0; i < chunks.length; i += 2) p.munmap(chunks[i]!, 128 << 10);
    const before = chunks.map((a, i) => (i % 2 ? p.pageInfo(a)!.headPfn : -1));

    const r = (await compactNode(k, 0)).zones[0]!;
    expect(r.status).toBe('complete');
    expect(r.pagesMigrated).toBeGreaterThan(1000);
    expect(p.pageInfo(pinnedAddr)!.pfn).toBe(pinnedPfn);
    expect(k.pages.refcount[kernelPfn]).toBe(1);
    expect(p.pageInfo(thp)!.headPfn).toBe(thpPfn);
    let movedWhole = 0;
    for (let i = 1; i < chunks.length; i += 2) {
      expect(Buffer.compare(p.read(chunks[i]!, 128 << 10), chunkBytes(i, 32))).toBe(0);
      for (const off of [0, 64 << 10]) {
        const info = p.pageInfo(chunks[i]! + off)!;
        if (info.order === 4 && info.headPfn !== before[i]! + off / PAGE_SIZE) movedWhole++;
      }
    }
    expect(movedWhole).toBeGreaterThan(50);
    // A large folio is split only when no free target of its order is left (migrate_pages'
    // -ENOMEM path): at most in the last batch, when the free scanner has met the migrate scanner.
    const splits = m.trace.events('mm_migrate_pages').map((e) => e.fields.large_folio_split as number);
    expect(splits.slice(0, -1).every((n) => n === 0)).toBe(true);
    expect(movedWhole * 16 + splits.at(-1)! * 16).toBeGreaterThanOrEqual(r.pagesMigrated - 16);
    expect(Buffer.compare(p.read(pinnedAddr, PAGE_SIZE), chunkBytes(100, 1))).toBe(0);
    expect(Buffer.compare(p.read(thp, 2 << 20), chunkBytes(101, 512))).toBe(0);
    unpin();
    m.checkInvariants();
  });

  it('with compact_unevictable_allowed=0 mlocked pages stay where they are', async () => {
    m = await createMachine({
      nodes: [{ memory: '32MiB' }],
      sysctl: { 'vm.compact_unevictable_allowed': 0 },
    });
    const f = fragment(m, { fill: 0.9, chunkPages: 16, mlock: true });
    const pfns = keptPfns(f);
    const before = m.vmstat() as Record<string, number>;
    const r = (await compactNode(m.kernel, 0)).zones[0]!;
    expect(r.status).toBe('complete');
    expect(keptPfns(f)).toEqual(pfns);
    const d = delta(m, before, compactCounters);
    expect(d.pgmigrate_success).toBe(0);
    expect(d.compact_isolated).toBe(0);
    expect(d.compact_migrate_scanned).toBeGreaterThan(0);
    // Once allowed again, the same pages move.
    m.sysctl.write('vm.compact_unevictable_allowed', 1);
    const r2 = (await compactNode(m.kernel, 0)).zones[0]!;
    expect(r2.pagesMigrated).toBeGreaterThan(0);
    expect(verifyBytes(f)).toBe(pfns.length);
    m.checkInvariants();
  });
});

describe('compaction_suitable and the fragmentation index', () => {
  it('an order already free: SUCCESS at once, no scan, no counters', async () => {
    m = await createMachine({ nodes: [{ memory: '16MiB' }], prefault: false });
    const before = m.vmstat() as Record<string, number>;
    m.trace.clear();
    const r = await compactZone(m.kernel, m.kernel.zones[0]!, { order: 9, mode: 'MIGRATE_SYNC_LIGHT' });
    expect(r.status).toBe('success');
    expect(m.trace.events('compaction')).toEqual([]);
    expect(delta(m, before, compactCounters)).toEqual(Object.fromEntries(compactCounters.map((n) => [n, 0])));
  });

  it('fragindex ≤ extfrag_threshold: not suitable (lack of memory, not fragmentation)', async () => {
    m = await createMachine({ nodes: [{ memory: '16MiB' }], prefault: false });
    const zone = m.kernel.zones[0]!;
    // Six free order-8 blocks that cannot merge: index 1000 − (1000 + 3000)/6 = 334.
    shapeFreeLists(
      m,
      zone,
      [0, 512, 1024, 1536, 2048, 2560].map((pfn) => [pfn, 8] as [number, number]),
    );
    m.trace.clear();
    const r = await compactZone(m.kernel, zone, { order: 9, mode: 'MIGRATE_SYNC_LIGHT' });
    expect(r.status).toBe('skipped');
    expect(m.trace.events('compaction').map((e) => e.text)).toEqual([
      'node=0 zone=Normal   order=9 ret=not_suitable_zone',
    ]);
    // Lower the threshold below the index: the zone is worth compacting.
    expect(m.sysctl.write('vm.extfrag_threshold', 300)).toBe(0);
    m.trace.clear();
    const r2 = await compactZone(m.kernel, zone, { order: 9, mode: 'MIGRATE_SYNC_LIGHT' });
    expect(m.trace.events('mm_compaction_suitable').map((e) => e.text)).toEqual([
      'node=0 zone=Normal   order=9 ret=continue',
    ]);
    // Nothing is in use by processes: there is nothing to migrate, the scanners meet.
    expect(r2.status).toBe('complete');
    m.checkInvariants();
  });

  it('too little free memory for compact_gap: skipped', async () => {
    m = await createMachine({ nodes: [{ memory: '16MiB' }], prefault: false });
    const zone = m.kernel.zones[0]!;
    shapeFreeLists(
      m,
      zone,
      [0, 512].map((pfn) => [pfn, 8] as [number, number]),
    );
    m.trace.clear();
    const r = await compactZone(m.kernel, zone, { order: 9 });
    expect(r.status).toBe('skipped');
    expect(m.trace.events('mm_compaction_suitable')[0]!.text).toBe(
      'node=0 zone=Normal   order=9 ret=skipped',
    );
    // Non-costly orders ignore the fragmentation index but not the watermark.
    const r3 = await compactZone(m.kernel, zone, { order: 3 });
    expect(r3.status).toBe('success');
  });

  it('skip hints: a block that gave nothing is skipped until the hints reset', async () => {
    m = await createMachine({ nodes: [{ memory: '16MiB' }] });
    const k = m.kernel;
    const zone = k.zones[0]!;
    // Pageblock 0 holds only unmovable kernel pages, interleaved with free ones.
    const pfns: number[] = [];
    for (let i = 0; i < 256; i++) pfns.push(k.allocFolio({ order: 0, nid: 0, mt: MIGRATE_UNMOVABLE }));
    for (const pfn of pfns) if (pfn % 2) k.freeFolio(pfn);
    const r = await compactZone(k, zone, { mode: 'MIGRATE_SYNC_LIGHT' });
    expect(r.status).toBe('complete');
    expect(k.pageblocks.skip(0)).toBe(true);
    // A later run honouring hints does not scan block 0 at all.
    m.trace.clear();
    await compactZone(k, zone, { mode: 'MIGRATE_SYNC_LIGHT' });
    const first = m.trace.events('mm_compaction_isolate_migratepages')[0];
    if (first) expect(first.fields.start_pfn).toBeGreaterThanOrEqual(PAGEBLOCK_NR_PAGES);
    zoneCompactState(zone).blockskipFlush = true;
    const { resetIsolationSuitable } = await import('../src/index.js');
    expect(resetIsolationSuitable(k, zone)).toBe(true);
    expect(k.pageblocks.skip(0)).toBe(false);
    m.checkInvariants();
  });
});
