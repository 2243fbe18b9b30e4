/**
 * "struct page" as struct-of-arrays over one SharedArrayBuffer, so copy workers and emulated
 * devices see the same metadata. 32 bytes per 4 KiB page (the kernel spends 64):
 *   flags u32 | refcount i32 | mapcount i32 | next i32 | prev i32 | mapping i32 | index u32 |
 *   isolatedBy u16 | order u8 | lastNid u8
 *
 * - refcount and mapcount are meaningful on the folio head; mapcount counts the page-table entries
 *   (PTEs and PMDs) that map any page of the folio, like `folio_mapcount()`.
 * - order is the buddy order on a free block's first page, and the folio order on every page of
 *   an allocated folio (so a tail finds its head as `pfn & ~((1 << order) - 1)`).
 * - next/prev link free blocks into their buddy free list and, on an allocated folio's head, the
 *   folio into its node's LRU list (lru.ts), as the kernel's page->lru serves both (-1 ends a list).
 * - mapping is the rmap owner (a Mapping id + 1, 0 = none) and index the page offset in it.
 */
export const PG_buddy = 1 << 0;
export const PG_head = 1 << 1;
export const PG_tail = 1 << 2;
export const PG_lru = 1 << 3;
export const PG_anon = 1 << 4;
export const PG_swapbacked = 1 << 5;
export const PG_mlocked = 1 << 6;
export const PG_unevictable = 1 << 7;
export const PG_isolated = 1 << 8;
export const PG_reserved = 1 << 9;
export const PG_dirty = 1 << 10;
export const PG_locked = 1 << 11;
/** Set on a destination folio whose content a migrator already copied (FOLIO_CONTENT_COPIED). */
export const PG_content_copied = 1 << 12;
/**
 * PG_hugetlb (the hugetlb page type, folio_test_hugetlb), on the head: a folio of the hugetlb pool,
 * free in it (refcount 0) or in use; it is never on an LRU or a buddy free list (mm/hugetlb.c).
 */
export const PG_hugetlb = 1 << 13;
/**
 * PG_partially_mapped: kept on the folio's second page (FOLIO_SECOND_PAGE), as the kernel keeps it:
 * an anon large folio some of whose pages lost their last mapping (deferred_split_folio). Splitting
 * or freeing the folio rewrites its tail flags, which clears it, as the kernel's split and free do.
 */
export const PG_partially_mapped = 1 << 16;
/**
 * PG_active (on the head): the folio is on (or, isolated, belongs to) the active LRU list
 * (folio_lru_list); set by activation, cleared by deactivation, kept by migration
 * (folio_migrate_flags).
 */
export const PG_active = 1 << 14;
/**
 * PG_referenced (on the head): reclaim's second chance; folio_check_references sets it on a folio
 * found young once and activates the folio found young again. Kept by migration.
 */
export const PG_referenced = 1 << 15;

export const pageFlagNames: readonly [number, string][] = [
  [PG_buddy, 'buddy'],
  [PG_head, 'head'],
  [PG_tail, 'tail'],
  [PG_lru, 'lru'],
  [PG_anon, 'anon'],
  [PG_swapbacked, 'swapbacked'],
  [PG_mlocked, 'mlocked'],
  [PG_unevictable, 'unevictable'],
  [PG_isolated, 'isolated'],
  [PG_reserved, 'reserved'],
  [PG_dirty, 'dirty'],
  [PG_locked, 'locked'],
  [PG_hugetlb, 'hugetlb'],
  [PG_partially_mapped, 'partially_mapped'],
  [PG_active, 'active'],
  [PG_referenced, 'referenced'],
];

export const STRUCT_PAGE_BYTES = 7 * 4 + 2 + 1 + 1;

export class PageArray {
  readonly buffer: SharedArrayBuffer;
  readonly flags: Uint32Array;
  readonly refcount: Int32Array;
  readonly mapcount: Int32Array;
  readonly next: Int32Array;
  readonly prev: Int32Array;
  readonly mapping: Int32Array;
  readonly index: Uint32Array;
  /**
   * The migration run that holds the folio (isolated source or reserved destination), 0 for none:
   * a run that throws gives back exactly what it holds, never another run's folio.
   */
  readonly isolatedBy: Uint16Array;
  readonly order: Uint8Array;
  /**
   * The node of the folio's last NUMA hinting fault plus one, 0 for none (the nid half of the
   * kernel's last_cpupid; on the head): should_numa_migrate_memory's two-fault filter. Reset when
   * the folio is allocated, copied by migration and split, as the kernel does with last_cpupid.
   */
  readonly lastNid: Uint8Array;

  constructor(readonly nrPages: number) {
    const n = nrPages;
    this.buffer = new SharedArrayBuffer(n * STRUCT_PAGE_BYTES);
    this.flags = new Uint32Array(this.buffer, 0, n);
    this.refcount = new Int32Array(this.buffer, 4 * n, n);
    this.mapcount = new Int32Array(this.buffer, 8 * n, n);
    this.next = new Int32Array(this.buffer, 12 * n, n);
    this.prev = new Int32Array(this.buffer, 16 * n, n);
    this.mapping = new Int32Array(this.buffer, 20 * n, n);
    this.index = new Uint32Array(this.buffer, 24 * n, n);
    this.isolatedBy = new Uint16Array(this.buffer, 28 * n, n);
    this.order = new Uint8Array(this.buffer, 30 * n, n);
    this.lastNid = new Uint8Array(this.buffer, 31 * n, n);
  }

  /** Head pfn of the folio (or free block) that contains `pfn`. */
  head(pfn: number): number {
    return this.flags[pfn]! & PG_tail ? pfn & ~((1 << this.order[pfn]!) - 1) : pfn;
  }

  describe(pfn: number): string {
    const f = this.flags[pfn]!;
    const names = pageFlagNames.filter(([bit]) => f & bit).map(([, n]) => n);
    return `pfn ${pfn} (0x${pfn.toString(16)}) flags=[${names.join(',')}] order=${this.order[pfn]} refcount=${this.refcount[pfn]} mapcount=${this.mapcount[pfn]}`;
  }
}
