import type { Zone } from './zone.js';

/** A NUMA node (pglist_data): its zones, tier, and the node order for fallback allocation. */
export class PgData {
  readonly zones: Zone[] = [];
  /** This node first, then the others by increasing distance (build_zonelists). */
  fallbackOrder: number[] = [];
  /** node_zonelists[ZONELIST_FALLBACK]: built once at boot (page_alloc.ts buildZonelist). */
  zonelist: Zone[] = [];

  constructor(
    readonly nid: number,
    readonly tier: string,
    readonly startPfn: number,
    readonly nrPages: number,
    readonly distances: readonly number[],
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
