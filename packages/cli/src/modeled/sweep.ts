import { PagemigError } from '@pagemig/core';
import { type Copier, type HardwareProfile, loadProfile, modeledRunTime } from '@pagemig/core/timing';
import type { BenchDocument, SweepModel, VariantInfo } from '../bench/schema.js';
import { usageError } from '../exit_codes.js';
import { profileOption } from './predict.js';

const PAGE = 4096;
const PMD_PAGES = 512;

/**
 * The copier the timing model charges for a bench variant, as core's modeled clock picks it: the
 * kernel's copy for no migrator and cpu-serial (a copy on the migrating task), spread copy threads
 * for cpu-multithreaded, the profile's DMA engine of that name for ptdma/sdxi. Null: not modelable.
 */
export function copierOfVariant(p: HardwareProfile, v: VariantInfo): Copier | null {
  if (v.migrator === 'none' || v.migrator === 'cpu-serial') return { kind: 'kernel' };
  if (v.migrator === 'cpu-multithreaded') return { kind: 'threads', threads: v.lanes, placement: 'spread' };
  if (p.dma[v.migrator]) return { kind: 'dma', engine: v.migrator, channels: v.lanes };
  return null;
}

/** The profile's predictions for every run of the folio sweep (same folios, batch and copier). */
export function modelSweep(doc: BenchDocument, profile: string | HardwareProfile): SweepModel {
  const p = typeof profile === 'string' ? loadProfile(profile) : profile;
  const rows: SweepModel['rows'] = [];
  const skipped = new Set<string>();
  for (const r of doc.folioSweep) {
    const copier = copierOfVariant(p, r);
    if (!copier) {
      skipped.add(
        r.migrator === 'ptdma' || r.migrator === 'sdxi'
          ? `${r.migrator}: profile ${p.name} has no ${r.migrator} engine`
          : `${r.migrator}: the timing model has no copier for this migrator`,
      );
      continue;
    }
    const pages = r.folioBytes / PAGE;
    const t = modeledRunTime(p, {
      folios: [{ pages, count: r.folios, pmdMapped: pages === PMD_PAGES }],
      batchPages: doc.settings.migrationBatchPages,
      from: 0,
      to: 1,
      copier,
    });
    rows.push({
      label: r.label,
      migrator: r.migrator,
      lanes: r.lanes,
      folioBytes: r.folioBytes,
      folios: r.folios,
      bytesPerSec: t.GBps * 1e9,
    });
  }
  return { clock: 'modeled', profile: p.name, rows, skipped: [...skipped] };
}

/** `--profile` of a measured bench, checked before the run: an unknown profile is a usage error. */
export function sweepProfile(value: string): HardwareProfile {
  try {
    return profileOption(value);
  } catch (e) {
    if (PagemigError.isInstance(e)) throw usageError(`--profile: ${e.message}`);
    throw e;
  }
}
