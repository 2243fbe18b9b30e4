import { describe, expect, it } from 'vitest';
import type { MachineConfig } from '../src/config.js';
import { EACCES, EINVAL, ENOENT } from '../src/errno.js';
import { createMachine } from '../src/machine.js';
import { catchPagemig, expectErrno, pattern, sameBytes } from './helpers.js';

const one = (memory: string | number) => ({ nodes: [{ memory }] });

describe('createMachine config validation', () => {
  const cases: [string, unknown, string][] = [
    ['a fractional size', one('1.5MiB'), 'nodes.0.memory'],
    ['a size that is not a 2 MiB multiple', one('3MiB'), 'nodes.0.memory'],
    ['a negative size', one(-1), 'nodes.0.memory'],
    ['an unparsable size', one('lots'), 'nodes.0.memory'],
    ['a zero size', one(0), 'nodes.0.memory'],
    ['a bad second node', { nodes: [{ memory: '4MiB' }, { memory: '5MiB' }] }, 'nodes.1.memory'],
    ['an unknown top-level key', { ...one('4MiB'), numa: true }, 'config'],
    ['an unknown node key', { nodes: [{ memory: '4MiB', colour: 'red' }] }, 'nodes.0'],
    ['no nodes', { nodes: [] }, 'nodes'],
    ['a distance matrix of the wrong shape', { ...one('4MiB'), distances: [[10, 20]] }, 'distances'],
    [
      'a remote distance of 10 or less',
      {
        nodes: [{ memory: '4MiB' }, { memory: '4MiB' }],
        distances: [
          [10, 10],
          [20, 10],
        ],
      },
      'distances.0.1',
    ],
    [
      'a remote distance above 254',
      {
        nodes: [{ memory: '4MiB' }, { memory: '4MiB' }],
        distances: [
          [10, 20],
          [255, 10],
        ],
      },
      'distances.1.0',
    ],
    [
      'a local distance other than 10',
      {
        nodes: [{ memory: '4MiB' }, { memory: '4MiB' }],
        distances: [
          [10, 20],
          [20, 11],
        ],
      },
      'distances.1.1',
    ],
    [
      'a fractional distance',
      {
        nodes: [{ memory: '4MiB' }, { memory: '4MiB' }],
        distances: [
          [10, 20.5],
          [20, 10],
        ],
      },
      'distances.0.1',
    ],
    ['a sectionSize that is not a power of two', { ...one('4MiB'), sectionSize: '3MiB' }, 'sectionSize'],
    ['a sectionSize below 4 MiB', { ...one('4MiB'), sectionSize: '2MiB' }, 'sectionSize'],
    ['a sectionSize above 1 GiB', { ...one('4MiB'), sectionSize: '2GiB' }, 'sectionSize'],
    ['an unparsable sectionSize', { ...one('4MiB'), sectionSize: 'big' }, 'sectionSize'],
    ['an unknown backing', { ...one('4MiB'), backing: 'disk' }, 'backing'],
    [
      'a DMA zone',
      { nodes: [{ memory: '4MiB', zones: [{ type: 'DMA', memory: '4MiB' }] }] },
      'nodes.0.zones.0.type',
    ],
    [
      'zones out of order',
      {
        nodes: [
          {
            memory: '4MiB',
            zones: [
              { type: 'Normal', memory: '2MiB' },
              { type: 'DMA32', memory: '2MiB' },
            ],
          },
        ],
      },
      'nodes.0.zones',
    ],
    [
      'zones that do not add up to the node',
      { nodes: [{ memory: '4MiB', zones: [{ type: 'Normal', memory: '2MiB' }] }] },
      'nodes.0.zones',
    ],
    [
      'a zone size that is not a 2 MiB multiple',
      {
        nodes: [
          {
            memory: '4MiB',
            zones: [
              { type: 'DMA32', memory: '1MiB' },
              { type: 'Normal', memory: '3MiB' },
            ],
          },
        ],
      },
      'nodes.0.zones.0.memory',
    ],
    ['more memory than the page tables address', { nodes: [{ memory: '128GiB' }], backing: 'none' }, 'nodes'],
  ];

  it.each(cases)('rejects %s naming the field', async (_, config, field) => {
    let err: unknown;
    try {
      await createMachine(config as MachineConfig);
    } catch (e) {
      err = e;
    }
    const e = catchPagemig(() => {
      throw err;
    });
    expect(e.code).toBe('ERR_INVALID_CONFIG');
    expect(e.message.startsWith(`createMachine: ${field}: `)).toBe(true);
    expect(e.message).not.toContain(`${field}: ${field}:`);
  });

  it('accepts sizes as byte counts and strings in binary units', async () => {
    const m = await createMachine({
      nodes: [{ memory: 4 << 20 }, { memory: '6 MiB', tier: 'cxl' }, { memory: '8192KiB' }],
      prefault: false,
      distances: [
        [10, 20, 30],
        [20, 10, 254],
        [30, 11, 10],
      ],
    });
    try {
      expect(m.nodes.map((n) => n.memory)).toEqual([4 << 20, 6 << 20, 8 << 20]);
      expect(m.nodes.map((n) => n.startPfn)).toEqual([0, 1024, 2560]);
      expect(m.nodes[1]!.tier).toBe('cxl');
      expect(m.nodes[2]!.distances).toEqual([30, 11, 10]);
      expect(m.nrPages).toBe(4608);
    } finally {
      await m.close();
    }
  });
});

describe('machine size', () => {
  it('keeps metadata within 32 bytes per page', async () => {
    const m = await createMachine({ ...one('4MiB'), prefault: false });
    expect(m.metadataBytesPerPage).toBeLessThanOrEqual(32);
    await m.close();
  });

  it("creates and closes a 64 GiB backing: 'none' machine and a 4 GiB shared one without exhausting memory", async () => {
    const rss0 = process.memoryUsage().rss;
    const big = await createMachine({ nodes: [{ memory: '32GiB' }, { memory: '32GiB' }], backing: 'none' });
    try {
      expect(big.nrPages).toBe(16 << 20);
      expect(big.nodes.map((n) => n.memory)).toEqual([32 * 2 ** 30, 32 * 2 ** 30]);
      expect(big.sections.length).toBe(0);
      // 32 GiB per node = 8192 blocks of order 10.
      expect(big.procfs.buddyinfo().split('\n')[1]).toBe(
        'Node 1, zone   Normal      0      0      0      0      0      0      0      0      0      0   8192 ',
      );
      const p = big.spawn({ node: 1 });
      const a = p.mmap(4 << 20, { thp: 'always' });
      p.touch(a, 4 << 20);
      expect(p.pageInfo(a)).toMatchObject({ huge: true, node: 1 });
      expect(big.freePages(1)).toBe((8 << 20) - 1024);
      // No bytes behind this machine.
      expect(catchPagemig(() => p.read(a, 1)).code).toBe('ERR_NO_BACKING');
    } finally {
      await big.close();
    }

    const shared = await createMachine({ ...one('4GiB'), prefault: false });
    try {
      expect(shared.nrPages).toBe(1 << 20);
      expect(shared.sections.length).toBe(32);
      const p = shared.spawn();
      const a = p.mmap(8 << 20, { thp: 'always' });
      const data = pattern(16, 5);
      p.write(a + (6 << 20), data);
      expect(sameBytes(p.read(a + (6 << 20), data.length), data)).toBe(true);
      expect(p.pageInfo(a + (6 << 20))).toMatchObject({ huge: true });
      // Untouched memory reads as zeros.
      expect(p.read(a, 8).every((b) => b === 0)).toBe(true);
    } finally {
      await shared.close();
    }
    expect(process.memoryUsage().rss - rss0).toBeLessThan(3 * 2 ** 30);
  });

  it('close() ends every process and is idempotent; a closed machine refuses new work', async () => {
    const m = await createMachine({ ...one('8MiB'), prefault: false });
    const p = m.spawn();
    p.touch(p.mmap(16 * 4096), 16 * 4096);
    await m.close();
    expect(p.exited).toBe(true);
    expect(m.freePages(0)).toBe(2048);
    await m.close();
    expectErrno(() => m.spawn(), EINVAL);
  });
});

describe('sysctl', () => {
  const knobs: [string, number, number, number][] = [
    // name, min, max, default
    ['vm.watermark_scale_factor', 1, 3000, 10],
    ['vm.compaction_proactiveness', 0, 100, 20],
    ['vm.extfrag_threshold', 0, 1000, 500],
    ['vm.compact_unevictable_allowed', 0, 1, 1],
    ['vm.min_free_kbytes', 0, 2 ** 31 - 1, 512],
  ];

  it.each(knobs)('%s accepts [%i, %i] and refuses the rest with EINVAL', async (name, min, max, def) => {
    const m = await createMachine({ ...one('16MiB'), backing: 'none' });
    try {
      const s = m.sysctl;
      expect(s.read(name)).toBe(`${def}\n`);
      expect(s.write(name, min - 1)).toBe(EINVAL);
      expect(s.write(name, max + 1)).toBe(EINVAL);
      expect(s.read(name)).toBe(`${def}\n`);
      expect(s.write(name, max)).toBe(0);
      expect(s.read(name)).toBe(`${max}\n`);
      expect(s.write(name, String(min))).toBe(0);
      expect(s.read(name)).toBe(`${min}\n`);
      for (const bad of ['abc', '1.5', '12abc', '1 2']) expect(s.write(name, bad)).toBe(EINVAL);
      // What `echo 1 > file` writes.
      expect(s.write(name, '1\n')).toBe(0);
      expect(s.read(name)).toBe('1\n');
      expect(s.write(`/proc/sys/${name.replace('.', '/')}`, String(def))).toBe(0);
      expect(s.read(name)).toBe(`${def}\n`);
    } finally {
      await m.close();
    }
  });

  it('parses numbers like proc_dointvec: base 0 (hex, octal, decimal), no "+", whitespace around', async () => {
    const m = await createMachine({ ...one('4MiB'), backing: 'none' });
    try {
      const s = m.sysctl;
      const name = 'vm.extfrag_threshold';
      for (const [text, value] of [
        ['0x10', 16],
        ['0X1f', 31],
        ['010', 8],
        ['0', 0],
        ['  42\n', 42],
        ['999\t', 999],
      ] as const) {
        expect(s.write(name, text), text).toBe(0);
        expect(s.read(name)).toBe(`${value}\n`);
      }
      for (const bad of ['+5', '08', '0x', '0xg', '- 5', '5-']) expect(s.write(name, bad), bad).toBe(EINVAL);
      expect(s.write(name, '-1')).toBe(EINVAL);
      expect(s.read(name)).toBe('999\n');
    } finally {
      await m.close();
    }
  });

  it('unknown names give ENOENT', async () => {
    const m = await createMachine({ ...one('4MiB'), backing: 'none' });
    try {
      expect(m.sysctl.write('vm.no_such_knob', 1)).toBe(ENOENT);
      expect(ENOENT).toBe(2);
      expectErrno(() => m.sysctl.read('vm.no_such_knob'), ENOENT, 'ENOENT');
    } finally {
      await m.close();
    }
  });

  it('writing min_free_kbytes and watermark_scale_factor recomputes the watermarks', async () => {
    const m = await createMachine({ ...one('64MiB'), backing: 'none' });
    try {
      const marks = () =>
        ['min', 'low', 'high', 'promo'].map((w) =>
          Number(new RegExp(` ${w} +(\\d+)`).exec(m.procfs.zoneinfo())![1]),
        );
      // Default: int_sqrt(65536 * 16) = 1024 KiB → min 256, delta max(64, 16) = 64.
      expect(marks()).toEqual([256, 320, 384, 448]);
      expect(m.sysctl.write('vm.min_free_kbytes', '4096')).toBe(0);
      expect(m.procfs.zoneinfo()).toContain('\n        min      1024\n');
      expect(marks()).toEqual([1024, 1280, 1536, 1792]);
      // delta = max(1024 >> 2, 16384 * 1000 / 10000) = 1638.
      expect(m.sysctl.write('vm.watermark_scale_factor', 1000)).toBe(0);
      expect(marks()).toEqual([1024, 2662, 4300, 5938]);
    } finally {
      await m.close();
    }
  });

  it('applies sysctl values given at creation', async () => {
    const m = await createMachine({
      ...one('64MiB'),
      backing: 'none',
      sysctl: { 'vm.min_free_kbytes': 2048 },
    });
    try {
      expect(m.sysctl.read('vm.min_free_kbytes')).toBe('2048\n');
      expect(m.procfs.zoneinfo()).toContain('\n        min      512\n');
    } finally {
      await m.close();
    }
  });

  it('vm.compact_memory is write-only, needs the compaction subsystem, and is written awaited', async () => {
    const m = await createMachine({ ...one('4MiB'), backing: 'none' });
    try {
      const s = m.sysctl;
      expectErrno(() => s.read('vm.compact_memory'), EACCES, 'EACCES');
      expect(EACCES).toBe(13);
      expect(await s.writeAsync('vm.compact_memory', 1)).toBe(ENOENT);
      const calls: number[] = [];
      const undo = s.setAction('vm.compact_memory', async (v) => {
        calls.push(v);
        return 0;
      });
      expect(await s.writeAsync('vm.compact_memory', '1\n')).toBe(0);
      expect(await s.writeAsync('vm.compact_memory', 2)).toBe(EINVAL);
      expect(await s.writeAsync('vm.compact_memory', 0)).toBe(EINVAL);
      // A plain write would return before the handler's work: refused, the action not called.
      expect(catchPagemig(() => s.write('vm.compact_memory', 1)).code).toBe('ERR_SYSCTL_ASYNC');
      // Whatever the value: a BigInt in the message was a TypeError from JSON.stringify.
      const big = catchPagemig(() => s.write('vm.compact_memory', 10n as never));
      expect(big.code).toBe('ERR_SYSCTL_ASYNC');
      expect(big.message).toMatch(/writeAsync\("vm\.compact_memory", 10n\)/);
      expect(calls).toEqual([1]);
      undo();
      expect(await s.writeAsync('vm.compact_memory', 1)).toBe(ENOENT);
      expect(s.names()).toContain('vm.compact_memory');
    } finally {
      await m.close();
    }
  });

  it('a compaction_proactiveness write reaches the installed action', async () => {
    const m = await createMachine({ ...one('4MiB'), backing: 'none' });
    try {
      const seen: number[] = [];
      m.sysctl.setAction('vm.compaction_proactiveness', (v) => {
        seen.push(v);
        return 0;
      });
      expect(m.sysctl.write('vm.compaction_proactiveness', 40)).toBe(0);
      expect(m.sysctl.write('vm.compaction_proactiveness', 101)).toBe(EINVAL);
      expect(seen).toEqual([40]);
      expect(m.sysctl.read('vm.compaction_proactiveness')).toBe('40\n');
    } finally {
      await m.close();
    }
  });
});

describe('kernel hooks for attached subsystems', () => {
  it('onAllocFailure sees failed high-order requests that may wake kswapd, and only those', async () => {
    const m = await createMachine({ nodes: [{ memory: '8MiB' }], prefault: false });
    const seen: number[] = [];
    const off = m.kernel.onAllocFailure((req) => seen.push(req.order));
    // Take every order-9 block (8 MiB = 4 pageblocks, some kept back by the watermarks).
    const held: number[] = [];
    for (
      let pfn = m.kernel.allocFolio({ order: 9, nid: 0 });
      pfn >= 0;
      pfn = m.kernel.allocFolio({ order: 9, nid: 0 })
    )
      held.push(pfn);
    expect(seen).toEqual([9]);
    expect(m.kernel.allocFolio({ order: 9, nid: 0, kswapdReclaim: false })).toBe(-1);
    expect(m.kernel.allocFolio({ order: 10, nid: 0 })).toBe(-1);
    expect(seen).toEqual([9, 10]);
    off();
    expect(m.kernel.allocFolio({ order: 9, nid: 0 })).toBe(-1);
    expect(seen).toEqual([9, 10]);
    for (const pfn of held) m.kernel.folioPut(pfn);
    m.checkInvariants();
    await m.close();
  });

  it('onClose hooks run before user processes end, once; a removed hook does not run', async () => {
    const m = await createMachine({ nodes: [{ memory: '8MiB' }], prefault: false });
    const p = m.spawn();
    const order: string[] = [];
    m.kernel.onClose(async () => {
      order.push(`hook: ${m.kernel.processes.has(p.pid) ? 'process alive' : 'process gone'}`);
    });
    const off = m.kernel.onClose(() => {
      order.push('removed');
    });
    off();
    await m.close();
    await m.close();
    expect(order).toEqual(['hook: process alive']);
    expect(m.kernel.processes.size).toBe(0);
  });
});

describe('pageInfo', () => {
  it('is null where nothing is mapped, and EINVAL for an address that is no integer', async () => {
    const m = await createMachine({ nodes: [{ memory: '8MiB' }], prefault: false });
    try {
      const p = m.spawn();
      const a = p.mmap(2 * 4096, { node: 0 });
      p.write(a, pattern(1));
      expect(p.pageInfo(a)).toMatchObject({ node: 0, order: 0, zeroPage: false });
      expect(p.pageInfo(a + 4096)).toBeNull();
      expect(p.pageInfo(0)).toBeNull();
      for (const bad of ['x', a + 0.5, Number.NaN, 2 ** 64, null]) {
        const e = catchPagemig(() => p.pageInfo(bad as never));
        expect(e.errno).toBe(EINVAL);
        expect(e.message).toMatch(/^EINVAL: pageInfo: address .* is not an integer$/);
      }
    } finally {
      await m.close();
    }
  });
});
