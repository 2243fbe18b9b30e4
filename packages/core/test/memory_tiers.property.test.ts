import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createMachine } from '../src/machine.js';
import {
  MEMTIER_CHUNK_SIZE,
  memoryTierOf,
  nextDemotionNode,
  nodeGetAllowedTargets,
  nodeIsToptier,
} from '../src/memory_tiers.js';
import { bitmapList } from '../src/nodemask.js';

/** A random topology: 1..6 nodes, some memory-less or CPU-less, adistances over a few tiers. */
const topology = fc
  .integer({ min: 1, max: 6 })
  .chain((n) =>
    fc.record({
      nodes: fc.array(
        fc.record({
          memory: fc.boolean(),
          cpus: fc.integer({ min: 0, max: 2 }),
          adistance: fc.integer({ min: 0, max: 6 * MEMTIER_CHUNK_SIZE }),
        }),
        { minLength: n, maxLength: n },
      ),
      far: fc.array(fc.integer({ min: 11, max: 40 }), { minLength: n * n, maxLength: n * n }),
    }),
  )
  .filter((t) => t.nodes.some((x) => x.memory) && t.nodes.some((x) => x.cpus > 0));

describe('memory tiers: properties over random topologies', () => {
  it('tiers partition the memory nodes; demotion goes one tier down; top tier is down to the lowest CPU tier', async () => {
    await fc.assert(
      fc.asyncProperty(topology, async ({ nodes, far }) => {
        const n = nodes.length;
        // A symmetric SLIT: 10 local, `far` elsewhere.
        const distances = nodes.map((_, i) =>
          nodes.map((_, j) => (i === j ? 10 : far[Math.min(i, j) * n + Math.max(i, j)]!)),
        );
        const m = await createMachine({
          nodes: nodes.map((x) => ({
            memory: x.memory ? '2MiB' : 0,
            cpus: x.cpus,
            ...(x.memory ? { adistance: x.adistance } : {}),
          })),
          distances,
          backing: 'none',
        });
        const k = m.kernel;
        const { tiers, preferred, topTierAdistance } = k.memoryTiers;
        const memory = nodes.flatMap((x, i) => (x.memory ? [i] : []));
        // Tiers: ascending, each node with memory in exactly the tier adistance >> 8 names.
        expect(tiers.map((t) => t.adistanceStart)).toEqual(
          [...new Set(tiers.map((t) => t.adistanceStart))].sort((a, b) => a - b),
        );
        expect(tiers.flatMap((t) => t.nodes).sort((a, b) => a - b)).toEqual(memory);
        for (const [nid, x] of nodes.entries()) {
          const tierIdx = tiers.findIndex((t) => t.nodes.includes(nid));
          if (!x.memory) {
            expect(memoryTierOf(k, nid)).toBe(-1);
            expect(nextDemotionNode(k, nid)).toBe(-1);
            expect(nodeGetAllowedTargets(k, nid)).toEqual([]);
            expect(nodeIsToptier(k, nid)).toBe(true);
            continue;
          }
          expect(memoryTierOf(k, nid)).toBe(x.adistance >> 8);
          const below = tiers.slice(tierIdx + 1);
          expect(nodeGetAllowedTargets(k, nid)).toEqual(below.flatMap((t) => t.nodes).sort((a, b) => a - b));
          const pref = preferred[nid]!;
          if (!below.length) expect(pref).toEqual([]);
          else {
            // The preferred targets are in the next tier, at one distance, near the nearest.
            expect(pref.length).toBeGreaterThan(0);
            for (const t of pref) expect(below[0]!.nodes).toContain(t);
            const d = new Set(pref.map((t) => distances[nid]![t]));
            expect(d.size).toBe(1);
            const nearest = Math.min(...below[0]!.nodes.map((t) => distances[nid]![t]!));
            expect([...d][0]! - nearest).toBeLessThanOrEqual(2);
          }
          expect(nextDemotionNode(k, nid)).toBe(pref.length ? Math.min(...pref) : -1);
          // A demotion chain ends within the number of tiers, each step to a larger adistance.
          let at = nid;
          for (let steps = 0; ; steps++) {
            expect(steps).toBeLessThan(tiers.length);
            const next = nextDemotionNode(k, at);
            if (next < 0) break;
            expect(k.memoryTiers.adistance[next]! >> 8).toBeGreaterThan(k.memoryTiers.adistance[at]! >> 8);
            at = next;
          }
          // Top tier: every tier down to the lowest one holding a node with CPUs; with none,
          // top_tier_adistance keeps its initial 0 and only a tier starting at 0 is top tier.
          const lowestCpuTier = tiers.findLastIndex((t) => t.nodes.some((i) => nodes[i]!.cpus > 0));
          expect(nodeIsToptier(k, nid)).toBe(
            lowestCpuTier >= 0 ? tierIdx <= lowestCpuTier : tiers[tierIdx]!.adistanceStart === 0,
          );
        }
        if (tiers.every((t) => t.nodes.every((i) => nodes[i]!.cpus === 0))) expect(topTierAdistance).toBe(0);
        // sysfs: one nodelist per tier, in the kernel's list format.
        const files = m.sysfs.list().filter((p) => p.startsWith('/sys/devices/virtual/memory_tiering/'));
        expect(files.length).toBe(tiers.length);
        for (const t of tiers)
          expect(m.sysfs.read(`/sys/devices/virtual/memory_tiering/memory_tier${t.id}/nodelist`)).toBe(
            `${bitmapList(t.nodes)}\n`,
          );
        await m.close();
      }),
      { numRuns: 150 },
    );
  });
});
