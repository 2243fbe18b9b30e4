// What a device thread needs, without the whole of @pagemig/core: its view of RAM, of its IOMMU
// domain, the host interrupt line it signals, its idle loop, its timing-profile clock, and the
// timeline writer (core's `timeline-writer` entry, which imports nothing). Import it as
// `@pagemig/dmaengine/device` from device workers.

export {
  type TimelineHandle,
  TimelineWriter,
  TL_DMA_COMPLETION,
  TL_DMA_DESC,
  timelineWriter,
} from '@pagemig/core/timeline-writer';
export { DeviceClock, type TimingWords } from './device_clock.js';
export {
  EMU_STATE_BOOT,
  EMU_STATE_EXITED,
  EMU_STATE_READY,
  type EmulatorWords,
  MIN_POLL_NS,
  nextPollBudget,
  POLL_DOORBELL,
  POLL_PREEMPTED,
  POLL_TIMEOUT,
  PREEMPTED_NS,
  pollWord,
  runDeviceLoop,
  setDeviceRun,
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
