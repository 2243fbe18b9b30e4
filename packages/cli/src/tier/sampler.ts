import type { Machine, Process, VmstatName } from '@pagemig/core';
import { PAGE_SIZE } from '@pagemig/core';

/** Milliseconds since the epoch, sub-millisecond: what user threads stamp hot-set moves with. */
export const epochNow = () => performance.timeOrigin + performance.now();

/** The counters a tiering run reports, as deltas since the run started. */
export const TIER_COUNTERS = [
  'pgdemote_kswapd',
  'pgdemote_direct',
  'pgpromote_candidate',
  'pgpromote_candidate_nrl',
  'pgpromote_success',
  'numa_pte_updates',
  'numa_hint_faults',
  'numa_pages_migrated',
  'pgmigrate_success',
  'pgmigrate_fail',
] as const satisfies readonly VmstatName[];
export type TierCounter = (typeof TIER_COUNTERS)[number];

/** One look at the machine: where the region's pages are, and the migration counters. */
export interface TierSample {
  /** Milliseconds since the workload started. */
  tMs: number;
  /** Region pages on the DRAM node and on the CXL node. */
  dram: number;
  cxl: number;
  /** Cumulative since the run started. */
  promoted: number;
  demoted: number;
}

/**
 * Samples the region's placement the way a user would: move_pages(2) with nodes = NULL from the
 * main thread (the process itself), which reports each page's node (or -errno) and moves nothing.
 * Keeps each sample's page→node bytes for the hot-set convergence afterwards.
 */
export class TierSampler {
  readonly samples: TierSample[] = [];
  /** Per sample: the node of every region page (255: not present). */
  readonly nodes: Uint8Array[] = [];
  private readonly addrs: number[];
  private readonly status: number[];
  private readonly v0: Record<string, number>;
  /** When the workload started, in ms since the epoch (the thread stamps its hot-set moves so). */
  epoch0 = epochNow();

  constructor(
    private readonly m: Machine,
    private readonly p: Process,
    addr: number,
    pages: number,
  ) {
    this.addrs = Array.from({ length: pages }, (_, i) => addr + i * PAGE_SIZE);
    this.status = new Array<number>(pages);
    this.v0 = m.vmstat();
  }

  /** Counter deltas since the sampler was made. */
  counters(): Record<TierCounter, number> {
    const v = this.m.vmstat();
    return Object.fromEntries(TIER_COUNTERS.map((c) => [c, v[c] - this.v0[c]!])) as Record<
      TierCounter,
      number
    >;
  }

  /** Region pages per node now, [dram, cxl]. */
  async placement(): Promise<[number, number]> {
    return perTier(await this.query());
  }

  async sample(): Promise<TierSample> {
    const node = await this.query();
    const c = this.counters();
    const [dram, cxl] = perTier(node);
    const s: TierSample = {
      tMs: epochNow() - this.epoch0,
      dram,
      cxl,
      promoted: c.pgpromote_success,
      demoted: c.pgdemote_kswapd + c.pgdemote_direct,
    };
    this.samples.push(s);
    this.nodes.push(node);
    return s;
  }

  private async query(): Promise<Uint8Array> {
    const r = await this.p.movePages(0, this.addrs, null, 0, this.status);
    if (r.ret < 0) throw new Error(`move_pages(nodes=NULL) failed: errno ${r.errno}`);
    const node = new Uint8Array(this.status.length);
    for (let i = 0; i < node.length; i++) {
      const s = r.status[i]!;
      node[i] = s >= 0 && s < 255 ? s : 255;
    }
    return node;
  }
}

function perTier(node: Uint8Array): [number, number] {
  let dram = 0;
  let cxl = 0;
  for (const n of node) {
    if (n === 0) dram++;
    else if (n === 1) cxl++;
  }
  return [dram, cxl];
}

/** A hot-set move of the workload: when, and which pages of the region became hot. */
export interface HotSetMove {
  /** Milliseconds since the workload started. */
  atMs: number;
  firstPage: number;
  pages: number;
}

/** Share of a new hot set that must be on DRAM for it to count as arrived. */
export const ARRIVED_SHARE = 0.9;

/**
 * For each move, the time from the move to the first sample that saw at least 90% of the new hot
 * set's pages on DRAM (node 0); null when no sample before the next move (or the end) did.
 */
export function hotSetArrivals(
  moves: readonly HotSetMove[],
  samples: readonly TierSample[],
  nodes: readonly Uint8Array[],
): (number | null)[] {
  return moves.map((mv, i) => {
    const until = moves[i + 1]?.atMs ?? Number.POSITIVE_INFINITY;
    const need = Math.ceil(ARRIVED_SHARE * mv.pages);
    for (let s = 0; s < samples.length; s++) {
      const t = samples[s]!.tMs;
      if (t < mv.atMs) continue;
      if (t >= until) break;
      const node = nodes[s]!;
      let onDram = 0;
      // A hot range that runs past the region's end wraps to its start.
      for (let k = 0; k < mv.pages; k++) if (node[(mv.firstPage + k) % node.length] === 0) onDram++;
      if (onDram >= need) return t - mv.atMs;
    }
    return null;
  });
}
