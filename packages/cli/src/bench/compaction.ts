import {
  attachKcompactd,
  renderZoneMapsSvg,
  runBusyScenario,
  type ZoneMap,
  zoneMap,
  zoneMapText,
} from '@pagemig/kcompactd';
import type { Drivers } from '../drivers.js';
import { openMachine } from '../machine.js';
import { Reference } from '../scenarios/migration.js';
import { benchCase, caseId } from '../timeline.js';
import type { CompactionRow } from './schema.js';
import { type Variant, variantInfo } from './variants.js';

/**
 * kcompactd's busy-system scenario once per variant (the migrator routed for `compaction`): a user
 * thread works on memory spread over a fragmented node while a proactive pass compacts it. The
 * zone maps are taken at the pass's first mm_compaction_begin and last mm_compaction_end, while
 * the workload's memory is still mapped.
 */
export async function busyCompaction(
  drivers: Drivers,
  variants: Variant[],
  nodeBytes: number,
  baselineMs: number,
  step: (label: string) => void,
): Promise<CompactionRow[]> {
  const m = await openMachine({ nodes: [{ memory: nodeBytes }] });
  const kd = attachKcompactd(m, { proactiveness: 0 });
  const ref = new Reference();
  const rows: CompactionRow[] = [];
  try {
    for (const v of variants) {
      const mig = await drivers.load(v.migrator, v.options);
      await m.offload.register(mig, 'compaction');
      let before: ZoneMap | null = null;
      let after: ZoneMap | null = null;
      const offBegin = m.trace.on('mm_compaction_begin', () => {
        before ??= zoneMap(m, 0);
      });
      const offEnd = m.trace.on('mm_compaction_end', () => {
        after = zoneMap(m, 0);
      });
      try {
        const r = await benchCase(m, caseId('compaction', v.label), () =>
          runBusyScenario(m, kd, { threads: 1, baselineMs }),
        );
        m.checkInvariants();
        const c = r.compaction;
        const bytes = c.pagesMigrated * 4096;
        const bytesPerSec = c.wallSeconds > 0 ? bytes / c.wallSeconds : 0;
        const rawBytesPerSec = bytes > 0 ? ref.pass(bytes, 4096) : 0;
        const maps = before && after ? [before, after] : [zoneMap(m, 0)];
        rows.push({
          ...variantInfo(v),
          baselinePagesPerSec: r.baselinePagesPerSec,
          duringPagesPerSec: r.duringPagesPerSec,
          workloadRatio: r.ratio,
          status: c.status,
          pagesMigrated: c.pagesMigrated,
          wallSeconds: c.wallSeconds,
          cpuSeconds: c.cpuSeconds,
          batchCopySeconds: c.batchCopySeconds,
          bytesPerSec,
          rawBytesPerSec,
          ratio: rawBytesPerSec > 0 ? bytesPerSec / rawBytesPerSec : 0,
          mapBefore: zoneMapText(maps[0]!),
          mapAfter: zoneMapText(maps[maps.length - 1]!),
          mapSvg: renderZoneMapsSvg(maps, {
            titles: [`${v.label}: before compaction`, `${v.label}: after compaction`],
          }),
        });
      } finally {
        offBegin();
        offEnd();
        await m.offload.unregister(mig);
      }
      step(`compaction ${v.label}`);
    }
  } finally {
    await kd.stop();
    await m.close();
  }
  return rows;
}
