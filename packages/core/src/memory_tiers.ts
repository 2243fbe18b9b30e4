import { EINVAL, kernelError } from './errno.js';
import type { Kernel } from './kernel.js';
import type { PgData } from './node.js';
import { bitmapList } from './nodemask.js';
import { show } from './show.js';
import { resolveProfile } from './timing/clock.js';
import type { MemoryPerf } from './timing/profile.js';

/**
 * mm/memory-tiers.c: every node with memory gets an abstract distance (adistance), nodes fall into
 * memory tiers of MEMTIER_CHUNK_SIZE adistance each (slower memory, larger adistance, lower tier),
 * each node demotes to the nearest nodes of the next lower tier (establish_demotion_targets), and
 * the tiers down to the lowest one holding a CPU are the top tier (node_is_toptier). The machine has
 * no memory hotplug, so all of it is built once at boot (memory_tier_late_init).
 */

/** MEMTIER_CHUNK_BITS, MEMTIER_CHUNK_SIZE (include/linux/memory-tiers.h): one tier's adistance span. */
export const MEMTIER_CHUNK_BITS = 8;
export const MEMTIER_CHUNK_SIZE = 1 << MEMTIER_CHUNK_BITS;
/** MEMTIER_ADISTANCE_DRAM: the default DRAM tier's adistance, in the middle of tier 4. */
export const MEMTIER_ADISTANCE_DRAM = 4 * MEMTIER_CHUNK_SIZE + (MEMTIER_CHUNK_SIZE >> 1);
/** NUMA_NO_NODE. */
export const NUMA_NO_NODE = -1;
/** PENALTY_FOR_NODE_WITH_CPUS of mm/page_alloc.c (find_next_best_node). */
const PENALTY_FOR_NODE_WITH_CPUS = 1;

export const MEMORY_TIERING_DIR = '/sys/devices/virtual/memory_tiering';
export const DEMOTION_ENABLED_PATH = '/sys/kernel/mm/numa/demotion_enabled';

/**
 * Built-in tier performance, used when the machine's profile has none for a tier label. They are
 * assumptions, not measurements: DRAM as one socket's DDR5; CXL as one CXL.mem expander behind an
 * x16 PCIe Gen5 link (~64 GB/s raw per direction); PMEM as Optane DC PMem, 6 DIMMs (idle random
 * read 305 ns, write to the ADR domain 94 ns, 39 / 13 GB/s: Izraelevitz et al., arXiv:1903.05714).
 */
export const DEFAULT_TIER_PERF: Readonly<Record<string, MemoryPerf>> = {
  dram: { readLatencyNs: 100, writeLatencyNs: 100, readGBps: 100, writeGBps: 100 },
  cxl: { readLatencyNs: 250, writeLatencyNs: 250, readGBps: 50, writeGBps: 50 },
  pmem: {
    readLatencyNs: 305,
    writeLatencyNs: 94,
    readGBps: 39,
    writeGBps: 13,
    source: 'Izraelevitz et al., Basic Performance Measurements of the Intel Optane DC PMM (2019)',
  },
};

/** A memory tier (struct memory_tier): `id` is memory_tierN's N. */
export interface MemoryTier {
  readonly id: number;
  readonly adistanceStart: number;
  /** Its nodes (get_memtier_nodemask), ascending. */
  readonly nodes: readonly number[];
  /** The nodes of every tier below it (lower_tier_mask), ascending. */
  readonly lowerTierMask: readonly number[];
}

/** The machine's memory tiers and demotion targets (the kernel's static state of memory-tiers.c). */
export class MemoryTiers {
  /** Per node: its abstract distance, -1 for a memory-less node (no tier). */
  readonly adistance: readonly number[];
  /** Tiers by increasing adistance (the memory_tiers list): fastest first. */
  readonly tiers: readonly MemoryTier[];
  /** Per node: its tier (pgdat->memtier), null for a memory-less node. */
  readonly tierOf: readonly (MemoryTier | null)[];
  /** Per node: node_demotion[].preferred, ascending. */
  readonly preferred: readonly (readonly number[])[];
  /** top_tier_adistance: tiers starting at or below it are the top tier. */
  readonly topTierAdistance: number;

  constructor(nodes: readonly PgData[], adistance: readonly number[]) {
    this.adistance = adistance;
    const memory = nodes.filter((n) => n.nrPages > 0).map((n) => n.nid);
    // find_create_memory_tier: one tier per MEMTIER_CHUNK_SIZE span that has a node.
    const byStart = new Map<number, number[]>();
    for (const nid of memory) {
      const start = adistance[nid]! - (adistance[nid]! % MEMTIER_CHUNK_SIZE);
      byStart.set(start, [...(byStart.get(start) ?? []), nid]);
    }
    const starts = [...byStart.keys()].sort((a, b) => a - b);
    // lower_tier_mask: N_MEMORY less this tier and every tier above it.
    let lower = memory;
    const tiers = starts.map((start): MemoryTier => {
      const tierNodes = byStart.get(start)!;
      lower = lower.filter((n) => !tierNodes.includes(n));
      return {
        id: start >> MEMTIER_CHUNK_BITS,
        adistanceStart: start,
        nodes: tierNodes,
        lowerTierMask: lower,
      };
    });
    this.tiers = tiers;
    this.tierOf = nodes.map((n) => tiers.find((t) => t.nodes.includes(n.nid)) ?? null);
    this.preferred = nodes.map((n) => this.demotionTargets(nodes, memory, n.nid));
    // The lowest tier with a CPU node and everything above it is top tier; with no such tier
    // top_tier_adistance keeps its initial 0.
    const cpuTier = [...tiers].reverse().find((t) => t.nodes.some((nid) => nodes[nid]!.cpus > 0));
    this.topTierAdistance = cpuTier ? cpuTier.adistanceStart + MEMTIER_CHUNK_SIZE - 1 : 0;
  }

  /**
   * establish_demotion_targets for one node: the nodes of the next lower tier at the distance of
   * the first one find_next_best_node returns (nodes without CPUs before nodes with CPUs at the same
   * distance, nodes above `nid` before those below; node_load's tie-break is not modelled).
   */
  private demotionTargets(nodes: readonly PgData[], memory: readonly number[], nid: number): number[] {
    const tier = this.tierOf[nid];
    if (!tier) return [];
    const next = this.tiers[this.tiers.indexOf(tier) + 1];
    if (!next) return [];
    const used = new Set(memory.filter((n) => !next.nodes.includes(n)));
    const out: number[] = [];
    let best = -1;
    for (;;) {
      const target = findNextBestNode(nodes, memory, nid, used);
      if (target === NUMA_NO_NODE) break;
      const distance = nodes[nid]!.distances[target]!;
      if (best !== -1 && distance !== best) break;
      best = distance;
      out.push(target);
    }
    return out.sort((a, b) => a - b);
  }
}

/** find_next_best_node (mm/page_alloc.c) over the nodes with memory, `used` as the skip list. */
function findNextBestNode(
  nodes: readonly PgData[],
  memory: readonly number[],
  nid: number,
  used: Set<number>,
): number {
  if (!used.has(nid) && nodes[nid]!.nrPages > 0) {
    used.add(nid);
    return nid;
  }
  let min = Number.POSITIVE_INFINITY;
  let best = NUMA_NO_NODE;
  for (const n of memory) {
    if (used.has(n)) continue;
    let val = nodes[nid]!.distances[n]!;
    if (n < nid) val += 1;
    if (nodes[n]!.cpus > 0) val += PENALTY_FOR_NODE_WITH_CPUS;
    if (val < min) {
      min = val;
      best = n;
    }
  }
  if (best >= 0) used.add(best);
  return best;
}

/**
 * mt_perf_to_adistance: adistance in proportion to latency (read + write) and in inverse
 * proportion to bandwidth (read + write), relative to the default DRAM's, in the kernel's integer
 * arithmetic on its units (latency in ns, bandwidth in MB/s).
 */
export function mtPerfToAdistance(perf: MemoryPerf, dram: MemoryPerf): number {
  const lat = (p: MemoryPerf) => Math.round(p.readLatencyNs) + Math.round(p.writeLatencyNs);
  const bw = (p: MemoryPerf) => Math.round(p.readGBps * 1000) + Math.round(p.writeGBps * 1000);
  return Math.floor((Math.floor((MEMTIER_ADISTANCE_DRAM * lat(perf)) / lat(dram)) * bw(dram)) / bw(perf));
}

/**
 * The performance of tier label `tier`: the machine profile's `memory[tier]`, else the built-in
 * default, else undefined (no performance data for that memory).
 */
export function tierPerf(k: Kernel, tier: string): MemoryPerf | undefined {
  const ref = k.config.profile;
  const fromProfile = ref === undefined ? undefined : resolveProfile(ref).memory?.[tier];
  return fromProfile ?? DEFAULT_TIER_PERF[tier];
}

/**
 * Each node's abstract distance at boot (set_node_memory_tier): the configured `adistance`; a 'dram'
 * node is the default DRAM type (MEMTIER_ADISTANCE_DRAM); another tier label with performance data
 * gets mt_perf_to_adistance against DRAM's; a node without data stays in the default DRAM tier, as
 * a kernel node no adistance algorithm (HMAT, CXL CDAT) answers for. -1 for a memory-less node.
 */
export function bootAdistance(k: Kernel): number[] {
  const dram = tierPerf(k, 'dram')!;
  return k.nodes.map((node, nid) => {
    if (node.nrPages === 0) return -1;
    const configured = k.config.nodes[nid]!.adistance;
    if (configured !== undefined) return configured;
    const perf = node.tier === 'dram' ? undefined : tierPerf(k, node.tier);
    return perf ? mtPerfToAdistance(perf, dram) : MEMTIER_ADISTANCE_DRAM;
  });
}

/** node_is_toptier: true for a node in the top tier, and for a node with no tier (memory-less). */
export function nodeIsToptier(k: Kernel, nid: number): boolean {
  const tier = k.memoryTiers.tierOf[nid];
  return !tier || tier.adistanceStart <= k.memoryTiers.topTierAdistance;
}

/** The id of node `nid`'s memory tier (memory_tierN's N), -1 for a memory-less node. */
export function memoryTierOf(k: Kernel, nid: number): number {
  checkNid(k, nid, 'memoryTierOf');
  return k.memoryTiers.tierOf[nid]?.id ?? -1;
}

/**
 * next_demotion_node: one of node_demotion[nid].preferred, NUMA_NO_NODE (-1) when `nid` is in the
 * lowest tier. The kernel picks one at random (node_random); the machine has no seeded randomness,
 * so this is the lowest id, which keeps runs reproducible.
 */
export function nextDemotionNode(k: Kernel, nid: number): number {
  checkNid(k, nid, 'nextDemotionNode');
  return k.memoryTiers.preferred[nid]![0] ?? NUMA_NO_NODE;
}

/** node_get_allowed_targets: every node of the tiers below `nid`'s (empty for none). */
export function nodeGetAllowedTargets(k: Kernel, nid: number): number[] {
  checkNid(k, nid, 'nodeGetAllowedTargets');
  return [...(k.memoryTiers.tierOf[nid]?.lowerTierMask ?? [])];
}

function checkNid(k: Kernel, nid: number, caller: string): void {
  if (!Number.isInteger(nid) || nid < 0 || nid >= k.nodes.length)
    throw kernelError(EINVAL, `${caller}: node ${show(nid)} does not exist`);
}

/** kstrtobool (lib/kstrtox.c): y/Y/t/T/1, n/N/f/F/0, on/off by the first two characters. */
export function kstrtobool(s: string): boolean | undefined {
  const c = s[0];
  if (c !== undefined && 'yYtT1'.includes(c)) return true;
  if (c !== undefined && 'nNfF0'.includes(c)) return false;
  if (c === 'o' || c === 'O') {
    const d = s[1];
    if (d === 'n' || d === 'N') return true;
    if (d === 'f' || d === 'F') return false;
  }
  return undefined;
}

/**
 * The sysfs files of memory tiering: memory_tierN/nodelist per tier (nodelist_show, "%*pbl\n") and
 * /sys/kernel/mm/numa/demotion_enabled (show: "true\n" / "false\n"; store: kstrtobool, else EINVAL).
 */
export function memoryTierSysfsFiles(
  k: Kernel,
): { path: string; show: () => string; store?: (value: string | number) => number }[] {
  const files: { path: string; show: () => string; store?: (value: string | number) => number }[] =
    k.memoryTiers.tiers.map((t) => ({
      path: `${MEMORY_TIERING_DIR}/memory_tier${t.id}/nodelist`,
      show: () => `${bitmapList(t.nodes)}\n`,
    }));
  files.push({
    path: DEMOTION_ENABLED_PATH,
    show: () => `${k.demotionEnabled}\n`,
    store: (value) => {
      const v = kstrtobool(String(value));
      if (v === undefined) return EINVAL;
      k.demotionEnabled = v;
      return 0;
    },
  });
  return files;
}
