/**
 * /proc/vmstat counters (mm/vmstat.c `vmstat_text`): the ones pagemig models, in the kernel's
 * order. Gauges (nr_*) are computed when read; events only ever grow.
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
] as const;

/** Node stat items that count events (placed among the node stats, as in the kernel). */
export const vmstatNodeEvents = [
  'pgpromote_success',
  'pgpromote_candidate',
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
  'pgfree',
  'pgfault',
  'pgmajfault',
  'pgreuse',
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
  'thp_fault_alloc',
  'thp_fault_fallback',
  'thp_split_page',
  'thp_split_page_failed',
  'thp_split_pmd',
  'thp_zero_page_alloc',
  'cow_ksm',
] as const;

export type VmstatGauge = (typeof vmstatGauges)[number];
export type VmstatEvent = (typeof vmstatEvents)[number] | (typeof vmstatNodeEvents)[number];
export type VmstatName = VmstatGauge | VmstatEvent;

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
    // Node stats: the event-like node items follow nr_page_table_pages in the kernel's enum.
    if (n === 'nr_page_table_pages') for (const e of vmstatNodeEvents) out += `${e} ${values[e]}\n`;
  }
  for (const n of vmstatEvents) out += `${n} ${values[n]}\n`;
  return `${out}nr_unstable 0\n`;
}
