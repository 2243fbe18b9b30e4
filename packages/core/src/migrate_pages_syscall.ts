import { EINVAL, EPERM } from './errno.js';
import type { Kernel } from './kernel.js';
import { emitPhases, isolateFolios, MigrationRun, runResult, threadCpuSeconds } from './migrate.js';
import { MigrateMode, MigrateReason } from './migrate_mode.js';
import type { Mm } from './mm.js';
import { findTarget, folioMaybeMappedShared, MAX_NUMNODES, type SyscallResult } from './move_pages.js';
import { PMD_HUGE, PMD_TABLE, PTE_PFN_SHIFT, PTE_PRESENT, PTRS_PER_PTE, ZERO_PFN } from './pagetable.js';
import type { Process } from './process.js';

function nodeMask(nodes: unknown): Set<number> | null {
  if (!Array.isArray(nodes)) return null;
  const out = new Set<number>();
  for (const n of nodes) {
    if (!Number.isInteger(n) || n < 0 || n >= MAX_NUMNODES) return null;
    out.add(n);
  }
  return out;
}

/** node_remap: the node at the same position of `to` as `s` has in `from` (modulo |to|). */
function nodeRemap(s: number, from: number[], to: number[]): number {
  const i = from.indexOf(s);
  return to[i % to.length]!;
}

/**
 * migrate_pages(2) (kernel_migrate_pages): moves every page of `pid` on a node of `oldNodes` to
 * the corresponding node of `newNodes`, keeping relative placement (do_migrate_pages). Returns
 * the number of pages that could not be moved. Shared pages move only with CAP_SYS_NICE.
 */
export async function migratePagesSyscall(
  k: Kernel,
  caller: Process,
  pid: number,
  oldNodes: readonly number[],
  newNodes: readonly number[],
): Promise<SyscallResult> {
  const from = nodeMask(oldNodes);
  const to = nodeMask(newNodes);
  if (!from || !to) return { ret: -1, errno: EINVAL };
  const target = findTarget(k, caller, pid);
  if (typeof target === 'number') return { ret: -1, errno: target };
  const taskNodes = new Set(target.memsAllowed);
  if (![...to].every((n) => taskNodes.has(n)) && !caller.privileged) return { ret: -1, errno: EPERM };
  const callerNodes = new Set(caller.memsAllowed);
  const dest = [...to].filter((n) => callerNodes.has(n) && n < k.nodes.length).sort((a, b) => a - b);
  if (!dest.length) return { ret: -1, errno: EINVAL };
  const src = [...from].sort((a, b) => a - b);
  const moveAll = caller.privileged;

  let busy = 0;
  const tmp = new Set(src);
  while (tmp.size) {
    let source = -1;
    let d = 0;
    for (const s of [...tmp].sort((a, b) => a - b)) {
      if (src.length !== dest.length && dest.includes(s)) continue;
      const r = nodeRemap(s, src, dest);
      if (r === s) continue;
      source = s;
      d = r;
      // do_migrate_pages: remember the last moving pair, but take at once one whose destination
      // is not itself a pending source, so incoming pages are not moved again ({0,1} -> {1,2}
      // runs 1 -> 2 before 0 -> 1).
      if (!tmp.has(r)) break;
    }
    if (source === -1) break;
    tmp.delete(source);
    const err = await migrateToNode(k, target.mm, source, d, moveAll);
    if (err < 0) return { ret: -1, errno: -err };
    busy += err;
  }
  return { ret: busy };
}

/** migrate_to_node: isolates the mm's folios on `source` and migrates them to `dest`. */
async function migrateToNode(
  k: Kernel,
  mm: Mm,
  source: number,
  dest: number,
  moveAll: boolean,
): Promise<number> {
  const candidates: number[] = [];
  const seen = new Set<number>();
  const consider = (pfn: number) => {
    if (pfn === ZERO_PFN) return;
    const head = k.pages.head(pfn);
    if (seen.has(head) || k.nodeOf(head) !== source) return;
    seen.add(head);
    // Unless MPOL_MF_MOVE_ALL, a shared folio is left where it is (not a failure).
    if (!moveAll && folioMaybeMappedShared(k, head)) return;
    candidates.push(head);
  };
  const pt = mm.pt;
  for (const vma of mm.vmas) {
    if (!vma.migratable) continue;
    for (let vpn = vma.startVpn; vpn < vma.endVpn; ) {
      const pmdIdx = vpn >>> 9;
      const stop = Math.min(vma.endVpn, (pmdIdx + 1) * PTRS_PER_PTE);
      const pmd = pt.pmd[pmdIdx]!;
      if (pmd & PMD_HUGE && pmd & PTE_PRESENT) consider(pmd >>> PTE_PFN_SHIFT);
      else if (pmd & PMD_TABLE) {
        for (let v = vpn; v < stop; v++) {
          const e = pt.pte[pt.pteIndex(v)]!;
          if (e & PTE_PRESENT) consider(e >>> PTE_PFN_SHIFT);
        }
      }
      vpn = stop;
    }
  }
  const { heads, refused } = isolateFolios(k, candidates);
  if (!heads.length) return refused;
  const t0 = performance.now();
  const c0 = threadCpuSeconds();
  const run = new MigrationRun(k, k.offload, dest, MigrateMode.MIGRATE_SYNC, MigrateReason.MR_SYSCALL, {
    demoteOrigin: 'kswapd',
    copyTimeoutMs: 10_000,
  });
  const ret = await run.migratePages(heads);
  emitPhases(k, runResult(run, ret, refused, t0, c0));
  return ret < 0 ? ret : ret + refused;
}
