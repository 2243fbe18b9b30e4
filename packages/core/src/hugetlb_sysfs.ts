import { EINVAL, ERANGE } from './errno.js';
import { HUGETLB_SIZE_KB, memoryNodes, setMaxHugePages, ulong } from './hugetlb.js';
import type { Kernel } from './kernel.js';

/**
 * The hugetlb pool's knobs (mm/hugetlb_sysfs.c, mm/hugetlb_sysctl.c): /proc/sys/vm/nr_hugepages
 * and nr_overcommit_hugepages, /sys/kernel/mm/hugepages/hugepages-2048kB/ and the per-node
 * /sys/devices/system/node/nodeN/hugepages/hugepages-2048kB/. nr_hugepages_mempolicy (which
 * resizes by the writing task's policy) is not modeled: a sysfs write here has no task.
 */

const HSTATE_DIR = `hugepages/hugepages-${HUGETLB_SIZE_KB}kB`;

/** ULONG_MAX (as the nearest double): proc_doulongvec_minmax takes any unsigned long. */
const ULONG_MAX = 2 ** 64 - 1;

/**
 * __nr_hugepages_store_common: resizes the persistent pool to `count` pages, over the nodes with
 * memory (`nid` -1) or on node `nid` alone (its own count, the others' kept).
 */
export function nrHugepagesStore(k: Kernel, count: number, nid: number): void {
  setMaxHugePages(k, count, nid, nid < 0 ? memoryNodes(k) : [nid]);
}

/** vm.nr_hugepages (reads max_huge_pages) and vm.nr_overcommit_hugepages, for Sysctl. */
export function hugetlbSysctls(k: Kernel) {
  const h = k.hstate;
  return [
    [
      'vm.nr_hugepages',
      {
        min: 0,
        max: ULONG_MAX,
        ulong: true,
        get: () => h.maxHugePages,
        set: (v: number) => {
          nrHugepagesStore(k, v, -1);
          return 0;
        },
      },
    ],
    [
      'vm.nr_overcommit_hugepages',
      {
        min: 0,
        max: ULONG_MAX,
        ulong: true,
        get: () => h.nrOvercommitHugePages,
        set: (v: number) => {
          h.nrOvercommitHugePages = v;
          return 0;
        },
      },
    ],
  ] as const;
}

/**
 * kstrtoul(buf, 10): decimal digits after an optional '+', one trailing newline allowed; the value
 * or a negative errno (-EINVAL malformed, -ERANGE above ULONG_MAX).
 */
function kstrtoul(value: string | number): number {
  const s = typeof value === 'number' ? String(value) : value;
  const m = typeof s === 'string' ? /^\+?(\d+)\n?$/.exec(s) : null;
  if (!m) return -EINVAL;
  return BigInt(m[1]!) >= 2n ** 64n ? -ERANGE : Number(m[1]);
}

/** A sysfs attribute: its show text, and its store (0 or an errno) if it is writable. */
export interface SysfsAttribute {
  path: string;
  show: () => string;
  store?: (value: string | number) => number;
}

/** A store that takes an unsigned long (kstrtoul) and applies it. */
function ulongStore(apply: (v: number) => void) {
  return (value: string | number) => {
    const v = kstrtoul(value);
    if (v < 0) return -v;
    apply(v);
    return 0;
  };
}

/**
 * hstate_attrs (global) and per_node_hstate_attrs (every online node): "%lu\n" each. The global
 * nr_hugepages shows nr_huge_pages (surplus pages included), unlike vm.nr_hugepages.
 */
export function hugetlbSysfsFiles(k: Kernel, onlineNodes: readonly number[]): SysfsAttribute[] {
  const h = k.hstate;
  const dir = `/sys/kernel/mm/${HSTATE_DIR}`;
  const files: SysfsAttribute[] = [
    {
      path: `${dir}/nr_hugepages`,
      show: () => `${h.nrHugePages}\n`,
      store: ulongStore((v) => nrHugepagesStore(k, v, -1)),
    },
    {
      path: `${dir}/nr_overcommit_hugepages`,
      show: () => `${h.nrOvercommitHugePages}\n`,
      store: ulongStore((v) => {
        h.nrOvercommitHugePages = v;
      }),
    },
    { path: `${dir}/free_hugepages`, show: () => `${h.freeHugePages}\n` },
    { path: `${dir}/resv_hugepages`, show: () => `${ulong(h.resvHugePages)}\n` },
    { path: `${dir}/surplus_hugepages`, show: () => `${h.surplusHugePages}\n` },
  ];
  for (const nid of onlineNodes) {
    const node = `/sys/devices/system/node/node${nid}/${HSTATE_DIR}`;
    files.push(
      {
        path: `${node}/nr_hugepages`,
        show: () => `${h.nrHugePagesNode[nid]}\n`,
        store: ulongStore((v) => nrHugepagesStore(k, v, nid)),
      },
      { path: `${node}/free_hugepages`, show: () => `${h.freeHugePagesNode[nid]}\n` },
      { path: `${node}/surplus_hugepages`, show: () => `${h.surplusHugePagesNode[nid]}\n` },
    );
  }
  return files;
}

/** hugetlb_report_meminfo: the HugePages_* lines of /proc/meminfo and the Hugetlb total. */
export function hugetlbReportMeminfo(k: Kernel): string {
  const h = k.hstate;
  const n = (v: number | string, w: number) => String(v).padStart(w);
  return (
    `HugePages_Total:   ${n(h.nrHugePages, 5)}\n` +
    `HugePages_Free:    ${n(h.freeHugePages, 5)}\n` +
    `HugePages_Rsvd:    ${n(ulong(h.resvHugePages), 5)}\n` +
    `HugePages_Surp:    ${n(h.surplusHugePages, 5)}\n` +
    `Hugepagesize:   ${n(HUGETLB_SIZE_KB, 8)} kB\n` +
    `Hugetlb:        ${n(h.nrHugePages * HUGETLB_SIZE_KB, 8)} kB\n`
  );
}
