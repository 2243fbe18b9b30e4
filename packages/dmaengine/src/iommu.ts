import { EEXIST, EINVAL, kernelError } from '@pagemig/core';
import {
  DMA_BIDIRECTIONAL,
  DMA_FROM_DEVICE,
  DMA_TO_DEVICE,
  type DmaDirection,
  firstPage,
  HDR_GENERATION,
  HEADER_WORDS,
  IommuView,
  PAGE_SIZE,
  setPages,
} from './iommu_table.js';

export {
  DMA_BIDIRECTIONAL,
  DMA_FROM_DEVICE,
  DMA_TO_DEVICE,
  type DmaDirection,
  IommuView,
} from './iommu_table.js';

/**
 * An emulated IOMMU domain for one DMA device. The driver maps the frames a descriptor touches
 * before the device may touch them and unmaps them afterwards (dma_map_* / dma_unmap_*); the device
 * checks every access against the domain (IommuView.allows) and an access outside the mapped
 * windows faults (it is counted here, and the device reports its own I/O error code) without
 * changing a byte.
 *
 * The domain is identity-mapped (bus address = physical address, as a 1:1 domain): only the
 * permissions are modelled, per 4 KiB page, as two bitmaps (device may read, device may write) in a
 * SharedArrayBuffer the device thread reads; word-wide operations keep a 256 MiB window at a few
 * microseconds. One window per page: mapping a page that is already mapped is a driver bug
 * (CONFIG_DMA_API_DEBUG reports it) and throws EEXIST.
 */
export class IommuDomain extends IommuView {
  /** A new domain covering `nrPages` frames, or a view of an existing one (`sab`). */
  constructor(nrPages: number, sab?: SharedArrayBuffer) {
    if (!Number.isInteger(nrPages) || nrPages < 1)
      throw kernelError(EINVAL, `iommu: bad page count ${nrPages}`);
    const bytes = IommuView.bytesFor(nrPages);
    if (sab && sab.byteLength < bytes)
      throw kernelError(EINVAL, `iommu: table of ${sab.byteLength} bytes is too small for ${nrPages} pages`);
    super(sab ?? new SharedArrayBuffer(bytes), nrPages);
  }

  /** Another handle on a domain (the device side uses IommuView from `@pagemig/dmaengine/device`). */
  static attach(sab: SharedArrayBuffer, nrPages: number): IommuDomain {
    return new IommuDomain(nrPages, sab);
  }

  /**
   * dma_map_page for `nrPages` frames from `pfn`: the device may now access them in `dir`.
   * Returns the bus address the device must use.
   */
  map(pfn: number, nrPages: number, dir: DmaDirection): number {
    this.checkRange(pfn, nrPages, 'map');
    if (dir !== DMA_TO_DEVICE && dir !== DMA_FROM_DEVICE && dir !== DMA_BIDIRECTIONAL)
      throw kernelError(EINVAL, `iommu: bad DMA direction ${dir}`);
    const end = pfn + nrPages;
    const a = firstPage(this.w, this.rd, pfn, end, 0);
    const b = firstPage(this.w, this.wr, pfn, end, 0);
    const clash = a < 0 ? b : b < 0 ? a : Math.min(a, b);
    if (clash >= 0) throw kernelError(EEXIST, `iommu: pfn ${clash} is already mapped for this device`);
    if (dir & DMA_TO_DEVICE) setPages(this.w, this.rd, pfn, end, true);
    if (dir & DMA_FROM_DEVICE) setPages(this.w, this.wr, pfn, end, true);
    // The doorbell that follows is an Atomics store: it publishes these plain writes to the device.
    Atomics.add(this.w, HDR_GENERATION, 1);
    return pfn * PAGE_SIZE;
  }

  /** dma_unmap_page: the device loses access to the frames. */
  unmap(pfn: number, nrPages: number): void {
    this.checkRange(pfn, nrPages, 'unmap');
    setPages(this.w, this.rd, pfn, pfn + nrPages, false);
    setPages(this.w, this.wr, pfn, pfn + nrPages, false);
    Atomics.add(this.w, HDR_GENERATION, 1);
  }

  /** Unmaps everything (device reset or driver removal). */
  unmapAll(): void {
    this.w.fill(0, HEADER_WORDS);
    Atomics.add(this.w, HDR_GENERATION, 1);
  }

  /** Frames currently mapped (a debug walk over the whole table). */
  mappedPages(): number {
    let n = 0;
    for (let i = 0; i < this.nrPages; i++) if (this.permissions(i)) n++;
    return n;
  }

  private checkRange(pfn: number, nrPages: number, what: string): void {
    if (
      !Number.isInteger(pfn) ||
      !Number.isInteger(nrPages) ||
      pfn < 0 ||
      nrPages < 1 ||
      pfn + nrPages > this.nrPages
    )
      throw kernelError(
        EINVAL,
        `iommu: cannot ${what} ${nrPages} pages at pfn ${pfn} (the domain covers pfns 0..${this.nrPages - 1})`,
      );
  }
}
