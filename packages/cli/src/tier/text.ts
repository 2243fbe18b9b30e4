import type { Io } from '../io.js';
import { formatSize, renderTable } from '../table.js';
import type { TierRun } from './run.js';

/** The result of `pagemig tier` (tier.json, and the --json document without its envelope). */
export interface TierDocument {
  machine: { nodes: { node: number; tier: string; memory: number; cpus: boolean }[] };
  workload: Record<string, unknown> & { kind: string; bytes: number; durationMs: number; seed: number };
  sampling: { everyMs: number; how: string; arrivedShare: number };
  scan: { scanDelayMs: number; scanPeriodMs: number; scanSizeMb: number };
  /** This process's raw copy of one 4 KiB page (TypedArray.set between warm buffers), seconds. */
  rawCopy4KiBSeconds: number;
  runs: (TierRun & { promotion: TierRun['promotion'] & { cpuPerPageVsRawCopy: number | null } })[];
  files: { json: string; html: string };
}

/** Moves after the first hot range (which starts where first touch and kswapd left it). */
export const laterMoves = (r: TierRun) => r.moves.slice(1);

export function median(xs: readonly number[]): number | null {
  if (!xs.length) return null;
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/** "median ms (arrived/moves)" of the hot-set arrivals, or '-' without moves. */
export function arrivalCell(r: TierRun): string {
  const moves = laterMoves(r);
  if (!moves.length) return '-';
  const arrived = moves.map((m) => m.arrivedMs).filter((x): x is number => x !== null);
  const med = median(arrived);
  return `${med === null ? '-' : med.toFixed(0)} (${arrived.length}/${moves.length})`;
}

const us = (s: number | null) => (s === null ? '-' : (s * 1e6).toFixed(1));

export function printTier(io: Io, doc: TierDocument): void {
  const w = doc.workload;
  const [dram, cxl] = doc.machine.nodes;
  io.stdout.write(
    `machine: node 0 DRAM ${formatSize(dram!.memory)} (CPUs), node 1 CXL ${formatSize(cxl!.memory)} (no CPUs); kswapd demotes, kernel.numa_balancing=2 promotes\n`,
  );
  io.stdout.write(
    `workload: ${w.kind === 'replay' ? `replay of ${String(w.file)} (${String(w.format)}, ${String(w.records)} records)` : String(w.pattern)} over ${formatSize(w.bytes)} for ${w.durationMs} ms, seed ${w.seed}\n`,
  );
  io.stdout.write(
    renderTable(
      [
        'migrator',
        { header: 'promoted', align: 'right' },
        { header: 'demoted', align: 'right' },
        { header: `hot set on DRAM ms (median, arrived/moves)`, align: 'right' },
        { header: 'engine CPU µs/promoted page', align: 'right' },
        { header: 'x raw 4KiB copy', align: 'right' },
        { header: 'modeled ms', align: 'right' },
        { header: 'modeled ns/access', align: 'right' },
        { header: 'wall ms', align: 'right' },
      ],
      doc.runs.map((r) => [
        r.migrator.label,
        r.pagesPromoted,
        r.pagesDemoted,
        arrivalCell(r),
        us(r.promotion.cpuPerPageSeconds),
        r.promotion.cpuPerPageVsRawCopy === null ? '-' : r.promotion.cpuPerPageVsRawCopy.toFixed(1),
        (r.modeled.totalNs / 1e6).toFixed(1),
        r.modeled.nsPerAccess.toFixed(1),
        r.wallMs.toFixed(0),
      ]),
    ),
  );
  io.stdout.write(
    renderTable(
      ['region pages', ...['DRAM', 'CXL'].flatMap((t) => [`${t} before`, `${t} after`])].map((h, i) => ({
        header: h,
        align: i ? ('right' as const) : ('left' as const),
      })),
      doc.runs.map((r) => [
        r.migrator.label,
        r.placement.before[0],
        r.placement.after[0],
        r.placement.before[1],
        r.placement.after[1],
      ]),
    ),
  );
  io.stdout.write(
    `hot set on DRAM: time from a move until a sample saw ${doc.sampling.arrivedShare * 100}% of the new hot set on DRAM; placement sampled every ${doc.sampling.everyMs} ms with ${doc.sampling.how} (the resolution)\n`,
  );
  io.stdout.write(
    `engine CPU: the kernel thread's CPU time (schedstat) while promotions were in flight, per promoted page; raw 4KiB copy here: ${us(doc.rawCopy4KiBSeconds)} µs\n`,
  );
  io.stdout.write(
    "modeled: the thread's accesses x the load latency of their tier (timing profile dram-cxl) + its waits on migration entries\n",
  );
  io.stdout.write(
    `every byte of the region and the invariants verified; wrote ${doc.files.json} and ${doc.files.html}\n`,
  );
}
