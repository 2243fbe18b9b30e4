import { EACCES, EINVAL, ENOENT, kernelError } from './errno.js';
import { hugetlbSysfsFiles } from './hugetlb_sysfs.js';
import type { Kernel } from './kernel.js';
import { memoryTierSysfsFiles } from './memory_tiers.js';
import { ilWeightShow, ilWeightStore, WEIGHTED_INTERLEAVE_DIR } from './mempolicy_sysfs.js';
import { suggestKey } from './migrator_options.js';
import {
  bitmapList,
  N_CPU,
  N_GENERIC_INITIATOR,
  N_MEMORY,
  N_NORMAL_MEMORY,
  N_ONLINE,
  N_POSSIBLE,
  type NodeState,
  nodesInState,
} from './nodemask.js';
import { show } from './show.js';
import { formatNumastat } from './vmstat.js';

const NODE_DIR = '/sys/devices/system/node';

/** node_state_attr[] of drivers/base/node.c (has_high_memory exists only with CONFIG_HIGHMEM). */
const STATE_FILES: readonly [string, NodeState][] = [
  ['possible', N_POSSIBLE],
  ['online', N_ONLINE],
  ['has_normal_memory', N_NORMAL_MEMORY],
  ['has_memory', N_MEMORY],
  ['has_cpu', N_CPU],
  ['has_generic_initiator', N_GENERIC_INITIATOR],
];

/**
 * The /sys files of the machine's nodes (drivers/base/node.c), with the kernel's text: the node
 * state masks (print_nodes_state, "%*pbl\n": "0-1,3\n", "\n" when empty) and, for every online
 * node, nodeN/cpulist, nodeN/distance and nodeN/numastat (read-only: the machine has no hotplug);
 * /sys/kernel/mm/mempolicy/weighted_interleave/nodeN, each node's weight (1..255, writable); and the
 * memory tiers' memory_tierN/nodelist and /sys/kernel/mm/numa/demotion_enabled (memory_tiers.ts).
 */
export class Sysfs {
  private readonly files = new Map<string, () => string>();
  /** The files that take writes (mode 0644): their store op, returning 0 or an errno. */
  private readonly stores = new Map<string, (value: string | number) => number>();

  constructor(private readonly k: Kernel) {
    for (const [name, state] of STATE_FILES)
      this.files.set(`${NODE_DIR}/${name}`, () => `${bitmapList(nodesInState(k.nodes, state))}\n`);
    const online = nodesInState(k.nodes, N_ONLINE);
    for (const nid of online) {
      const node = k.nodes[nid]!;
      const cpus = Array.from({ length: node.cpus }, (_, i) => node.firstCpu + i);
      // node_read_cpulist: cpumap_print_to_pagebuf(true, ...).
      this.files.set(`${NODE_DIR}/node${nid}/cpulist`, () => `${bitmapList(cpus)}\n`);
      // node_read_distance: one distance per online node, "%s%d" with a space before all but node 0.
      this.files.set(
        `${NODE_DIR}/node${nid}/distance`,
        () => `${online.map((i) => `${i ? ' ' : ''}${node.distances[i]}`).join('')}\n`,
      );
      this.files.set(`${NODE_DIR}/node${nid}/numastat`, () => formatNumastat(node.zones));
    }
    // mm/mempolicy.c: the weighted-interleave weight of every node (add_weight_node).
    for (const node of k.nodes) {
      const path = `${WEIGHTED_INTERLEAVE_DIR}/node${node.nid}`;
      this.files.set(path, () => ilWeightShow(k, node.nid));
      this.stores.set(path, (v) => ilWeightStore(k, node.nid, v));
    }
    // mm/hugetlb_sysfs.c: the hstate's files, global and per online node (hugetlb_register_node).
    for (const f of hugetlbSysfsFiles(k, online)) {
      this.files.set(f.path, f.show);
      if (f.store) this.stores.set(f.path, f.store);
    }
    // mm/memory-tiers.c: memory_tierN/nodelist and numa/demotion_enabled.
    for (const f of memoryTierSysfsFiles(k)) {
      this.files.set(f.path, f.show);
      if (f.store) this.stores.set(f.path, f.store);
    }
  }

  /**
   * Writes a sysfs file: 0, or the errno the write(2) returns (ENOENT for a file the machine does
   * not have, EACCES for a read-only one, what the file's store op refuses with otherwise).
   */
  write(path: string, value: string | number): number {
    if (typeof path !== 'string') throw kernelError(EINVAL, `sysfs path ${show(path)} is not a string`);
    const store = this.stores.get(path);
    if (!store) return this.files.has(path) ? EACCES : ENOENT;
    this.k.assertOpen(`sysfs.write(${JSON.stringify(path)})`);
    return store(value);
  }

  /** The text of a sysfs file, as cat(1) prints it. A file the machine does not have is ENOENT. */
  read(path: string): string {
    if (typeof path !== 'string') throw kernelError(EINVAL, `sysfs path ${show(path)} is not a string`);
    const file = this.files.get(path);
    if (file) return file();
    const hint = suggestKey(path, this.files.keys());
    throw kernelError(ENOENT, `${path}: no such file${hint ? `; did you mean ${hint}?` : ''}`);
  }

  /** Every file this machine has, sorted. */
  list(): string[] {
    return [...this.files.keys()].sort();
  }
}
