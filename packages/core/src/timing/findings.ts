import { predictCase } from './benchmark.js';
import type { HardwareProfile } from './profile.js';
import { type BenchCase, zen3CopyShare } from './published.js';
import type { Copier } from './run_time.js';

/**
 * The series' published findings, recomputed from a profile: every number here is the model's
 * output for the series' benchmark (1 GiB moved node 0 -> node 1 with move_pages()).
 */

const KiB = 1024;
const GiB = 1024 ** 3;
const VANILLA_BATCH = 512;
const PUD_BATCH = 262144;

function gbps(p: HardwareProfile, folioBytes: number, copier: Copier, folios = GiB / folioBytes): number {
  const c: BenchCase = {
    folioBytes,
    folios,
    copier,
    batchPages: copier.kind === 'kernel' ? VANILLA_BATCH : PUD_BATCH,
  };
  return predictCase(p, c).GBps;
}

export interface Findings {
  profile: string;
  /** Folio sizes 4K..1M: one DMA channel / baseline (the series: below 1 everywhere). */
  oneChannelVsCpu: { folioBytes: number; ratio: number }[];
  /** 2 MiB folios: 16 DMA channels / baseline (the series: ~6x). */
  dma16Speedup2M: number;
  /** 2 MiB folios: 16 copy threads / baseline (the series: ~3.4x). */
  threads16Speedup2M: number;
  /** 2 MiB, DMA: throughput at 1, 2, 4, 8, 12, 16 channels (GB/s) and the gain per added channel. */
  channelScaling: { channels: number; GBps: number }[];
  /** Gain per channel from 12 to 16 channels over the gain per channel from 1 to 8 (diminishing < 1). */
  marginalGainRatio: number;
  /** Copy share of the migration time for 1 x 4K, 512 x 4K, 1 x 2M, 512 x 2M (vanilla kernel copy). */
  copyShare: { folios: number; folioBytes: number; share: number }[];
}

export function computeFindings(p: HardwareProfile, engine = 'ptdma'): Findings {
  const kernel: Copier = { kind: 'kernel' };
  const dma = (channels: number): Copier => ({ kind: 'dma', engine, channels });
  const thp = 2048 * KiB;
  const base2M = gbps(p, thp, kernel);
  const channelScaling = [1, 2, 4, 8, 12, 16].map((channels) => ({
    channels,
    GBps: gbps(p, thp, dma(channels)),
  }));
  const at = (n: number) => channelScaling.find((c) => c.channels === n)!.GBps;
  const copyShare = zen3CopyShare.map(({ folios, folioBytes }) => {
    const t = predictCase(p, { folioBytes, folios, batchPages: VANILLA_BATCH, copier: kernel });
    return { folios, folioBytes, share: t.phases.fallbackCopy / t.totalSeconds };
  });
  return {
    profile: p.name,
    oneChannelVsCpu: [4, 16, 64, 128, 256, 512, 1024].map((k) => ({
      folioBytes: k * KiB,
      ratio: gbps(p, k * KiB, dma(1)) / gbps(p, k * KiB, kernel),
    })),
    dma16Speedup2M: at(16) / base2M,
    threads16Speedup2M: gbps(p, thp, { kind: 'threads', threads: 16, placement: 'spread' }) / base2M,
    channelScaling,
    marginalGainRatio: (at(16) - at(12)) / 4 / ((at(8) - at(1)) / 7),
    copyShare,
  };
}
