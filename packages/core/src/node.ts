import { NR_VM_NODE_STAT_ITEMS } from './vmstat.js';
import type { Zone } from './zone.js';

/** A NUMA node (pglist_data): its zones, CPUs, tier, and the node order for fallback allocation. */
export class PgData {
  readonly zones: Zone[] = [];
  /**
   * This node first, then the nodes with memory by increasing distance (build_zonelists:
   * find_next_best_node walks N_MEMORY only, so a memory-less node is never a fallback).
   */
  fallbackOrder: number[] = [];
  /** node_zonelists[ZONELIST_FALLBACK]: built once at boot (page_alloc.ts buildZonelist). */
  zonelist: Zone[] = [];
  /** vm_stat: the node's folio-state counters, indexed by NR_MLOCK.. (vmstat.ts folioModStat). */
  readonly vmStat = new Float64Array(NR_VM_NODE_STAT_ITEMS);

  constructor(
    readonly nid: number,
    readonly tier: string,
    readonly startPfn: number,
    readonly nrPages: number,
    readonly distances: readonly number[],
    /** CPUs on the node (cpumask_of_node), numbered from `firstCpu`. */
    readonly cpus = 1,
    readonly firstCpu = nid,
  ) {}

  get endPfn(): number {
    return this.startPfn + this.nrPages;
  }
  get freePages(): number {
    let n = 0;
    for (const z of this.zones) n += z.freePages;
    return n;
  }
}
