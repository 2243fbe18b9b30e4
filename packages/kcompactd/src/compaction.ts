import {
  EINVAL,
  ENOMEM,
  kernelError,
  MAX_PAGE_ORDER,
  MIGRATE_HIGHATOMIC,
  MIGRATE_ISOLATE,
  MIGRATE_MOVABLE,
  MIGRATE_RECLAIMABLE,
  MIGRATE_TYPES,
  MIGRATE_UNMOVABLE,
  MigrateMode,
  type MigrateModeName,
  type MigrateModeValue,
  MigrateReason,
  type MigrationPhases,
  migrateModeNames,
  NR_PAGE_ORDERS,
  PAGEBLOCK_NR_PAGES,
  PAGEBLOCK_ORDER,
  TL_COMPACT_ZONE,
  threadCpuSeconds,
} from '@pagemig/core';
import {
  folioIsolateLru,
  type Kernel,
  migratePages,
  PAGE_ALLOC_COSTLY_ORDER,
  pageFlags,
  putbackFolios,
  resolveMode,
  type Zone,
} from '@pagemig/core/internal';
import { compactionRestarting } from './defer.js';
import { fragmentationIndex, fragmentationScoreWmark, fragmentationScoreZone } from './fragmentation.js';
import {
  CompactResult,
  type CompactResultValue,
  type CompactStatusName,
  compactResultNames,
  traceBegin,
  traceEnd,
  traceFinished,
  traceIsolateFreepages,
  traceIsolateMigratepages,
  traceMigratepages,
  traceSuitable,
  zoneIdx,
} from './tracepoints.js';

const { PG_buddy, PG_head, PG_tail, PG_lru, PG_anon, PG_unevictable, PG_isolated } = pageFlags;

/** SWAP_CLUSTER_MAX: the migrate scanner queues at most this many pages before migrating them. */
export const COMPACT_CLUSTER_MAX = 32;
/** COMPACTION_HPAGE_ORDER on x86-64. */
export const COMPACTION_HPAGE_ORDER = 9;
const WMARK_MIN = 0;
const WMARK_LOW = 1;

const pageblockStart = (pfn: number) => pfn - (pfn & (PAGEBLOCK_NR_PAGES - 1));
/** pageblock_end_pfn: ALIGN(pfn + 1, pageblock_nr_pages). */
const pageblockEnd = (pfn: number) => pageblockStart(pfn) + PAGEBLOCK_NR_PAGES;
const pageblockAligned = (pfn: number) => (pfn & (PAGEBLOCK_NR_PAGES - 1)) === 0;
/** block_end_pfn(pfn, order): the end of the 2^order aligned block holding pfn. */
const blockEnd = (pfn: number, order: number) => pfn - (pfn & ((1 << order) - 1)) + (1 << order);
const isMigrateMovable = (mt: number) => mt === MIGRATE_MOVABLE;

/**
 * Per-zone compaction state the kernel keeps in struct zone besides `compact_*` deferral fields:
 * where the scanners restart (separate migrate caches for async and sync) and whether the skip
 * hints should be flushed. Compaction runs on one zone are serialised here (`busy`).
 */
export interface ZoneCompactState {
  /** compact_cached_migrate_pfn[0] (async) and [1] (sync). */
  cachedMigratePfn: [number, number];
  /** compact_cached_free_pfn */
  cachedFreePfn: number;
  /** compact_init_migrate_pfn: a migrate scanner starting at or below it covers the whole zone. */
  initMigratePfn: number;
  /** compact_blockskip_flush: a direct compaction met the scanners; reset the hints on the next chance. */
  blockskipFlush: boolean;
  busy: Promise<unknown>;
}

const zoneStates = new WeakMap<Zone, ZoneCompactState>();

export function zoneCompactState(zone: Zone): ZoneCompactState {
  let s = zoneStates.get(zone);
  if (!s) {
    s = {
      cachedMigratePfn: [zone.startPfn, zone.startPfn],
      cachedFreePfn: pageblockStart(zone.endPfn - 1),
      initMigratePfn: zone.startPfn,
      blockskipFlush: false,
      busy: Promise.resolve(),
    };
    zoneStates.set(zone, s);
  }
  return s;
}

/** reset_cached_positions: the next compaction of the zone starts at its edges. */
export function resetCachedPositions(zone: Zone): void {
  const s = zoneCompactState(zone);
  s.cachedMigratePfn[0] = s.cachedMigratePfn[1] = zone.startPfn;
  s.cachedFreePfn = pageblockStart(zone.endPfn - 1);
}

/**
 * __reset_isolation_suitable: clears every PB_compact_skip hint of the zone and resets the cached
 * scanner positions, but only when a full direct compaction finished since the last reset
 * (compact_blockskip_flush) unless `force`. Returns whether it flushed.
 */
export function resetIsolationSuitable(k: Kernel, zone: Zone, force = false): boolean {
  const s = zoneCompactState(zone);
  if (!s.blockskipFlush && !force) return false;
  s.blockskipFlush = false;
  for (let pfn = zone.startPfn; pfn < zone.endPfn; pfn += PAGEBLOCK_NR_PAGES)
    k.pageblocks.setSkip(pfn, false);
  resetCachedPositions(zone);
  s.initMigratePfn = zone.startPfn;
  return true;
}

/** What one compact_zone did: the kernel's counters plus the engine's cost. */
export interface CompactZoneResult {
  nid: number;
  zone: string;
  /** Requested order; -1 compacts everything (compact_memory, proactive). */
  order: number;
  mode: MigrateModeName;
  status: CompactStatusName;
  /** The enum compact_result value (comparable with max()). */
  result: CompactResultValue;
  migrateScanned: number;
  freeScanned: number;
  /** Pages isolated by the migrate scanner (and not released again). */
  isolatedMigrate: number;
  /** Free pages isolated by the free scanner. */
  isolatedFree: number;
  /** migrate_pages() calls. */
  migrateCalls: number;
  /** Base pages migrated / failed (pgmigrate_success / pgmigrate_fail deltas). */
  pagesMigrated: number;
  pagesFailed: number;
  /** Scanner positions when the run ended. */
  migratePfn: number;
  freePfn: number;
  /** The engine thread's CPU seconds for the whole run (scanners + migration). */
  cpuSeconds: number;
  wallSeconds: number;
  /** Time the copies waited on the routed migrator (phases.batchCopy summed). */
  batchCopySeconds: number;
  phases: MigrationPhases;
  offload: {
    migrator: string | null;
    batches: number;
    foliosOffered: number;
    foliosCopied: number;
    failures: number;
  };
}

/** How to run compact_zone; fields mirror struct compact_control. */
export interface CompactZoneOptions {
  /** Target order; -1 (default) compacts the whole zone regardless of any order. */
  order?: number;
  /** MIGRATE_ASYNC, MIGRATE_SYNC_LIGHT or MIGRATE_SYNC (default). */
  mode?: MigrateModeName | MigrateModeValue;
  /** gfp_migratetype of the request the compaction serves (default MIGRATE_MOVABLE). */
  migratetype?: number;
  /** Scan the whole zone from its edges instead of the cached positions. */
  wholeZone?: boolean;
  ignoreSkipHint?: boolean;
  /** Take free pages from any pageblock type (COMPACT_PRIO_SYNC_FULL). */
  ignoreBlockSuitable?: boolean;
  /** Direct compaction (an allocation waits): async direct runs restrict source blocks. */
  direct?: boolean;
  /** Proactive run: a zone is done once its score is at or below the low watermark. */
  proactive?: boolean;
  /** Highest zone index the request may use (for the watermark checks). */
  highestZoneidx?: number;
  /** COMPACT_CLUSTER_MAX; default 32. */
  clusterMax?: number;
  /** Per-batch copy timeout handed to the engine (ms). Default 10000. */
  copyTimeoutMs?: number;
  /** Polled between batches; true ends the run as COMPACT_CONTENDED (a fatal signal, kthread_stop). */
  shouldAbort?: () => boolean;
}

/** struct compact_control. */
interface CompactControl {
  readonly k: Kernel;
  readonly zone: Zone;
  readonly order: number;
  readonly mode: MigrateModeValue;
  readonly migratetype: number;
  migratePfn: number;
  freePfn: number;
  migratepages: number[];
  nrMigratepages: number;
  /** Isolated free blocks by order (compaction_alloc takes the smallest that fits). */
  readonly freepages: number[][];
  nrFreepages: number;
  wholeZone: boolean;
  readonly ignoreSkipHint: boolean;
  readonly ignoreBlockSuitable: boolean;
  readonly directCompaction: boolean;
  readonly proactiveCompaction: boolean;
  finishPageblock: boolean;
  contended: boolean;
  totalMigrateScanned: number;
  totalFreeScanned: number;
  isolatedMigrate: number;
  isolatedFree: number;
  readonly highestZoneidx: number;
  readonly clusterMax: number;
}

/** wmark_pages(zone, WMARK_MIN/LOW...): the watermark plus the current boost. */
function wmarkPages(zone: Zone, wmark: number): number {
  return zone.watermark[wmark]! + zone.watermarkBoost;
}

/**
 * compaction_suitable: the order-0 watermark must hold with compact_gap(order) = 2 << order to
 * spare (plus low − min for costly orders); for costly orders the fragmentation index must be
 * negative or above vm.extfrag_threshold. Emits mm_compaction_suitable.
 */
export function compactionSuitable(k: Kernel, zone: Zone, order: number, watermark: number): boolean {
  let mark = watermark + (2 << order);
  if (order > PAGE_ALLOC_COSTLY_ORDER) mark += zone.watermark[WMARK_LOW]! - zone.watermark[WMARK_MIN]!;
  let suitable = zone.watermarkOk(0, mark);
  let ret: CompactResultValue;
  if (suitable) {
    ret = CompactResult.COMPACT_CONTINUE;
    if (order > PAGE_ALLOC_COSTLY_ORDER) {
      const fragindex = fragmentationIndex(zone, order);
      if (fragindex >= 0 && fragindex <= k.vm.extfrag_threshold) {
        suitable = false;
        ret = CompactResult.COMPACT_NOT_SUITABLE_ZONE;
      }
    }
  } else {
    ret = CompactResult.COMPACT_SKIPPED;
  }
  traceSuitable(k, zone, order, ret);
  return suitable;
}

/**
 * compaction_suit_allocation_order: SUCCESS if the allocation of `order` would pass the
 * `wmark` watermark already, SKIPPED if compaction is not suitable, else CONTINUE.
 */
export function compactionSuitAllocationOrder(
  k: Kernel,
  zone: Zone,
  order: number,
  wmark: number = WMARK_MIN,
): CompactResultValue {
  const watermark = wmarkPages(zone, wmark);
  if (zone.watermarkOk(order, watermark)) return CompactResult.COMPACT_SUCCESS;
  if (!compactionSuitable(k, zone, order, watermark)) return CompactResult.COMPACT_SKIPPED;
  return CompactResult.COMPACT_CONTINUE;
}

function isolationSuitable(cc: CompactControl, pfn: number): boolean {
  return cc.ignoreSkipHint || !cc.k.pageblocks.skip(pfn);
}

/** pageblock_skip_persistent: the block is covered by a folio of pageblock order or more. */
function pageblockSkipPersistent(cc: CompactControl, pfn: number): boolean {
  const p = cc.k.pages;
  const f = p.flags[pfn]!;
  if (!(f & (PG_head | PG_tail)) || f & PG_buddy) return false;
  return p.order[pfn]! >= PAGEBLOCK_ORDER;
}

/** suitable_migration_source: async direct compaction only scans blocks of the request's type. */
function suitableMigrationSource(cc: CompactControl, pfn: number): boolean {
  if (pageblockSkipPersistent(cc, pfn)) return false;
  if (cc.mode !== MigrateMode.MIGRATE_ASYNC || !cc.directCompaction) return true;
  const mt = cc.k.pageblocks.migratetype(pfn);
  if (cc.migratetype === MIGRATE_MOVABLE) return isMigrateMovable(mt);
  return mt === cc.migratetype;
}

/** suitable_migration_target: a MOVABLE block not starting with a free block of the target size. */
function suitableMigrationTarget(cc: CompactControl, pfn: number): boolean {
  const p = cc.k.pages;
  if (p.flags[pfn]! & PG_buddy) {
    const order = cc.order > 0 ? cc.order : PAGEBLOCK_ORDER;
    if (p.order[pfn]! >= order) return false;
  }
  if (cc.ignoreBlockSuitable) return true;
  return isMigrateMovable(cc.k.pageblocks.migratetype(pfn));
}

/** update_cached_migrate: the next run resumes after the fully scanned block. */
function updateCachedMigrate(cc: CompactControl, pfn: number): void {
  const s = zoneCompactState(cc.zone);
  pfn = pageblockEnd(pfn);
  if (pfn > s.cachedMigratePfn[0]) s.cachedMigratePfn[0] = pfn;
  if (cc.mode !== MigrateMode.MIGRATE_ASYNC && pfn > s.cachedMigratePfn[1]) s.cachedMigratePfn[1] = pfn;
}

/** update_pageblock_skip (free scanner): mark the drained block, move the free cache down. */
function updatePageblockSkip(cc: CompactControl, blockPfn: number, pfn: number): void {
  cc.k.pageblocks.setSkip(blockPfn, true);
  const s = zoneCompactState(cc.zone);
  if (pfn < s.cachedFreePfn) s.cachedFreePfn = pfn;
}

/** Does any VMA mapping this folio's rmap owner forbid migration (VM_IO/VM_PFNMAP-like)? */
function inUnmigratableVma(k: Kernel, head: number): boolean {
  const mapping = k.mappingOf(head);
  if (!mapping) return false;
  // The owner counts them: no walk over its VMAs.
  return mapping.vmas.unmigratable > 0;
}

/** putback_movable_pages: the isolated folios go back to the LRU. */
function putbackMovablePages(cc: CompactControl): void {
  putbackFolios(cc.k, cc.migratepages);
  cc.migratepages = [];
  cc.nrMigratepages = 0;
}

/**
 * isolate_migratepages_block: scans [lowPfn, endPfn) and isolates movable in-use folios (LRU,
 * not pinned, mlocked only with vm.compact_unevictable_allowed=1), skipping free buddies and
 * folios too large for the target order, until COMPACT_CLUSTER_MAX pages are queued. Async direct
 * compaction is all-or-nothing per 2^order aligned block.
 */
function isolateMigratepagesBlock(cc: CompactControl, lowPfn: number, endPfn: number): void {
  const k = cc.k;
  const p = k.pages;
  const flags = p.flags;
  const orders = p.order;
  const refcount = p.refcount;
  const mapcount = p.mapcount;
  const zone = cc.zone;
  const unevictableAllowed = k.vm.compact_unevictable_allowed !== 0;
  const startPfn = lowPfn;
  let nrScanned = 0;
  let nrIsolated = 0;
  let validPage = -1;
  let skipOnFailure = false;
  let nextSkipPfn = 0;
  if (cc.directCompaction && cc.mode === MigrateMode.MIGRATE_ASYNC) {
    skipOnFailure = true;
    nextSkipPfn = blockEnd(lowPfn, Math.max(cc.order, 0));
  }
  const skipOrder = Math.max(cc.order, 0);

  for (; lowPfn < endPfn; lowPfn++) {
    if (skipOnFailure && lowPfn >= nextSkipPfn) {
      // Everything of the previous order-aligned block was isolated: migrate it now.
      if (nrIsolated) break;
      nextSkipPfn = blockEnd(lowPfn, skipOrder);
    }
    nrScanned++;
    if (validPage < 0 && (pageblockAligned(lowPfn) || lowPfn === zone.startPfn)) {
      if (!isolationSuitable(cc, lowPfn)) {
        lowPfn = endPfn;
        break;
      }
      validPage = lowPfn;
    }
    const f = flags[lowPfn]!;
    if (f & PG_buddy) {
      // A free block: jump over it (scanned, never isolated).
      const o = orders[lowPfn]!;
      if (o > 0 && o <= MAX_PAGE_ORDER) {
        lowPfn += (1 << o) - 1;
        nrScanned += (1 << o) - 1;
      }
      continue;
    }
    let ok = true;
    if (f & PG_tail) {
      // Started inside a folio (it was allocated after the scanner stopped here): skip its rest.
      const head = p.head(lowPfn);
      const last = head + (1 << orders[lowPfn]!) - 1;
      if (last < endPfn) {
        nrScanned += last - lowPfn;
        lowPfn = last;
      }
      ok = false;
    } else if (f & PG_head) {
      const o = orders[lowPfn]!;
      // skip_isolation_on_order: too large for the target, or a pageblock or more.
      if ((cc.order >= 0 && o >= cc.order) || o >= PAGEBLOCK_ORDER) {
        lowPfn += (1 << o) - 1;
        nrScanned += (1 << o) - 1;
        ok = false;
      }
    }
    if (ok) {
      if (!(f & PG_lru) || f & PG_isolated || refcount[lowPfn]! <= 0) ok = false;
      // An anonymous folio with references beyond its mappings is pinned: it cannot move.
      else if (f & PG_anon && refcount[lowPfn]! > mapcount[lowPfn]!) ok = false;
      else if (!unevictableAllowed && f & PG_unevictable) ok = false;
      else if (inUnmigratableVma(k, lowPfn)) ok = false;
    }
    if (ok) {
      // folio_isolate_lru: off its LRU list, isolated, with the isolation's reference.
      const nr = f & PG_head ? 1 << orders[lowPfn]! : 1;
      folioIsolateLru(k, lowPfn);
      cc.migratepages.push(lowPfn);
      cc.nrMigratepages += nr;
      nrIsolated += nr;
      nrScanned += nr - 1;
      lowPfn += nr - 1;
      if (cc.nrMigratepages >= cc.clusterMax && !cc.finishPageblock && !cc.contended) {
        lowPfn++;
        break;
      }
      continue;
    }
    // isolate_fail
    if (!skipOnFailure) continue;
    // We cannot form the order-sized block: release what this block gave and move on.
    if (nrIsolated) {
      putbackMovablePages(cc);
      nrIsolated = 0;
    }
    if (lowPfn < nextSkipPfn) {
      lowPfn = nextSkipPfn - 1;
      nextSkipPfn += 1 << skipOrder;
    }
  }
  if (lowPfn > endPfn) lowPfn = endPfn;
  // A fully scanned block that gave nothing (or was rescanned) is skipped until the hints reset.
  if (lowPfn === endPfn && (!nrIsolated || cc.finishPageblock)) {
    if (validPage >= 0) k.pageblocks.setSkip(validPage, true);
    updateCachedMigrate(cc, lowPfn);
  }
  traceIsolateMigratepages(k, startPfn, lowPfn, nrScanned, nrIsolated);
  cc.totalMigrateScanned += nrScanned;
  if (nrIsolated) {
    k.count('compact_isolated', nrIsolated);
    cc.isolatedMigrate += nrIsolated;
  }
  cc.migratePfn = lowPfn;
}

const ISOLATE_NONE = 0;
const ISOLATE_SUCCESS = 1;

/** isolate_migratepages: the first suitable pageblock from migratePfn up, below the free scanner. */
function isolateMigratepages(cc: CompactControl): number {
  const zone = cc.zone;
  let lowPfn = cc.migratePfn;
  let blockStartPfn = Math.max(pageblockStart(lowPfn), zone.startPfn);
  let blockEndPfn = pageblockEnd(lowPfn);
  for (
    ;
    blockEndPfn <= cc.freePfn;
    cc.migratePfn = lowPfn = blockEndPfn, blockStartPfn = blockEndPfn, blockEndPfn += PAGEBLOCK_NR_PAGES
  ) {
    const end = Math.min(blockEndPfn, zone.endPfn);
    // A block is checked for the skip hint once, on entry.
    if ((pageblockAligned(lowPfn) || lowPfn === zone.startPfn) && !isolationSuitable(cc, blockStartPfn))
      continue;
    if (!suitableMigrationSource(cc, blockStartPfn)) {
      updateCachedMigrate(cc, blockEndPfn);
      continue;
    }
    isolateMigratepagesBlock(cc, lowPfn, end);
    break;
  }
  return cc.nrMigratepages ? ISOLATE_SUCCESS : ISOLATE_NONE;
}

/**
 * isolate_freepages_block: takes every free buddy block in [startPfn, endPfn) off the free lists
 * (whole, onto cc.freepages[order]) until as many pages are isolated as are queued for migration.
 * Returns [pfn reached, pages isolated].
 */
function isolateFreepagesBlock(
  cc: CompactControl,
  startPfn: number,
  endPfn: number,
  stride: number,
): [number, number] {
  const k = cc.k;
  const p = k.pages;
  const flags = p.flags;
  const zone = cc.zone;
  let nrScanned = 0;
  let totalIsolated = 0;
  let blockpfn = startPfn;
  for (; blockpfn < endPfn; blockpfn += stride) {
    nrScanned++;
    const f = flags[blockpfn]!;
    if (f & PG_head) {
      // A compound page: skip it whole.
      const o = p.order[blockpfn]!;
      if (blockpfn + (1 << o) <= endPfn) {
        blockpfn += (1 << o) - 1;
        nrScanned += (1 << o) - 1;
      }
      continue;
    }
    if (!(f & PG_buddy)) continue;
    const order = p.order[blockpfn]!;
    // __isolate_free_page: keep the order-0 min watermark.
    if (!zone.watermarkOk(0, zone.watermark[WMARK_MIN]! + (1 << order))) break;
    zone.takeFreeBlock(blockpfn);
    if (order >= PAGEBLOCK_ORDER - 1) {
      for (let b = blockpfn; b < blockpfn + (1 << order); b += PAGEBLOCK_NR_PAGES) {
        const mt = k.pageblocks.migratetype(b);
        if (mt !== MIGRATE_ISOLATE && mt !== MIGRATE_HIGHATOMIC)
          k.pageblocks.setMigratetype(b, MIGRATE_MOVABLE);
      }
    }
    const isolated = 1 << order;
    nrScanned += isolated - 1;
    totalIsolated += isolated;
    cc.nrFreepages += isolated;
    cc.freepages[order]!.push(blockpfn);
    if (cc.nrMigratepages <= cc.nrFreepages) {
      blockpfn += isolated;
      break;
    }
    blockpfn += isolated - 1;
  }
  if (blockpfn > endPfn) blockpfn = endPfn;
  traceIsolateFreepages(k, startPfn, blockpfn, nrScanned, totalIsolated);
  cc.totalFreeScanned += nrScanned;
  if (totalIsolated) {
    k.count('compact_isolated', totalIsolated);
    cc.isolatedFree += totalIsolated;
  }
  return [blockpfn, totalIsolated];
}

/**
 * isolate_freepages: the free scanner walks pageblocks down from cc.freePfn (never below the
 * migrate scanner's block) and isolates free pages from MOVABLE blocks until there are enough
 * targets for the queued folios. Stride 32 in async mode, 1 otherwise, adapted per block.
 */
function isolateFreepages(cc: CompactControl): void {
  const zone = cc.zone;
  let isolateStartPfn = cc.freePfn;
  let blockStartPfn = pageblockStart(isolateStartPfn);
  let blockEndPfn = Math.min(blockStartPfn + PAGEBLOCK_NR_PAGES, zone.endPfn);
  const lowPfn = pageblockEnd(cc.migratePfn);
  let stride = cc.mode === MigrateMode.MIGRATE_ASYNC ? COMPACT_CLUSTER_MAX : 1;
  for (
    ;
    blockStartPfn >= lowPfn;
    blockEndPfn = blockStartPfn, blockStartPfn -= PAGEBLOCK_NR_PAGES, isolateStartPfn = blockStartPfn
  ) {
    if (!suitableMigrationTarget(cc, blockStartPfn)) continue;
    if (!isolationSuitable(cc, blockStartPfn)) continue;
    const [reached, nrIsolated] = isolateFreepagesBlock(cc, isolateStartPfn, blockEndPfn, stride);
    isolateStartPfn = reached;
    if (isolateStartPfn === blockEndPfn)
      updatePageblockSkip(cc, blockStartPfn, blockStartPfn - PAGEBLOCK_NR_PAGES);
    if (cc.nrFreepages >= cc.nrMigratepages) {
      // Restart at the previous block if this one is used up.
      if (isolateStartPfn >= blockEndPfn) isolateStartPfn = blockStartPfn - PAGEBLOCK_NR_PAGES;
      break;
    } else if (isolateStartPfn < blockEndPfn) {
      // Isolation failed early (watermark): do not continue needlessly.
      break;
    }
    stride = nrIsolated ? 1 : Math.min(COMPACT_CLUSTER_MAX, stride << 1);
  }
  cc.freePfn = isolateStartPfn;
}

/** Resets the metadata of a block handed out by compaction_alloc back to "isolated free". */
function unprepFolio(k: Kernel, pfn: number, order: number): void {
  const p = k.pages;
  const nr = 1 << order;
  p.flags.fill(0, pfn, pfn + nr);
  p.order.fill(0, pfn, pfn + nr);
  p.refcount[pfn] = 0;
  p.mapcount[pfn] = 0;
  p.mapping[pfn] = 0;
  p.index[pfn] = 0;
}

/**
 * compaction_alloc (get_new_folio): the smallest isolated free block that fits `order`, split
 * down with the excess halves kept; runs the free scanner once when nothing is isolated.
 */
function compactionAlloc(cc: CompactControl, order: number): number {
  let scanned = false;
  for (;;) {
    let o = order;
    while (o < NR_PAGE_ORDERS && cc.freepages[o]!.length === 0) o++;
    if (o === NR_PAGE_ORDERS) {
      if (scanned) return -1;
      isolateFreepages(cc);
      scanned = true;
      continue;
    }
    const pfn = cc.freepages[o]!.pop()!;
    while (o > order) {
      o--;
      cc.freepages[o]!.push(pfn + (1 << o));
    }
    cc.k.prepNewFolio(pfn, order);
    cc.nrFreepages -= 1 << order;
    cc.nrMigratepages -= 1 << order;
    return pfn;
  }
}

/** compaction_free (put_new_folio): an unused destination goes back to the isolated free pages. */
function compactionFree(cc: CompactControl, dst: number): void {
  const order = cc.k.folioOrder(dst);
  unprepFolio(cc.k, dst, order);
  cc.freepages[order]!.push(dst);
  cc.nrFreepages += 1 << order;
  cc.nrMigratepages += 1 << order;
}

/** release_free_list: unused isolated free pages return to the buddy allocator; highest pfn. */
function releaseFreeList(cc: CompactControl): number {
  let high = 0;
  for (let order = 0; order < NR_PAGE_ORDERS; order++) {
    for (const pfn of cc.freepages[order]!) {
      cc.zone.freeOnePage(pfn, order);
      cc.k.count('pgfree', 1 << order);
      if (pfn > high) high = pfn;
    }
    cc.freepages[order]!.length = 0;
  }
  cc.nrFreepages = 0;
  return high;
}

function compactScannersMet(cc: CompactControl): boolean {
  return cc.freePfn >> PAGEBLOCK_ORDER <= cc.migratePfn >> PAGEBLOCK_ORDER;
}

/** fallbacks[] of mm/page_alloc.c. */
const fallbacks: Record<number, readonly number[]> = {
  [MIGRATE_UNMOVABLE]: [MIGRATE_RECLAIMABLE, MIGRATE_MOVABLE],
  [MIGRATE_MOVABLE]: [MIGRATE_RECLAIMABLE, MIGRATE_UNMOVABLE],
  [MIGRATE_RECLAIMABLE]: [MIGRATE_UNMOVABLE, MIGRATE_MOVABLE],
};

/** find_suitable_fallback(claimable): would a steal from another type claim a whole block? */
function suitableFallback(zone: Zone, order: number, mt: number): boolean {
  // should_try_claim_block
  if (!(order >= PAGEBLOCK_ORDER || order >= PAGEBLOCK_ORDER / 2 || mt !== MIGRATE_MOVABLE)) return false;
  for (const other of fallbacks[mt] ?? [])
    if (zone.nrFreeList[order * MIGRATE_TYPES + other]! > 0) return true;
  return false;
}

/** __compact_finished */
function compactFinishedInner(cc: CompactControl): CompactResultValue {
  const zone = cc.zone;
  if (compactScannersMet(cc)) {
    // Let the next compaction start anew.
    resetCachedPositions(zone);
    if (cc.directCompaction) zoneCompactState(zone).blockskipFlush = true;
    return cc.wholeZone ? CompactResult.COMPACT_COMPLETE : CompactResult.COMPACT_PARTIAL_SKIPPED;
  }
  if (cc.proactiveCompaction) {
    const score = fragmentationScoreZone(zone);
    const wmarkLow = fragmentationScoreWmark(cc.k.vm.compaction_proactiveness, true);
    return score > wmarkLow ? CompactResult.COMPACT_CONTINUE : CompactResult.COMPACT_SUCCESS;
  }
  if (cc.order < 0) return CompactResult.COMPACT_CONTINUE;
  // Always finish scanning a pageblock.
  if (!pageblockAligned(cc.migratePfn)) return CompactResult.COMPACT_CONTINUE;
  for (let order = cc.order; order < NR_PAGE_ORDERS; order++) {
    if (zone.nrFreeList[order * MIGRATE_TYPES + cc.migratetype]! > 0) return CompactResult.COMPACT_SUCCESS;
    if (zone.nrFree(order) > 0 && suitableFallback(zone, order, cc.migratetype))
      return CompactResult.COMPACT_SUCCESS;
  }
  return cc.contended ? CompactResult.COMPACT_CONTENDED : CompactResult.COMPACT_NO_SUITABLE_PAGE;
}

/** compact_finished: traced; NO_SUITABLE_PAGE means continue. */
function compactFinished(cc: CompactControl): CompactResultValue {
  const ret = compactFinishedInner(cc);
  traceFinished(cc.k, cc.zone, cc.order, ret);
  return ret === CompactResult.COMPACT_NO_SUITABLE_PAGE ? CompactResult.COMPACT_CONTINUE : ret;
}

/**
 * compact_zone: the migrate scanner walks up from the zone start isolating movable folios, the
 * free scanner walks down from the zone end isolating free pages, and each batch of at most
 * COMPACT_CLUSTER_MAX pages migrates (reason `compaction`, through whatever migrator is routed
 * for it) until the scanners meet or the requested order is free. Counts
 * compact_migrate_scanned / compact_free_scanned / compact_isolated and emits the `compaction:`
 * tracepoints. Runs on one zone are serialised.
 */
export async function compactZone(
  k: Kernel,
  zone: Zone,
  opts: CompactZoneOptions = {},
): Promise<CompactZoneResult> {
  const state = zoneCompactState(zone);
  const prev = state.busy;
  let release!: () => void;
  state.busy = new Promise<void>((r) => {
    release = r;
  });
  await prev;
  try {
    // While the timeline records, the run is a compact_zone span on the calling task's lane, and
    // the engine's runs it makes nest inside it.
    if (!k.timeline.on) return await compactZoneLocked(k, zone, opts);
    return await k.timeline.within(
      TL_COMPACT_ZONE,
      () => compactZoneLocked(k, zone, opts),
      (r) => [zone.nid, zoneIdx(zone), opts.order ?? -1, r?.pagesMigrated ?? 0],
    );
  } finally {
    release();
  }
}

async function compactZoneLocked(
  k: Kernel,
  zone: Zone,
  opts: CompactZoneOptions,
): Promise<CompactZoneResult> {
  const order = opts.order ?? -1;
  if (!Number.isInteger(order) || order < -1 || order > MAX_PAGE_ORDER)
    throw kernelError(EINVAL, `compaction order ${order} is not -1 or 0..${MAX_PAGE_ORDER}`);
  const mode = resolveMode(opts.mode);
  const clusterMax = opts.clusterMax ?? COMPACT_CLUSTER_MAX;
  if (!Number.isInteger(clusterMax) || clusterMax < 1)
    throw kernelError(EINVAL, `clusterMax ${clusterMax} must be a positive integer`);
  const t0 = performance.now();
  const c0 = threadCpuSeconds(true);
  const cc: CompactControl = {
    k,
    zone,
    order,
    mode,
    migratetype: opts.migratetype ?? MIGRATE_MOVABLE,
    migratePfn: 0,
    freePfn: 0,
    migratepages: [],
    nrMigratepages: 0,
    freepages: Array.from({ length: NR_PAGE_ORDERS }, () => []),
    nrFreepages: 0,
    wholeZone: opts.wholeZone ?? false,
    ignoreSkipHint: opts.ignoreSkipHint ?? false,
    ignoreBlockSuitable: opts.ignoreBlockSuitable ?? false,
    directCompaction: opts.direct ?? false,
    proactiveCompaction: opts.proactive ?? false,
    finishPageblock: false,
    contended: false,
    totalMigrateScanned: 0,
    totalFreeScanned: 0,
    isolatedMigrate: 0,
    isolatedFree: 0,
    highestZoneidx: opts.highestZoneidx ?? zoneIdx(zone),
    clusterMax,
  };
  const result: CompactZoneResult = {
    nid: zone.nid,
    zone: zone.type,
    order,
    mode: migrateModeNames[mode]!,
    status: 'continue',
    result: CompactResult.COMPACT_CONTINUE,
    migrateScanned: 0,
    freeScanned: 0,
    isolatedMigrate: 0,
    isolatedFree: 0,
    migrateCalls: 0,
    pagesMigrated: 0,
    pagesFailed: 0,
    migratePfn: 0,
    freePfn: 0,
    cpuSeconds: 0,
    wallSeconds: 0,
    batchCopySeconds: 0,
    phases: { unmap: 0, flush: 0, batchCopy: 0, fallbackCopy: 0, move: 0 },
    offload: { migrator: null, batches: 0, foliosOffered: 0, foliosCopied: 0, failures: 0 },
  };
  const finish = (ret: CompactResultValue) => {
    result.result = ret;
    result.status = compactResultNames[ret];
    result.migrateScanned = cc.totalMigrateScanned;
    result.freeScanned = cc.totalFreeScanned;
    result.isolatedMigrate = cc.isolatedMigrate;
    result.isolatedFree = cc.isolatedFree;
    result.migratePfn = cc.migratePfn;
    result.freePfn = cc.freePfn;
    result.cpuSeconds = threadCpuSeconds(true) - c0;
    result.wallSeconds = (performance.now() - t0) / 1000;
    result.batchCopySeconds = result.phases.batchCopy;
    return result;
  };

  if (order >= 0) {
    const ret = compactionSuitAllocationOrder(k, zone, order, WMARK_MIN);
    if (ret !== CompactResult.COMPACT_CONTINUE) return finish(ret);
  }
  // After the maximal deferral, start afresh: forget the skip hints.
  if (compactionRestarting(zone, order)) resetIsolationSuitable(k, zone);

  const startPfn = zone.startPfn;
  const endPfn = zone.endPfn;
  const sync = mode !== MigrateMode.MIGRATE_ASYNC;
  const state = zoneCompactState(zone);
  if (cc.wholeZone) {
    cc.migratePfn = startPfn;
    cc.freePfn = pageblockStart(endPfn - 1);
  } else {
    cc.migratePfn = state.cachedMigratePfn[sync ? 1 : 0];
    cc.freePfn = state.cachedFreePfn;
    if (cc.freePfn < startPfn || cc.freePfn >= endPfn) {
      cc.freePfn = pageblockStart(endPfn - 1);
      state.cachedFreePfn = cc.freePfn;
    }
    if (cc.migratePfn < startPfn || cc.migratePfn >= endPfn) {
      cc.migratePfn = startPfn;
      state.cachedMigratePfn[0] = state.cachedMigratePfn[1] = startPfn;
    }
    if (cc.migratePfn <= state.initMigratePfn) cc.wholeZone = true;
  }
  let lastMigratedPfn = 0;
  let updateCached = !sync && state.cachedMigratePfn[0] === state.cachedMigratePfn[1];
  traceBegin(k, startPfn, cc.migratePfn, cc.freePfn, endPfn, sync);

  const copyTimeoutMs = opts.copyTimeoutMs;
  const alloc = (_src: number, o: number) => compactionAlloc(cc, o);
  const free = (dst: number) => compactionFree(cc, dst);
  let ret: CompactResultValue;
  // The pass is announced to the compaction migrator once, so its devices or threads stay awake
  // from one cluster to the next instead of being woken for each.
  const pass = k.offload.passStart(MigrateReason.MR_COMPACTION, mode, zone.nid, zone.present);
  try {
    out: for (;;) {
      ret = compactFinished(cc);
      if (ret !== CompactResult.COMPACT_CONTINUE) break;
      if (opts.shouldAbort?.()) {
        ret = CompactResult.COMPACT_CONTENDED;
        break;
      }
      const iterationStartPfn = cc.migratePfn;
      // A pageblock that had a failure is rescanned once whole, then marked skip.
      // (last_migrated_pfn starts at 0, so a zone starting at pfn 0 finishes its first block at once,
      // exactly as the kernel's test does.)
      cc.finishPageblock = pageblockStart(lastMigratedPfn) === pageblockStart(iterationStartPfn);
      for (;;) {
        // rescan:
        if (isolateMigratepages(cc) === ISOLATE_NONE) {
          if (updateCached) state.cachedMigratePfn[1] = state.cachedMigratePfn[0];
          break;
        }
        updateCached = false;
        lastMigratedPfn = Math.max(zone.startPfn, pageblockStart(cc.migratePfn - 1));
        const nrMigratepages = cc.nrMigratepages;
        const heads = cc.migratepages;
        cc.migratepages = [];
        // One engine call per cluster; the zone run is the measured unit, so the call does not
        // read CPU time or emit its own phase event.
        const run = await migratePages(k, heads, {
          node: zone.nid,
          mode,
          reason: MigrateReason.MR_COMPACTION,
          copyTimeoutMs,
          alloc,
          free,
          account: false,
        });
        const err = run.ret;
        traceMigratepages(k, run.nrSucceeded, Math.max(nrMigratepages - run.nrSucceeded, 0));
        result.migrateCalls++;
        result.pagesMigrated += run.nrSucceeded;
        result.pagesFailed += run.nrFailed;
        const ph = result.phases;
        ph.unmap += run.phases.unmap;
        ph.flush += run.phases.flush;
        ph.batchCopy += run.phases.batchCopy;
        ph.fallbackCopy += run.phases.fallbackCopy;
        ph.move += run.phases.move;
        const off = result.offload;
        if (run.offload.migrator) off.migrator = run.offload.migrator;
        off.batches += run.offload.batches;
        off.foliosOffered += run.offload.foliosOffered;
        off.foliosCopied += run.offload.foliosCopied;
        off.failures += run.offload.failures;
        cc.nrMigratepages = 0;
        if (err) {
          // migrate_pages() may return -ENOMEM when the scanners meet: compact_finished sees that.
          if (err === -ENOMEM && !compactScannersMet(cc)) {
            ret = CompactResult.COMPACT_CONTENDED;
            break out;
          }
          // ASYNC/SYNC_LIGHT: a failure inside a partly scanned block rescans the rest of it once.
          if (
            !pageblockAligned(cc.migratePfn) &&
            !cc.ignoreSkipHint &&
            !cc.finishPageblock &&
            cc.mode < MigrateMode.MIGRATE_SYNC
          ) {
            cc.finishPageblock = true;
            if (cc.order === COMPACTION_HPAGE_ORDER) lastMigratedPfn = 0;
            continue;
          }
        }
        break;
      }
    }
  } finally {
    // out: release what is still isolated (also when a hook threw); the free cache only moves back.
    if (cc.migratepages.length) putbackMovablePages(cc);
    if (cc.nrFreepages > 0 || cc.freepages.some((l) => l.length)) {
      const freePfn = pageblockStart(releaseFreeList(cc));
      if (freePfn > state.cachedFreePfn) state.cachedFreePfn = freePfn;
    }
    if (pass) k.offload.runEnd(pass);
  }
  k.count('compact_migrate_scanned', cc.totalMigrateScanned);
  k.count('compact_free_scanned', cc.totalFreeScanned);
  traceEnd(k, startPfn, cc.migratePfn, cc.freePfn, endPfn, sync, ret);
  return finish(ret);
}

/** The zones one compact_node pass covers, and what each run did. */
export interface NodeCompactResult {
  nid: number;
  proactive: boolean;
  zones: CompactZoneResult[];
}

/**
 * compact_node: every populated zone of node `nid`, order −1, whole zone, skip hints ignored.
 * Manual (compact_memory, nodeN/compact) runs are MIGRATE_SYNC and count only the scanned and
 * isolated counters; proactive runs (kcompactd) are MIGRATE_SYNC_LIGHT, stop each zone once its
 * score is at or below the low watermark, and also count compact_daemon_*_scanned.
 */
export async function compactNode(
  k: Kernel,
  nid: number,
  opts: { proactive?: boolean } & Pick<
    CompactZoneOptions,
    'clusterMax' | 'copyTimeoutMs' | 'shouldAbort'
  > = {},
): Promise<NodeCompactResult> {
  const node = k.nodes[nid];
  if (!node) throw kernelError(EINVAL, `node ${nid} does not exist (nodes 0..${k.nodes.length - 1})`);
  const proactive = opts.proactive ?? false;
  const out: NodeCompactResult = { nid, proactive, zones: [] };
  for (const zone of node.zones) {
    if (zone.present === 0) continue;
    if (opts.shouldAbort?.()) break;
    const r = await compactZone(k, zone, {
      order: -1,
      mode: proactive ? MigrateMode.MIGRATE_SYNC_LIGHT : MigrateMode.MIGRATE_SYNC,
      migratetype: MIGRATE_UNMOVABLE,
      ignoreSkipHint: true,
      wholeZone: true,
      proactive,
      clusterMax: opts.clusterMax,
      copyTimeoutMs: opts.copyTimeoutMs,
      shouldAbort: opts.shouldAbort,
    });
    if (proactive) {
      k.count('compact_daemon_migrate_scanned', r.migrateScanned);
      k.count('compact_daemon_free_scanned', r.freeScanned);
    }
    out.zones.push(r);
  }
  return out;
}
