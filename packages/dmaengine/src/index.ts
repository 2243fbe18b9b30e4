export {
  DMA_CTRL_ACK,
  DMA_PREP_FENCE,
  DMA_PREP_INTERRUPT,
  type DmaCallback,
  type DmaCapability,
  type DmaChannel,
  type DmaChanStats,
  type DmaDevice,
  DmaEngine,
  type DmaSegment,
  DmaStatus,
  DmaStatusCode,
  type DmaStatusCodeValue,
  type DmaStatusValue,
  type DmaTx,
  type DmaTxResult,
  dmaStatusCodeName,
} from './channel.js';
export {
  createDmaMigrator,
  type DcbmStats,
  type DmaMigrator,
  type DmaMigratorConfig,
  RUN_AWAKE_MIN_PAGES,
} from './dcbm.js';
export { type DcbmKnobs, DcbmParams, dcbmKnobKeys, MAX_DMA_CHANNELS } from './dcbm_params.js';
export { DECLINE_REASONS, type DeclineReason, type DmaProvider } from './dcbm_state.js';
export type { TimingWords } from './device_clock.js';
export { type EmulatorWords, setDeviceRun } from './device_loop.js';
export { type DeviceThread, type DeviceThreadOptions, startDeviceThread } from './device_thread.js';
export {
  channelsSpec,
  DEFAULT_RUN_SPIN_US,
  dcbmKnobSpecs,
  devicePollers,
  migratorOptionError,
  minBatchPagesSpec,
  spinNs,
  spinUsSpec,
} from './driver_options.js';
export {
  DMA_BIDIRECTIONAL,
  DMA_FROM_DEVICE,
  DMA_TO_DEVICE,
  type DmaDirection,
  IommuDomain,
  IommuView,
} from './iommu.js';
export { InterruptLine, type IrqSource } from './irq.js';
export { RamView } from './ram.js';
export {
  SkeletonChannel,
  SkeletonDevice,
  type SkeletonOptions,
  type SkeletonOrder,
  skeletonProvider,
} from './skeleton.js';
export {
  type DeviceTiming,
  HOST_TIMING,
  parseBandwidth,
  type ResolvedTiming,
  timingManifest,
  timingOption,
} from './timing.js';
export { VirtDmaChannel, VirtDmaTx } from './virt_dma.js';

/** This package's version. */
export const DMAENGINE_VERSION: string = __PACKAGE_VERSION__;
