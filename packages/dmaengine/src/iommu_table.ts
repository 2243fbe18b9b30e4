/**
 * The IOMMU's table as a device sees it: no dependency on @pagemig/core, so a device thread loads
 * only this (`@pagemig/dmaengine/device`). The driver side is IommuDomain (iommu.ts).
 */
/** enum dma_data_direction, as permissions of the device on a mapped page. */
export const DMA_TO_DEVICE = 1; // the device reads (a copy's source)
export const DMA_FROM_DEVICE = 2; // the device writes (a copy's destination)
export const DMA_BIDIRECTIONAL = DMA_TO_DEVICE | DMA_FROM_DEVICE;
export type DmaDirection = typeof DMA_TO_DEVICE | typeof DMA_FROM_DEVICE | typeof DMA_BIDIRECTIONAL;

const PAGE_SHIFT = 12;
export const PAGE_SIZE = 1 << PAGE_SHIFT;
/** Int32 header: fault count, last faulting pfn, its direction, mapped-window generation. */
const HDR_FAULTS = 0;
const HDR_LAST_PFN = 1;
const HDR_LAST_DIR = 2;
export const HDR_GENERATION = 3;
export const HEADER_WORDS = 4;

export const wordsFor = (nrPages: number) => Math.ceil(nrPages / 32);

/** The bits of word `w` that fall inside the page range [lo, hi). */
function maskOf(w: number, lo: number, hi: number): number {
  const first = w === lo >>> 5 ? lo & 31 : 0;
  const last = w === (hi - 1) >>> 5 ? (hi - 1) & 31 : 31;
  return (0xffffffff >>> (31 - last)) & (0xffffffff << first);
}

const lowestBit = (x: number) => 31 - Math.clz32(x & -x);

/** First page in [lo, hi) whose bit is clear (`want` = 1) or set (`want` = 0) in bitmap `bm`, or -1. */
export function firstPage(bm: Int32Array, base: number, lo: number, hi: number, want: 0 | 1): number {
  for (let w = lo >>> 5, end = (hi - 1) >>> 5; w <= end; w++) {
    const m = maskOf(w, lo, hi);
    const v = bm[base + w]!;
    const odd = (want ? ~v : v) & m;
    if (odd) return w * 32 + lowestBit(odd);
  }
  return -1;
}

export function setPages(bm: Int32Array, base: number, lo: number, hi: number, on: boolean): void {
  const w0 = lo >>> 5;
  const w1 = (hi - 1) >>> 5;
  // The two edge words by hand: no array per call (compaction maps a window per 4 KiB page).
  const m0 = maskOf(w0, lo, hi);
  bm[base + w0] = on ? bm[base + w0]! | m0 : bm[base + w0]! & ~m0;
  if (w1 !== w0) {
    const m1 = maskOf(w1, lo, hi);
    bm[base + w1] = on ? bm[base + w1]! | m1 : bm[base + w1]! & ~m1;
  }
  if (w1 - w0 > 1) bm.fill(on ? -1 : 0, base + w0 + 1, base + w1);
}

/**
 * The device's view of its IOMMU domain: every access is checked here before a byte moves, and a
 * miss is recorded as an I/O page fault. Permissions are two bitmaps (may read, may write) of one
 * bit per 4 KiB page in a SharedArrayBuffer the driver updates (IommuDomain).
 */
export class IommuView {
  readonly nrPages: number;
  protected readonly w: Int32Array;
  /** Word offsets of the read and write bitmaps in `w`. */
  protected readonly rd: number;
  protected readonly wr: number;

  constructor(
    readonly sab: SharedArrayBuffer,
    nrPages: number,
  ) {
    if (!Number.isInteger(nrPages) || nrPages < 1 || sab.byteLength < IommuView.bytesFor(nrPages))
      throw new RangeError(`iommu: a table of ${sab.byteLength} bytes cannot cover ${nrPages} pages`);
    this.nrPages = nrPages;
    this.w = new Int32Array(sab);
    this.rd = HEADER_WORDS;
    this.wr = HEADER_WORDS + wordsFor(nrPages);
  }

  /** Bytes of the table for `nrPages` frames. */
  static bytesFor(nrPages: number): number {
    return (HEADER_WORDS + 2 * wordsFor(nrPages)) * 4;
  }

  /** The device's permissions on one frame (DMA_TO_DEVICE | DMA_FROM_DEVICE bits). */
  permissions(pfn: number): number {
    if (!(pfn >= 0 && pfn < this.nrPages)) return 0;
    const bit = 1 << (pfn & 31);
    const w = pfn >>> 5;
    return (
      (this.w[this.rd + w]! & bit ? DMA_TO_DEVICE : 0) | (this.w[this.wr + w]! & bit ? DMA_FROM_DEVICE : 0)
    );
  }

  /**
   * Every device access: true if the bus range [addr, addr + len) lies inside windows mapped for
   * `dir`. A miss is an I/O page fault, recorded in the domain's fault log.
   */
  allows(addr: number, len: number, dir: DmaDirection): boolean {
    const first = Math.floor(addr / PAGE_SIZE);
    const last = Math.floor((addr + len - 1) / PAGE_SIZE);
    if (len <= 0 || first < 0 || last >= this.nrPages) return this.fault(Math.max(first, 0), dir);
    let miss = -1;
    if (dir & DMA_TO_DEVICE) miss = firstPage(this.w, this.rd, first, last + 1, 1);
    if (miss < 0 && dir & DMA_FROM_DEVICE) miss = firstPage(this.w, this.wr, first, last + 1, 1);
    return miss < 0 ? true : this.fault(miss, dir);
  }

  /** I/O page faults seen by this domain. */
  get faults(): number {
    return Atomics.load(this.w, HDR_FAULTS);
  }

  /** The last fault: the frame and the direction of the access. */
  get lastFault(): { pfn: number; dir: number } | null {
    if (!this.faults) return null;
    return { pfn: Atomics.load(this.w, HDR_LAST_PFN) >>> 0, dir: Atomics.load(this.w, HDR_LAST_DIR) };
  }

  private fault(pfn: number, dir: number): false {
    Atomics.store(this.w, HDR_LAST_PFN, pfn | 0);
    Atomics.store(this.w, HDR_LAST_DIR, dir);
    Atomics.add(this.w, HDR_FAULTS, 1);
    return false;
  }
}
