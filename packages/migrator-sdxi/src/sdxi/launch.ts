/**
 * Starting an emulated SDXI function: its BARs and its worker thread, before any driver logic
 * (also what register-level tests use).
 */
import {
  type DeviceThread,
  type InterruptLine,
  type IommuDomain,
  type ResolvedTiming,
  startDeviceThread,
} from '@pagemig/dmaengine';
import type { SdxiDeviceInit } from './device.js';
import {
  BAR0_BYTES,
  BAR2_BYTES,
  EMU_BW_MBPS,
  EMU_LATENCY_NS,
  EMU_RUN_SPIN_NS,
  EMU_SPIN_NS,
  EMU_WORDS,
  Mmio,
} from './regs.js';

/** The function model's worker module, next to this file in dist/. */
export const deviceUrl: URL = new URL('./sdxi-device.js', import.meta.url);

/** A function thread and its BARs. */
export interface LaunchedFunction extends DeviceThread {
  readonly mmio: Mmio;
}

export interface LaunchOptions {
  name: string;
  /** This function's id (default 0). */
  sfunc?: number;
  sections: readonly SharedArrayBuffer[];
  sectionPfnShift: number;
  nrPages: number;
  /** The function's own domain: what it reaches for control structures. */
  iommu: IommuDomain;
  /** Data address spaces by PASID (null where none). */
  addressSpaces: readonly (IommuDomain | null)[];
  /** The function's timing profile (default: host speed). */
  timing?: ResolvedTiming;
  /** Idle spin of the function thread before it sleeps (ns). */
  spinNs?: number;
  /** How long the function polls after each batch while a migration run goes (ns). */
  runSpinNs?: number;
  /** The host interrupt line its MSIs go to. */
  irqLine?: InterruptLine;
  /** The machine's timeline and each context's track (by context id; -1: none). */
  timeline?: { buffer: SharedArrayBuffer; tracks: readonly number[] };
}

/** Starts one emulated SDXI function in its own worker thread (unref'd: it never keeps a process alive). */
export function launchFunction(o: LaunchOptions): LaunchedFunction {
  const mmio = new Mmio(new SharedArrayBuffer(BAR0_BYTES), new SharedArrayBuffer(BAR2_BYTES));
  // Set before the thread runs (the worker start publishes them).
  mmio.i32[EMU_BW_MBPS >>> 2] = o.timing?.bandwidthMBps ?? 0;
  mmio.i32[EMU_LATENCY_NS >>> 2] = o.timing?.latencyNs ?? 0;
  mmio.i32[EMU_SPIN_NS >>> 2] = o.spinNs ?? 0;
  mmio.i32[EMU_RUN_SPIN_NS >>> 2] = o.runSpinNs ?? 0;
  const init: SdxiDeviceInit = {
    kind: 'pagemig.sdxi',
    name: o.name,
    sfunc: o.sfunc ?? 0,
    bar0: mmio.bar0,
    bar2: mmio.bar2,
    sections: o.sections,
    sectionPfnShift: o.sectionPfnShift,
    nrPages: o.nrPages,
    iommu: o.iommu.sab,
    addressSpaces: o.addressSpaces.map((d) => d?.sab ?? null),
    irqLine: o.irqLine?.sab,
    ...(o.timeline ? { timeline: o.timeline } : {}),
  };
  const thread = startDeviceThread({
    url: deviceUrl,
    workerData: init,
    regs: mmio.i32,
    words: EMU_WORDS,
    name: `sdxi function ${o.name}`,
  });
  return { ...thread, mmio };
}
