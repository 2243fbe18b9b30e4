// What a device thread needs, without @pagemig/core: its view of RAM, of its IOMMU domain, the
// host interrupt line it signals, its idle loop and its timing-profile clock. Import it as
// `@pagemig/dmaengine/device` from device workers.

export { DeviceClock, type TimingWords } from './device_clock.js';
export {
  EMU_STATE_BOOT,
  EMU_STATE_EXITED,
  EMU_STATE_READY,
  type EmulatorWords,
  runDeviceLoop,
  wakeDevice,
} from './device_loop.js';
export {
  DMA_BIDIRECTIONAL,
  DMA_FROM_DEVICE,
  DMA_TO_DEVICE,
  type DmaDirection,
  IommuView,
} from './iommu_table.js';
export { InterruptLine } from './irq.js';
export { RamView } from './ram.js';
