import type { Mempolicy } from './mempolicy.js';
import { PAGE_SHIFT } from './mmzone.js';
import { PageTables, USER_BASE, USER_PAGES } from './pagetable.js';
import type { Mapping } from './rmap.js';
import { VmaTree } from './vma_tree.js';

let nextVmaId = 1;

/**
 * A virtual memory area (struct vm_area_struct), in pages. Its extent (`startVpn`, `npages`,
 * `pgoff`) keys two trees, the address space's and its rmap owner's: change it only through
 * `Mm.resize`.
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
    public policy: Mempolicy,
    public locked: boolean,
    /** false models VM_IO/VM_PFNMAP-like areas that migration must not touch. */
    readonly migratable: boolean,
    public mapping: Mapping,
    /** Page offset of startVpn in `mapping`. */
    public pgoff: number,
  ) {}

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
}

export function vpnToAddr(vpn: number): number {
  return USER_BASE + vpn * 2 ** PAGE_SHIFT;
}

/** Virtual page number of `addr` in the user window, or -1 outside it. */
export function addrToVpn(addr: number): number {
  const off = addr - USER_BASE;
  if (!(off >= 0) || off >= USER_PAGES * 2 ** PAGE_SHIFT) return -1;
  return Math.floor(off / 2 ** PAGE_SHIFT);
}

/** An address space (struct mm_struct): its VMAs in a tree, and its page tables. */
export class Mm {
  readonly pt = new PageTables();
  vmas = new VmaTree();
  private cache: Vma | undefined;

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

  /** First-fit free range of `npages` aligned to `align` pages, or -1. */
  getUnmappedArea(npages: number, align: number): number {
    // A guard page between areas keeps them from merging by accident.
    return this.vmas.firstFit(npages, align, USER_PAGES);
  }

  insert(vma: Vma): void {
    this.vmas.insert(vma);
    vma.mapping.vmas.insert(vma);
  }

  remove(vma: Vma): void {
    this.vmas.remove(vma);
    vma.mapping.vmas.remove(vma);
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

  /** dup_mmap: the child's tree, copied in one pass with `map(vma)` for each VMA. */
  dupVmas(child: Mm, map: (vma: Vma) => Vma): void {
    child.vmas = this.vmas.cloneMapped((v) => {
      const c = map(v);
      c.mapping.vmas.insert(c);
      return c;
    });
  }
}
