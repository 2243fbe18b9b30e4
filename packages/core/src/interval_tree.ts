import { PagemigError } from './errno.js';
import type { Vma } from './mm.js';
import { halves, type TreapNode, treapInOrder, treapMerge, treapSplit } from './treap.js';

/**
 * The VMAs that map one rmap owner, keyed by the page offsets they map (mm/interval_tree.c: the
 * anon_vma's rb_root and the shmem object's i_mmap). VMAs of different processes may map the same
 * offsets (fork), so this is an interval tree: a treap ordered by (pgoff, id), each node augmented
 * with the largest end offset of its subtree. Finding the VMAs that map a folio costs O(log n + k).
 */
class Node implements TreapNode<Node> {
  l: Node | null = null;
  r: Node | null = null;
  maxEnd = 0;

  constructor(
    readonly vma: Vma,
    readonly prio = Math.random(),
  ) {
    this.maxEnd = vma.pgoff + vma.npages;
  }
}

const before = (a: Vma, b: Vma) => a.pgoff < b.pgoff || (a.pgoff === b.pgoff && a.id < b.id);

function update(n: Node): void {
  let m = n.vma.pgoff + n.vma.npages;
  if (n.l && n.l.maxEnd > m) m = n.l.maxEnd;
  if (n.r && n.r.maxEnd > m) m = n.r.maxEnd;
  n.maxEnd = m;
}

const merge = (a: Node | null, b: Node | null) => treapMerge(a, b, update);

/** Splits off the node holding exactly `key`: halves.l before it, halves.r after it; returns it. */
function take(n: Node | null, key: Vma): Node | null {
  if (!n) {
    halves.l = halves.r = null;
    return null;
  }
  if (n.vma === key) {
    halves.l = n.l;
    halves.r = n.r;
    n.l = n.r = null;
    return n;
  }
  if (before(n.vma, key)) {
    const found = take(n.r, key);
    n.r = halves.l as Node | null;
    update(n);
    halves.l = n;
    return found;
  }
  const found = take(n.l, key);
  n.l = halves.r as Node | null;
  update(n);
  halves.r = n;
  return found;
}

export class VmaIntervalTree {
  private root: Node | null = null;
  private count = 0;
  /** VMAs that forbid migration (VM_IO/VM_PFNMAP-like): compaction asks without a walk. */
  unmigratable = 0;

  get size(): number {
    return this.count;
  }

  /** The VMA when it is the only one (the common case: no fork, no split), else undefined. */
  single(): Vma | undefined {
    return this.count === 1 ? this.root!.vma : undefined;
  }

  insert(vma: Vma): void {
    treapSplit(this.root, (x) => before(x.vma, vma), update);
    const l = halves.l as Node | null;
    const r = halves.r as Node | null;
    this.root = merge(merge(l, new Node(vma)), r);
    this.count++;
    if (!vma.migratable) this.unmigratable++;
  }

  remove(vma: Vma): void {
    const found = take(this.root, vma);
    this.root = merge(halves.l as Node | null, halves.r as Node | null);
    if (!found)
      throw new PagemigError('ERR_INVARIANT', `VMA at page ${vma.startVpn} is not in its rmap owner's tree`);
    this.count--;
    if (!vma.migratable) this.unmigratable--;
  }

  /** Whether the tree holds `vma` (at its current extent): O(log n). */
  has(vma: Vma): boolean {
    let n = this.root;
    while (n && n.vma !== vma) n = before(n.vma, vma) ? n.r : n.l;
    return n !== null;
  }

  /**
   * vma_interval_tree_foreach: calls `visit` for every VMA mapping a page offset in [lo, hi), in
   * offset order, until it returns true.
   */
  overlapping(lo: number, hi: number, visit: (vma: Vma) => boolean | undefined): boolean {
    return walk(this.root, lo, hi, visit);
  }

  *[Symbol.iterator](): IterableIterator<Vma> {
    for (const n of treapInOrder(this.root)) yield n.vma;
  }
}

function walk(n: Node | null, lo: number, hi: number, visit: (vma: Vma) => boolean | undefined): boolean {
  if (!n || n.maxEnd <= lo) return false;
  if (walk(n.l, lo, hi, visit)) return true;
  const v = n.vma;
  // Everything right of here starts at or after this offset.
  if (v.pgoff >= hi) return false;
  if (v.pgoff + v.npages > lo && visit(v)) return true;
  return walk(n.r, lo, hi, visit);
}
