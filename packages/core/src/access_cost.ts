import { EINVAL, kernelError } from './errno.js';
import type { Machine } from './machine.js';
import { DEFAULT_TIER_PERF } from './memory_tiers.js';
import { show } from './show.js';
import { type ProfileRef, resolveProfile } from './timing/clock.js';
import type { HardwareProfile, MemoryPerf } from './timing/profile.js';

/** What a thread did (UserThread.stats()): accesses per node, milliseconds slept on migration entries. */
export interface AccessCounts {
  accessesByNode: readonly number[];
  migrationWaitMs: number;
}

/** The modeled memory time of some accesses. */
export interface ModeledAccessTime {
  /** Σ accesses to a node × its tier's load latency. */
  accessNs: number;
  /** The migration-entry sleeps (measured wall time, not modeled). */
  stallNs: number;
  totalNs: number;
  /** Per tier label: the accesses and their share of accessNs. */
  byTier: Record<string, { accesses: number; ns: number }>;
  /** The facts the numbers rest on, one sentence each (which are assumptions). */
  assumptions: string[];
}

/** The profile used when neither the call nor the machine names one. */
const DEFAULT_PROFILE = 'dram-cxl';

/**
 * Access cost by tier: every counted access to a node is charged its tier's load latency
 * (readLatencyNs) from `profile` (else the machine's profile, else dram-cxl), falling back to the
 * built-in tier numbers for a tier the profile does not describe. A first-order model: no caches,
 * no memory-level parallelism, no bandwidth limit. Bad counts are EINVAL naming the field.
 */
export function modeledAccessTime(m: Machine, counts: AccessCounts, profile?: ProfileRef): ModeledAccessTime {
  const nodes = m.nodes;
  const byNode = counts?.accessesByNode;
  if (!Array.isArray(byNode) || byNode.length > nodes.length)
    throw kernelError(
      EINVAL,
      `modeledAccessTime: accessesByNode ${show(byNode)} must be an array of at most ${nodes.length} counts (one per node)`,
    );
  byNode.forEach((n, i) => {
    if (typeof n !== 'number' || !Number.isFinite(n) || n < 0)
      throw kernelError(EINVAL, `modeledAccessTime: accessesByNode[${i}] ${show(n)} is not a count >= 0`);
  });
  const waitMs = counts.migrationWaitMs;
  if (typeof waitMs !== 'number' || !Number.isFinite(waitMs) || waitMs < 0)
    throw kernelError(
      EINVAL,
      `modeledAccessTime: migrationWaitMs ${show(waitMs)} is not a number of ms >= 0`,
    );
  const p = resolveProfile(profile ?? m.kernel.config.profile ?? DEFAULT_PROFILE);
  const byTier: Record<string, { accesses: number; ns: number }> = {};
  const perfs = new Map<string, { perf: MemoryPerf; from: string }>();
  let accessNs = 0;
  byNode.forEach((n, nid) => {
    const tier = nodes[nid]!.tier;
    let known = perfs.get(tier);
    if (!known) {
      known = perfOf(p, tier);
      perfs.set(tier, known);
    }
    const ns = n * known.perf.readLatencyNs;
    const t = (byTier[tier] ??= { accesses: 0, ns: 0 });
    t.accesses += n;
    t.ns += ns;
    accessNs += ns;
  });
  const stallNs = waitMs * 1e6;
  const assumptions = [
    "memory time is MODELED: every counted access (one per word, one per 64-byte line of a bulk copy) is charged its tier's idle load latency; caches, memory-level parallelism and bandwidth limits are not modeled",
    ...[...perfs].map(
      ([tier, { perf, from }]) =>
        `tier ${tier}: load latency ${perf.readLatencyNs} ns from ${from}, ${perf.source ? `source: ${perf.source}` : 'an assumption, not measured'}`,
    ),
    'migration stalls are the measured wall time the threads slept on migration entries',
  ];
  return { accessNs, stallNs, totalNs: accessNs + stallNs, byTier, assumptions };
}

function perfOf(p: HardwareProfile, tier: string): { perf: MemoryPerf; from: string } {
  const own = p.memory?.[tier];
  if (own) return { perf: own, from: `profile ${p.name}` };
  const builtIn = DEFAULT_TIER_PERF[tier];
  if (builtIn) return { perf: builtIn, from: 'the built-in tier defaults' };
  throw kernelError(
    EINVAL,
    `modeledAccessTime: profile ${p.name} has no memory performance for tier ${JSON.stringify(tier)} and there is no built-in one (built in: ${Object.keys(DEFAULT_TIER_PERF).join(', ')})`,
  );
}
