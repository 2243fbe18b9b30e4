/** Constants and names of include/linux/mmzone.h and friends (x86-64, 4 KiB pages). */

export const PAGE_SHIFT = 12;
export const PAGE_SIZE = 1 << PAGE_SHIFT;
export const MAX_PAGE_ORDER = 10;
export const NR_PAGE_ORDERS = MAX_PAGE_ORDER + 1;
export const PAGEBLOCK_ORDER = 9;
export const PAGEBLOCK_NR_PAGES = 1 << PAGEBLOCK_ORDER;
export const HPAGE_PMD_ORDER = 9;
export const HPAGE_PMD_NR = 1 << HPAGE_PMD_ORDER;
export const PAGE_ALLOC_COSTLY_ORDER = 3;
/** Largest folio order the machine creates (PMD size). */
export const MAX_FOLIO_ORDER = HPAGE_PMD_ORDER;

/** enum migratetype, CONFIG_CMA off, CONFIG_MEMORY_ISOLATION on. */
export const MIGRATE_UNMOVABLE = 0;
export const MIGRATE_MOVABLE = 1;
export const MIGRATE_RECLAIMABLE = 2;
export const MIGRATE_HIGHATOMIC = 3;
export const MIGRATE_ISOLATE = 4;
export const MIGRATE_TYPES = 5;
export const migratetypeNames = ['Unmovable', 'Movable', 'Reclaimable', 'HighAtomic', 'Isolate'] as const;
export type MigratetypeName = (typeof migratetypeNames)[number];

/** Fallback order of __rmqueue_fallback (mm/page_alloc.c `fallbacks[]`). */
export const fallbacks: readonly (readonly number[])[] = [
  [MIGRATE_RECLAIMABLE, MIGRATE_MOVABLE],
  [MIGRATE_RECLAIMABLE, MIGRATE_UNMOVABLE],
  [MIGRATE_UNMOVABLE, MIGRATE_MOVABLE],
];

/** Types that may merge with each other across pageblocks (migratetype_is_mergeable). */
export function migratetypeIsMergeable(mt: number): boolean {
  return mt < MIGRATE_HIGHATOMIC;
}

/** Zone types in kernel order; HighMem and Device do not exist on x86-64 here. */
export const zoneNames = ['DMA', 'DMA32', 'Normal', 'Movable'] as const;
export type ZoneName = (typeof zoneNames)[number];

export const WMARK_MIN = 0;
export const WMARK_LOW = 1;
export const WMARK_HIGH = 2;
export const WMARK_PROMO = 3;

/** MAX_NUMNODES with CONFIG_NODES_SHIFT=10: the bound of a node id in a syscall's node mask. */
export const MAX_NUMNODES = 1024;
