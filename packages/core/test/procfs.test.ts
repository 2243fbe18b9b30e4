import { describe, expect, it } from 'vitest';
import { createMachine } from '../src/machine.js';
import { vmstatEvents, vmstatGauges, vmstatNodeEvents, vmstatNumaEvents } from '../src/vmstat.js';

// Expected texts are written out by hand from the kernel's format strings (reference §3.1-3.4).
const Z = '     0 '; // "%6lu " of 0

describe('/proc/buddyinfo', () => {
  it('prints "Node %d, zone %8s " and eleven "%6lu " columns with a trailing space', async () => {
    const m = await createMachine({ nodes: [{ memory: '64MiB' }], prefault: false });
    try {
      // 64 MiB = 16384 frames = 16 blocks of order 10.
      expect(m.procfs.buddyinfo()).toBe(
        'Node 0, zone   Normal      0      0      0      0      0      0      0      0      0      0     16 \n',
      );
      // One order-0 allocation splits an order-10 block: one block of each order 0..9 is left.
      expect(m.kernel.allocFolio({ order: 0, nid: 0 })).toBe(0);
      expect(m.procfs.buddyinfo()).toBe(
        'Node 0, zone   Normal      1      1      1      1      1      1      1      1      1      1     15 \n',
      );
      m.kernel.folioPut(0);
      expect(m.procfs.buddyinfo()).toBe(
        'Node 0, zone   Normal      0      0      0      0      0      0      0      0      0      0     16 \n',
      );
    } finally {
      await m.close();
    }
  });

  it('prints one line per zone, nodes in order, zones DMA32, Normal, Movable in that order', async () => {
    const m = await createMachine({
      nodes: [
        {
          memory: '16MiB',
          zones: [
            { type: 'DMA32', memory: '4MiB' },
            { type: 'Normal', memory: '8MiB' },
            { type: 'Movable', memory: '4MiB' },
          ],
        },
        { memory: '6MiB' },
      ],
      prefault: false,
    });
    try {
      expect(m.procfs.buddyinfo()).toBe(
        'Node 0, zone    DMA32      0      0      0      0      0      0      0      0      0      0      1 \n' +
          'Node 0, zone   Normal      0      0      0      0      0      0      0      0      0      0      2 \n' +
          'Node 0, zone  Movable      0      0      0      0      0      0      0      0      0      0      1 \n' +
          // 6 MiB = 1536 frames: one order-10 block and one order-9 block.
          'Node 1, zone   Normal      0      0      0      0      0      0      0      0      0      1      1 \n',
      );
      expect(m.nodes[0]!.zones.map((z) => z.type)).toEqual(['DMA32', 'Normal', 'Movable']);
    } finally {
      await m.close();
    }
  });

  it('right-aligns six-digit counts', async () => {
    const m = await createMachine({ nodes: [{ memory: '1GiB' }], backing: 'none' });
    try {
      // 262144 frames = 256 order-10 blocks.
      expect(m.procfs.buddyinfo()).toBe(`Node 0, zone   Normal ${Z.repeat(10)}   256 \n`);
    } finally {
      await m.close();
    }
  });
});

describe('/proc/pagetypeinfo', () => {
  const header =
    'Page block order: 9\n' +
    'Pages per block:  512\n' +
    '\n' +
    'Free pages count per migrate type at order       0      1      2      3      4      5      6      7      8      9     10 \n';
  const blocksHeader =
    '\nNumber of blocks type     Unmovable      Movable  Reclaimable   HighAtomic      Isolate \n';

  it('renders a fresh single-node machine exactly', async () => {
    const m = await createMachine({ nodes: [{ memory: '64MiB' }], prefault: false });
    try {
      expect(m.procfs.pagetypeinfo()).toBe(
        header +
          `Node    0, zone   Normal, type    Unmovable ${Z.repeat(11)}\n` +
          `Node    0, zone   Normal, type      Movable ${Z.repeat(10)}    16 \n` +
          `Node    0, zone   Normal, type  Reclaimable ${Z.repeat(11)}\n` +
          `Node    0, zone   Normal, type   HighAtomic ${Z.repeat(11)}\n` +
          `Node    0, zone   Normal, type      Isolate ${Z.repeat(11)}\n` +
          blocksHeader +
          'Node 0, zone   Normal            0           32            0            0            0 \n',
      );
    } finally {
      await m.close();
    }
  });

  it('counts free blocks per migratetype and pageblocks per type after an unmovable allocation', async () => {
    const m = await createMachine({ nodes: [{ memory: '8MiB' }], prefault: false });
    try {
      // An UNMOVABLE order-0 request on an all-MOVABLE zone steals a whole order-10 block (two
      // pageblocks) and splits it on the UNMOVABLE lists.
      expect(m.kernel.allocFolio({ order: 0, nid: 0, mt: 0 })).toBe(0);
      expect(m.procfs.pagetypeinfo()).toBe(
        header +
          'Node    0, zone   Normal, type    Unmovable      1      1      1      1      1      1      1      1      1      1      0 \n' +
          `Node    0, zone   Normal, type      Movable ${Z.repeat(10)}     1 \n` +
          `Node    0, zone   Normal, type  Reclaimable ${Z.repeat(11)}\n` +
          `Node    0, zone   Normal, type   HighAtomic ${Z.repeat(11)}\n` +
          `Node    0, zone   Normal, type      Isolate ${Z.repeat(11)}\n` +
          blocksHeader +
          'Node 0, zone   Normal            2            2            0            0            0 \n',
      );
      m.checkInvariants();
    } finally {
      await m.close();
    }
  });

  it('repeats the whole block for every node, as the per-node seq_file show does', async () => {
    const m = await createMachine({ nodes: [{ memory: '4MiB' }, { memory: '4MiB' }], prefault: false });
    try {
      const node = (nid: number) =>
        header +
        `Node    ${nid}, zone   Normal, type    Unmovable ${Z.repeat(11)}\n` +
        `Node    ${nid}, zone   Normal, type      Movable ${Z.repeat(10)}     1 \n` +
        `Node    ${nid}, zone   Normal, type  Reclaimable ${Z.repeat(11)}\n` +
        `Node    ${nid}, zone   Normal, type   HighAtomic ${Z.repeat(11)}\n` +
        `Node    ${nid}, zone   Normal, type      Isolate ${Z.repeat(11)}\n` +
        blocksHeader +
        `Node ${nid}, zone   Normal            0            2            0            0            0 \n`;
      expect(m.procfs.pagetypeinfo()).toBe(node(0) + node(1));
    } finally {
      await m.close();
    }
  });

  it('prints ">100000" once a list holds 100000 blocks', async () => {
    const m = await createMachine({
      nodes: [{ memory: '1GiB' }],
      backing: 'none',
      sysctl: { 'vm.min_free_kbytes': 0 },
    });
    try {
      const k = m.kernel;
      // Order-0 allocations come from the bottom of the zone upwards.
      let inOrder = 0;
      for (let i = 0; i < 200_000; i++) if (k.allocFolio({ order: 0, nid: 0 }) === i) inOrder++;
      expect(inOrder).toBe(200_000);
      // Every even frame freed: its odd buddy is in use, so each stays an order-0 block.
      for (let pfn = 0; pfn < 199_998; pfn += 2) k.folioPut(pfn);
      const movable = () => m.procfs.pagetypeinfo().split('\n')[5]!;
      expect(movable().startsWith('Node    0, zone   Normal, type      Movable  99999 ')).toBe(true);
      k.folioPut(199_998);
      expect(movable().startsWith('Node    0, zone   Normal, type      Movable >100000 ')).toBe(true);
      // buddyinfo sums nr_free without a cap.
      expect(m.procfs.buddyinfo().startsWith('Node 0, zone   Normal 100000 ')).toBe(true);
    } finally {
      await m.close();
    }
  });
});

describe('/proc/zoneinfo', () => {
  it('follows the reference worked example: a 4 GiB zone → min 2048, low 3096, high 4144, promo 5192', async () => {
    const m = await createMachine({ nodes: [{ memory: '4GiB' }], backing: 'none' });
    try {
      expect(m.sysctl.read('vm.min_free_kbytes')).toBe('8192\n');
      // One seq_printf in zoneinfo_show_print: "pages free" through "cma", then "protection".
      const zi = m.procfs.zoneinfo();
      expect(zi.split('\n')).toContain('Node 0, zone   Normal');
      expect(zi).toContain(
        '\n  pages free     1048576\n' +
          '        boost    0\n' +
          '        min      2048\n' +
          '        low      3096\n' +
          '        high     4144\n' +
          '        promo    5192\n' +
          '        spanned  1048576\n' +
          '        present  1048576\n' +
          '        managed  1048576\n' +
          '        cma      0\n' +
          '        protection: (',
      );
      expect(zi).toContain('\n  start_pfn:           0\n');
    } finally {
      await m.close();
    }
  });

  it('shares min_free_kbytes between lowmem zones by managed pages; ZONE_MOVABLE gets the small fixed min', async () => {
    const m = await createMachine({
      nodes: [
        {
          memory: '16MiB',
          zones: [
            { type: 'DMA32', memory: '4MiB' },
            { type: 'Normal', memory: '8MiB' },
            { type: 'Movable', memory: '4MiB' },
          ],
        },
      ],
      backing: 'none',
    });
    try {
      // lowmem = DMA32 + Normal = 3072 frames = 12288 KiB → int_sqrt(12288 * 16) = 443 KiB,
      // pages_min = 110. DMA32: 110 * 1024 / 3072 = 36, delta max(9, 1) = 9. Normal: 73, delta
      // 18. Movable: min clamp(1024 / 1024, 32, 128) = 32, delta max(36 >> 2, 1) = 9.
      expect(m.sysctl.read('vm.min_free_kbytes')).toBe('443\n');
      const marks = m.procfs
        .zoneinfo()
        .split('Node ')
        .slice(1)
        .map((block) =>
          ['min', 'low', 'high', 'promo'].map((w) => Number(new RegExp(` ${w} +(\\d+)`).exec(block)![1])),
        );
      expect(marks).toEqual([
        [36, 45, 54, 63],
        [73, 91, 109, 127],
        [32, 41, 50, 59],
      ]);
      expect(m.procfs.zoneinfo()).toContain('Node 0, zone  Movable\n  pages free     1024\n');
      expect(m.procfs.zoneinfo()).toContain('\n  start_pfn:           3072\n');
    } finally {
      await m.close();
    }
  });
});

describe('/proc/vmstat', () => {
  it('prints "name value" lines ending with nr_unstable 0, and m.vmstat() agrees', async () => {
    const m = await createMachine({ nodes: [{ memory: '16MiB' }, { memory: '16MiB' }], prefault: false });
    try {
      const p = m.spawn();
      const a = p.mmap(2 << 20, { thp: 'always' });
      p.touch(a, 4096);
      const b = p.mmap(10 * 4096);
      p.touch(b, 10 * 4096);
      const text = m.procfs.vmstat();
      expect(text.endsWith('\nnr_unstable 0\n')).toBe(true);
      const lines = text.slice(0, -1).split('\n');
      for (const line of lines) expect(line).toMatch(/^[a-z0-9_]+ \d+$/);
      const names = lines.map((l) => l.split(' ')[0]!);
      expect(new Set(names).size).toBe(names.length);
      for (const n of [
        'pgmigrate_success',
        'pgmigrate_fail',
        'thp_migration_success',
        'thp_migration_fail',
        'thp_migration_split',
        'numa_pages_migrated',
        'compact_migrate_scanned',
        'compact_free_scanned',
        'compact_isolated',
        'compact_stall',
        'compact_fail',
        'compact_success',
        'compact_daemon_wake',
        'compact_daemon_migrate_scanned',
        'compact_daemon_free_scanned',
        'nr_free_pages',
        'pgfree',
        'thp_fault_alloc',
      ])
        expect(names).toContain(n);
      // The node's event-like items follow nr_page_table_pages, the vm events follow the stats.
      const i = names.indexOf('nr_page_table_pages');
      expect(names.slice(i + 1, i + 1 + vmstatNodeEvents.length)).toEqual([...vmstatNodeEvents]);
      expect(names.length).toBe(
        vmstatGauges.length + vmstatNumaEvents.length + vmstatNodeEvents.length + vmstatEvents.length + 1,
      );

      const values = m.vmstat();
      for (const line of lines.slice(0, -1)) {
        const [name, v] = line.split(' ');
        expect(values[name as keyof typeof values], name).toBe(Number(v));
      }
      expect(Object.keys(values).length).toBe(lines.length - 1);

      expect(values.nr_free_pages).toBe(m.freePages(0) + m.freePages(1));
      expect(values.nr_anon_pages).toBe(512 + 10);
      expect(values.nr_anon_transparent_hugepages).toBe(1);
      expect(values.thp_fault_alloc).toBe(1);
      expect(values.pgalloc_normal).toBe(512 + 10);
      expect(values.nr_page_table_pages).toBe(1);
      expect(values.pgmigrate_success).toBe(0);
      // nr_free_pages agrees with buddyinfo's blocks.
      let fromBuddyinfo = 0;
      for (const line of m.procfs.buddyinfo().trimEnd().split('\n')) {
        line
          .slice('Node 0, zone   Normal '.length)
          .trim()
          .split(/ +/)
          .forEach((c, o) => {
            fromBuddyinfo += Number(c) << o;
          });
      }
      expect(fromBuddyinfo).toBe(values.nr_free_pages);
      p.exit();
      expect(m.vmstat().pgfree).toBe(512 + 10);
      expect(m.vmstat().nr_anon_pages).toBe(0);
      m.checkInvariants();
    } finally {
      await m.close();
    }
  });
});
