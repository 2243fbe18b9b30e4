import { createMachine, type Machine, PAGE_SIZE, type Process } from '@pagemig/core';
import type { Zone } from '@pagemig/core/internal';

/**
 * A DRAM node and a CPU-less CXL node below it (its demotion target). watermark_scale_factor 1000
 * (10%) puts low and high far apart even in a zone of a few MiB.
 */
export async function tierMachine(dramMiB = 8, cxlMiB = 16): Promise<Machine> {
  const m = await createMachine({
    nodes: [{ memory: `${dramMiB}MiB` }, { memory: `${cxlMiB}MiB`, tier: 'cxl', cpus: 0 }],
  });
  if (m.sysctl.write('vm.watermark_scale_factor', '1000') !== 0) throw new Error('watermark_scale_factor');
  return m;
}

/** The one zone of node `nid` (these machines have a Normal zone per node). */
export function zoneOf(m: Machine, nid: number): Zone {
  const zones = m.kernel.nodes[nid]!.zones;
  if (zones.length !== 1) throw new Error(`node ${nid} has ${zones.length} zones`);
  return zones[0]!;
}

/** The zone's watermarks: [min, low, high, promo]. */
export function wmarks(m: Machine, nid: number): { min: number; low: number; high: number; promo: number } {
  const [min, low, high, promo] = zoneOf(m, nid).watermark;
  return { min: min!, low: low!, high: high!, promo: promo! };
}

/** Bytes of `pages` pages where every page holds a value no other page of any seed holds. */
export function pageBytes(pages: number, seed: number): Uint8Array {
  const out = new Uint8Array(pages * PAGE_SIZE);
  const words = new Uint32Array(out.buffer);
  const perPage = PAGE_SIZE / 4;
  for (let j = 0; j < pages; j++) {
    words.fill(
      (Math.imul(seed + 1, 0x9e3779b1) ^ Math.imul(j + 1, 0x85ebca6b)) >>> 0,
      j * perPage,
      (j + 1) * perPage,
    );
    words[j * perPage] = (seed << 20) | j;
  }
  return out;
}

/** The node of each page of [addr, addr + pages * PAGE_SIZE); -1 for a page not mapped now. */
export function nodesOf(p: Process, addr: number, pages: number): number[] {
  return Array.from({ length: pages }, (_, i) => p.pageInfo(addr + i * PAGE_SIZE)?.node ?? -1);
}

/** Polls `cond` every 5 ms until it holds; fails after `ms`. */
export async function until(cond: () => boolean, ms: number, what: string): Promise<void> {
  const t0 = performance.now();
  while (!cond()) {
    if (performance.now() - t0 > ms) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** The records of tracepoint `event` (e.g. 'mm_vmscan_kswapd_sleep') so far: task and text. */
export function traced(m: Machine, event: string): { comm: string; text: string }[] {
  return m.trace.events(event).map((r) => ({ comm: r.comm, text: r.text }));
}
