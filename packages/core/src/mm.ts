import type { Mempolicy } from './mempolicy.js';
import { PAGE_SHIFT } from './mmzone.js';
import { PageTables, USER_BASE, USER_PAGES } from './pagetable.js';
import type { Mapping } from './rmap.js';

/** A virtual memory area (struct vm_area_struct), in pages. */
export class Vma {
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

/** An address space (struct mm_struct): sorted VMAs and page tables. */
export class Mm {
  readonly pt = new PageTables();
  readonly vmas: Vma[] = [];
  private cache: Vma | undefined;

  /** find_vma: the VMA containing `vpn`, or undefined. */
  findVma(vpn: number): Vma | undefined {
    const c = this.cache;
    if (c && vpn >= c.startVpn && vpn < c.startVpn + c.npages) return c;
    let lo = 0;
    let hi = this.vmas.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      const v = this.vmas[mid]!;
      if (vpn < v.startVpn) hi = mid - 1;
      else if (vpn >= v.startVpn + v.npages) lo = mid + 1;
      else return (this.cache = v);
    }
    return undefined;
  }

  /** First-fit free range of `npages` aligned to `align` pages, or -1. */
  getUnmappedArea(npages: number, align: number): number {
    let cursor = 0;
    for (const v of this.vmas) {
      const start = Math.ceil(cursor / align) * align;
      if (start + npages <= v.startVpn) return start;
      // Leave a guard page between areas so they never merge by accident.
      cursor = v.endVpn + 1;
    }
    const start = Math.ceil(cursor / align) * align;
    return start + npages <= USER_PAGES ? start : -1;
  }

  insert(vma: Vma): void {
    let i = 0;
    while (i < this.vmas.length && this.vmas[i]!.startVpn < vma.startVpn) i++;
    this.vmas.splice(i, 0, vma);
    vma.mapping.vmas.push(vma);
  }

  remove(vma: Vma): void {
    const i = this.vmas.indexOf(vma);
    if (i >= 0) this.vmas.splice(i, 1);
    const j = vma.mapping.vmas.indexOf(vma);
    if (j >= 0) vma.mapping.vmas.splice(j, 1);
    if (this.cache === vma) this.cache = undefined;
  }
}
