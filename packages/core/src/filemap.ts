import { hostNoMem } from './errno.js';

/** Page offsets per block of the page cache: a PMD-size folio fills one. */
const BLOCK_SHIFT = 9;
const BLOCK = 1 << BLOCK_SHIFT;
const MASK = BLOCK - 1;

/**
 * A shmem object's page cache (mm/filemap.c over the inode's xarray): page offset -> pfn of the
 * page cached there. Sparse like the xarray: the offsets live in blocks of 512, each allocated
 * when a page is first cached in it, so an object costs host memory and teardown time for what it
 * caches, not for its size. A lookup is O(1) and allocates nothing.
 */
export class PageCache {
  /** Block number -> its pfns (-1: none cached). */
  private readonly blocks = new Map<number, Int32Array>();

  /** filemap_get_entry: the pfn cached at `index`, or -1. */
  get(index: number): number {
    const b = this.blocks.get(index >>> BLOCK_SHIFT);
    return b === undefined ? -1 : b[index & MASK]!;
  }

  /** filemap_range_has_page: whether any offset of [index, index + nr) holds a page. */
  rangeHasPage(index: number, nr: number): boolean {
    const end = index + nr;
    for (let i = index; i < end; ) {
      const b = this.blocks.get(i >>> BLOCK_SHIFT);
      const stop = Math.min(end, (i | MASK) + 1);
      if (b) for (; i < stop; i++) if (b[i & MASK]! >= 0) return true;
      i = stop;
    }
    return false;
  }

  /**
   * __filemap_add_folio, or __folio_migrate_mapping's replacement: offsets [index, index + nr)
   * get pfns `first`.. in order. ENOMEM, with nothing stored, if the host cannot give a block.
   */
  store(index: number, first: number, nr: number): void {
    const end = index + nr;
    // Every block first, so a failed allocation leaves every entry as it was.
    for (let n = index >>> BLOCK_SHIFT; n <= (end - 1) >>> BLOCK_SHIFT; n++) this.block(n);
    for (let i = index; i < end; ) {
      const b = this.blocks.get(i >>> BLOCK_SHIFT)!;
      const stop = Math.min(end, (i | MASK) + 1);
      for (; i < stop; i++) b[i & MASK] = first + (i - index);
    }
  }

  /** Calls `visit` for every cached page in offset order. */
  forEach(visit: (pfn: number, index: number) => void): void {
    for (const n of [...this.blocks.keys()].sort((a, b) => a - b)) {
      const b = this.blocks.get(n)!;
      for (let j = 0; j < BLOCK; j++) if (b[j]! >= 0) visit(b[j]!, n * BLOCK + j);
    }
  }

  /** Drops every entry (the caller put the folios' references). */
  clear(): void {
    this.blocks.clear();
  }

  private block(n: number): Int32Array {
    let b = this.blocks.get(n);
    if (b === undefined) {
      try {
        b = new Int32Array(BLOCK).fill(-1);
      } catch (e) {
        // The xarray's node allocation failing: the add is ENOMEM.
        throw hostNoMem(e, `page cache: the block of page offsets ${n * BLOCK}..${(n + 1) * BLOCK - 1}`);
      }
      this.blocks.set(n, b);
    }
    return b;
  }
}
