import { EBUSY, EINVAL, type Machine } from '@pagemig/core';
import { afterEach, describe, expect, it } from 'vitest';
import { attachNumaBalancing, type NumaBalancingOptions } from '../src/index.js';
import { smallMachine } from './helpers.js';

let m: Machine | undefined;
afterEach(async () => {
  await m?.close();
  m = undefined;
});

const optionError = (message: string) =>
  expect.objectContaining({ code: 'ERR_NUMA_BALANCING_OPTION', errno: EINVAL, message });

describe('attachNumaBalancing options', () => {
  it('refuses what is not a machine with EINVAL, not a TypeError', () => {
    for (const bad of [undefined, null, 'm', {}, { kernel: {} }]) {
      expect(() => attachNumaBalancing(bad as unknown as Machine)).toThrow(
        expect.objectContaining({
          code: 'EINVAL',
          errno: EINVAL,
          message: expect.stringMatching(
            /^EINVAL: attachNumaBalancing: expected a machine from createMachine\(\), got /,
          ),
        }),
      );
    }
  });

  it('refuses unknown and misspelt options, naming the closest one', async () => {
    m = await smallMachine();
    expect(() => attachNumaBalancing(m!, { scanDelay: 10 } as NumaBalancingOptions)).toThrow(
      optionError(
        'attachNumaBalancing: unknown option "scanDelay"; did you mean "scanDelayMs"? (known options: scanDelayMs, scanPeriodMs, scanPeriodMinMs, scanPeriodMaxMs, scanSizeMb)',
      ),
    );
    expect(() => attachNumaBalancing(m!, { bogus: 1 } as NumaBalancingOptions)).toThrow(
      optionError(
        'attachNumaBalancing: unknown option "bogus"; known options: scanDelayMs, scanPeriodMs, scanPeriodMinMs, scanPeriodMaxMs, scanSizeMb',
      ),
    );
    expect(() => attachNumaBalancing(m!, null as unknown as NumaBalancingOptions)).toThrow(
      optionError('attachNumaBalancing: options must be an object like { scanDelayMs: 10 }, got null'),
    );
  });

  it('refuses values the sysctls would refuse, naming the option', async () => {
    m = await smallMachine();
    const bad: [NumaBalancingOptions, string][] = [
      [{ scanDelayMs: -1 }, 'scanDelayMs must be a number of ms (an integer 0..2147483647), got -1'],
      [{ scanPeriodMs: 1.5 }, 'scanPeriodMs must be a number of ms (an integer 0..2147483647), got 1.5'],
      [
        { scanPeriodMinMs: Number.NaN },
        'scanPeriodMinMs must be a number of ms (an integer 0..2147483647), got NaN',
      ],
      [
        { scanPeriodMaxMs: '10' as never },
        'scanPeriodMaxMs must be a number of ms (an integer 0..2147483647), got "10"',
      ],
      [
        { scanDelayMs: 10n as never },
        'scanDelayMs must be a number of ms (an integer 0..2147483647), got 10n',
      ],
      [
        { scanDelayMs: [5] as never },
        'scanDelayMs must be a number of ms (an integer 0..2147483647), got [5]',
      ],
      [{ scanSizeMb: 0 }, 'scanSizeMb must be a number of MB (an integer 1..2147483647), got 0'],
      [
        { scanSizeMb: 2 ** 31 },
        'scanSizeMb must be a number of MB (an integer 1..2147483647), got 2147483648',
      ],
      [
        { scanPeriodMs: 10, scanPeriodMaxMs: 20 },
        'give either scanPeriodMs or scanPeriodMinMs/scanPeriodMaxMs, not both',
      ],
    ];
    for (const [opts, message] of bad)
      expect(() => attachNumaBalancing(m!, opts)).toThrow(optionError(`attachNumaBalancing: ${message}`));
    // Nothing was attached by the refused calls.
    const nb = attachNumaBalancing(m, { scanPeriodMinMs: 0, scanPeriodMaxMs: 0, scanDelayMs: 0 });
    await nb.stop();
  });

  it('one instance per machine (EBUSY), none on a closed machine', async () => {
    m = await smallMachine();
    const nb = attachNumaBalancing(m);
    expect(() => attachNumaBalancing(m!)).toThrow(
      expect.objectContaining({
        code: 'EBUSY',
        errno: EBUSY,
        message:
          'EBUSY: attachNumaBalancing: this machine already has NUMA balancing attached; stop() it first',
      }),
    );
    await nb.stop();
    await attachNumaBalancing(m).stop();
    await m.close();
    expect(() => attachNumaBalancing(m!)).toThrow(expect.objectContaining({ code: 'ERR_MACHINE_CLOSED' }));
  });

  it('options override the sysctls; the others follow the sysctls as they are written', async () => {
    m = await smallMachine();
    const nb = attachNumaBalancing(m, { scanSizeMb: 4, scanPeriodMs: 50 });
    expect(nb.knobs()).toEqual({
      scanDelayMs: 1000,
      scanPeriodMinMs: 50,
      scanPeriodMaxMs: 50,
      scanSizeMb: 4,
    });
    expect(m.sysctl.write('kernel.numa_balancing_scan_delay_ms', '20')).toBe(0);
    expect(m.sysctl.write('kernel.numa_balancing_scan_size_mb', '64')).toBe(0);
    expect(nb.knobs()).toEqual({ scanDelayMs: 20, scanPeriodMinMs: 50, scanPeriodMaxMs: 50, scanSizeMb: 4 });
    // The sysctls themselves are untouched by the options.
    expect(m.sysctl.read('kernel.numa_balancing_scan_period_min_ms')).toBe('1000\n');
    await nb.stop();
  });
});
