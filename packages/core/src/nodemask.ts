import type { PgData } from './node.js';

/**
 * enum node_states (include/linux/nodemask.h) without CONFIG_HIGHMEM, where N_HIGH_MEMORY is
 * N_NORMAL_MEMORY. Node states are fixed at boot here (no memory or CPU hotplug).
 */
export const N_POSSIBLE = 0;
export const N_ONLINE = 1;
/** The node has memory in a zone up to ZONE_NORMAL (check_for_memory). */
export const N_NORMAL_MEMORY = 2;
export const N_HIGH_MEMORY = N_NORMAL_MEMORY;
/** The node has memory in any zone, ZONE_MOVABLE included (node_present_pages > 0). */
export const N_MEMORY = 3;
export const N_CPU = 4;
/** ACPI SRAT generic initiators: devices that allocate memory but have no CPU. None here. */
export const N_GENERIC_INITIATOR = 5;
export const NR_NODE_STATES = 6;
export type NodeState = 0 | 1 | 2 | 3 | 4 | 5;

/**
 * node_state(nid, state). Every configured node is possible; a node is online when it has memory
 * or CPUs (a slot with neither is possible but never onlined, as on x86).
 */
export function nodeState(node: PgData, state: NodeState): boolean {
  switch (state) {
    case N_POSSIBLE:
      return true;
    case N_ONLINE:
      return node.nrPages > 0 || node.cpus > 0;
    case N_NORMAL_MEMORY:
      return node.zones.some((z) => z.type !== 'Movable' && z.present > 0);
    case N_MEMORY:
      return node.nrPages > 0;
    case N_CPU:
      return node.cpus > 0;
    case N_GENERIC_INITIATOR:
      return false;
  }
}

/** for_each_node_state: the ids of the nodes in `state`, ascending. */
export function nodesInState(nodes: readonly PgData[], state: NodeState): number[] {
  const out: number[] = [];
  for (const n of nodes) if (nodeState(n, state)) out.push(n.nid);
  return out;
}

/** "%*pbl" (bitmap_print_to_pagebuf as a list): ascending ids as ranges, e.g. "0-1,3"; "" if none. */
export function bitmapList(ids: readonly number[]): string {
  const sorted = [...new Set(ids)].sort((a, b) => a - b);
  const out: string[] = [];
  for (let i = 0; i < sorted.length; ) {
    let j = i;
    while (j + 1 < sorted.length && sorted[j + 1] === sorted[j]! + 1) j++;
    out.push(i === j ? `${sorted[i]}` : `${sorted[i]}-${sorted[j]}`);
    i = j + 1;
  }
  return out.join(',');
}
