const PAGE_SHIFT = 12;

/**
 * A device's view of the machine's RAM: the SharedArrayBuffer sections of @pagemig/core addressed
 * by physical (bus) address. Used by device threads, which get the sections at start; a copy may
 * cross section boundaries (physically contiguous runs are merged into one descriptor).
 */
export class RamView {
  readonly bytes: Uint8Array[];
  readonly words: Int32Array[];
  /** Bytes per section (the last one may be shorter). */
  readonly sectionBytes: number;
  /** Bytes of RAM: valid addresses are [0, size). */
  readonly size: number;

  constructor(sections: readonly SharedArrayBuffer[], sectionPfnShift: number, nrPages: number) {
    this.bytes = sections.map((s) => new Uint8Array(s));
    this.words = sections.map((s) => new Int32Array(s));
    this.sectionBytes = 2 ** (sectionPfnShift + PAGE_SHIFT);
    this.size = Math.min(
      nrPages * 2 ** PAGE_SHIFT,
      sections.reduce((n, s) => n + s.byteLength, 0),
    );
  }

  /** True if [addr, addr + len) is RAM. */
  contains(addr: number, len: number): boolean {
    return addr >= 0 && len >= 0 && addr + len <= this.size;
  }

  /** Copies `len` bytes from `src` to `dst` (both inside RAM; overlapping ranges copy as memmove). */
  copy(dst: number, src: number, len: number): void {
    const sb = this.sectionBytes;
    while (len > 0) {
      const ss = Math.floor(src / sb);
      const ds = Math.floor(dst / sb);
      const so = src - ss * sb;
      const dof = dst - ds * sb;
      const n = Math.min(len, sb - so, sb - dof);
      this.bytes[ds]!.set(this.bytes[ss]!.subarray(so, so + n), dof);
      src += n;
      dst += n;
      len -= n;
    }
  }

  /** The little-endian dword at a 4-byte aligned address. */
  readU32(addr: number): number {
    const s = Math.floor(addr / this.sectionBytes);
    return this.words[s]![(addr - s * this.sectionBytes) >>> 2]! >>> 0;
  }

  /** A live Int32Array over `nWords` dwords at a 4-byte aligned address inside one section. */
  words32(addr: number, nWords: number): Int32Array {
    const s = Math.floor(addr / this.sectionBytes);
    const off = addr - s * this.sectionBytes;
    return this.words[s]!.subarray(off >>> 2, (off >>> 2) + nWords);
  }

  /** A copy of [addr, addr + len), which may cross sections. */
  read(addr: number, len: number): Uint8Array {
    const out = new Uint8Array(len);
    const sb = this.sectionBytes;
    for (let done = 0; done < len; ) {
      const s = Math.floor((addr + done) / sb);
      const off = addr + done - s * sb;
      const n = Math.min(len - done, sb - off);
      out.set(this.bytes[s]!.subarray(off, off + n), done);
      done += n;
    }
    return out;
  }

  /** Writes `data` at `addr` (the range may cross sections). */
  write(addr: number, data: Uint8Array): void {
    const sb = this.sectionBytes;
    for (let done = 0; done < data.length; ) {
      const s = Math.floor((addr + done) / sb);
      const off = addr + done - s * sb;
      const n = Math.min(data.length - done, sb - off);
      this.bytes[s]!.set(data.subarray(done, done + n), off);
      done += n;
    }
  }

  /** A live byte view of [addr, addr + len) inside one section. */
  view(addr: number, len: number): Uint8Array {
    const s = Math.floor(addr / this.sectionBytes);
    const off = addr - s * this.sectionBytes;
    return this.bytes[s]!.subarray(off, off + len);
  }
}
