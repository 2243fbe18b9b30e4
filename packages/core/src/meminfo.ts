import { HUGETLB_NR } from './hugetlb.js';
import { hugetlbReportMeminfo } from './hugetlb_sysfs.js';
import type { Kernel } from './kernel.js';
import { HPAGE_PMD_NR, PAGE_SIZE, WMARK_HIGH } from './mmzone.js';
import { vmstatValues } from './procfs.js';

/**
 * /proc/meminfo (fs/proc/meminfo.c, meminfo_proc_show), in the kernel's order and format, with the
 * lines the model can state: its memory, LRU and page-table counts, zeros for what it has none of by
 * construction (swap, files, buffers, bounce buffers, NFS, FUSE, KVM) and hugetlb_report_meminfo.
 * Lines about kernel allocations it does not model (slab, kernel stacks, vmalloc, percpu,
 * Committed_AS), ShmemPmdMapped, and those of config options (Zswap, CMA, DirectMap) are left out.
 */

/** sysctl_overcommit_ratio's default: vm.overcommit_ratio is not modeled. */
const OVERCOMMIT_RATIO = 50;

/** show_val_kb: the label (already padded to 16 columns), pages in kB right-aligned in 8, " kB". */
function kb(label: string, pages: number): string {
  return `${label}${String(pages * (PAGE_SIZE / 1024)).padStart(8)} kB\n`;
}

/**
 * si_mem_available: free pages less totalreserve_pages (every zone's high watermark, capped at its
 * managed pages; the model keeps no lowmem reserve). The file LRU and reclaimable slab it would
 * add (each less min(half, the low watermarks)) are empty here.
 */
function memAvailable(k: Kernel): number {
  let available = 0;
  for (const z of k.zones) available += z.freePages - Math.min(z.watermark[WMARK_HIGH]!, z.managed);
  return Math.max(0, available);
}

/** The text of /proc/meminfo. */
export function meminfo(k: Kernel): string {
  const v = vmstatValues(k);
  let total = 0;
  for (const z of k.zones) total += z.managed;
  // vm_commit_limit: (totalram_pages - hugetlb_total_pages) * overcommit_ratio / 100 + swap.
  const commitLimit = Math.floor(((total - k.hstate.nrHugePages * HUGETLB_NR) * OVERCOMMIT_RATIO) / 100);
  return (
    kb('MemTotal:       ', total) +
    kb('MemFree:        ', v.nr_free_pages) +
    kb('MemAvailable:   ', memAvailable(k)) +
    kb('Buffers:        ', 0) +
    // NR_FILE_PAGES less swap cache and buffers: shmem is the only page cache here.
    kb('Cached:         ', v.nr_shmem) +
    kb('SwapCached:     ', 0) +
    kb('Active:         ', v.nr_active_anon) +
    kb('Inactive:       ', v.nr_inactive_anon) +
    kb('Active(anon):   ', v.nr_active_anon) +
    kb('Inactive(anon): ', v.nr_inactive_anon) +
    kb('Active(file):   ', 0) +
    kb('Inactive(file): ', 0) +
    kb('Unevictable:    ', v.nr_unevictable) +
    kb('Mlocked:        ', v.nr_mlock) +
    kb('SwapTotal:      ', 0) +
    kb('SwapFree:       ', 0) +
    kb('Dirty:          ', 0) +
    kb('Writeback:      ', 0) +
    kb('AnonPages:      ', v.nr_anon_pages) +
    kb('Mapped:         ', v.nr_mapped) +
    kb('Shmem:          ', v.nr_shmem) +
    kb('PageTables:     ', v.nr_page_table_pages) +
    kb('SecPageTables:  ', 0) +
    kb('NFS_Unstable:   ', 0) +
    kb('Bounce:         ', 0) +
    kb('WritebackTmp:   ', 0) +
    kb('CommitLimit:    ', commitLimit) +
    kb('AnonHugePages:  ', v.nr_anon_transparent_hugepages * HPAGE_PMD_NR) +
    kb('ShmemHugePages: ', v.nr_shmem_hugepages * HPAGE_PMD_NR) +
    kb('FileHugePages:  ', 0) +
    kb('FilePmdMapped:  ', 0) +
    hugetlbReportMeminfo(k)
  );
}
