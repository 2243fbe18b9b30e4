import { PAGE_SIZE } from '../mmzone.js';
import { type Lane, makespan, type Segment, segmentsOf } from './bandwidth_sharing.js';
import { batchesOf, type FolioGroup, kernelOverhead } from './kernel_overhead.js';
import type { HardwareProfile } from './profile.js';
import { firstCpuOf, type Placement, placeThreads, ResourceMap } from './topology.js';

/** Who copies the folios of a batch. */
export type Copier =
  /** folio_mc_copy() on the migrating task, folio by folio, in the move phase. */
  | { kind: 'kernel' }
  /** mtcopy: N worker threads, each a contiguous run of folios (or a slice of every folio). */
  | { kind: 'threads'; threads: number; placement: Placement }
  /** dcbm: N channels of a DMA engine, each a contiguous slice of the batch. */
  | { kind: 'dma'; engine: string; channels: number };

/** What the model needs to know about a migration. */
export interface RunShape {
  /** Folios in migration order, grouped. */
  folios: readonly FolioGroup[];
  /** NR_MAX_BATCHED_MIGRATION in base pages. */
  batchPages: number;
  from: number;
  to: number;
  copier: Copier;
}

/** Modeled seconds per phase (the engine's phases, plus the per-call fixed cost). */
export interface ModeledPhases {
  call: number;
  unmap: number;
  flush: number;
  batchCopy: number;
  fallbackCopy: number;
  move: number;
}

export interface ModeledTime {
  profile: string;
  phases: ModeledPhases;
  totalSeconds: number;
  /** Bytes migrated / totalSeconds, in GB/s (1e9 bytes). */
  GBps: number;
}

/** Seconds of one batch's copy phase: its lanes in the bandwidth-sharing model, plus a DMA completion. */
function copySeconds(p: HardwareProfile, shape: RunShape, batch: readonly FolioGroup[]): number {
  const res = new ResourceMap(p);
  const c = shape.copier;
  const folios = batch.reduce((s, g) => s + g.count, 0);
  const srcSocket = p.nodes[shape.from]!.socket;
  const lanes: Lane[] = [];
  // Contiguous near-equal slices: lane i gets folios [nr*i/k, nr*(i+1)/k), as dcbm and mtcopy do.
  const slice = (k: number, i: number, fn: (g: FolioGroup, n: number) => void) => {
    let lo = Math.floor((folios * i) / k);
    let hi = Math.floor((folios * (i + 1)) / k);
    for (const g of batch) {
      const take = Math.max(0, Math.min(g.count, hi) - Math.max(0, lo));
      if (take > 0) fn(g, take);
      lo -= g.count;
      hi -= g.count;
    }
  };
  if (c.kind === 'kernel') {
    const path = res.cpuPath(firstCpuOf(p, srcSocket), shape.from, shape.to);
    // Folio by folio between the rest of each move: every copy starts cold.
    const coldStart = p.cpu.copyStartNs * 1e-9;
    lanes.push({
      start: 0,
      path,
      segments: batch.flatMap((g) => segmentsOf(g.count, coldStart, g.pages * PAGE_SIZE)),
    });
    return makespan(res.resources, lanes, p.contention.sharpness);
  }
  if (c.kind === 'threads') {
    const cpus = placeThreads(p, c.threads, c.placement);
    cpus.forEach((cpu, i) => {
      const path = res.cpuPath(cpu, shape.from, shape.to);
      const segments: Segment[] = [];
      // Fewer folios than threads: every thread copies 1/N of every folio.
      if (folios < c.threads)
        for (const g of batch) segments.push(...segmentsOf(g.count, 0, (g.pages * PAGE_SIZE) / c.threads));
      else slice(c.threads, i, (g, n) => segments.push(...segmentsOf(n, 0, g.pages * PAGE_SIZE)));
      lanes.push({ start: (i + 1) * p.cpu.dispatchUs * 1e-6, path, segments });
    });
    return makespan(res.resources, lanes, p.contention.sharpness);
  }
  const e = p.dma[c.engine]!;
  const k = Math.min(c.channels, folios, e.maxChannels);
  for (let i = 0; i < k; i++) {
    const path = res.dmaPath(c.engine, i, shape.from, shape.to);
    const segments: Segment[] = [];
    slice(k, i, (g, n) => {
      // One descriptor per folio; the IOMMU maps a PMD-mapped THP with one 2 MiB page.
      const latency = (e.perDescriptorNs + (g.pmdMapped ? 1 : g.pages) * e.perMappingNs) * 1e-9;
      segments.push(...segmentsOf(n, latency, g.pages * PAGE_SIZE));
    });
    lanes.push({ start: (i + 1) * e.batchSetupUs * 1e-6, path, segments });
  }
  // The last channel's completion interrupt runs the callback that wakes the migrating task.
  return makespan(res.resources, lanes, p.contention.sharpness) + e.completionUs * 1e-6;
}

/**
 * Modeled time of a migration of `shape` on the hardware of `p`: a pure, deterministic function.
 * Batches are cut like migrate_pages() does; each runs unmap, one TLB flush, the batch copy (lanes
 * in the bandwidth-sharing model) and the move; the kernel copier copies in the move phase.
 */
export function modeledRunTime(p: HardwareProfile, shape: RunShape): ModeledTime {
  const c = shape.copier;
  if (c.kind === 'dma' && p.dma[c.engine] === undefined) {
    throw new RangeError(
      `profile ${p.name} has no DMA engine ${c.engine} (has: ${Object.keys(p.dma).join(', ') || 'none'})`,
    );
  }
  for (const n of [shape.from, shape.to]) {
    if (!p.nodes[n])
      throw new RangeError(`profile ${p.name} has no node ${n} (nodes 0..${p.nodes.length - 1})`);
  }
  const phases: ModeledPhases = {
    call: p.kernel.callUs * 1e-6,
    unmap: 0,
    flush: 0,
    batchCopy: 0,
    fallbackCopy: 0,
    move: 0,
  };
  let bytes = 0;
  const memo = new Map<string, number>();
  for (const { folios: batch, repeat } of batchesOf(shape.folios, shape.batchPages)) {
    const k = kernelOverhead(p, batch);
    phases.unmap += k.unmap * repeat;
    phases.move += k.move * repeat;
    phases.flush += p.kernel.tlbFlushUs * 1e-6 * repeat;
    const key = JSON.stringify(batch);
    let copy = memo.get(key);
    if (copy === undefined) memo.set(key, (copy = copySeconds(p, shape, batch)));
    if (c.kind === 'kernel') phases.fallbackCopy += copy * repeat;
    else phases.batchCopy += copy * repeat;
    for (const g of batch) bytes += g.count * g.pages * PAGE_SIZE * repeat;
  }
  const totalSeconds = Object.values(phases).reduce((s, v) => s + v, 0);
  return { profile: p.name, phases, totalSeconds, GBps: bytes / totalSeconds / 1e9 };
}
