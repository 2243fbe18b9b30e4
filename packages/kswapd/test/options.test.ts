import { EBUSY, EINVAL, type Machine } from '@pagemig/core';
import { DEMOTION_ENABLED_PATH } from '@pagemig/core/internal';
import { afterEach, describe, expect, it } from 'vitest';
import { attachKswapd, KSWAPD_NAP_MS, type KswapdOptions } from '../src/index.js';
import { tierMachine } from './helpers.js';

let m: Machine | undefined;
afterEach(async () => {
  await m?.close();
  m = undefined;
});

const optionError = (message: string) =>
  expect.objectContaining({ code: 'ERR_KSWAPD_OPTION', errno: EINVAL, message });

describe('attachKswapd options', () => {
  it('refuses what is not a machine with EINVAL', () => {
    for (const bad of [undefined, null, 'm', {}]) {
      expect(() => attachKswapd(bad as unknown as Machine)).toThrow(
        expect.objectContaining({
          code: 'EINVAL',
          errno: EINVAL,
          message: expect.stringMatching(
            /^EINVAL: attachKswapd: expected a machine from createMachine\(\), got /,
          ),
        }),
      );
    }
  });

  it('refuses unknown, misspelt and invalid options, naming them, and changes nothing', async () => {
    m = await tierMachine();
    const bad: [unknown, string][] = [
      [
        { napMS: 1 },
        'unknown option "napMS"; did you mean "napMs"? (known options: demotion, directReclaim, napMs, copyTimeoutMs)',
      ],
      [{ bogus: 1 }, 'unknown option "bogus"; known options: demotion, directReclaim, napMs, copyTimeoutMs'],
      [null, 'options must be an object like { demotion: true }, got null'],
      [[], 'options must be an object like { demotion: true }, got []'],
      [{ demotion: 'yes' }, 'demotion must be true or false, got "yes"'],
      [{ directReclaim: 1 }, 'directReclaim must be true or false, got 1'],
      [{ napMs: -1 }, 'napMs must be a number of ms >= 0, got -1'],
      [{ napMs: Number.POSITIVE_INFINITY }, 'napMs must be a number of ms >= 0, got Infinity'],
      [{ napMs: '5' }, 'napMs must be a number of ms >= 0, got "5"'],
      [{ napMs: 5n }, 'napMs must be a number of ms >= 0, got 5n'],
      [
        { copyTimeoutMs: 0 },
        'copyTimeoutMs must be a positive number of ms up to 2147483647 (as vm.migrate_copy_timeout_ms), got 0',
      ],
      // Above what the migration engine accepts: refused here, not by every demotion.
      [
        { copyTimeoutMs: 2 ** 31 },
        'copyTimeoutMs must be a positive number of ms up to 2147483647 (as vm.migrate_copy_timeout_ms), got 2147483648',
      ],
    ];
    for (const [opts, message] of bad) {
      expect(() => attachKswapd(m!, opts as KswapdOptions)).toThrow(optionError(`attachKswapd: ${message}`));
    }
    // Nothing was installed: a valid attach still works, demotion_enabled is untouched.
    expect(m.sysfs.read(DEMOTION_ENABLED_PATH)).toBe('false\n');
    const ks = attachKswapd(m);
    expect(ks.knobs()).toEqual({
      demotionEnabled: false,
      directReclaim: true,
      napMs: KSWAPD_NAP_MS,
      copyTimeoutMs: undefined,
      minFreeKbytes: m.kernel.vm.min_free_kbytes,
      watermarkScaleFactor: 1000,
      numaBalancing: 0,
    });
    await ks.stop();
  });

  it('reads each option once: a getter that would throw on a later read changes nothing', async () => {
    m = await tierMachine();
    const reads: Record<string, number> = {};
    const once =
      <T>(key: string, v: T) =>
      () => {
        reads[key] = (reads[key] ?? 0) + 1;
        if (reads[key] > 1) throw new Error(`${key} read again`);
        return v;
      };
    const opts = Object.defineProperties(
      {},
      {
        demotion: { enumerable: true, get: once('demotion', true) },
        directReclaim: { enumerable: true, get: once('directReclaim', false) },
        napMs: { enumerable: true, get: once('napMs', 7) },
        copyTimeoutMs: { enumerable: true, get: once('copyTimeoutMs', 2 ** 31 - 1) },
      },
    ) as KswapdOptions;
    const ks = attachKswapd(m, opts);
    expect(reads).toEqual({ demotion: 1, directReclaim: 1, napMs: 1, copyTimeoutMs: 1 });
    expect(ks.knobs()).toMatchObject({
      demotionEnabled: true,
      directReclaim: false,
      napMs: 7,
      copyTimeoutMs: 2 ** 31 - 1,
    });
    await ks.stop();
    // stop() removed what the attach installed: both hooks are free.
    m.kernel.setAllocHook('wakeKswapd', () => undefined)();
    m.kernel.setAllocHook('directReclaim', async () => 0)();
  });

  it('a refused attach (an allocator hook taken) leaves the machine as it was, naming attachKswapd', async () => {
    m = await tierMachine();
    const off = m.kernel.setAllocHook('directReclaim', async () => 0);
    expect(() => attachKswapd(m!, { demotion: true })).toThrow(
      expect.objectContaining({
        code: 'EBUSY',
        errno: EBUSY,
        message:
          "EBUSY: attachKswapd: the allocator's directReclaim hook is already installed (m.kernel.setAllocHook); remove it first",
      }),
    );
    // The wakeKswapd hook it installed first is gone again, and demotion_enabled is untouched.
    m.kernel.setAllocHook('wakeKswapd', () => undefined)();
    expect(m.sysfs.read(DEMOTION_ENABLED_PATH)).toBe('false\n');
    // Without direct reclaim it needs only wakeKswapd.
    const ks = attachKswapd(m, { directReclaim: false });
    await ks.stop();
    off();
  });

  it("a nap longer than Node's longest timer lasts (2^31 - 1 ms), with no TimeoutOverflowWarning", async () => {
    m = await tierMachine();
    const warnings: Error[] = [];
    const onWarning = (w: Error) => warnings.push(w);
    process.on('warning', onWarning);
    try {
      // Each kswapd naps right after it starts (its node is balanced); Node would end a 2^40 ms
      // timer after 1 ms.
      const ks = attachKswapd(m, { napMs: 2 ** 40 });
      await new Promise((r) => setTimeout(r, 100));
      expect(ks.threadInfo().map((t) => t.state)).toEqual(['napping', 'napping']);
      expect(ks.knobs().napMs).toBe(2 ** 40);
      await ks.stop();
      expect(ks.threadInfo().map((t) => t.state)).toEqual(['stopped', 'stopped']);
      await new Promise((r) => setImmediate(r));
      expect(warnings.filter((w) => w.name === 'TimeoutOverflowWarning')).toEqual([]);
    } finally {
      process.off('warning', onWarning);
    }
  });

  it('sets demotion_enabled, and follows later writes of it', async () => {
    m = await tierMachine();
    const ks = attachKswapd(m, { demotion: true });
    expect(m.sysfs.read(DEMOTION_ENABLED_PATH)).toBe('true\n');
    expect(m.sysfs.write(DEMOTION_ENABLED_PATH, 'off')).toBe(0);
    expect(ks.knobs().demotionEnabled).toBe(false);
    await ks.stop();
    // stop() leaves the machine's knob as it is.
    expect(m.sysfs.read(DEMOTION_ENABLED_PATH)).toBe('false\n');
  });

  it('allows one kswapd per machine (EBUSY) until stop(); stop is idempotent and ends the threads', async () => {
    m = await tierMachine();
    const ks = attachKswapd(m, { napMs: 1 });
    expect(() => attachKswapd(m!)).toThrow(
      expect.objectContaining({
        code: 'EBUSY',
        errno: EBUSY,
        message: 'EBUSY: attachKswapd: this machine already has kswapd attached; stop() it first',
      }),
    );
    await ks.settled();
    expect(ks.threadInfo().map((t) => t.state)).toEqual(['sleeping', 'sleeping']);
    const pids = ks.threadInfo().map((t) => t.pid);
    expect(new Set(pids).size).toBe(2);
    await Promise.all([ks.stop(), ks.stop()]);
    expect(ks.threadInfo().map((t) => t.state)).toEqual(['stopped', 'stopped']);
    expect(() => ks.wakeup(0)).toThrow(
      expect.objectContaining({ code: 'ERR_KSWAPD_STOPPED', message: 'ks.wakeup: kswapd is stopped' }),
    );
    await ks.settled();
    // The hooks are gone: another instance can attach.
    const again = attachKswapd(m, { napMs: 1 });
    await again.settled();
    await again.stop();
  });

  it('refuses a wakeup of a node without kswapd or with a bad order, with EINVAL', async () => {
    m = await tierMachine();
    const ks = attachKswapd(m, { napMs: 1 });
    expect(() => ks.wakeup(2)).toThrow(
      expect.objectContaining({
        errno: EINVAL,
        message: 'EINVAL: ks.wakeup: node 2 has no kswapd (no memory, or no such node)',
      }),
    );
    // A string is not a node id, whatever it reads as.
    expect(() => ks.wakeup('0' as never)).toThrow(
      expect.objectContaining({ errno: EINVAL, message: 'EINVAL: ks.wakeup: node "0" is not a node id' }),
    );
    expect(() => ks.wakeup(0, 11)).toThrow(
      expect.objectContaining({
        errno: EINVAL,
        message: 'EINVAL: ks.wakeup: order 11 is not an integer in 0..10',
      }),
    );
    expect(() => ks.wakeup(0, '2' as never)).toThrow(
      expect.objectContaining({ message: 'EINVAL: ks.wakeup: order "2" is not an integer in 0..10' }),
    );
    // A balanced node is not woken.
    await ks.settled();
    expect(ks.wakeup(0)).toBe(false);
    await ks.stop();
  });

  it('is stopped when the machine closes, and cannot attach to a closed machine', async () => {
    const mm = await tierMachine();
    const ks = attachKswapd(mm, { napMs: 1 });
    await mm.close();
    expect(ks.threadInfo().every((t) => t.state === 'stopped')).toBe(true);
    expect(() => attachKswapd(mm)).toThrow(expect.objectContaining({ code: 'ERR_MACHINE_CLOSED' }));
  });
});
