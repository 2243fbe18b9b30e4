import { PagemigError } from '@pagemig/core';
import { describe, expect, it } from 'vitest';
import { DeviceClock } from '../src/device.js';
import { parseBandwidth, timingOption } from '../src/index.js';

describe('the timing option', () => {
  it.each([
    ['20MB/s', 20e6],
    ['1.5GB/s', 1.5e9],
    ['2GiB/s', 2 * 1024 ** 3],
    [' 800 mbps ', 800e6],
    ['512KiB/s', 512 * 1024],
    [4e9, 4e9],
  ])('reads %j as %d bytes/s', (v, bps) => {
    expect(parseBandwidth('dev', v)).toBe(bps);
  });

  it('resolves a profile to MB/s and ns (at least 1 MB/s), and undefined to host speed', () => {
    expect(timingOption('dev', { bandwidth: '20MB/s', latencyUs: 1.5 })).toEqual({
      bandwidthMBps: 20,
      latencyNs: 1500,
    });
    expect(timingOption('dev', { bandwidth: 1000 })).toEqual({ bandwidthMBps: 1, latencyNs: 0 });
    expect(timingOption('dev', undefined)).toEqual({ bandwidthMBps: 0, latencyNs: 0 });
  });

  it.each([
    [{ bandwidth: '20MB' }, /dev: timing: bandwidth "20MB" is not a rate like/],
    [{ bandwidth: 0 }, /dev: timing: bandwidth must be a positive number of bytes\/s, got 0/],
    [{ latencyUs: 5e6 }, /dev: timing: latencyUs must be 0\.\.4000000, got 5000000/],
    [{ speed: 1 }, /dev: timing: unknown field "speed"; known: bandwidth, latencyUs/],
    [{ bandwidth: '5000TB/s' }, /dev: timing: bandwidth is too large/],
    [7, /dev: timing: expected \{ bandwidth\?, latencyUs\? \}/],
  ])('rejects %j with ERR_MIGRATOR_OPTION naming the driver', (t, msg) => {
    try {
      timingOption('dev', t as never);
      expect.unreachable();
    } catch (e) {
      expect(PagemigError.isInstance(e) && e.code).toBe('ERR_MIGRATOR_OPTION');
      expect((e as Error).message).toMatch(msg);
    }
  });
});

describe('DeviceClock', () => {
  const words = {
    mmioSeq: 0,
    seenSeq: 1,
    sleeping: 2,
    spinNs: 3,
    state: 4,
    exit: 5,
    run: 8,
    runSpinNs: 9,
    sleeps: 10,
  };
  const regs = () => new Int32Array(new SharedArrayBuffer(64));

  it('models latency + length / bandwidth, and holds descriptors back to back on a virtual clock', () => {
    const r = regs();
    r[6] = 10; // 10 MB/s
    r[7] = 1_000_000; // 1 ms
    const clock = new DeviceClock(r, words, { bandwidthMBps: 6, latencyNs: 7 }, () => false);
    expect(clock.modelNs(10_000)).toBe(2_000_000);
    const t0 = performance.now();
    for (let i = 0; i < 5; i++) expect(clock.hold(clock.modelNs(10_000), 10_000)).toBe(true);
    expect(performance.now() - t0).toBeGreaterThanOrEqual(9.5);
  });

  it('gives up a held descriptor once stopped, and starts the next one from now', () => {
    let stop = false;
    const clock = new DeviceClock(regs(), words, { bandwidthMBps: 6, latencyNs: 7 }, () => stop);
    const t0 = performance.now();
    stop = true;
    expect(clock.hold(1e9, 0)).toBe(false);
    expect(performance.now() - t0).toBeLessThan(500);
    stop = false;
    expect(clock.hold(1e6, 0)).toBe(true);
    expect(performance.now() - t0).toBeLessThan(500);
  });
});
