import type { MigratorListing } from '@pagemig/registry';
import type { VariantInfo } from './schema.js';

export interface Variant extends VariantInfo {
  options: Record<string, unknown>;
}

/**
 * The migrator configurations to compare: the kernel's copy, cpu-serial, and each installed
 * parallel migrator at each lane count (threads for cpu-multithreaded, channels for DMA engines).
 */
export function sweepVariants(installed: readonly MigratorListing[], lanes: readonly number[]): Variant[] {
  const has = (id: string) => installed.some((d) => d.id === id && d.installed && d.capabilities);
  const out: Variant[] = [{ label: 'kernel', migrator: 'none', lanes: 1, options: {} }];
  if (has('cpu-serial')) out.push({ label: 'cpu-serial', migrator: 'cpu-serial', lanes: 1, options: {} });
  for (const n of lanes) {
    // Every batch goes to the pool, so the thread count is what is measured.
    if (has('cpu-multithreaded'))
      out.push({
        label: `cpu-multithreaded x${n}`,
        migrator: 'cpu-multithreaded',
        lanes: n,
        options: { threads: n, inlineBelow: 0 },
      });
  }
  for (const id of ['ptdma', 'sdxi'])
    for (const n of lanes)
      if (has(id)) out.push({ label: `${id} x${n}`, migrator: id, lanes: n, options: { channels: n } });
  return out;
}

export const variantInfo = (v: Variant): VariantInfo => ({
  label: v.label,
  migrator: v.migrator,
  lanes: v.lanes,
});
