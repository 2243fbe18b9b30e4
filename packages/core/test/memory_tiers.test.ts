import { describe, expect, it } from 'vitest';
import { EINVAL } from '../src/errno.js';
import type { Machine } from '../src/machine.js';
import {
  DEMOTION_ENABLED_PATH,
  MEMTIER_ADISTANCE_DRAM,
  memoryTierOf,
  mtPerfToAdistance,
  nextDemotionNode,
  nodeGetAllowedTargets,
  nodeIsToptier,
} from '../src/memory_tiers.js';
import { expectErrno, machinesCheckedAfterEach } from './helpers.js';

const machine = machinesCheckedAfterEach();
const TIERS = '/sys/devices/virtual/memory_tiering';

/** Everything memory-tiers.c decides for each node of `m`. */
function tiersOf(m: Machine) {
  const k = m.kernel;
  return m.nodes.map((n) => ({
    adistance: n.adistance,
    tier: memoryTierOf(k, n.nid),
    next: nextDemotionNode(k, n.nid),
    allowed: nodeGetAllowedTargets(k, n.nid),
    toptier: nodeIsToptier(k, n.nid),
  }));
}

function tierFiles(m: Machine): Record<string, string> {
  return Object.fromEntries(
    m.sysfs
      .list()
      .filter((p) => p.startsWith(TIERS))
      .map((p) => [p.slice(TIERS.length + 1), m.sysfs.read(p)]),
  );
}

describe('memory tiers (mm/memory-tiers.c)', () => {
  it('MEMTIER_ADISTANCE_DRAM is 4 * 256 + 128 and mt_perf_to_adistance rounds as the kernel', () => {
    expect(MEMTIER_ADISTANCE_DRAM).toBe(1152);
    const dram = { readLatencyNs: 100, writeLatencyNs: 100, readGBps: 100, writeGBps: 100 };
    expect(mtPerfToAdistance(dram, dram)).toBe(1152);
    // 1152 * 500 / 200 = 2880; * 200000 / 100000 = 5760.
    expect(
      mtPerfToAdistance({ readLatencyNs: 250, writeLatencyNs: 250, readGBps: 50, writeGBps: 50 }, dram),
    ).toBe(5760);
    // 1152 * 399 / 200 = 2298 (truncated); * 200000 / 52000 = 8838 (truncated).
    expect(
      mtPerfToAdistance({ readLatencyNs: 305, writeLatencyNs: 94, readGBps: 39, writeGBps: 13 }, dram),
    ).toBe(8838);
  });

  it('DRAM + CXL: two tiers, DRAM demotes to CXL, only DRAM is top tier', async () => {
    const m = await machine({ nodes: [{ memory: '4MiB' }, { memory: '4MiB', tier: 'cxl', cpus: 0 }] });
    expect(tiersOf(m)).toEqual([
      { adistance: 1152, tier: 4, next: 1, allowed: [1], toptier: true },
      { adistance: 5760, tier: 22, next: -1, allowed: [], toptier: false },
    ]);
    expect(tierFiles(m)).toEqual({ 'memory_tier4/nodelist': '0\n', 'memory_tier22/nodelist': '1\n' });
  });

  it("the machine's profile gives the tier performance (dram-cxl: CXL at adistance 4523)", async () => {
    const m = await machine({
      nodes: [{ memory: '4MiB' }, { memory: '4MiB', tier: 'cxl', cpus: 0 }],
      profile: 'dram-cxl',
    });
    // DRAM 110+110 ns, 80+80 GB/s; CXL 270+270 ns, 50+50 GB/s: 1152*540/220 = 2827; *160000/100000.
    expect(m.nodes.map((n) => [n.adistance, n.memoryTier])).toEqual([
      [1152, 4],
      [4523, 17],
    ]);
  });

  it('DRAM + CXL + PMEM: three tiers and a demotion chain 0 -> 1 -> 2', async () => {
    const m = await machine({
      nodes: [
        { memory: '4MiB' },
        { memory: '4MiB', tier: 'cxl', cpus: 0 },
        { memory: '4MiB', tier: 'pmem', cpus: 0 },
      ],
    });
    expect(tiersOf(m)).toEqual([
      { adistance: 1152, tier: 4, next: 1, allowed: [1, 2], toptier: true },
      { adistance: 5760, tier: 22, next: 2, allowed: [2], toptier: false },
      { adistance: 8838, tier: 34, next: -1, allowed: [], toptier: false },
    ]);
    expect(tierFiles(m)).toEqual({
      'memory_tier4/nodelist': '0\n',
      'memory_tier22/nodelist': '1\n',
      'memory_tier34/nodelist': '2\n',
    });
  });

  it('two DRAM nodes and one CXL node: both DRAM nodes demote to the CXL node', async () => {
    const m = await machine({
      nodes: [{ memory: '4MiB' }, { memory: '4MiB' }, { memory: '4MiB', tier: 'cxl', cpus: 0 }],
      distances: [
        [10, 20, 30],
        [20, 10, 30],
        [30, 30, 10],
      ],
    });
    expect(tiersOf(m).map((t) => [t.tier, t.next, t.allowed, t.toptier])).toEqual([
      [4, 2, [2], true],
      [4, 2, [2], true],
      [22, -1, [], false],
    ]);
    expect(tierFiles(m)).toEqual({ 'memory_tier4/nodelist': '0-1\n', 'memory_tier22/nodelist': '2\n' });
  });

  it("each DRAM node demotes to its nearest CXL node (the kernel's example 1); the rest is fallback", async () => {
    const m = await machine({
      nodes: [
        { memory: '4MiB' },
        { memory: '4MiB' },
        { memory: '4MiB', tier: 'cxl', cpus: 0 },
        { memory: '4MiB', tier: 'cxl', cpus: 0 },
      ],
      distances: [
        [10, 20, 30, 40],
        [20, 10, 40, 30],
        [30, 40, 10, 40],
        [40, 30, 40, 10],
      ],
    });
    expect(m.kernel.memoryTiers.preferred).toEqual([[2], [3], [], []]);
    expect(tiersOf(m).map((t) => [t.next, t.allowed])).toEqual([
      [2, [2, 3]],
      [3, [2, 3]],
      [-1, []],
      [-1, []],
    ]);
    expect(tierFiles(m)).toEqual({ 'memory_tier4/nodelist': '0-1\n', 'memory_tier22/nodelist': '2-3\n' });
  });

  it('equally near targets are all preferred; next_demotion_node picks the lowest id', async () => {
    const m = await machine({
      nodes: [
        { memory: '4MiB' },
        { memory: '4MiB', tier: 'cxl', cpus: 0 },
        { memory: '4MiB', tier: 'cxl', cpus: 0 },
      ],
    });
    expect(m.kernel.memoryTiers.preferred[0]).toEqual([1, 2]);
    expect(nextDemotionNode(m.kernel, 0)).toBe(1);
  });

  it("an explicit adistance places a faster tier above DRAM (the kernel's example 3)", async () => {
    const m = await machine({
      nodes: [
        { memory: '4MiB' },
        { memory: '4MiB', tier: 'hbm', adistance: 600, cpus: 0 },
        { memory: '4MiB', tier: 'pmem', cpus: 0 },
      ],
      distances: [
        [10, 20, 30],
        [20, 10, 40],
        [30, 40, 10],
      ],
    });
    expect(tiersOf(m).map((t) => [t.adistance, t.tier, t.next, t.toptier])).toEqual([
      [1152, 4, 2, true],
      [600, 2, 0, true],
      [8838, 34, -1, false],
    ]);
    expect(tierFiles(m)).toEqual({
      'memory_tier2/nodelist': '1\n',
      'memory_tier4/nodelist': '0\n',
      'memory_tier34/nodelist': '2\n',
    });
  });

  it('a tier label without performance data joins the default DRAM tier', async () => {
    const m = await machine({ nodes: [{ memory: '4MiB' }, { memory: '4MiB', tier: 'hbm', cpus: 0 }] });
    expect(tiersOf(m).map((t) => [t.adistance, t.tier, t.next])).toEqual([
      [1152, 4, -1],
      [1152, 4, -1],
    ]);
    expect(tierFiles(m)).toEqual({ 'memory_tier4/nodelist': '0-1\n' });
  });

  it('a memory-less node has no tier, no target, and counts as top tier', async () => {
    const m = await machine({
      nodes: [{ memory: '4MiB' }, { memory: 0, cpus: 1 }, { memory: '4MiB', tier: 'cxl', cpus: 0 }],
    });
    expect(tiersOf(m)).toEqual([
      { adistance: 1152, tier: 4, next: 2, allowed: [2], toptier: true },
      { adistance: -1, tier: -1, next: -1, allowed: [], toptier: true },
      { adistance: 5760, tier: 22, next: -1, allowed: [], toptier: false },
    ]);
    expect(tierFiles(m)).toEqual({ 'memory_tier4/nodelist': '0\n', 'memory_tier22/nodelist': '2\n' });
  });

  it('with CPUs only on a memory-less node no tier holds a CPU: top_tier_adistance stays 0', async () => {
    const m = await machine({
      nodes: [
        { memory: 0, cpus: 1 },
        { memory: '4MiB', cpus: 0 },
        { memory: '4MiB', tier: 'cxl', cpus: 0 },
      ],
    });
    expect(m.kernel.memoryTiers.topTierAdistance).toBe(0);
    expect(tiersOf(m).map((t) => t.toptier)).toEqual([true, false, false]);
    expect(nextDemotionNode(m.kernel, 1)).toBe(2);
  });

  it('a node of a slower tier label is a CPU-less expander by default, so it is not top tier', async () => {
    const m = await machine({
      nodes: [{ memory: '4MiB' }, { memory: '4MiB', tier: 'cxl' }, { memory: '4MiB', tier: 'pmem' }],
    });
    expect(m.nodes.map((n) => n.cpus)).toEqual([1, 0, 0]);
    expect(tiersOf(m).map((t) => t.toptier)).toEqual([true, false, false]);
    expect(nextDemotionNode(m.kernel, 0)).toBe(1);
    expectErrno(() => m.spawn({ node: 1 }), EINVAL);
    // A machine of expanders only keeps its CPUs: some node must run the kernel.
    const only = await machine({ nodes: [{ memory: '4MiB', tier: 'cxl' }] });
    expect(only.nodes.map((n) => n.cpus)).toEqual([1]);
  });

  it('a CPU on a CXL node makes every tier down to it top tier', async () => {
    const m = await machine({ nodes: [{ memory: '4MiB' }, { memory: '4MiB', tier: 'cxl', cpus: 1 }] });
    expect(m.kernel.memoryTiers.topTierAdistance).toBe(22 * 256 + 255);
    expect(tiersOf(m).map((t) => t.toptier)).toEqual([true, true]);
    expect(nextDemotionNode(m.kernel, 0)).toBe(1);
  });

  it('bad node ids and adistance configs are refused naming the argument', async () => {
    const m = await machine();
    for (const fn of [memoryTierOf, nextDemotionNode, nodeGetAllowedTargets]) {
      for (const bad of [-1, 2, 0.5, '0']) {
        const e = expectErrno(() => fn(m.kernel, bad as number), EINVAL);
        expect(e.message).toMatch(/: node .* does not exist$/);
      }
    }
    await expect(machine({ nodes: [{ memory: '4MiB', adistance: -1 }] })).rejects.toMatchObject({
      code: 'ERR_INVALID_CONFIG',
      message: expect.stringContaining('createMachine: nodes.0.adistance:'),
    });
    await expect(
      machine({ nodes: [{ memory: '4MiB' }, { memory: 0, adistance: 1000 }] }),
    ).rejects.toMatchObject({
      message: 'createMachine: nodes.1.adistance: a memory-less node (memory 0) is in no memory tier',
    });
  });
});

describe('/sys/kernel/mm/numa/demotion_enabled', () => {
  it('reads false at boot and takes kstrtobool input, mirrored in k.demotionEnabled', async () => {
    const m = await machine();
    expect(m.sysfs.read(DEMOTION_ENABLED_PATH)).toBe('false\n');
    expect(m.kernel.demotionEnabled).toBe(false);
    const cases: [string | number, boolean][] = [
      ['1', true],
      ['0', false],
      ['Y', true],
      ['no', false],
      ['true\n', true],
      ['False', false],
      ['on', true],
      ['OFF', false],
      [1, true],
      [0, false],
    ];
    for (const [input, value] of cases) {
      expect(m.sysfs.write(DEMOTION_ENABLED_PATH, input)).toBe(0);
      expect(m.kernel.demotionEnabled).toBe(value);
      expect(m.sysfs.read(DEMOTION_ENABLED_PATH)).toBe(`${value}\n`);
    }
  });

  it('refuses anything else with EINVAL and keeps the value', async () => {
    const m = await machine();
    expect(m.sysfs.write(DEMOTION_ENABLED_PATH, 'yes')).toBe(0);
    for (const bad of ['', 'x', 'o', 'ok', '2', ' 1', -1]) {
      expect(m.sysfs.write(DEMOTION_ENABLED_PATH, bad)).toBe(EINVAL);
      expect(m.kernel.demotionEnabled).toBe(true);
    }
  });

  it('memory_tierN/nodelist is read-only', async () => {
    const m = await machine();
    expect(m.sysfs.write(`${TIERS}/memory_tier4/nodelist`, '0')).toBe(13);
    expect(m.sysfs.read(`${TIERS}/memory_tier4/nodelist`)).toBe('0-1\n');
  });
});
