import { EINVAL } from './errno.js';
import type { Kernel } from './kernel.js';

/**
 * mm/mempolicy.c's sysfs side: the weighted-interleave weight of each node (iw_table), read and
 * written as /sys/kernel/mm/mempolicy/weighted_interleave/nodeN.
 */

export const WEIGHTED_INTERLEAVE_DIR = '/sys/kernel/mm/mempolicy/weighted_interleave';

/** iw_table of each machine: node -> weight, 0 = the system default (1). */
const iwTables = new WeakMap<Kernel, Uint8Array>();

/** get_il_weight: node `nid`'s weighted-interleave weight (default 1). */
export function getIlWeight(k: Kernel, nid: number): number {
  return iwTables.get(k)?.[nid] || 1;
}

/** kstrtou8 (base 0, an optional '+', one trailing newline): the value, or null if refused. */
function kstrtou8(buf: string): number | null {
  const m = /^\+?(?:0[xX]([0-9a-fA-F]+)|(0[0-7]*)|([1-9]\d*))\n?$/.exec(buf);
  if (!m) return null;
  const v = m[1] !== undefined ? parseInt(m[1], 16) : m[2] !== undefined ? parseInt(m[2], 8) : Number(m[3]);
  return v <= 255 ? v : null;
}

/** node_show: the weight and a newline. */
export function ilWeightShow(k: Kernel, nid: number): string {
  return `${getIlWeight(k, nid)}\n`;
}

/**
 * node_store: a weight of 1..255 (kstrtou8; 0, an empty write or anything else is EINVAL). Returns
 * 0 or the errno, as the write(2) on the file would.
 */
export function ilWeightStore(k: Kernel, nid: number, value: string | number): number {
  const weight = kstrtou8(String(value));
  if (!weight) return EINVAL;
  let t = iwTables.get(k);
  if (!t) iwTables.set(k, (t = new Uint8Array(k.nodes.length)));
  t[nid] = weight;
  return 0;
}
