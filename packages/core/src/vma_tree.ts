import { PagemigError } from './errno.js';
import type { Vma } from './mm.js';
import { halves, type TreapNode, treapInOrder, treapMerge, treapSplit } from './treap.js';

/**
 * The VMAs of one address space, ordered by start: what the kernel keeps in its maple tree. A
 * treap (a binary search tree balanced by random priorities) keyed by `startVpn`, each node
 * augmented with its subtree's first start, last end and largest free gap, so find, insert,
 * remove, a range walk and the first-fit gap search all cost O(log n) (plus the VMAs a walk
 * returns). VMAs of one address space never overlap.
 */
class Node implements TreapNode<Node> {
  l: Node | null = null;
  r: Node | null = null;
  minStart = 0;
  maxEnd = 0;
  /** The largest gap between consecutive VMAs of the subtree, guard page excluded. */
  maxGap = -1;

  constructor(
    readonly vma: Vma,
    readonly prio = Math.random(),
  ) {
    update(this);
  }
}

/** A gap between an area ending at `end` and the next starting at `start` (one guard page kept). */
const gapBetween = (end: number, start: number) => start - (end + 1);

function update(n: Node): void {
  const v = n.vma;
  const l = n.l;
  const r = n.r;
  n.minStart = l ? l.minStart : v.startVpn;
  n.maxEnd = r ? r.maxEnd : v.startVpn + v.npages;
  let g = -1;
  if (l) g = Math.max(l.maxGap, gapBetween(l.maxEnd, v.startVpn));
  if (r) g = Math.max(g, r.maxGap, gapBetween(v.startVpn + v.npages, r.minStart));
  n.maxGap = g;
}

const merge = (a: Node | null, b: Node | null) => treapMerge(a, b, update);

/** Splits `n` into the nodes starting before `key` (halves.l) and the rest (halves.r). */
function split(n: Node | null, key: number): void {
  treapSplit(n, (x) => x.vma.startVpn < key, update);
}

function clone(n: Node | null, map: (v: Vma) => Vma): Node | null {
  if (!n) return null;
  const c = new Node(map(n.vma), n.prio);
  c.l = clone(n.l, map);
  c.r = clone(n.r, map);
  update(c);
  return c;
}

export class VmaTree {
  private root: Node | null = null;
  private count = 0;

  /** mm->map_count. */
  get size(): number {
    return this.count;
  }

  insert(vma: Vma): void {
    split(this.root, vma.startVpn);
    const l = halves.l as Node | null;
    const r = halves.r as Node | null;
    this.root = merge(merge(l, new Node(vma)), r);
    this.count++;
  }

  /** Removes the VMA that starts at `vma.startVpn` (it must be in the tree). */
  remove(vma: Vma): void {
    split(this.root, vma.startVpn);
    const l = halves.l as Node | null;
    split(halves.r as Node | null, vma.startVpn + 1);
    const found = halves.l as Node | null;
    const r = halves.r as Node | null;
    if (found?.vma !== vma) {
      this.root = merge(merge(l, found), r);
      throw new PagemigError(
        'ERR_INVARIANT',
        `VMA at page ${vma.startVpn} is not in its address space's tree`,
      );
    }
    this.root = merge(l, r);
    this.count--;
  }

  /** find_vma_intersection for one page: the VMA containing `vpn`, or undefined. */
  find(vpn: number): Vma | undefined {
    let n = this.root;
    while (n) {
      const v = n.vma;
      if (vpn < v.startVpn) n = n.l;
      else if (vpn >= v.startVpn + v.npages) n = n.r;
      else return v;
    }
    return undefined;
  }

  /** The VMAs that overlap pages [lo, hi), in address order (a VMA_ITERATOR range walk). */
  range(lo: number, hi: number): Vma[] {
    const out: Vma[] = [];
    collect(this.root, lo, hi, out);
    return out;
  }

  /**
   * The VMAs that end above page `vpn`, in address order: a VMA iterator set at `vpn`
   * (vma_iter_init, then for_each_vma). Finding the first costs O(log n), each next one O(1)
   * amortised. Do not change the tree while iterating.
   */
  *from(vpn: number): IterableIterator<Vma> {
    for (const n of treapInOrder(this.root, (x) => x.vma.startVpn + x.vma.npages <= vpn)) yield n.vma;
  }

  /**
   * get_unmapped_area's first fit: the lowest start aligned to `align` where `npages` fit below
   * `limit`, leaving a guard page after every area; -1 if none.
   */
  firstFit(npages: number, align: number, limit: number): number {
    const root = this.root;
    if (!root) return fits(0, limit, npages, align);
    const s = fitIn(root, 0, npages, align);
    return s >= 0 ? s : fits(root.maxEnd + 1, limit, npages, align);
  }

  /** Every VMA in address order. */
  *[Symbol.iterator](): IterableIterator<Vma> {
    for (const n of treapInOrder(this.root)) yield n.vma;
  }

  /** dup_mmap: a tree of the same shape over `map(vma)` of every VMA, in one pass. */
  cloneMapped(map: (v: Vma) => Vma): VmaTree {
    const t = new VmaTree();
    t.root = clone(this.root, map);
    t.count = this.count;
    return t;
  }

  /** Drops every VMA at once (exit_mmap after the areas are torn down). */
  clear(): void {
    this.root = null;
    this.count = 0;
  }
}

function collect(n: Node | null, lo: number, hi: number, out: Vma[]): void {
  if (!n || n.maxEnd <= lo || n.minStart >= hi) return;
  collect(n.l, lo, hi, out);
  const v = n.vma;
  if (v.startVpn < hi && v.startVpn + v.npages > lo) out.push(v);
  collect(n.r, lo, hi, out);
}

/** The aligned start where `npages` fit in [from, to), or -1. */
function fits(from: number, to: number, npages: number, align: number): number {
  const s = Math.ceil(from / align) * align;
  return s + npages <= to ? s : -1;
}

/** The first fit in the gap before the subtree (from `cursor`) or between its VMAs; -1 if none. */
function fitIn(n: Node, cursor: number, npages: number, align: number): number {
  // Neither the leading gap nor any inner gap is big enough: skip the subtree.
  if (n.minStart - cursor < npages && n.maxGap < npages) return -1;
  let c = cursor;
  if (n.l) {
    const s = fitIn(n.l, c, npages, align);
    if (s >= 0) return s;
    c = n.l.maxEnd + 1;
  }
  const s = fits(c, n.vma.startVpn, npages, align);
  if (s >= 0) return s;
  return n.r ? fitIn(n.r, n.vma.startVpn + n.vma.npages + 1, npages, align) : -1;
}
