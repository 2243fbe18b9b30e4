/**
 * Copies run `index` of `threads` contiguous runs of the pieces of `chunk` bytes that cover `src`
 * (parallelRawCopier's split, shared by the calling thread and its workers).
 * @param {Uint8Array} src
 * @param {Uint8Array} dst
 * @param {number} chunk
 * @param {number} index
 * @param {number} threads
 */
export function copyShare(src, dst, chunk, index, threads) {
  const pieces = Math.ceil(src.length / chunk);
  const end = Math.min(Math.floor(((index + 1) * pieces) / threads) * chunk, src.length);
  for (let off = Math.floor((index * pieces) / threads) * chunk; off < end; off += chunk)
    dst.set(src.subarray(off, Math.min(off + chunk, end)), off);
}
