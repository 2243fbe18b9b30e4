/**
 * A xorshift32 byte stream, generated piece by piece so that gigabytes can be written and checked
 * without holding them. A new seed per run means a copy that never happened cannot pass on stale
 * frames.
 */
export class PatternStream {
  private x: number;
  constructor(seed: number) {
    this.x = seed >>> 0 || 1;
  }

  /** The next `bytes` (a multiple of 4) of the stream, into `out` if given. */
  next(bytes: number, out = new Uint8Array(bytes)): Uint8Array {
    const words = new Uint32Array(out.buffer, out.byteOffset, bytes >>> 2);
    let x = this.x;
    for (let i = 0; i < words.length; i++) {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      words[i] = x >>> 0;
    }
    this.x = x;
    return out;
  }
}

/** Pieces in which the stream is written and checked. */
export const PATTERN_PIECE = 4 << 20;
