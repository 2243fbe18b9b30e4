/**
 * The balanced binary search tree behind the VMA tree and the rmap's interval tree: a treap
 * (ordered by key, heap-ordered by random priorities), with split and merge. Each tree augments
 * its nodes its own way through `update`, which recomputes a node from its children.
 */
export interface TreapNode<N> {
  l: N | null;
  r: N | null;
  readonly prio: number;
}

export function treapMerge<N extends TreapNode<N>>(
  a: N | null,
  b: N | null,
  update: (n: N) => void,
): N | null {
  if (!a) return b;
  if (!b) return a;
  if (a.prio > b.prio) {
    a.r = treapMerge(a.r, b, update);
    update(a);
    return a;
  }
  b.l = treapMerge(a, b.l, update);
  update(b);
  return b;
}

/** The two halves of the last split (module state, so a split allocates nothing). */
export const halves: { l: unknown; r: unknown } = { l: null, r: null };

/** Splits `n` into the nodes for which `left` holds (halves.l) and the rest (halves.r). */
export function treapSplit<N extends TreapNode<N>>(
  n: N | null,
  left: (n: N) => boolean,
  update: (n: N) => void,
): void {
  if (!n) {
    halves.l = halves.r = null;
    return;
  }
  if (left(n)) {
    treapSplit(n.r, left, update);
    n.r = halves.l as N | null;
    update(n);
    halves.l = n;
  } else {
    treapSplit(n.l, left, update);
    n.l = halves.r as N | null;
    update(n);
    halves.r = n;
  }
}

/**
 * The nodes in key order, from the first for which `before` does not hold (`before` must hold for
 * a prefix of the order): one descent to it, then O(1) amortised per node.
 */
export function* treapInOrder<N extends TreapNode<N>>(
  root: N | null,
  before?: (n: N) => boolean,
): IterableIterator<N> {
  const stack: N[] = [];
  let n = root;
  if (before) {
    // Down to the first node: those the path goes left at come after it, the others are skipped.
    while (n) {
      if (before(n)) n = n.r;
      else {
        stack.push(n);
        n = n.l;
      }
    }
  }
  while (n || stack.length) {
    while (n) {
      stack.push(n);
      n = n.l;
    }
    const top = stack.pop()!;
    yield top;
    n = top.r;
  }
}
