import type { HugetlbVma } from './hugetlb_vma.js';
import { type MempolicyTask, type Mpol, mpolEqual } from './mempolicy_struct.js';
import { PAGE_SHIFT } from './mmzone.js';
import { PageTables, USER_BASE, USER_PAGES } from './pagetable.js';
import type { Mapping } from './rmap.js';
import { VmaTree } from './vma_tree.js';

let nextVmaId = 1;

/**
 * A virtual memory area (struct vm_area_struct), in pages. Its extent (`startVpn`, `npages`,
 * `pgoff`) keys the address space's tree and the tree of every rmap owner in its chain: change it
 * only through `Mm.resize`.
 */
export class Vma {
  /** Orders VMAs that map the same page offset in the rmap owner's interval tree. */
  readonly id = nextVmaId++;

  constructor(
    public mm: Mm,
    public startVpn: number,
    public npages: number,
    readonly shared: boolean,
    /** Folio order faults allocate (0, an mTHP order 2..8, or 9 = PMD THP). */
    readonly order: number,
    /** vm_policy: the area's own policy (mbind), null when it follows the task's. */
    public policy: Mpol | null,
    public locked: boolean,
    /** false models VM_IO/VM_PFNMAP-like areas that migration must not touch. */
    readonly migratable: boolean,
    /**
     * The rmap owner new folios of this area go to (vma->anon_vma, or the shmem object); a forked
     * area's own is made when it first needs one (`anonVmaPrepare`), until then its parent's.
     */
    public mapping: Mapping,
    /** Page offset of startVpn in `mapping` (and in every owner of `owners`: fork keeps it). */
    public pgoff: number,
    /**
     * anon_vma_chain: every rmap owner whose tree holds this area, the oldest first, `mapping`
     * last. A forked private anonymous area is linked into its parent's owners, whose folios it
     * may map, and its own (anon_vma_fork); any other area has only `mapping`.
     */
    public owners: readonly Mapping[] = [mapping],
  ) {}

  /**
   * A forked private anonymous area whose own anon_vma is not made yet: anon_vma_fork's is made at
   * the area's first new folio, so a fork (and its exit) costs nothing per area that never needs
   * one, as fork + exec does not.
   */
  ownPending = false;

  /** MAP_HUGETLB: the area's hugetlb state (vm_private_data); null for any other area. */
  hugetlb: HugetlbVma | null = null;

  get endVpn(): number {
    return this.startVpn + this.npages;
  }
  get start(): number {
    return vpnToAddr(this.startVpn);
  }
  get end(): number {
    return vpnToAddr(this.endVpn);
  }
  /** Page offset in the mapping of page `vpn` (linear_page_index). */
  index(vpn: number): number {
    return this.pgoff + (vpn - this.startVpn);
  }

  /** vm_area_dup: an area like this one over pages [startVpn, startVpn + npages) of `mm`. */
  dup(mm: Mm, startVpn: number, npages: number, pgoff: number): Vma {
    const v = new Vma(
      mm,
      startVpn,
      npages,
      this.shared,
      this.order,
      this.policy,
      this.locked,
      this.migratable,
      this.mapping,
      pgoff,
      // anon_vma_clone: the new area is linked into the same owners.
      this.owners,
    );
    v.ownPending = this.ownPending;
    // A hugetlb area's halves share its reservation map (hugetlb_vm_op_open) and copy its flags.
    if (this.hugetlb) v.hugetlb = { ...this.hugetlb };
    return v;
  }
}

// Computed once: `2 ** PAGE_SHIFT` inside a function is a Math.pow call per call (~50 ns), and
// move_pages(2) converts every address it is given.
const PAGE_BYTES = 2 ** PAGE_SHIFT;
const USER_BYTES = USER_PAGES * PAGE_BYTES;

export function vpnToAddr(vpn: number): number {
  return USER_BASE + vpn * PAGE_BYTES;
}

/** Virtual page number of `addr` in the user window, or -1 outside it. */
export function addrToVpn(addr: number): number {
  const off = addr - USER_BASE;
  if (!(off >= 0) || off >= USER_BYTES) return -1;
  return Math.floor(off / PAGE_BYTES);
}

/** An address space (struct mm_struct): its VMAs in a tree, and its page tables. */
export class Mm {
  readonly pt = new PageTables();
  /** The task whose policy and cpuset the faults of this address space allocate by. */
  constructor(readonly task: MempolicyTask) {}
  vmas = new VmaTree();
  private cache: Vma | undefined;
  /**
   * get_mm_rss (mm->rss_stat): the pages the entries of this address space map, the zero page
   * excepted; kept up to date where entries are installed and removed (faults, zap, fork's copy),
   * so reading it costs nothing. As in the kernel, PROT_NONE and migration entries count (the
   * zap of a migration entry gives its page back). hugetlb pages count too, where the kernel keeps
   * them apart (hugetlb_usage).
   */
  rss = 0;

  /** find_vma: the VMA containing `vpn`, or undefined. */
  findVma(vpn: number): Vma | undefined {
    const c = this.cache;
    if (c && vpn >= c.startVpn && vpn < c.startVpn + c.npages) return c;
    const v = this.vmas.find(vpn);
    if (v) this.cache = v;
    return v;
  }

  /** The VMAs overlapping pages [lo, hi), in address order. */
  vmasIn(lo: number, hi: number): Vma[] {
    return this.vmas.range(lo, hi);
  }

  /** The VMAs that end above page `vpn`, in address order, as a lazy iterator (VmaTree.from). */
  vmasFrom(vpn: number): IterableIterator<Vma> {
    return this.vmas.from(vpn);
  }

  /** First-fit free range of `npages` aligned to `align` pages, or -1. */
  getUnmappedArea(npages: number, align: number): number {
    // A guard page between areas keeps them from merging by accident.
    return this.vmas.firstFit(npages, align, USER_PAGES);
  }

  insert(vma: Vma): void {
    this.vmas.insert(vma);
    linkOwners(vma);
  }

  remove(vma: Vma): void {
    this.vmas.remove(vma);
    unlinkOwners(vma);
    if (this.cache === vma) this.cache = undefined;
  }

  /** vma_adjust: gives `vma` a new extent, re-keying both trees that hold it. */
  resize(vma: Vma, startVpn: number, npages: number, pgoff: number): void {
    this.remove(vma);
    vma.startVpn = startVpn;
    vma.npages = npages;
    vma.pgoff = pgoff;
    this.insert(vma);
  }

  /** __split_vma: `vma` keeps [start, vpn); the returned new area (inserted) holds [vpn, end). */
  splitVma(vma: Vma, vpn: number): Vma {
    const tail = vma.dup(this, vpn, vma.endVpn - vpn, vma.index(vpn));
    this.resize(vma, vma.startVpn, vpn - vma.startVpn, vma.pgoff);
    this.insert(tail);
    return tail;
  }

  /**
   * is_mergeable_vma for two areas of this address space: `next` starts where `prev` ends, maps
   * the same object at the next page offset, with the same flags and policy (`prevPolicy` and
   * `nextPolicy` ask as if the areas had those). Two areas with one own owner were split from
   * one area, so they share its chain too (is_mergeable_anon_vma compares the anon_vmas only).
   */
  canMerge(prev: Vma, next: Vma, prevPolicy = prev.policy, nextPolicy = next.policy): boolean {
    return (
      prev.endVpn === next.startVpn &&
      prev.mapping === next.mapping &&
      next.pgoff === prev.pgoff + prev.npages &&
      prev.shared === next.shared &&
      prev.order === next.order &&
      prev.locked === next.locked &&
      prev.migratable === next.migratable &&
      // A merge removes an area; one with a close op (hugetlb_vm_op_close) may not go (can_merge_remove_vma).
      !prev.hugetlb &&
      !next.hugetlb &&
      mpolEqual(prevPolicy, nextPolicy)
    );
  }

  /** vma_merge: `next` (canMerge with `prev`) is absorbed into `prev`. */
  mergeVmas(prev: Vma, next: Vma): void {
    this.remove(next);
    this.resize(prev, prev.startVpn, prev.npages + next.npages, prev.pgoff);
  }

  /**
   * dup_mmap: the child's tree, copied in one pass with `map(vma)` for each VMA; each copy is
   * linked into the owners of its chain.
   */
  dupVmas(child: Mm, map: (vma: Vma) => Vma): void {
    child.vmas = this.vmas.cloneMapped((v) => {
      const c = map(v);
      linkOwners(c);
      return c;
    });
  }
}

/** anon_vma_chain_link for each owner of `vma`'s chain: its tree holds the area. */
function linkOwners(vma: Vma): void {
  for (const o of vma.owners) o.vmas.insert(vma);
}

/** unlink_anon_vmas: `vma` leaves the tree of every owner of its chain. */
export function unlinkOwners(vma: Vma): void {
  for (const o of vma.owners) o.vmas.remove(vma);
}
