import { z } from 'zod';
import type { MachineClockMode } from './clock.js';
import { PagemigError } from './errno.js';
import { PAGE_SIZE, PAGEBLOCK_NR_PAGES, type ZoneName, zoneNames } from './mmzone.js';
import { MAX_PTE_PFN } from './pagetable.js';
import { show } from './show.js';
import { type ClockKind, type ProfileRef, resolveProfile } from './timing/clock.js';
import { parseSize, type Size } from './units.js';

/** What `createMachine()` accepts. Sizes are byte counts or strings such as '512MiB'. */
export interface MachineConfig {
  nodes: NodeConfig[];
  /** Node distance matrix (SLIT): 10 on the diagonal, 11..254 elsewhere. Default: 10 local, 20 remote. */
  distances?: number[][];
  /** Size of one SharedArrayBuffer section of RAM, a power of two from 4MiB to 1GiB. Default 128MiB. */
  sectionSize?: Size;
  /** 'shared' keeps the bytes in SharedArrayBuffers; 'none' keeps only metadata. Default 'shared'. */
  backing?: 'shared' | 'none';
  /** Commit every page of RAM at creation so later copies run on warm memory. Default true. */
  prefault?: boolean;
  /** Initial sysctl values, e.g. `{ 'vm.min_free_kbytes': 4096 }`. */
  sysctl?: Record<string, string | number>;
  /** NR_MAX_BATCHED_MIGRATION in base pages. Default 512 (HPAGE_PMD_NR). */
  migrationBatchPages?: number;
  /**
   * 'modeled': migrations also report the timing model's phases for `profile`. 'manual': the
   * machine's clock (`m.clock`) starts at 0 and moves only by `m.clock.advance(ms)`. 'real' and
   * 'wall' (the default): wall time.
   */
  clock?: ClockKind | MachineClockMode;
  /** Hardware profile of the modeled clock: a shipped name ('zen3-epyc-ptdma') or a profile object. */
  profile?: ProfileRef;
}

export interface NodeConfig {
  /** The node's memory; 0 makes a memory-less node (CPUs only, not in N_MEMORY). */
  memory: Size;
  /** Memory tier label ('dram', 'cxl', 'pmem', ...). Default 'dram'. */
  tier?: string;
  /**
   * The node's abstract distance (mm/memory-tiers.c), which places it in memory tier
   * `adistance >> 8`. Default: from the tier's performance (see the README's Memory tiers).
   */
  adistance?: number;
  /**
   * CPUs on the node (numbered across nodes in node order). Default 1 on a 'dram' node, 0 on a node
   * of another tier when some node has CPUs (a memory expander: a tier holding a node with CPUs is
   * a top tier), else 1; 0 makes a CPU-less node, where no process runs.
   */
  cpus?: number;
  /** Zones from low to high addresses; default one Normal zone with all the node's memory. */
  zones?: { type: ZoneName; memory: Size }[];
}

export interface ResolvedNode {
  tier: string;
  adistance?: number;
  pages: number;
  cpus: number;
  /** No zones on a memory-less node. */
  zones: { type: ZoneName; pages: number }[];
}

/** Most CPUs per node (NR_CPUS of a large x86-64 configuration). */
export const MAX_NODE_CPUS = 8192;

export interface ResolvedConfig {
  nodes: ResolvedNode[];
  distances: number[][];
  sectionSize: number;
  backing: 'shared' | 'none';
  prefault: boolean;
  sysctl: Record<string, string | number>;
  migrationBatchPages: number;
  clock: ClockKind;
  /** The machine clock's mode (m.clock). */
  machineClock: MachineClockMode;
  profile?: ProfileRef;
}

const size = z.union([z.number(), z.string()]);
const zoneTypes = zoneNames.filter((n) => n !== 'DMA') as [ZoneName, ...ZoneName[]];
const schema = z
  .object({
    nodes: z
      .array(
        z
          .object({
            memory: size,
            tier: z.string().min(1).optional(),
            adistance: z.number().int().min(0).max(0x7fff_ffff).optional(),
            cpus: z.number().int().min(0).max(MAX_NODE_CPUS).optional(),
            zones: z
              .array(z.object({ type: z.enum(zoneTypes), memory: size }).strict())
              .min(1)
              .optional(),
          })
          .strict(),
      )
      .min(1)
      .max(64),
    distances: z.array(z.array(z.number().int())).optional(),
    sectionSize: size.optional(),
    backing: z.enum(['shared', 'none']).optional(),
    prefault: z.boolean().optional(),
    sysctl: z.record(z.string(), z.union([z.string(), z.number()])).optional(),
    migrationBatchPages: z
      .number()
      .int()
      .min(1)
      .max(1 << 20)
      .optional(),
    clock: z.enum(['real', 'modeled', 'wall', 'manual']).optional(),
    profile: z.union([z.string(), z.looseObject({})]).optional(),
  })
  .strict();

function fail(path: string, message: string): never {
  throw new PagemigError('ERR_INVALID_CONFIG', `createMachine: ${path}: ${message}`);
}

function pagesOf(value: Size, path: string, zeroOk = false): number {
  let bytes: number;
  try {
    bytes = parseSize(value, path);
  } catch (e) {
    fail(path, (e as Error).message.replace(`${path}: `, ''));
  }
  if ((bytes === 0 && !zeroOk) || bytes % (PAGEBLOCK_NR_PAGES * PAGE_SIZE) !== 0) {
    fail(
      path,
      `${show(value)} must be a positive multiple of 2MiB (one pageblock)${zeroOk ? ', or 0 for a memory-less node' : ''}`,
    );
  }
  return bytes / PAGE_SIZE;
}

/** Validates a machine configuration; errors name the field and the accepted values. */
export function resolveConfig(input: MachineConfig): ResolvedConfig {
  const parsed = schema.safeParse(input);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    fail(issue.path.length ? issue.path.join('.') : 'config', issue.message);
  }
  const cfg = parsed.data;
  // A node labelled with a slower tier is a memory expander (CXL, PMEM): CPU-less unless told,
  // as long as another node has the CPUs the machine needs.
  const hasCpuNode = cfg.nodes.some((n) => (n.cpus ?? ((n.tier ?? 'dram') === 'dram' ? 1 : 0)) > 0);
  const defaultCpus = (n: { tier?: string | undefined }) =>
    (n.tier ?? 'dram') === 'dram' || !hasCpuNode ? 1 : 0;
  const nodes = cfg.nodes.map((n, i): ResolvedNode => {
    const pages = pagesOf(n.memory, `nodes.${i}.memory`, true);
    if (pages === 0 && n.zones) fail(`nodes.${i}.zones`, 'a memory-less node (memory 0) has no zones');
    if (pages === 0 && n.adistance !== undefined)
      fail(`nodes.${i}.adistance`, 'a memory-less node (memory 0) is in no memory tier');
    const zones = n.zones
      ? n.zones.map((zc, j) => ({ type: zc.type, pages: pagesOf(zc.memory, `nodes.${i}.zones.${j}.memory`) }))
      : pages
        ? [{ type: 'Normal' as ZoneName, pages }]
        : [];
    const order = zones.map((zc) => zoneNames.indexOf(zc.type));
    if (order.some((o, j) => j > 0 && o <= order[j - 1]!)) {
      fail(`nodes.${i}.zones`, `zones must be distinct and in the order ${zoneTypes.join(', ')}`);
    }
    const sum = zones.reduce((s, zc) => s + zc.pages, 0);
    if (sum !== pages)
      fail(`nodes.${i}.zones`, `zone sizes add up to ${sum * 4}KiB, the node has ${pages * 4}KiB`);
    return {
      tier: n.tier ?? 'dram',
      ...(n.adistance !== undefined ? { adistance: n.adistance } : {}),
      pages,
      cpus: n.cpus ?? defaultCpus(n),
      zones,
    };
  });
  // The kernel boots on a CPU and needs memory somewhere.
  if (!nodes.some((n) => n.pages > 0))
    fail(`nodes.${nodes.length - 1}.memory`, 'no node has memory: at least one node needs memory');
  if (!nodes.some((n) => n.cpus > 0)) fail('nodes', 'at least one node needs CPUs');
  const total = nodes.reduce((s, n) => s + n.pages, 0);
  if (total >= MAX_PTE_PFN)
    fail(
      'nodes',
      `total memory must be below ${((MAX_PTE_PFN + 1) * PAGE_SIZE) / 2 ** 30}GiB, what the page tables can address`,
    );

  const nn = nodes.length;
  const distances = cfg.distances ?? nodes.map((_, i) => nodes.map((_, j) => (i === j ? 10 : 20)));
  if (distances.length !== nn || distances.some((row) => row.length !== nn)) {
    fail('distances', `must be a ${nn}x${nn} matrix (one row and one column per node)`);
  }
  distances.forEach((row, i) => {
    row.forEach((d, j) => {
      if (i === j ? d !== 10 : d <= 10 || d > 254) {
        fail(`distances.${i}.${j}`, i === j ? 'the local distance must be 10' : `${d} is not in 11..254`);
      }
    });
  });

  let sectionSize = 128 << 20;
  if (cfg.sectionSize !== undefined) {
    try {
      sectionSize = parseSize(cfg.sectionSize, 'sectionSize');
    } catch (e) {
      fail('sectionSize', (e as Error).message.replace('sectionSize: ', ''));
    }
    const ok = sectionSize >= 4 << 20 && sectionSize <= 1 << 30 && (sectionSize & (sectionSize - 1)) === 0;
    if (!ok)
      fail('sectionSize', `${JSON.stringify(cfg.sectionSize)} must be a power of two from 4MiB to 1GiB`);
  }
  const backing = cfg.backing ?? 'shared';
  let profile: ProfileRef | undefined;
  try {
    if (cfg.profile !== undefined) profile = resolveProfile(cfg.profile as ProfileRef);
  } catch (e) {
    fail('profile', (e as Error).message);
  }
  if (cfg.clock === 'modeled' && profile === undefined)
    fail('profile', "clock 'modeled' needs a hardware profile");
  return {
    nodes,
    distances,
    sectionSize,
    backing,
    prefault: backing === 'shared' && (cfg.prefault ?? true),
    sysctl: cfg.sysctl ?? {},
    migrationBatchPages: cfg.migrationBatchPages ?? 512,
    clock: cfg.clock === 'modeled' ? 'modeled' : 'real',
    machineClock: cfg.clock === 'manual' ? 'manual' : 'wall',
    ...(profile !== undefined ? { profile } : {}),
  };
}
