import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ENOMEM, PagemigError } from '../src/errno.js';
import { createMachine, type Machine } from '../src/machine.js';
import { MPOL_BIND, MPOL_DEFAULT, MPOL_INTERLEAVE, MPOL_MF_MOVE, MPOL_PREFERRED } from '../src/mempolicy.js';
import { PAGE_SIZE, WMARK_LOW, WMARK_MIN } from '../src/mmzone.js';
import type { Process } from '../src/process.js';
import { pattern, sameBytes } from './helpers.js';

/**
 * Property tests of policy application at fault time (get_vma_policy, policy_nodemask,
 * alloc_pages_mpol): interleave spreads every area evenly over its nodes whatever the order of
 * the faults, bind never allocates outside its nodes, preferred leaves its node only when it is
 * at its low watermark. Machines: three 4 MiB nodes.
 */

const PG = PAGE_SIZE;
const NODES = 3;

async function withMachine(fn: (m: Machine) => Promise<void> | void): Promise<void> {
  const m = await createMachine({
    nodes: Array.from({ length: NODES }, () => ({ memory: '4MiB' })),
    prefault: false,
  });
  try {
    await fn(m);
    m.checkInvariants();
  } finally {
    await m.close();
  }
}

/** A non-empty set of node ids, ascending. */
const nodeSet = fc.subarray([0, 1, 2], { minLength: 1 }).map((a) => [...a].sort((x, y) => x - y));

/** Touches page `i` of the area, or reports ENOMEM (the fault's out-of-memory) as false. */
function touchPage(p: Process, a: number, i: number): boolean {
  try {
    p.touch(a + i * PG, 1, 'write');
    return true;
  } catch (e) {
    if (PagemigError.isInstance(e) && e.errno === ENOMEM) return false;
    throw e;
  }
}

const zoneOf = (m: Machine, nid: number) => m.kernel.nodes[nid]!.zones[0]!;
/** The allocator's watermark check for an order-0 page (zone_watermark_ok with the boost). */
const aboveMark = (m: Machine, nid: number, mark: number) => {
  const z = zoneOf(m, nid);
  return z.watermarkOk(0, z.watermark[mark]! + z.watermarkBoost);
};

describe('interleave', () => {
  it('spreads each area over its nodes within one folio per node, whatever the fault order', async () => {
    const area = fc.record({
      pages: fc.integer({ min: 1, max: 160 }),
      order: fc.constantFrom(0, 2),
      // A sub-range given its own interleave set by mbind (splitting the area), or none.
      sub: fc.option(fc.record({ from: fc.nat(), len: fc.integer({ min: 1, max: 160 }), nodes: nodeSet })),
      seed: fc.integer(),
    });
    await fc.assert(
      fc.asyncProperty(
        nodeSet,
        fc.boolean(),
        fc.array(area, { minLength: 1, maxLength: 4 }),
        (nodes, task, areas) =>
          withMachine(async (m) => {
            const p = m.spawn({ node: 0 });
            if (task) expect(p.setMempolicy(MPOL_INTERLEAVE, nodes)).toEqual({ ret: 0 });
            for (const ar of areas) {
              const nr = 1 << ar.order;
              const pages = Math.ceil(ar.pages / nr) * nr;
              const a = p.mmap(pages * PG, { thp: ar.order ? '16KiB' : 'never' });
              if (!task) expect(await p.mbind(a, pages * PG, MPOL_INTERLEAVE, nodes)).toEqual({ ret: 0 });
              if (ar.sub) {
                // Sub-ranges on folio boundaries, so each folio belongs to one area.
                const from = (ar.sub.from % (pages / nr)) * nr;
                const len = Math.min(ar.sub.len * nr, pages - from);
                expect(await p.mbind(a + from * PG, len * PG, MPOL_INTERLEAVE, ar.sub.nodes)).toEqual({
                  ret: 0,
                });
              }
              // Fault the pages in a shuffled order: the interleave index is the page's, not the order's.
              const order = Array.from({ length: pages }, (_, i) => i);
              let s = ar.seed;
              for (let i = order.length - 1; i > 0; i--) {
                s = (Math.imul(s, 1103515245) + 12345) | 0;
                const j = (s >>> 8) % (i + 1);
                [order[i], order[j]] = [order[j]!, order[i]!];
              }
              for (const i of order) expect(touchPage(p, a, i)).toBe(true);
            }
            for (const vma of p.maps()) {
              const want = vma.policy.mode === 'interleave' ? vma.policy.nodes : nodes;
              const folios = new Map<number, number>();
              for (let addr = vma.start; addr < vma.end; addr += PG) {
                const info = p.pageInfo(addr)!;
                if (info.pfn === info.headPfn || addr === vma.start)
                  folios.set(info.node, (folios.get(info.node) ?? 0) + 1);
              }
              for (const n of folios.keys()) expect(want).toContain(n);
              const perNode = want.map((n) => folios.get(n) ?? 0);
              expect(Math.max(...perNode) - Math.min(...perNode)).toBeLessThanOrEqual(1);
            }
          }),
      ),
      { numRuns: 40 },
    );
  });
});

describe('bind', () => {
  it('never allocates outside its nodes, and runs out of memory only when all of them are at min', async () => {
    const hog = fc.record({
      nid: fc.integer({ min: 0, max: NODES - 1 }),
      pages: fc.integer({ min: 0, max: 1000 }),
    });
    await fc.assert(
      fc.asyncProperty(
        nodeSet,
        fc.array(hog, { maxLength: 3 }),
        fc.integer({ min: 1, max: 3200 }),
        fc.integer({ min: 0, max: NODES - 1 }),
        (nodes, hogs, pages, local) =>
          withMachine(async (m) => {
            for (const h of hogs) {
              if (!h.pages) continue;
              const q = m.spawn({ node: h.nid });
              const b = q.mmap(h.pages * PG, { node: h.nid, thp: 'never' });
              for (let i = 0; i < h.pages && touchPage(q, b, i); i++);
            }
            const p = m.spawn({ node: local });
            const a = p.mmap(pages * PG, { thp: 'never' });
            expect(await p.mbind(a, pages * PG, MPOL_BIND, nodes)).toEqual({ ret: 0 });
            let oom = false;
            for (let i = 0; i < pages && !oom; i++) {
              oom = !touchPage(p, a, i);
              if (!oom) expect(nodes).toContain(p.pageInfo(a + i * PG)!.node);
            }
            if (oom) for (const n of nodes) expect(aboveMark(m, n, WMARK_MIN)).toBe(false);
          }),
      ),
      { numRuns: 30 },
    );
  });
});

describe('preferred', () => {
  it('leaves its node only when that node is at its low watermark', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 0, max: NODES - 1 }),
        fc.integer({ min: 0, max: 1000 }),
        fc.integer({ min: 1, max: 1200 }),
        (pref, hogPages, pages) =>
          withMachine(async (m) => {
            if (hogPages) {
              const q = m.spawn({ node: pref });
              const b = q.mmap(hogPages * PG, { node: pref, thp: 'never' });
              for (let i = 0; i < hogPages && touchPage(q, b, i); i++);
            }
            const p = m.spawn({ node: (pref + 1) % NODES });
            expect(p.setMempolicy(MPOL_PREFERRED, [pref])).toEqual({ ret: 0 });
            const a = p.mmap(pages * PG, { thp: 'never' });
            let left = 0;
            for (let i = 0; i < pages; i++) {
              const roomy = aboveMark(m, pref, WMARK_LOW);
              expect(touchPage(p, a, i)).toBe(true);
              const node = p.pageInfo(a + i * PG)!.node;
              if (roomy) expect(node).toBe(pref);
              if (node !== pref) {
                expect(roomy).toBe(false);
                left++;
              }
            }
            // It did fall back once its node was full.
            if (pages + hogPages > 1100) expect(left).toBeGreaterThan(0);
          }),
      ),
      { numRuns: 30 },
    );
  });
});

describe('mbind over parts of an area', () => {
  it('leaves one area per run of equal policy (split, then merged back), pages moved onto the mask, bytes intact', async () => {
    const PAGES = 48;
    const op = fc.record({
      mode: fc.constantFrom(MPOL_DEFAULT, MPOL_BIND, MPOL_INTERLEAVE, MPOL_PREFERRED),
      nodes: nodeSet,
      from: fc.integer({ min: 0, max: PAGES - 1 }),
      len: fc.integer({ min: 1, max: PAGES }),
      move: fc.boolean(),
    });
    const names = ['default', 'preferred', 'bind', 'interleave'];
    await fc.assert(
      fc.asyncProperty(fc.array(op, { minLength: 1, maxLength: 12 }), (ops) =>
        withMachine(async (m) => {
          const p = m.spawn({ node: 0 });
          const a = p.mmap(PAGES * PG, { thp: 'never' });
          const data = pattern(PAGES, 5);
          p.write(a, data);
          // The model: each page's policy as mbind left it.
          const model: string[] = Array(PAGES).fill('default:');
          for (const o of ops) {
            const len = Math.min(o.len, PAGES - o.from);
            const nodes = o.mode === MPOL_DEFAULT ? [] : o.mode === MPOL_PREFERRED ? [o.nodes[0]!] : o.nodes;
            const r = await p.mbind(
              a + o.from * PG,
              len * PG,
              o.mode,
              o.mode === MPOL_DEFAULT ? null : nodes,
              o.move ? MPOL_MF_MOVE : 0,
            );
            expect(r).toEqual({ ret: 0 });
            model.fill(`${names[o.mode]}:${nodes.join(',')}`, o.from, o.from + len);
            if (o.move) {
              // Pages outside the mask moved where the policy allocates (MPOL_DEFAULT: the local node).
              const want = o.mode === MPOL_DEFAULT ? [0] : nodes;
              for (let i = o.from; i < o.from + len; i++)
                expect(want).toContain(p.pageInfo(a + i * PG)!.node);
            }
            const runs: [number, number, string][] = [];
            model.forEach((pol, i) => {
              const last = runs[runs.length - 1];
              if (last && last[2] === pol) last[1] = i + 1;
              else runs.push([i, i + 1, pol]);
            });
            expect(
              p
                .maps()
                .map((v) => [
                  (v.start - a) / PG,
                  (v.end - a) / PG,
                  `${v.policy.mode}:${v.policy.nodes.join(',')}`,
                ]),
            ).toEqual(runs);
          }
          expect(sameBytes(p.read(a, PAGES * PG), data)).toBe(true);
        }),
      ),
      { numRuns: 40 },
    );
  });
});
