import type { Kernel } from './kernel.js';
import {
  MIGRATE_TYPES,
  migratetypeNames,
  NR_PAGE_ORDERS,
  PAGEBLOCK_NR_PAGES,
  PAGEBLOCK_ORDER,
} from './mmzone.js';
import { PG_anon, PG_head, PG_isolated, PG_mlocked, PG_swapbacked } from './page.js';
import { formatVmstat, type VmstatGauge, type VmstatName } from './vmstat.js';

/** /proc files rendered with the kernel's format strings (mm/vmstat.c). */

const pad = (s: string | number, w: number) => String(s).padStart(w);

/** /proc/buddyinfo: "Node %d, zone %8s " then "%6lu " per order. */
export function buddyinfo(k: Kernel): string {
  let out = '';
  for (const z of k.zones) {
    out += `Node ${z.nid}, zone ${pad(z.type, 8)} `;
    for (let o = 0; o < NR_PAGE_ORDERS; o++) out += `${pad(k.nrFreeBlocks(z, o), 6)} `;
    out += '\n';
  }
  return out;
}

/**
 * /proc/pagetypeinfo (pagetypeinfo_show without CONFIG_PAGE_OWNER). The seq_file walks the
 * nodes: every node with memory prints the whole block (header, free counts, block counts).
 */
export function pagetypeinfo(k: Kernel): string {
  let out = '';
  for (const node of k.nodes) {
    if (node.zones.length === 0) continue;
    out += `Page block order: ${PAGEBLOCK_ORDER}\nPages per block:  ${PAGEBLOCK_NR_PAGES}\n\n`;
    out += `${'Free pages count per migrate type at order'.padEnd(43)} `;
    for (let o = 0; o < NR_PAGE_ORDERS; o++) out += `${pad(o, 6)} `;
    out += '\n';
    for (const z of node.zones) {
      for (let mt = 0; mt < MIGRATE_TYPES; mt++) {
        out += `Node ${pad(z.nid, 4)}, zone ${pad(z.type, 8)}, type ${pad(migratetypeNames[mt]!, 12)} `;
        for (let o = 0; o < NR_PAGE_ORDERS; o++) {
          // The kernel stops counting a list at 100000 entries and prints ">100000".
          const n = z.nrFreeList[o * MIGRATE_TYPES + mt]!;
          out += n >= 100000 ? `>${pad(100000, 6)} ` : `${pad(n, 6)} `;
        }
        out += '\n';
      }
    }
    out += `\n${'Number of blocks type '.padEnd(23)}`;
    for (const name of migratetypeNames) out += `${pad(name, 12)} `;
    out += '\n';
    for (const z of node.zones) {
      const counts = new Array<number>(MIGRATE_TYPES).fill(0);
      for (let pfn = z.startPfn; pfn < z.endPfn; pfn += PAGEBLOCK_NR_PAGES)
        counts[k.pageblocks.migratetype(pfn)]!++;
      out += `Node ${z.nid}, zone ${pad(z.type, 8)} `;
      for (const c of counts) out += `${pad(c, 12)} `;
      out += '\n';
    }
  }
  return out;
}

/** /proc/zoneinfo: the per-zone watermark block and page counts. */
export function zoneinfo(k: Kernel): string {
  let out = '';
  for (const z of k.zones) {
    const [min, low, high, promo] = z.watermark;
    out += `Node ${z.nid}, zone ${pad(z.type, 8)}\n`;
    out += `  pages free     ${z.freePages}\n`;
    out += `        boost    ${z.watermarkBoost}\n`;
    out += `        min      ${min}\n`;
    out += `        low      ${low}\n`;
    out += `        high     ${high}\n`;
    out += `        promo    ${promo}\n`;
    out += `        spanned  ${z.spanned}\n`;
    out += `        present  ${z.present}\n`;
    out += `        managed  ${z.managed}\n`;
    out += `        cma      0\n`;
    out += `        protection: (${k.nodes[z.nid]!.zones.map(() => 0).join(', ')})\n`;
    out += `  start_pfn:           ${z.startPfn}\n`;
  }
  return out;
}

/** Counters as an object: the gauges computed from struct pages now, the events as counted. */
export function vmstatValues(k: Kernel): Record<VmstatName, number> {
  const g: Record<VmstatGauge, number> = {
    nr_free_pages: 0,
    nr_zone_inactive_anon: 0,
    nr_zone_active_anon: 0,
    nr_zone_unevictable: 0,
    nr_mlock: 0,
    nr_inactive_anon: 0,
    nr_active_anon: 0,
    nr_unevictable: 0,
    nr_isolated_anon: 0,
    nr_isolated_file: 0,
    nr_anon_pages: 0,
    nr_mapped: 0,
    nr_shmem: 0,
    nr_shmem_hugepages: 0,
    nr_anon_transparent_hugepages: 0,
    nr_page_table_pages: 0,
  };
  for (const z of k.zones) g.nr_free_pages += z.freePages;
  const p = k.pages;
  for (let pfn = 0; pfn < k.nrPages; ) {
    const f = p.flags[pfn]!;
    const nr = f & PG_head ? 1 << p.order[pfn]! : 1;
    if (f & PG_swapbacked && p.mapping[pfn]) {
      const huge = (f & PG_head) !== 0 && p.order[pfn] === 9;
      if (f & PG_isolated) {
        if (f & PG_anon) g.nr_isolated_anon += nr;
        else g.nr_isolated_file += nr;
      } else if (f & PG_mlocked) {
        g.nr_unevictable += nr;
      } else {
        g.nr_inactive_anon += nr;
      }
      if (f & PG_mlocked) g.nr_mlock += nr;
      if (f & PG_anon) {
        g.nr_anon_pages += nr;
        if (huge) g.nr_anon_transparent_hugepages++;
      } else {
        g.nr_shmem += nr;
        if (huge) g.nr_shmem_hugepages++;
        if (p.mapcount[pfn]! > 0) g.nr_mapped += nr;
      }
    }
    pfn += nr;
  }
  g.nr_zone_inactive_anon = g.nr_inactive_anon;
  g.nr_zone_unevictable = g.nr_unevictable;
  return { ...g, ...k.events.counts, nr_page_table_pages: k.pageTablePages() };
}

export function vmstat(k: Kernel): string {
  return formatVmstat(vmstatValues(k));
}
