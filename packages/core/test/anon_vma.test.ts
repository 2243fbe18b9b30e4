import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createMachine, type Machine } from '../src/machine.js';
import { MPOL_MF_MOVE, MPOL_MF_MOVE_ALL } from '../src/mempolicy.js';
import { addrToVpn } from '../src/mm.js';
import { PAGE_SIZE } from '../src/mmzone.js';
import type { Process } from '../src/process.js';
import { rmapWalk } from '../src/rmap.js';
import { machinesCheckedAfterEach, pattern, sameBytes } from './helpers.js';

const PG = PAGE_SIZE;
const machine = machinesCheckedAfterEach();

/**
 * One rmap walk of the folio at `addr` of `proc`: the VMAs its owner's interval tree hands the
 * walk (counted on this owner's tree only), and the pid and page of each mapping the visitor is
 * called for.
 */
function walkOf(
  m: Machine,
  proc: Process,
  addr: number,
): { visited: number; pids: number[]; vpns: number[] } {
  const k = m.kernel;
  const head = proc.pageInfo(addr)!.headPfn;
  const owner = k.mappingOf(head)!;
  const tree = owner.vmas;
  let visited = 0;
  const { single, overlapping } = tree;
  tree.single = () => {
    const v = single.call(tree);
    if (v) visited++;
    return v;
  };
  tree.overlapping = (lo, hi, visit) =>
    overlapping.call(tree, lo, hi, (v) => {
      visited++;
      return visit(v);
    });
  const pids: number[] = [];
  const vpns: number[] = [];
  try {
    rmapWalk(owner, k.pages.index[head]!, head, 1 << k.folioOrder(head), (hit) => {
      for (const [pid, p] of k.processes) if (p.mm === hit.mm) pids.push(pid);
      vpns.push(hit.vpn);
    });
  } finally {
    delete (tree as Partial<typeof tree>).single;
    delete (tree as Partial<typeof tree>).overlapping;
  }
  return { visited, pids, vpns };
}

/** A privileged parent with `pages` written private pages and `n` forked children. */
async function forked(n: number, pages = 4) {
  const m = await machine({ nodes: [{ memory: '16MiB' }, { memory: '16MiB' }] });
  const parent = m.spawn({ privileged: true });
  const addr = parent.mmap(pages * PG, { thp: 'never', node: 0 });
  const data = pattern(pages, 3);
  parent.write(addr, data);
  const kids: Process[] = [];
  for (let i = 0; i < n; i++) kids.push(parent.fork());
  return { m, parent, addr, data, kids };
}

describe('anon_vma per forked area (anon_vma_fork)', () => {
  it("the rmap walk of a child's copy-on-write page visits only that child's area, however many siblings", async () => {
    const visitedAt: number[] = [];
    for (const n of [1, 64]) {
      const { m, addr, kids } = await forked(n);
      for (const c of kids) c.write(addr, new Uint8Array([c.pid & 0xff]));
      const kid = kids[n >> 1]!;
      const { visited, pids, vpns } = walkOf(m, kid, addr);
      expect(pids).toEqual([kid.pid]);
      expect(vpns).toEqual([addrToVpn(addr)]);
      visitedAt.push(visited);
      // move_pages of it: the bytes and the model stay whole.
      const before = kid.read(addr, PG);
      const r = await kid.movePages(0, [addr], [1], MPOL_MF_MOVE);
      expect(r).toEqual({ ret: 0, status: [1] });
      expect(kid.pageInfo(addr)!.node).toBe(1);
      expect(sameBytes(kid.read(addr, PG), before)).toBe(true);
      expect(m.kernel.pages.mapcount[kid.pageInfo(addr)!.headPfn]).toBe(1);
      m.checkInvariants();
    }
    expect(visitedAt).toEqual([1, 1]);
  });

  it('a page of the parent is still found in every child: MPOL_MF_MOVE_ALL moves it in the parent, 16 children and a grandchild', async () => {
    const { m, parent, addr, data, kids } = await forked(16);
    // Children break copy-on-write elsewhere and fork grandchildren: page 1 stays the parent's.
    for (const c of kids) c.write(addr, new Uint8Array([9]));
    const grandkid = kids[3]!.fork();
    const all = [parent, ...kids, grandkid];
    const head = parent.pageInfo(addr + PG)!.headPfn;
    expect(m.kernel.pages.mapcount[head]).toBe(18);
    const r = await parent.movePages(0, [addr + PG], [1], MPOL_MF_MOVE_ALL);
    expect(r).toEqual({ ret: 0, status: [1] });
    const moved = parent.pageInfo(addr + PG)!.headPfn;
    expect(moved).not.toBe(head);
    expect(m.kernel.nodeOf(moved)).toBe(1);
    for (const proc of all) {
      expect(proc.pageInfo(addr + PG)!.headPfn).toBe(moved);
      expect(sameBytes(proc.read(addr + PG, PG), data.subarray(PG, 2 * PG))).toBe(true);
    }
    expect(m.kernel.pages.mapcount[moved]).toBe(18);
    expect(walkOf(m, parent, addr + PG).pids.sort((x, y) => x - y)).toEqual(
      all.map((p) => p.pid).sort((x, y) => x - y),
    );
  });

  it("a page a child reuses on a write fault (its last mapper) joins the child's own anon_vma", async () => {
    const { m, parent, addr, kids } = await forked(3);
    const [a, b, c] = kids as [Process, Process, Process];
    // Page 2 ends up mapped by `a` alone: everyone else breaks copy-on-write on it.
    for (const p of [parent, b, c]) p.write(addr + 2 * PG, new Uint8Array([p.pid & 0xff]));
    const pfn = a.pageInfo(addr + 2 * PG)!.pfn;
    expect(m.kernel.pages.mapcount[pfn]).toBe(1);
    expect(walkOf(m, a, addr + 2 * PG).visited).toBe(4);
    const reuse = m.vmstat().pgreuse;
    a.write(addr + 2 * PG, new Uint8Array([5]));
    expect(m.vmstat().pgreuse).toBe(reuse + 1);
    expect(a.pageInfo(addr + 2 * PG)!.pfn).toBe(pfn);
    expect(m.kernel.pages.mapping[pfn]).toBe(a.mm.findVma(addrToVpn(addr))!.mapping.id);
    const { visited, pids } = walkOf(m, a, addr + 2 * PG);
    expect(visited).toBe(1);
    expect(pids).toEqual([a.pid]);
    const r = await a.movePages(0, [addr + 2 * PG], [1], MPOL_MF_MOVE);
    expect(r).toEqual({ ret: 0, status: [1] });
    expect(a.read(addr + 2 * PG, 2)).toEqual(new Uint8Array([5, pattern(4, 3)[2 * PG + 1]!]));
  });

  it("an exclusive THP reused on a write fault joins the child's own anon_vma", async () => {
    const m = await machine({ nodes: [{ memory: '16MiB' }, { memory: '16MiB' }] });
    const parent = m.spawn();
    const addr = parent.mmap(2 << 20, { thp: 'always' });
    parent.write(addr, new Uint8Array([1]));
    const [a, b] = [parent.fork(), parent.fork()];
    parent.munmap(addr, 2 << 20);
    b.exit();
    const head = a.pageInfo(addr)!.headPfn;
    expect(a.pageInfo(addr)!.huge).toBe(true);
    const vma = a.mm.findVma(addrToVpn(addr))!;
    // Nothing new in a's area yet: its own anon_vma is not made, the folio is its parent's.
    expect(vma.ownPending).toBe(true);
    const parentOwner = vma.mapping.id;
    expect(m.kernel.pages.mapping[head]).toBe(parentOwner);
    a.write(addr + PG, new Uint8Array([2]));
    expect(a.pageInfo(addr)!.headPfn).toBe(head);
    expect(a.pageInfo(addr)!.huge).toBe(true);
    expect(vma.ownPending).toBe(false);
    expect(vma.mapping.id).not.toBe(parentOwner);
    expect(m.kernel.pages.mapping[head]).toBe(vma.mapping.id);
    m.checkInvariants();
    expect([...a.read(addr, 1), ...a.read(addr + PG, 1)]).toEqual([1, 2]);
  });

  it("a fork makes no anon_vma until a child's area gets its first new folio; a split half makes its own", async () => {
    const m = await machine();
    const parent = m.spawn();
    const areas = Array.from({ length: 64 }, () => {
      const a = parent.mmap(4 * PG, { thp: 'never' });
      parent.write(a, pattern(4, a % 97));
      return a;
    });
    const owners = () => m.kernel.mappings.filter((x) => x !== undefined).length;
    const before = owners();
    const child = parent.fork();
    // Reads and a fork of the child make none either.
    expect(sameBytes(child.read(areas[0]!, 4 * PG), pattern(4, areas[0]! % 97))).toBe(true);
    child.fork().exit();
    expect(owners()).toBe(before);
    child.write(areas[3]!, new Uint8Array([7]));
    expect(owners()).toBe(before + 1);
    // Splitting a pending area (munmap of its middle) leaves two pending halves; each writes into its own.
    child.munmap(areas[5]! + PG, PG);
    child.write(areas[5]!, new Uint8Array([1]));
    child.write(areas[5]! + 2 * PG, new Uint8Array([2]));
    expect(owners()).toBe(before + 3);
    const [lo, hi] = [areas[5]!, areas[5]! + 2 * PG].map((x) => child.mm.findVma(addrToVpn(x))!);
    expect(lo!.mapping).not.toBe(hi!.mapping);
    expect(m.kernel.pages.mapping[child.pageInfo(areas[5]!)!.pfn]).toBe(lo!.mapping.id);
    m.checkInvariants();
    child.exit();
    expect(owners()).toBe(before);
    expect(sameBytes(parent.read(areas[5]!, 4 * PG), pattern(4, areas[5]! % 97))).toBe(true);
  });

  it('random fork, write, partial munmap, exit and move_pages keep bytes and invariants after each step', async () => {
    // Areas of every fault path: base pages, mTHP (16 KiB) and a PMD THP; `probe` lists the pages
    // written and checked.
    const AREAS = [
      { npages: 8, thp: 'never' as const, probe: [0, 1, 5, 7] },
      { npages: 16, thp: '16KiB' as const, probe: [0, 2, 15] },
      { npages: 512, thp: 'always' as const, probe: [0, 256, 511] },
    ];
    const op = fc.oneof(
      fc.record({ kind: fc.constant('fork' as const), who: fc.nat(7) }),
      fc.record({
        kind: fc.constant('write' as const),
        who: fc.nat(7),
        area: fc.nat(2),
        page: fc.nat(3),
        value: fc.integer({ min: 1, max: 255 }),
      }),
      fc.record({
        kind: fc.constant('munmap' as const),
        who: fc.nat(7),
        area: fc.nat(2),
        from: fc.nat(),
        len: fc.nat(),
      }),
      fc.record({ kind: fc.constant('exit' as const), who: fc.nat(7) }),
      fc.record({
        kind: fc.constant('move' as const),
        who: fc.nat(7),
        area: fc.nat(2),
        page: fc.nat(3),
        node: fc.integer({ min: 0, max: 1 }),
        all: fc.boolean(),
      }),
    );
    /** A process and what each probed page of each area should read: -1 unmapped, else its byte. */
    interface Model {
      proc: Process;
      pages: Int16Array[];
    }
    await fc.assert(
      fc.asyncProperty(fc.array(op, { minLength: 10, maxLength: 40 }), async (ops) => {
        const m = await createMachine({ nodes: [{ memory: '16MiB' }, { memory: '16MiB' }], prefault: false });
        try {
          const root = m.spawn({ privileged: true });
          const addrs = AREAS.map((a) => root.mmap(a.npages * PG, { thp: a.thp }));
          const procs: Model[] = [{ proc: root, pages: AREAS.map((a) => new Int16Array(a.npages)) }];
          for (const o of ops) {
            const pm = procs[o.who % procs.length]!;
            const ai = 'area' in o ? o.area % AREAS.length : 0;
            const area = AREAS[ai]!;
            const probe = 'page' in o ? area.probe[o.page % area.probe.length]! : 0;
            const at = addrs[ai]! + probe * PG;
            switch (o.kind) {
              case 'fork':
                if (procs.length < 8)
                  procs.push({ proc: pm.proc.fork(), pages: pm.pages.map((x) => x.slice()) });
                break;
              case 'write':
                if (pm.pages[ai]![probe]! < 0) break;
                pm.proc.write(at, new Uint8Array(PG).fill(o.value));
                pm.pages[ai]![probe] = o.value;
                break;
              case 'munmap': {
                const from = o.from % area.npages;
                const len = 1 + (o.len % (area.npages - from));
                pm.proc.munmap(addrs[ai]! + from * PG, len * PG);
                pm.pages[ai]!.fill(-1, from, from + len);
                break;
              }
              case 'exit':
                if (procs.length === 1) break;
                pm.proc.exit();
                procs.splice(procs.indexOf(pm), 1);
                break;
              case 'move': {
                if (pm.pages[ai]![probe]! < 0) break;
                const r = await pm.proc.movePages(0, [at], [o.node], o.all ? MPOL_MF_MOVE_ALL : MPOL_MF_MOVE);
                expect(r.ret).toBe(0);
                if (r.status[0] === o.node) expect(pm.proc.pageInfo(at)!.node).toBe(o.node);
                else expect(r.status[0]).toBeLessThan(0);
                break;
              }
            }
            m.checkInvariants();
            for (const { proc, pages } of procs)
              AREAS.forEach((a, i) => {
                for (const pg of a.probe) {
                  const want = pages[i]![pg]!;
                  if (want >= 0)
                    expect(sameBytes(proc.read(addrs[i]! + pg * PG, PG), new Uint8Array(PG).fill(want))).toBe(
                      true,
                    );
                }
              });
          }
        } finally {
          await m.close();
        }
      }),
      { numRuns: 60 },
    );
  });
});
