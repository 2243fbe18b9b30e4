import { createMachine, type Machine } from '@pagemig/core';

/** Deterministic bytes: every 4-byte word differs between seeds and positions. */
export function pattern(seed: number, n: number): Uint8Array {
  const out = new Uint8Array(n);
  const w = new Uint32Array(out.buffer, 0, n >>> 2);
  for (let i = 0; i < w.length; i++) w[i] = Math.imul(i + 1, 2654435761) ^ Math.imul(seed + 1, 40503);
  return out;
}

export async function smallMachine(memory = '32MiB', nodes = 2): Promise<Machine> {
  return createMachine({
    nodes: Array.from({ length: nodes }, () => ({ memory })),
    prefault: false,
  });
}

/** Fills pfns [pfn, pfn + nr) with the pattern of `seed` and returns the bytes. */
export function fillPages(m: Machine, pfn: number, nr: number, seed: number): Uint8Array {
  const data = pattern(seed, nr * 4096);
  m.kernel.mem.view(pfn, nr).set(data);
  return data;
}

export function samePages(m: Machine, pfn: number, data: Uint8Array): boolean {
  return Buffer.compare(m.kernel.mem.view(pfn, data.length / 4096), data) === 0;
}

export const never: AbortSignal = new AbortController().signal;
