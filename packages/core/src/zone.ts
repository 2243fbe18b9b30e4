import {
  fallbacks,
  MAX_PAGE_ORDER,
  MIGRATE_HIGHATOMIC,
  MIGRATE_ISOLATE,
  MIGRATE_TYPES,
  migratetypeIsMergeable,
  NR_PAGE_ORDERS,
  PAGEBLOCK_NR_PAGES,
  PAGEBLOCK_ORDER,
  type ZoneName,
} from './mmzone.js';
import { type PageArray, PG_buddy } from './page.js';
import type { Pageblocks } from './pageblock.js';
import { vmstatNumaEvents } from './vmstat.js';

/**
 * struct zone with its buddy allocator (mm/page_alloc.c): free lists per order and migratetype,
 * merging by `pfn ^ (1 << order)`, splitting on allocation, migratetype fallback and pageblock
 * claiming. A free block sits on the list of its pageblock's migratetype.
 */
export class Zone {
  /** free_area[order].free_list[mt] heads, indexed order * MIGRATE_TYPES + mt; -1 = empty. */
  readonly freeHead = new Int32Array(NR_PAGE_ORDERS * MIGRATE_TYPES).fill(-1);
  /** Blocks on each list (nr_free is their sum over migratetypes). */
  readonly nrFreeList = new Int32Array(NR_PAGE_ORDERS * MIGRATE_TYPES);
  freePages = 0;
  /** WMARK_MIN, WMARK_LOW, WMARK_HIGH, WMARK_PROMO in pages. */
  readonly watermark = [0, 0, 0, 0];
  watermarkBoost = 0;
  /** The vmstat event this zone's allocations count in (pgalloc_<zone>). */
  readonly pgallocEvent: 'pgalloc_dma' | 'pgalloc_dma32' | 'pgalloc_normal' | 'pgalloc_movable';
  /** zone->vm_numa_event: numa_hit .. numa_other, counted by zoneStatistics at allocation. */
  readonly numaEvents = new Float64Array(vmstatNumaEvents.length);
  /** Filled in by kcompactd; kept here because the kernel keeps it in struct zone. */
  readonly compact = { considered: 0, deferShift: 0, orderFailed: 0 };

  constructor(
    readonly nid: number,
    readonly type: ZoneName,
    readonly zoneIdx: number,
    readonly startPfn: number,
    readonly spanned: number,
    private readonly pages: PageArray,
    private readonly pageblocks: Pageblocks,
  ) {
    this.pgallocEvent = `pgalloc_${type.toLowerCase()}` as Zone['pgallocEvent'];
  }

  get endPfn(): number {
    return this.startPfn + this.spanned;
  }
  get present(): number {
    return this.spanned;
  }
  get managed(): number {
    return this.spanned;
  }

  contains(pfn: number): boolean {
    return pfn >= this.startPfn && pfn < this.startPfn + this.spanned;
  }

  nrFree(order: number): number {
    let n = 0;
    for (let mt = 0; mt < MIGRATE_TYPES; mt++) n += this.nrFreeList[order * MIGRATE_TYPES + mt]!;
    return n;
  }

  /**
   * Releases every page of the zone into the allocator as the largest aligned blocks (boot).
   * Blocks are queued in ascending pfn order, as memblock's release to the list tails does, so
   * early allocations come from the bottom of the zone.
   */
  freeAreaInit(): void {
    const blocks: [number, number][] = [];
    for (let pfn = this.startPfn; pfn < this.endPfn; ) {
      let order = MAX_PAGE_ORDER;
      while (order > 0 && ((pfn & ((1 << order) - 1)) !== 0 || pfn + (1 << order) > this.endPfn)) order--;
      blocks.push([pfn, order]);
      pfn += 1 << order;
    }
    for (let i = blocks.length - 1; i >= 0; i--) {
      const [pfn, order] = blocks[i]!;
      this.addToFreeList(pfn, order, this.pageblocks.migratetype(pfn));
    }
  }

  private addToFreeList(pfn: number, order: number, mt: number): void {
    const p = this.pages;
    const li = order * MIGRATE_TYPES + mt;
    const head = this.freeHead[li]!;
    p.flags[pfn] = PG_buddy;
    p.order[pfn] = order;
    p.prev[pfn] = -1;
    p.next[pfn] = head;
    if (head >= 0) p.prev[head] = pfn;
    this.freeHead[li] = pfn;
    this.nrFreeList[li]!++;
    this.freePages += 1 << order;
  }

  private delFromFreeList(pfn: number, order: number, mt: number): void {
    const p = this.pages;
    const li = order * MIGRATE_TYPES + mt;
    const next = p.next[pfn]!;
    const prev = p.prev[pfn]!;
    if (prev >= 0) p.next[prev] = next;
    else this.freeHead[li] = next;
    if (next >= 0) p.prev[next] = prev;
    p.flags[pfn] = 0;
    p.order[pfn] = 0;
    this.nrFreeList[li]!--;
    this.freePages -= 1 << order;
  }

  /** __free_one_page: frees a block and merges it with free buddies of the same order. */
  freeOnePage(pfn: number, order: number): void {
    const p = this.pages;
    const pb = this.pageblocks;
    const mt = pb.migratetype(pfn);
    while (order < MAX_PAGE_ORDER) {
      const buddy = pfn ^ (1 << order);
      if (buddy < this.startPfn || buddy >= this.endPfn) break;
      if (!(p.flags[buddy]! & PG_buddy) || p.order[buddy] !== order) break;
      const buddyMt = pb.migratetype(buddy);
      if (buddyMt !== mt) {
        // Across pageblocks only mergeable types merge; the merged block takes the freed type.
        if (order < PAGEBLOCK_ORDER || !migratetypeIsMergeable(mt) || !migratetypeIsMergeable(buddyMt)) break;
        this.delFromFreeList(buddy, order, buddyMt);
        this.setPageblockRange(buddy, order, mt);
      } else {
        this.delFromFreeList(buddy, order, buddyMt);
      }
      pfn &= buddy;
      order++;
    }
    this.addToFreeList(pfn, order, mt);
  }

  private setPageblockRange(pfn: number, order: number, mt: number): void {
    for (let b = pfn; b < pfn + (1 << order); b += PAGEBLOCK_NR_PAGES) this.pageblocks.setMigratetype(b, mt);
  }

  /** Splits a block of order `high` down to `low`, returning the upper halves to the free lists. */
  private expand(pfn: number, low: number, high: number, mt: number): void {
    let size = 1 << high;
    while (high > low) {
      high--;
      size >>= 1;
      this.addToFreeList(pfn + size, high, mt);
    }
  }

  /** __rmqueue_smallest: the smallest block of order >= `order` on `mt`'s lists, or -1. */
  rmqueueSmallest(order: number, mt: number): number {
    for (let o = order; o <= MAX_PAGE_ORDER; o++) {
      const pfn = this.freeHead[o * MIGRATE_TYPES + mt]!;
      if (pfn < 0) continue;
      this.delFromFreeList(pfn, o, mt);
      this.expand(pfn, order, o, mt);
      return pfn;
    }
    return -1;
  }

  /**
   * __rmqueue_fallback: steal from another migratetype, largest block first. A block of a whole
   * pageblock or more is claimed for `mt`; a smaller one claims its pageblock when at least half
   * of the pageblock is free (try_to_claim_block), otherwise it is taken from the other type.
   */
  private rmqueueFallback(order: number, mt: number): number {
    const fb = fallbacks[mt];
    if (!fb) return -1;
    for (let o = MAX_PAGE_ORDER; o >= order; o--) {
      for (const other of fb) {
        const pfn = this.freeHead[o * MIGRATE_TYPES + other]!;
        if (pfn < 0) continue;
        if (o >= PAGEBLOCK_ORDER) {
          this.delFromFreeList(pfn, o, other);
          this.setPageblockRange(pfn, o, mt);
          this.expand(pfn, order, o, mt);
          return pfn;
        }
        if (this.claimPageblock(pfn, mt)) return this.rmqueueSmallest(order, mt);
        this.delFromFreeList(pfn, o, other);
        this.expand(pfn, order, o, other);
        return pfn;
      }
    }
    return -1;
  }

  private claimPageblock(pfn: number, mt: number): boolean {
    const start = pfn & ~(PAGEBLOCK_NR_PAGES - 1);
    const end = Math.min(start + PAGEBLOCK_NR_PAGES, this.endPfn);
    if (start < this.startPfn) return false;
    let free = 0;
    for (let q = start; q < end; ) {
      if (this.pages.flags[q]! & PG_buddy) {
        free += 1 << this.pages.order[q]!;
        q += 1 << this.pages.order[q]!;
      } else q++;
    }
    if (free < PAGEBLOCK_NR_PAGES / 2) return false;
    this.movePageblock(start, mt);
    return true;
  }

  /** move_freepages_block + set_pageblock_migratetype. Returns the free pages moved. */
  movePageblock(pfn: number, mt: number): number {
    const start = pfn & ~(PAGEBLOCK_NR_PAGES - 1);
    const old = this.pageblocks.migratetype(start);
    if (old === mt) return 0;
    const end = Math.min(start + PAGEBLOCK_NR_PAGES, this.endPfn);
    let moved = 0;
    for (let q = Math.max(start, this.startPfn); q < end; ) {
      if (this.pages.flags[q]! & PG_buddy) {
        const o = this.pages.order[q]!;
        this.delFromFreeList(q, o, old);
        this.addToFreeList(q, o, mt);
        moved += 1 << o;
        q += 1 << o;
      } else q++;
    }
    this.pageblocks.setMigratetype(start, mt);
    return moved;
  }

  /** __rmqueue: the requested type first, then fallback. Returns the block's pfn or -1. */
  rmqueue(order: number, mt: number): number {
    const pfn = this.rmqueueSmallest(order, mt);
    if (pfn >= 0 || mt === MIGRATE_ISOLATE || mt === MIGRATE_HIGHATOMIC) return pfn;
    return this.rmqueueFallback(order, mt);
  }

  /** Takes a specific free block off its list (compaction's free scanner, isolation). */
  takeFreeBlock(pfn: number): number {
    const order = this.pages.order[pfn]!;
    this.delFromFreeList(pfn, order, this.pageblocks.migratetype(pfn));
    return order;
  }

  /** __zone_watermark_ok for an allocation of `order` against `mark` pages. */
  watermarkOk(order: number, mark: number): boolean {
    const free = this.freePages - (1 << order) + 1;
    if (free <= mark) return false;
    if (order === 0) return true;
    for (let o = order; o <= MAX_PAGE_ORDER; o++) {
      for (let mt = 0; mt < MIGRATE_HIGHATOMIC; mt++)
        if (this.nrFreeList[o * MIGRATE_TYPES + mt]! > 0) return true;
    }
    return false;
  }
}
