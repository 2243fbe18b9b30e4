import { cpuClockResolution, cpuMs, cpuStepMs } from '../cpu_clock.js';
import { formatSize, gbps, pct, renderTable } from '../table.js';
import type { BenchDocument, SweepRow } from './schema.js';

const R = (header: string) => ({ header, align: 'right' as const });
const ms = (s: number) => (s * 1000).toFixed(s < 0.01 ? 3 : 1);

/** Wall time outside the measured phases (batching, retries, putback, tracing): the shares add up. */
const other = (r: Pick<SweepRow, 'phases' | 'wallSeconds'>) => {
  const p = r.phases;
  return Math.max(0, r.wallSeconds - (p.unmap + p.flush + p.batchCopy + p.fallbackCopy + p.move));
};

function sweepTable(rows: SweepRow[], first: 'folio' | 'folios', step: number): string {
  return renderTable(
    [
      'migrator',
      R(first === 'folio' ? 'folio' : 'folios'),
      R('total'),
      R('GB/s'),
      R('raw copy GB/s'),
      R('x raw'),
      R('copy'),
      R('unmap'),
      R('flush'),
      R('move'),
      R('other'),
      R(`engine CPU ms (±${cpuStepMs(step)})`),
      R('offloaded'),
    ],
    rows.map((r) => [
      r.label,
      first === 'folio' ? formatSize(r.folioBytes) : r.folios,
      formatSize(r.bytes),
      gbps(r.bytesPerSec),
      gbps(r.rawBytesPerSec),
      r.ratio.toFixed(2),
      pct(r.phases.batchCopy + r.phases.fallbackCopy, r.wallSeconds),
      pct(r.phases.unmap, r.wallSeconds),
      pct(r.phases.flush, r.wallSeconds),
      pct(r.phases.move, r.wallSeconds),
      pct(other(r), r.wallSeconds),
      cpuMs(r.cpuSeconds, step),
      `${r.offloadedFolios}/${r.folios}`,
    ]),
  );
}

const SHARES_NOTE =
  'shares are of the wall time of migrate_pages() (rounded): copy = batch copy (migrator) + CPU copy (the move phase copy loop, which also checks every folio the migrator copied), unmap includes allocating the destinations, other = the rest (batching, retries, putback, tracing)\n';

/** The suite's tables, as the README shows them. */
export function formatBench(doc: BenchDocument, step = cpuClockResolution()): string {
  const e = doc.environment;
  let out = `pagemig bench (${doc.preset}, real clock): ${e.cpuModel}, ${e.availableParallelism} CPUs, Node ${e.node}; medians of ${doc.settings.reps} run(s); every run verified\n`;
  out += `migrators: ${doc.migrators.used.join(', ')}; batches of ${doc.settings.migrationBatchPages} base pages\n`;
  if (doc.folioSweep.length) {
    out += `\nFolio-size sweep: ${formatSize(doc.settings.folioSweepBytes)} node 0 → node 1 per run (series RFC V3 tables a-c)\n`;
    out += sweepTable(doc.folioSweep, 'folio', step);
  }
  if (doc.sizeSweep.length) {
    out += `\nTotal-size sweep: 2MiB folios, 1 thread/channel (series RFC V3 table d)\n`;
    out += sweepTable(doc.sizeSweep, 'folios', step);
  }
  if (doc.copyShare.length) {
    out += `\nCopy share of migrate_pages() (series RFC V3: 4KiB <1% / ~35%, 2MiB ~66% / ~97%)\n`;
    out += renderTable(
      [
        'migrator',
        R('folio'),
        R('folios'),
        R('copy share'),
        R('wall ms'),
        R('unmap'),
        R('flush'),
        R('move'),
        R('other'),
        R('GB/s'),
        R('x raw'),
      ],
      doc.copyShare.map((r) => [
        r.label,
        formatSize(r.folioBytes),
        r.folios,
        `${(100 * r.copyShare).toFixed(1)}%`,
        ms(r.wallSeconds),
        pct(r.phases.unmap, r.wallSeconds),
        pct(r.phases.flush, r.wallSeconds),
        pct(r.phases.move, r.wallSeconds),
        pct(other(r), r.wallSeconds),
        gbps(r.bytesPerSec),
        r.ratio.toFixed(2),
      ]),
    );
  }
  if (doc.compaction.length) {
    out += `\nCompaction on a busy system (kcompactd proactive pass while a user thread works)\n`;
    out += renderTable(
      [
        'compaction migrator',
        R('pages'),
        R('status'),
        R('wall ms'),
        R('engine CPU ms'),
        R('CPU share'),
        R('GB/s'),
        R('x raw'),
        R('workload during/alone'),
      ],
      doc.compaction.map((r) => [
        r.label,
        r.pagesMigrated,
        r.status,
        ms(r.wallSeconds),
        ms(r.cpuSeconds),
        pct(r.cpuSeconds, r.wallSeconds),
        gbps(r.bytesPerSec),
        r.ratio.toFixed(2),
        r.workloadRatio.toFixed(2),
      ]),
    );
  }
  if (doc.folioSweep.length || doc.sizeSweep.length || doc.copyShare.length) out += SHARES_NOTE;
  if (doc.folioSweep.length || doc.sizeSweep.length)
    out += `engine CPU ms: the engine thread's schedstat, read once per run; it moves in steps of about ${cpuStepMs(step)} ms here (scheduler ticks), so sum it over many runs for finer figures\n`;
  for (const n of doc.notes) out += `note: ${n}\n`;
  return out;
}
