import type { HardwareProfile } from './profile.js';
import type { RunShape } from './run_time.js';

const us = (s: number) => `${Number(s.toPrecision(3))} us`;
const ns = (n: number) => `${Number(n.toPrecision(3))} ns`;
const gb = (g: number) => `${Number(g.toPrecision(3))} GB/s`;

/** The facts a prediction rests on, one sentence each, for reports next to modeled numbers. */
export function assumptionsOf(p: HardwareProfile, shape: RunShape): string[] {
  const k = p.kernel;
  const node = (i: number) => {
    const n = p.nodes[i]!;
    const link = n.link ? `, behind link ${n.link} at ${gb(p.links[n.link]!.GBps)}` : '';
    return `node ${i} (${n.tier}, socket ${n.socket}${link})`;
  };
  const out = [
    `time is MODELED from hardware profile ${p.name}, not measured`,
    p.calibration
      ? `profile fitted to: ${p.calibration.fittedTo}; fixed by assumption: ${Object.keys(p.calibration.fixed).join(', ') || 'nothing'}`
      : `profile ${p.name} is not fitted to measurements: every parameter is an assumption (${p.description})`,
    `copy from ${node(shape.from)} to ${node(shape.to)}`,
    `kernel overheads: ${us(k.callUs)} per call, ${ns(k.perFolioNs)} per folio, ${ns(k.perPteNs)} per mapped entry (each PTE; one PMD for a THP), ${us(k.tlbFlushUs)} per batched TLB flush`,
    `batches of ${shape.batchPages} base pages (NR_MAX_BATCHED_MIGRATION)`,
  ];
  const c = shape.copier;
  if (c.kind === 'kernel')
    out.push(
      `copy: the migrating task, one folio at a time between the rest of each move, ${ns(p.cpu.copyStartNs)} cold start per folio, at most ${gb(p.cpu.threadGBps)} per core, ${gb(p.cpu.ccdGBps)} per CCD`,
    );
  if (c.kind === 'threads') {
    out.push(
      `copy: ${c.threads} threads placed ${c.placement}; ${gb(p.cpu.threadGBps)} per core, ${gb(p.cpu.ccdGBps)} per CCD, ${gb(p.cpu.socketGBps)} per socket; ${us(p.cpu.dispatchUs)} to queue each thread's work`,
    );
  }
  if (c.kind === 'dma') {
    const e = p.dma[c.engine]!;
    const used = Math.min(c.channels, e.maxChannels);
    out.push(
      `copy: ${used} ${c.engine} channel(s) (max ${e.maxChannels}) at ${gb(e.channelGBps)} each${e.aggregateGBps ? `, ${gb(e.aggregateGBps)} for the engine` : ''}; ${ns(e.perDescriptorNs)} per descriptor (one per folio), ${ns(e.perMappingNs)} per IOMMU page, ${us(e.batchSetupUs)} CPU setup per channel per batch (serialised on the submitting CPU), ${us(e.completionUs)} from the last completion interrupt to the migrating task running again`,
    );
  }
  out.push(
    `contention: flows sharing a limit get a soft minimum of their fair shares (sharpness ${p.contention.sharpness}); a CPU store across a link costs ${p.cpu.writeLinkFactor}x link bytes`,
  );
  return out;
}
