import { describe, expect, it } from 'vitest';
import { EINVAL } from '../src/errno.js';
import { expectErrno, machinesCheckedAfterEach } from './helpers.js';

const machine = machinesCheckedAfterEach();

describe('machine clock', () => {
  it("clock: 'manual' starts at 0 and moves only by advance()", async () => {
    const m = await machine({ clock: 'manual' });
    expect(m.clock.mode).toBe('manual');
    expect(m.kernel.clock).toBe(m.clock);
    expect(m.clock.now()).toBe(0);
    m.clock.advance(5);
    m.clock.advance(0.25);
    expect(m.clock.now()).toBe(5.25);
    m.clock.advance(0);
    expect(m.clock.now()).toBe(5.25);
  });

  it('advance() refuses a negative, non-finite or non-number ms with EINVAL and keeps the time', async () => {
    const m = await machine({ clock: 'manual' });
    m.clock.advance(10);
    for (const bad of [-1, Number.NaN, Number.POSITIVE_INFINITY, '5', undefined]) {
      const e = expectErrno(() => m.clock.advance(bad as number), EINVAL, 'EINVAL');
      expect(e.message).toMatch(/^EINVAL: clock\.advance: ms .* is not a finite number >= 0$/);
    }
    expect(m.clock.now()).toBe(10);
  });

  it('the default clock is wall time since creation, which advance() cannot move', async () => {
    const m = await machine();
    expect(m.clock.mode).toBe('wall');
    const a = m.clock.now();
    expect(a).toBeGreaterThanOrEqual(0);
    const e = expectErrno(() => m.clock.advance(1), EINVAL);
    expect(e.message).toContain("the machine's clock is 'wall'");
    expect(m.clock.now()).toBeGreaterThanOrEqual(a);
    expect((await machine({ clock: 'wall' })).clock.mode).toBe('wall');
  });

  it("clock 'modeled' keeps a wall machine clock; a bad clock names the field", async () => {
    const m = await machine({ clock: 'modeled', profile: 'dram-cxl' });
    expect(m.clock.mode).toBe('wall');
    expect(m.kernel.config.clock).toBe('modeled');
    expect((await machine({ clock: 'manual' })).kernel.config.clock).toBe('real');
    await expect(machine({ clock: 'slow' as 'manual' })).rejects.toMatchObject({
      code: 'ERR_INVALID_CONFIG',
      message: expect.stringMatching(/^createMachine: clock: .*"manual"/),
    });
  });
});
