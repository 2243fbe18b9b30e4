import type { MigrationPhases } from '@pagemig/core';
import type { Environment } from '@pagemig-tools/bench';
import type { TimelineFile } from '../timeline.js';

/** Version of the bench results document; bump on an incompatible change. */
export const BENCH_SCHEMA_VERSION = 1;

/** One migrator configuration of the sweeps: the kernel's own copy, or a driver with N lanes. */
export interface VariantInfo {
  /** 'kernel', 'cpu-serial', 'cpu-multithreaded x2', 'ptdma x1', ... */
  label: string;
  /** Migrator id, or 'none' for the kernel's CPU copy. */
  migrator: string;
  /** Threads or channels (1 for the kernel and cpu-serial). */
  lanes: number;
}

/** Medians over `runs` runs; throughputs in bytes per second, times in seconds. */
export interface MigrationStats {
  bytes: number;
  folioBytes: number;
  folios: number;
  runs: number;
  bytesPerSec: number;
  /** The same runs' TypedArray.set copy of the same bytes, in folio-sized pieces. */
  rawBytesPerSec: number;
  /** bytesPerSec / rawBytesPerSec, median of the per-run ratios. */
  ratio: number;
  wallSeconds: number;
  /** The engine thread's own CPU time. */
  cpuSeconds: number;
  phases: MigrationPhases;
  /** Folios the migrator marked copied (the rest the kernel copied on the CPU). */
  offloadedFolios: number;
}

export type SweepRow = VariantInfo & MigrationStats;

/** The series' copy-share table: (batch copy + CPU copy) / migrate_pages() wall time. */
export type CopyShareRow = SweepRow & { copyShare: number };

export interface CompactionRow extends VariantInfo {
  /** User-thread page visits per second alone, and while kcompactd compacted. */
  baselinePagesPerSec: number;
  duringPagesPerSec: number;
  workloadRatio: number;
  status: string;
  pagesMigrated: number;
  wallSeconds: number;
  /** The compacting thread's own CPU time, and its share of the wall time. */
  cpuSeconds: number;
  batchCopySeconds: number;
  /** Migrated bytes per second of the compaction, against a raw copy in 4 KiB pieces. */
  bytesPerSec: number;
  rawBytesPerSec: number;
  ratio: number;
  /** Pageblock maps at the first mm_compaction_begin and the last mm_compaction_end (zoneMapText). */
  mapBefore: string;
  mapAfter: string;
  /** The two maps side by side (kcompactd's renderZoneMapsSvg). */
  mapSvg: string;
}

/**
 * What a hardware profile's timing model predicts for the folio sweep's runs (same folios, batch
 * and copier): `pagemig bench --profile <name>` on the real clock. Predictions, not measurements.
 */
export interface SweepModel {
  clock: 'modeled';
  profile: string;
  rows: (VariantInfo & { folioBytes: number; folios: number; bytesPerSec: number })[];
  /** Variants the profile cannot model (a DMA engine it lacks, a third-party migrator). */
  skipped: string[];
}

export interface BenchDocument {
  schemaVersion: typeof BENCH_SCHEMA_VERSION;
  command: 'bench';
  preset: 'quick' | 'full';
  clock: 'real';
  environment: Environment;
  settings: {
    folioSizes: number[];
    folioSweepBytes: number;
    sizeSweepFolios: number[];
    /** The largest total a run may migrate (--max-total, lowered to what fits in free RAM). */
    maxTotalBytes: number;
    migrationBatchPages: number;
    reps: number;
  };
  /** Installed migrators used, and the ones left out with the package to install. */
  migrators: { used: string[]; missing: { id: string; package: string | null }[] };
  folioSweep: SweepRow[];
  sizeSweep: SweepRow[];
  copyShare: CopyShareRow[];
  compaction: CompactionRow[];
  /** What was capped or left out, and why. */
  notes: string[];
  seconds: number;
  /** With --profile: the timing model's predictions for the folio sweep's runs. */
  modeled?: SweepModel;
  /** With --timeline: the timeline files of the cases, relative to the report (or results) file. */
  timelines?: TimelineFile[];
}
