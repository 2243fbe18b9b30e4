import { threadCpuSeconds } from '@pagemig/core';

let cached: number | undefined;

/**
 * The step the engine's CPU clock moves in on this machine, in seconds. Core reads the engine
 * thread's schedstat plainly once per run, and the kernel folds the running slice into it only at
 * a scheduler tick or a context switch (4 ms at HZ=250), so a figure is good to about one step.
 * Measured once per process by spinning until the clock has moved a few times (at most 60 ms):
 * the largest step seen, since a context switch (a busy, shared machine) only makes steps shorter.
 */
export function cpuClockResolution(): number {
  if (cached !== undefined) return cached;
  const steps: number[] = [];
  let last = threadCpuSeconds();
  let seen = 0;
  const t0 = performance.now();
  while (steps.length < 5 && performance.now() - t0 < 60) {
    const v = threadCpuSeconds();
    if (v === last) continue;
    // The first change ends a partial step; the ones after it are whole steps.
    if (seen++ > 0) steps.push(v - last);
    last = v;
  }
  cached = steps.length ? Math.max(...steps) : 0.004;
  return cached;
}

/** Milliseconds with as many decimals as the clock's step supports. */
export function cpuMs(seconds: number, resolution = cpuClockResolution()): string {
  const res = resolution * 1000;
  const digits = res >= 1 ? 0 : res >= 0.1 ? 1 : res >= 0.01 ? 2 : 3;
  return (seconds * 1000).toFixed(digits);
}

/** The step in ms, for a header or a footnote: `4`, `0.1`. */
export function cpuStepMs(resolution = cpuClockResolution()): string {
  const res = resolution * 1000;
  return res >= 1 ? res.toFixed(0) : String(Number(res.toPrecision(1)));
}
