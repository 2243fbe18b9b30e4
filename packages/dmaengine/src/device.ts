// What a device thread needs, without @pagemig/core: its view of RAM, of its IOMMU domain, and the
// host interrupt line it signals. Import it as `@pagemig/dmaengine/device` from device workers.

export {
  DMA_BIDIRECTIONAL,
  DMA_FROM_DEVICE,
  DMA_TO_DEVICE,
  type DmaDirection,
  IommuView,
} from './iommu_table.js';
export { InterruptLine } from './irq.js';
export { RamView } from './ram.js';
