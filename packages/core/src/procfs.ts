import { ENOENT, kernelError } from './errno.js';
import type { Kernel } from './kernel.js';
import { LRU_ACTIVE_ANON, LRU_INACTIVE_ANON, LRU_UNEVICTABLE, NR_LRU_LISTS } from './lru.js';
import { vmaOwnPolicy } from './mempolicy_alloc.js';
import { getTaskPolicy, mpolToStr } from './mempolicy_struct.js';
import {
  HPAGE_PMD_ORDER,
  MIGRATE_TYPES,
  migratetypeNames,
  NR_PAGE_ORDERS,
  PAGE_SIZE,
  PAGEBLOCK_NR_PAGES,
  PAGEBLOCK_ORDER,
  zoneNames,
} from './mmzone.js';
import { N_MEMORY, nodesInState } from './nodemask.js';
import { PG_active, PG_anon, PG_dirty, PG_head, PG_unevictable } from './page.js';
import { PTE_DIRTY, PTE_PFN_SHIFT, pteIsPresent, ZERO_PFN } from './pagetable.js';
import { type MmWalkOps, walkPageRange } from './pagewalk.js';
import { rmapWalk } from './rmap.js';
import { show } from './show.js';
import {
  formatVmstat,
  nodeStatNames,
  nrHugetlbNode,
  sumZoneNumaEvents,
  type VmstatGauge,
  type VmstatName,
} from './vmstat.js';

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

/**
 * /proc/zoneinfo: the per-zone watermark block and page counts. The protection array is
 * zone->lowmem_reserve, MAX_NR_ZONES entries (DMA, DMA32, Normal, Movable here) whatever zones the
 * node has; the model keeps no lowmem reserve, so every entry is 0.
 */
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
    out += `        protection: (${zoneNames.map(() => 0).join(', ')})\n`;
    out += `  start_pfn:           ${z.startPfn}\n`;
  }
  return out;
}

/** Counters as an object: the gauges as nodes, LRUs and the hugetlb pool count them, the events. */
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
    nr_hugetlb: 0,
  };
  for (const z of k.zones) g.nr_free_pages += z.freePages;
  for (const node of k.nodes) {
    nodeStatNames.forEach((name, item) => {
      g[name] += node.vmStat[item]!;
    });
    g.nr_hugetlb += nrHugetlbNode(k, node.nid);
  }
  // The LRU sizes and NR_ISOLATED_ANON as the lruvecs count them (lru.ts); shmem is swap-backed,
  // so it is anon here too and nr_isolated_file stays 0. The zone stats add up to the node ones.
  const lv = k.lru;
  for (let nid = 0; nid < k.nodes.length; nid++) {
    g.nr_inactive_anon += lv.nrPages[nid * NR_LRU_LISTS + LRU_INACTIVE_ANON]!;
    g.nr_active_anon += lv.nrPages[nid * NR_LRU_LISTS + LRU_ACTIVE_ANON]!;
    g.nr_unevictable += lv.nrPages[nid * NR_LRU_LISTS + LRU_UNEVICTABLE]!;
    g.nr_isolated_anon += lv.nrIsolated[nid]!;
  }
  g.nr_zone_inactive_anon = g.nr_inactive_anon;
  g.nr_zone_active_anon = g.nr_active_anon;
  g.nr_zone_unevictable = g.nr_unevictable;
  return {
    ...g,
    ...sumZoneNumaEvents(k.zones),
    ...k.events.counts,
    nr_page_table_pages: k.pageTablePages(),
  };
}

export function vmstat(k: Kernel): string {
  return formatVmstat(vmstatValues(k));
}

/** numa_maps' per-area counts (struct numa_maps). */
interface NumaMapsStats {
  pages: number;
  anon: number;
  active: number;
  dirty: number;
  mapcountMax: number;
  node: number[];
}

// gather_stats' state: module level, so the walk's ops allocate nothing per entry.
let nk: Kernel;
let nStats: NumaMapsStats;
/** The area is MAP_HUGETLB: gather_hugetlb_stats counts each huge page once. */
let nHugetlb = false;
/** Per-page mapcounts of the large folios met in this read (folio_precise_page_mapcount). */
let nPageMaps = new Map<number, Int32Array>();

/** folio_precise_page_mapcount: the PMDs and PTEs that map page `pfn` of the large folio `head`. */
function precisePageMapcount(head: number, pfn: number): number {
  const p = nk.pages;
  if (!(p.flags[head]! & PG_head)) return p.mapcount[head]!;
  let counts = nPageMaps.get(head);
  if (!counts) {
    const nr = 1 << p.order[head]!;
    const c = new Int32Array(nr);
    const mapping = nk.mappingOf(head);
    if (mapping)
      rmapWalk(mapping, p.index[head]!, head, nr, (hit) => {
        const arr = hit.huge ? hit.mm.pt.pmd : hit.mm.pt.pte;
        const e = arr[hit.slot]!;
        if (!pteIsPresent(e)) return;
        if (!hit.huge) c[(e >>> PTE_PFN_SHIFT) - head]!++;
        else for (let i = 0; i < nr; i++) c[i]!++;
      });
    nPageMaps.set(head, (counts = c));
  }
  return counts[pfn - head]!;
}

/** gather_stats for `nr` pages of the folio holding `pfn`, mapped dirty or not. */
function gatherStats(pfn: number, dirty: boolean, nr: number): void {
  const p = nk.pages;
  const head = p.head(pfn);
  const f = p.flags[head]!;
  const md = nStats;
  md.pages += nr;
  if (dirty || f & PG_dirty) md.dirty += nr;
  // folio_test_active || folio_test_unevictable.
  if (f & (PG_active | PG_unevictable)) md.active += nr;
  if (f & PG_anon) md.anon += nr;
  const count = precisePageMapcount(head, pfn);
  if (count > md.mapcountMax) md.mapcountMax = count;
  const nid = nk.nodeOf(head);
  md.node[nid] = (md.node[nid] ?? 0) + nr;
}

const numaOps: MmWalkOps = {
  pmdEntry(_pt, _pmdIdx, entry) {
    // can_gather_numa_stats_pmd: present (or PROT_NONE) and not the huge zero page.
    const pfn = entry >>> PTE_PFN_SHIFT;
    if (pteIsPresent(entry) && pfn !== ZERO_PFN)
      gatherStats(pfn, (entry & PTE_DIRTY) !== 0, nHugetlb ? 1 : 1 << HPAGE_PMD_ORDER);
  },
  pteEntry(_pt, _slot, entry) {
    const pfn = entry >>> PTE_PFN_SHIFT;
    if (pteIsPresent(entry) && pfn !== ZERO_PFN) gatherStats(pfn, (entry & PTE_DIRTY) !== 0, 1);
  },
};

/**
 * /proc/PID/numa_maps (fs/proc/task_mmu.c show_numa_map): per area "<start> <policy>", shared
 * anonymous memory's backing file, " huge" for MAP_HUGETLB, then for an area with pages mapped
 * "anon=", "dirty=", "mapped=" (pages neither all anon nor all dirty), "mapmax=" (a page mapped
 * more than once), "active=" (fewer active pages than pages; never for hugetlb), "N<node>=" per
 * node with memory and "kernelpagesize_kB=". The policy is the area's own (mpol_to_str), else the
 * task's; the zero page is not counted, a huge page of a hugetlb area counts once. A pid that is
 * not a live process is ENOENT.
 */
export function numaMaps(k: Kernel, pid: number): string {
  const task = Number.isInteger(pid) ? k.processes.get(pid) : undefined;
  if (!task || task.exited) throw kernelError(ENOENT, `/proc/${show(pid)}/numa_maps: no such process`);
  const memNodes = nodesInState(k.nodes, N_MEMORY);
  let out = '';
  nk = k;
  nPageMaps = new Map();
  try {
    for (const vma of task.mm.vmas) {
      const pol = vmaOwnPolicy(vma, vma.startVpn) ?? getTaskPolicy(task);
      out += `${vma.start.toString(16).padStart(8, '0')} ${mpolToStr(pol)}`;
      // The unlinked file behind the area (MAP_HUGETLB: hugetlb_file_setup's, shared anonymous
      // memory: shmem_zero_setup's), its path escaped by seq_path (" " is \040).
      nHugetlb = vma.hugetlb !== null;
      if (nHugetlb) out += ' file=/anon_hugepage\\040(deleted) huge';
      else if (vma.shared) out += ' file=/dev/zero\\040(deleted)';
      nStats = { pages: 0, anon: 0, active: 0, dirty: 0, mapcountMax: 0, node: [] };
      walkPageRange(task.mm.pt, vma.startVpn, vma.endVpn, numaOps);
      const md = nStats;
      if (md.pages) {
        if (md.anon) out += ` anon=${md.anon}`;
        if (md.dirty) out += ` dirty=${md.dirty}`;
        if (md.pages !== md.anon && md.pages !== md.dirty) out += ` mapped=${md.pages}`;
        if (md.mapcountMax > 1) out += ` mapmax=${md.mapcountMax}`;
        if (md.active < md.pages && !nHugetlb) out += ` active=${md.active}`;
        for (const nid of memNodes) if (md.node[nid]) out += ` N${nid}=${md.node[nid]}`;
        out += ` kernelpagesize_kB=${(nHugetlb ? PAGE_SIZE << HPAGE_PMD_ORDER : PAGE_SIZE) >> 10}`;
      }
      out += '\n';
    }
  } finally {
    nPageMaps = new Map();
  }
  return out;
}
