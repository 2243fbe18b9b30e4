import { HUGETLB_NR } from './hugetlb.js';
import type { Kernel } from './kernel.js';
import { HPAGE_PMD_ORDER } from './mmzone.js';
import { PG_anon, PG_head, PG_mlocked, PG_swapbacked } from './page.js';

/**
 * /proc/vmstat counters (mm/vmstat.c `vmstat_text`): the ones pagemig models, in the kernel's
 * order. Gauges (nr_*) are read from counters kept as the state changes (no read scans memory);
 * events only ever grow.
 */
export const vmstatGauges = [
  'nr_free_pages',
  'nr_zone_inactive_anon',
  'nr_zone_active_anon',
  'nr_zone_unevictable',
  'nr_mlock',
  'nr_inactive_anon',
  'nr_active_anon',
  'nr_unevictable',
  'nr_isolated_anon',
  'nr_isolated_file',
  'nr_anon_pages',
  'nr_mapped',
  'nr_shmem',
  'nr_shmem_hugepages',
  'nr_anon_transparent_hugepages',
  'nr_page_table_pages',
  // NR_HUGETLB, a node stat after the event-like node items: pages of hugetlb folios in use.
  'nr_hugetlb',
] as const;

/**
 * enum numa_stat_item: events counted per zone at allocation (zone_statistics), printed between
 * the zone stats (up to nr_mlock here) and the node stats, as vmstat_text orders them.
 */
export const vmstatNumaEvents = [
  'numa_hit',
  'numa_miss',
  'numa_foreign',
  'numa_interleave',
  'numa_local',
  'numa_other',
] as const;

/** Node stat items that count events (placed among the node stats, as in the kernel). */
export const vmstatNodeEvents = [
  'pgpromote_success',
  'pgpromote_candidate',
  'pgpromote_candidate_nrl',
  'pgdemote_kswapd',
  'pgdemote_direct',
  'pgdemote_khugepaged',
  'pgdemote_proactive',
] as const;

export const vmstatEvents = [
  'pgalloc_dma',
  'pgalloc_dma32',
  'pgalloc_normal',
  'pgalloc_movable',
  // Direct reclaim entries per zone of the request (do_try_to_free_pages: ALLOCSTALL).
  'allocstall_dma',
  'allocstall_dma32',
  'allocstall_normal',
  'allocstall_movable',
  'pgfree',
  // LRU list moves (mm/swap.c, mm/vmscan.c): folios activated, deactivated, and scanned on the
  // active list (pgrefill); counted by reclaim.
  'pgactivate',
  'pgdeactivate',
  'pgfault',
  'pgmajfault',
  'pgrefill',
  'pgreuse',
  // Reclaim of the anon lists by kswapd and direct reclaim (there is no file LRU, no swap: what is
  // stolen was demoted), then kswapd's own events, in vmstat_text order.
  'pgsteal_kswapd',
  'pgsteal_direct',
  'pgscan_kswapd',
  'pgscan_direct',
  'pgscan_anon',
  'pgsteal_anon',
  'kswapd_low_wmark_hit_quickly',
  'kswapd_high_wmark_hit_quickly',
  'pageoutrun',
  'numa_pte_updates',
  'numa_huge_pte_updates',
  'numa_hint_faults',
  'numa_hint_faults_local',
  'numa_pages_migrated',
  'pgmigrate_success',
  'pgmigrate_fail',
  'thp_migration_success',
  'thp_migration_fail',
  'thp_migration_split',
  'compact_migrate_scanned',
  'compact_free_scanned',
  'compact_isolated',
  'compact_stall',
  'compact_fail',
  'compact_success',
  'compact_daemon_wake',
  'compact_daemon_migrate_scanned',
  'compact_daemon_free_scanned',
  // CONFIG_HUGETLB_PAGE: buddy allocations of hugetlb folios (alloc_buddy_hugetlb_folio).
  'htlb_buddy_alloc_success',
  'htlb_buddy_alloc_fail',
  'thp_fault_alloc',
  'thp_fault_fallback',
  'thp_split_page',
  'thp_split_page_failed',
  'thp_deferred_split_page',
  'thp_split_pmd',
  'thp_zero_page_alloc',
  'cow_ksm',
] as const;

export type VmstatGauge = (typeof vmstatGauges)[number];
export type VmstatEvent = (typeof vmstatEvents)[number] | (typeof vmstatNodeEvents)[number];
export type VmstatNumaEvent = (typeof vmstatNumaEvents)[number];
export type VmstatName = VmstatGauge | VmstatNumaEvent | VmstatEvent;

export class VmEvents {
  readonly counts: Record<VmstatEvent, number>;

  constructor() {
    this.counts = Object.fromEntries([...vmstatNodeEvents, ...vmstatEvents].map((n) => [n, 0])) as Record<
      VmstatEvent,
      number
    >;
  }

  count(name: VmstatEvent, delta = 1): void {
    this.counts[name] += delta;
  }
}

/** The kernel's text: one "name value" line per counter, the deprecated nr_unstable last. */
export function formatVmstat(values: Readonly<Record<VmstatName, number>>): string {
  let out = '';
  for (const n of vmstatGauges) {
    out += `${n} ${values[n]}\n`;
    // The zone stats end at nr_mlock here; the NUMA events come between them and the node stats.
    if (n === 'nr_mlock') for (const e of vmstatNumaEvents) out += `${e} ${values[e]}\n`;
    // Node stats: the event-like node items follow nr_page_table_pages in the kernel's enum.
    if (n === 'nr_page_table_pages') for (const e of vmstatNodeEvents) out += `${e} ${values[e]}\n`;
  }
  for (const n of vmstatEvents) out += `${n} ${values[n]}\n`;
  return `${out}nr_unstable 0\n`;
}

/** Indices of enum numa_stat_item in a zone's `numaEvents` (vmstatNumaEvents' order). */
export const NUMA_HIT = 0;
export const NUMA_MISS = 1;
export const NUMA_FOREIGN = 2;
export const NUMA_INTERLEAVE_HIT = 3;
export const NUMA_LOCAL = 4;
export const NUMA_OTHER = 5;

/** A zone's per-zone NUMA event counters (zone->vm_numa_event). */
export interface NumaEventZone {
  readonly nid: number;
  readonly numaEvents: Float64Array;
}

/**
 * zone_statistics (mm/page_alloc.c), once per allocation whatever its order, as rmqueue counts:
 * numa_hit on the zone used when it is on the preferred zone's node, else numa_miss on it and
 * numa_foreign on the preferred zone; then numa_local when the zone is on the allocating CPU's
 * node (numa_node_id()), else numa_other. `interleaveNid` is the node an interleave policy chose
 * (-1 for other allocations): a folio that landed there counts numa_interleave (alloc_pages_mpol).
 */
export function zoneStatistics(
  preferred: NumaEventZone,
  z: NumaEventZone,
  localNid: number,
  interleaveNid: number,
): void {
  const ev = z.numaEvents;
  if (z.nid === preferred.nid) ev[NUMA_HIT]!++;
  else {
    ev[NUMA_MISS]!++;
    preferred.numaEvents[NUMA_FOREIGN]!++;
  }
  ev[z.nid === localNid ? NUMA_LOCAL : NUMA_OTHER]!++;
  if (z.nid === interleaveNid) ev[NUMA_INTERLEAVE_HIT]!++;
}

/** sum_zone_numa_event_state over `zones`: each NUMA event's total, by name. */
export function sumZoneNumaEvents(zones: readonly NumaEventZone[]): Record<VmstatNumaEvent, number> {
  const out = {} as Record<VmstatNumaEvent, number>;
  vmstatNumaEvents.forEach((name, i) => {
    let n = 0;
    for (const z of zones) n += z.numaEvents[i]!;
    out[name] = n;
  });
  return out;
}

/**
 * /sys/devices/system/node/nodeN/numastat (node_read_numastat): the node's zones' NUMA events,
 * under the file's own names (interleave_hit, local_node, other_node).
 */
export function formatNumastat(zones: readonly NumaEventZone[]): string {
  const e = sumZoneNumaEvents(zones);
  return (
    `numa_hit ${e.numa_hit}\nnuma_miss ${e.numa_miss}\nnuma_foreign ${e.numa_foreign}\n` +
    `interleave_hit ${e.numa_interleave}\nlocal_node ${e.numa_local}\nother_node ${e.numa_other}\n`
  );
}

/**
 * enum node_stat_item: the gauges of folio state that each node keeps as a counter (pgdat->vm_stat,
 * PgData.vmStat), in the units /proc/vmstat prints. NR_MLOCK is a zone stat in the kernel; a node
 * total here, as only totals are printed. NR_HUGETLB needs no counter: the hugetlb pool's per-node
 * counts give it (nrHugetlbNode).
 */
export const NR_MLOCK = 0;
/** nr_anon_pages: pages of anon folios (PG_anon) that have an rmap owner. */
export const NR_ANON_MAPPED = 1;
/** nr_mapped: pages of shmem folios that some page table maps (mapcount > 0). */
export const NR_FILE_MAPPED = 2;
/** nr_shmem: pages of shmem folios (swap-backed, not anon) in a page cache. */
export const NR_SHMEM = 3;
/** nr_shmem_hugepages: PMD-size shmem folios (folios, not pages). */
export const NR_SHMEM_THPS = 4;
/** nr_anon_transparent_hugepages: PMD-size anon folios (folios, not pages). */
export const NR_ANON_THPS = 5;
/** The /proc/vmstat name of each node counter, by index. */
export const nodeStatNames = [
  'nr_mlock',
  'nr_anon_pages',
  'nr_mapped',
  'nr_shmem',
  'nr_shmem_hugepages',
  'nr_anon_transparent_hugepages',
] as const satisfies readonly VmstatGauge[];
export const NR_VM_NODE_STAT_ITEMS = nodeStatNames.length;

/**
 * __lruvec_stat_mod_folio for every counter the folio's state puts it in: `sign` 1 counts the
 * folio, -1 uncounts it. Which counters, and how much, follow from its flags, order, rmap owner
 * and (shmem) mapcount now, so a caller uncounts a folio before it changes any of them and counts
 * it again after (allocation as anon or shmem, split, migration, free); mapcount changes go
 * through folioModMapcount (rmap.ts). Hugetlb folios are not swap-backed: none of these.
 */
export function folioModStat(k: Kernel, head: number, sign: 1 | -1): void {
  const p = k.pages;
  const f = p.flags[head]!;
  if (!(f & PG_swapbacked) || !p.mapping[head]) return;
  const large = (f & PG_head) !== 0;
  const nr = large ? sign << p.order[head]! : sign;
  const thp = large && p.order[head] === HPAGE_PMD_ORDER ? sign : 0;
  const s = k.nodes[k.nodeOf(head)]!.vmStat;
  if (f & PG_mlocked) s[NR_MLOCK]! += nr;
  if (f & PG_anon) {
    s[NR_ANON_MAPPED]! += nr;
    s[NR_ANON_THPS]! += thp;
  } else {
    s[NR_SHMEM]! += nr;
    s[NR_SHMEM_THPS]! += thp;
    if (p.mapcount[head]! > 0) s[NR_FILE_MAPPED]! += nr;
  }
}

/**
 * __folio_mod_stat's NR_FILE_MAPPED for a folio whose mapcount went from 0 to mapped (`sign` 1)
 * or back (-1): a counted shmem folio's pages enter or leave nr_mapped.
 */
export function folioModMapped(k: Kernel, head: number, sign: 1 | -1): void {
  const p = k.pages;
  const f = p.flags[head]!;
  if ((f & (PG_swapbacked | PG_anon)) !== PG_swapbacked || !p.mapping[head]) return;
  k.nodes[k.nodeOf(head)]!.vmStat[NR_FILE_MAPPED]! += f & PG_head ? sign << p.order[head]! : sign;
}

/**
 * NR_HUGETLB of node `nid`: pages of its hugetlb folios in use, from allocation to free_huge_folio.
 * A pool folio is free (on its node's free list, refcount 0) or in use, so that is
 * nr_huge_pages_node less free_huge_pages_node.
 */
export function nrHugetlbNode(k: Kernel, nid: number): number {
  const h = k.hstate;
  return (h.nrHugePagesNode[nid]! - h.freeHugePagesNode[nid]!) * HUGETLB_NR;
}
