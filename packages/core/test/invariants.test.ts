import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createMachine, type Machine } from '../src/machine.js';
import { addrToVpn } from '../src/mm.js';
import { MIGRATE_MOVABLE, MIGRATE_TYPES, MIGRATE_UNMOVABLE, PAGE_SIZE } from '../src/mmzone.js';
import { PG_buddy, PG_tail } from '../src/page.js';
import { mkPte, PTE_PFN_SHIFT, PTE_PRESENT, PTE_WRITE, USER_BASE } from '../src/pagetable.js';
import type { Process } from '../src/process.js';
import type { Mapping } from '../src/rmap.js';
import { NR_FILE_MAPPED, NR_SHMEM } from '../src/vmstat.js';
import { catchPagemig } from './helpers.js';

const PG = PAGE_SIZE;

let m: Machine;
let p: Process;
beforeEach(async () => {
  m = await createMachine({ nodes: [{ memory: '8MiB' }, { memory: '8MiB' }], prefault: false });
  p = m.spawn();
});
afterEach(async () => {
  await m.close();
});

/** checkInvariants must throw ERR_INVARIANT; returns the message. */
function broken(): string {
  const e = catchPagemig(() => m.checkInvariants());
  expect(e.code).toBe('ERR_INVARIANT');
  expect(e.name).toBe('PagemigError');
  return e.message;
}

/** Runs `corrupt`, checks the report names `pfn` (when given) and matches `rule`, then `repair`s. */
function detects(corrupt: () => void, repair: () => void, rule: RegExp, pfn?: number): void {
  m.checkInvariants();
  corrupt();
  const msg = broken();
  expect(msg).toMatch(rule);
  if (pfn !== undefined)
    expect(msg).toMatch(new RegExp(`^invariant broken at pfn ${pfn} \\(0x${pfn.toString(16)}\\)`));
  repair();
  m.checkInvariants();
}

describe('checkInvariants', () => {
  it('passes on a machine with mixed memory and names nothing', () => {
    const a = p.mmap(2 << 20, { thp: 'always' });
    p.touch(a, 2 << 20);
    const b = p.mmap(32 * PG, { thp: '64KiB', shared: true });
    p.touch(b, 32 * PG);
    p.fork();
    expect(() => m.checkInvariants()).not.toThrow();
  });

  it('detects a mapcount that does not match the page tables', () => {
    const a = p.mmap(PG);
    p.touch(a, PG);
    const pfn = p.pageInfo(a)!.pfn;
    const mc = m.kernel.pages.mapcount;
    detects(
      () => mc[pfn]!++,
      () => mc[pfn]!--,
      /mapcount 2 but rmap finds 1 mappings$/,
      pfn,
    );
  });

  it("detects an address space's rss counter that disagrees with its page tables", () => {
    const a = p.mmap(2 << 20, { thp: 'always' });
    p.touch(a, 2 << 20);
    const b = p.mmap(4 * PG, { thp: 'never' });
    p.touch(b, 4 * PG);
    p.touch(p.mmap(PG, { thp: 'never' }), PG, 'read');
    // A THP PMD counts 512 pages, each written PTE one, the zero page none.
    expect(p.mm.rss).toBe(516);
    detects(
      () => p.mm.rss--,
      () => p.mm.rss++,
      new RegExp(
        `^invariant broken: pid ${p.pid}: its rss counter is 515 but its page tables map 516 pages$`,
      ),
    );
  });

  it('detects a THP page that lost its PG_tail flag', () => {
    const a = p.mmap(2 << 20, { thp: 'always' });
    p.touch(a, PG);
    const head = p.pageInfo(a)!.pfn;
    const flags = m.kernel.pages.flags;
    detects(
      () => (flags[head + 5]! &= ~PG_tail),
      () => (flags[head + 5]! |= PG_tail),
      new RegExp(`page is not a tail of the order-9 folio at ${head}$`),
      head + 5,
    );
  });

  it('detects a PTE that points at a free frame', () => {
    const a = p.mmap(PG);
    p.touch(a, PG);
    const pt = p.mm.pt;
    const idx = pt.pteIndex((a - USER_BASE) / PG);
    const old = pt.pte[idx]!;
    const z = m.kernel.zones[1]!;
    const freePfn = z.freeHead[10 * MIGRATE_TYPES + MIGRATE_MOVABLE]!;
    expect(m.kernel.pages.flags[freePfn]! & PG_buddy).toBe(PG_buddy);
    detects(
      () => (pt.pte[idx] = mkPte(freePfn, PTE_PRESENT | PTE_WRITE)),
      () => (pt.pte[idx] = old),
      new RegExp(`page table maps page \\d+ to a free or missing frame ${freePfn}$`),
      freePfn,
    );
    expect(old >>> PTE_PFN_SHIFT).toBe(p.pageInfo(a)!.pfn);
  });

  it('detects a free list whose block count is off', () => {
    const z = m.kernel.zones[0]!;
    const li = 10 * MIGRATE_TYPES + MIGRATE_MOVABLE;
    expect(z.nrFreeList[li]).toBe(2);
    detects(
      () => z.nrFreeList[li]!--,
      () => z.nrFreeList[li]!++,
      /^invariant broken: node 0 Normal: order 10 type 1 list has 2 blocks, counted 1$/,
    );
  });

  it("detects a zone's free page count that disagrees with its lists", () => {
    const z = m.kernel.zones[1]!;
    detects(
      () => z.freePages++,
      () => z.freePages--,
      /^invariant broken: node 1 Normal: free lists hold 2048 pages, zone counts 2049$/,
    );
  });

  it('detects an allocated folio without references', () => {
    const a = p.mmap(PG);
    p.touch(a, PG);
    const pfn = p.pageInfo(a)!.pfn;
    const { refcount, mapcount } = m.kernel.pages;
    detects(
      () => {
        refcount[pfn] = 0;
        mapcount[pfn] = 0;
      },
      () => {
        refcount[pfn] = 1;
        mapcount[pfn] = 1;
      },
      /allocated folio with no reference/,
      pfn,
    );
  });

  it('detects a free block on the list of another migratetype', () => {
    const z = m.kernel.zones[0]!;
    const pfn = z.freeHead[10 * MIGRATE_TYPES + MIGRATE_MOVABLE]!;
    const pb = m.kernel.pageblocks;
    detects(
      () => pb.setMigratetype(pfn, MIGRATE_UNMOVABLE),
      () => pb.setMigratetype(pfn, MIGRATE_MOVABLE),
      /free block on the 1 list but its pageblock is type 0$/,
      pfn,
    );
  });

  it('detects a folio whose rmap owner is not the VMA that maps it', () => {
    const a = p.mmap(PG);
    p.touch(a, PG);
    const pfn = p.pageInfo(a)!.pfn;
    const mapping = m.kernel.pages.mapping;
    const owner = mapping[pfn]!;
    detects(
      () => (mapping[pfn] = owner + 100),
      () => (mapping[pfn] = owner),
      new RegExp(`mapped at page \\d+ of a VMA whose rmap owner is ${owner}, folio says ${owner + 100}$`),
      pfn,
    );
  });

  it("detects a node's vmstat counter that disagrees with its folios", () => {
    const a = p.mmap(3 * PG, { shared: true });
    p.touch(a, 3 * PG);
    const nid = p.pageInfo(a)!.node;
    const s = m.kernel.nodes[nid]!.vmStat;
    expect(s[NR_SHMEM]).toBe(3);
    expect(s[NR_FILE_MAPPED]).toBe(3);
    detects(
      () => s[NR_FILE_MAPPED]!--,
      () => s[NR_FILE_MAPPED]!++,
      new RegExp(`^invariant broken: node ${nid}: the folios add up to nr_mapped 3, the node counts 2$`),
    );
  });

  it("accepts a folio of a forked area's ancestor owner, rejects a sibling's", () => {
    const a = p.mmap(2 * PG);
    p.touch(a, 2 * PG);
    const [x, y] = [p.fork(), p.fork()];
    // x's copy of page 0 goes to x's own owner; page 1 stays the parent's, mapped by all three.
    x.touch(a, PG);
    y.touch(a, PG);
    m.checkInvariants();
    const k = m.kernel;
    const pfn = x.pageInfo(a)!.pfn;
    const vpn = addrToVpn(a);
    const [xVma, yVma] = [x.mm.findVma(vpn)!, y.mm.findVma(vpn)!];
    const parent = p.mm.findVma(vpn)!.mapping.id;
    expect(k.pages.mapping[pfn]).toBe(xVma.mapping.id);
    expect(k.pages.mapping[x.pageInfo(a + PG)!.pfn]).toBe(parent);
    detects(
      () => (k.pages.mapping[pfn] = yVma.mapping.id),
      () => (k.pages.mapping[pfn] = xVma.mapping.id),
      new RegExp(
        `mapped at page \\d+ of a VMA whose rmap owner is ${xVma.mapping.id} \\(linked into ${parent}\\), folio says ${yVma.mapping.id}$`,
      ),
      pfn,
    );
  });

  it('detects a forked area missing from the tree of an owner of its chain, and an owner nothing links', () => {
    const a = p.mmap(PG);
    p.touch(a, PG);
    const child = p.fork();
    // The child's write makes its own anon_vma (anon_vma_prepare at its first new folio).
    child.touch(a, PG, 'write');
    const vma = child.mm.findVma(addrToVpn(a))!;
    const [parent, own] = vma.owners as [Mapping, Mapping];
    detects(
      () => parent.vmas.remove(vma),
      () => parent.vmas.insert(vma),
      new RegExp(
        `pid ${child.pid} area at page \\d+: not in the tree of rmap owner ${parent.id} of its chain$`,
      ),
    );
    detects(
      () => own.vmas.insert(p.mm.findVma(addrToVpn(a))!),
      () => own.vmas.remove(p.mm.findVma(addrToVpn(a))!),
      /rmap owners' trees hold 4 areas, the areas' chains link 3$/,
    );
    let leaked: Mapping | undefined;
    detects(
      () => (leaked = m.kernel.newMapping('anon')),
      () => m.kernel.releaseMapping(leaked!),
      /rmap owner \d+ has no area linked into it but was not released$/,
    );
  });

  it('detects a PG_buddy frame that is on no free list', () => {
    const k = m.kernel;
    const pfn = k.allocFolio({ order: 0, nid: 0 });
    expect(pfn).toBe(0);
    detects(
      () => (k.pages.flags[pfn]! |= PG_buddy),
      () => (k.pages.flags[pfn]! &= ~PG_buddy),
      /buddy frame is on no free list$/,
      pfn,
    );
  });
});
