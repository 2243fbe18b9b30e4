import { PagemigError } from './errno.js';
import type { Kernel } from './kernel.js';
import type { MigrateReasonName, MigrateReasonValue } from './migrate_mode.js';
import { resolveReason } from './migrate_mode.js';
import type { OffloadHost } from './migrate_offload.js';
import type { MigratorCapabilities } from './migrator.js';
import { HPAGE_PMD_ORDER } from './mmzone.js';
import { type ClockOptions, type ModeledRun, resolveProfile } from './timing/clock.js';
import type { FolioGroup } from './timing/kernel_overhead.js';
import type { HardwareProfile } from './timing/profile.js';
import { type Copier, modeledRunTime } from './timing/run_time.js';

/**
 * The engine's side of modeled time: what a run looks like to the timing model (folio groups,
 * nodes, the routed copier). The model itself (src/timing) knows nothing of the machine.
 */

/** The copier the model charges for a migrator's capabilities (null: the kernel's own copy). */
function copierOf(p: HardwareProfile, caps: MigratorCapabilities | undefined): Copier {
  if (!caps?.offloadsCpu) return { kind: 'kernel' };
  const dma = caps.dmaengine as { provider?: string } | undefined;
  if (dma?.provider === undefined) return { kind: 'threads', threads: caps.channels, placement: 'spread' };
  if (p.dma[dma.provider] === undefined) {
    throw new PagemigError(
      'ERR_INVALID_PROFILE',
      `clock 'modeled': profile ${p.name} has no DMA engine ${JSON.stringify(dma.provider)} (has: ${Object.keys(p.dma).join(', ') || 'none'})`,
    );
  }
  return { kind: 'dma', engine: dma.provider, channels: caps.channels };
}

/**
 * The modeled clock of one m.migrateFolios() run, or null on the real clock. Everything that can
 * be refused (unknown profile, too few nodes, unknown DMA engine) throws here, before any folio is
 * isolated; `capture` records the folio sizes before they move; `finish` models the run.
 */
export function modeledClock(
  k: Kernel,
  host: OffloadHost,
  opts: ClockOptions & { reason?: MigrateReasonName | MigrateReasonValue; node: number },
): {
  capture(heads: Iterable<number> & ArrayLike<number>): void;
  finish(r: { offload: { foliosCopied: number } }): ModeledRun;
} | null {
  const clock = opts.clock ?? k.config.clock;
  if (clock !== 'modeled') return null;
  const ref = opts.profile ?? k.config.profile;
  if (ref === undefined) throw new PagemigError('ERR_INVALID_CONFIG', "clock 'modeled' needs a profile");
  const p = resolveProfile(ref);
  if (k.nodes.length > p.nodes.length) {
    throw new PagemigError(
      'ERR_INVALID_CONFIG',
      `clock 'modeled': the machine has ${k.nodes.length} nodes, profile ${p.name} describes ${p.nodes.length}`,
    );
  }
  const routed = copierOf(p, host.entryFor(resolveReason(opts.reason))?.migrator.capabilities);
  let folios: FolioGroup[] = [];
  let from = 0;
  return {
    capture(heads) {
      // The model has one source node: the first folio's.
      if (heads.length) from = k.nodeOf(heads[0]!);
      // Consecutive folios of one size form a group.
      for (const h of heads) {
        const order = k.folioOrder(h);
        const last = folios.at(-1);
        if (last && last.pages === 1 << order) folios[folios.length - 1] = { ...last, count: last.count + 1 };
        else folios.push({ pages: 1 << order, count: 1, pmdMapped: order === HPAGE_PMD_ORDER });
      }
    },
    finish(r) {
      // A migrator that copied nothing (declined, failed) left the copy to the kernel.
      const copier = r.offload.foliosCopied > 0 ? routed : ({ kind: 'kernel' } as const);
      const t = modeledRunTime(p, {
        folios,
        batchPages: k.config.migrationBatchPages,
        from,
        to: opts.node,
        copier,
      });
      folios = [];
      return { clock: 'modeled', copier, ...t };
    },
  };
}
