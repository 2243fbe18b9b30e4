import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { PagemigError } from '../src/errno.js';
import { checkMigratorOptions, describeKnownKeys, suggestKey } from '../src/migrator_options.js';

const spec = {
  channels: { type: 'integer', min: 1, max: 16, default: 1 },
  spinUs: { type: 'number', min: 0, max: 1e6, default: 50, unit: 'µs' },
  minChunk: { type: 'integer', min: 4096, unit: 'bytes' },
  checkEvery: { type: 'integer', min: 1, default: 64 },
  callerCopies: { type: 'boolean', default: false },
  mode: {
    type: 'custom',
    expected: "'fast' or 'slow'",
    parse: (v: unknown) => (v === 'fast' || v === 'slow' ? v : undefined),
  },
} as const;

/** The ERR_MIGRATOR_OPTION message `fn` throws (fails on anything else). */
function optionError(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    if (PagemigError.isInstance(e) && e.code === 'ERR_MIGRATOR_OPTION') return e.message;
    throw e;
  }
  throw new Error('expected ERR_MIGRATOR_OPTION, nothing was thrown');
}

describe('checkMigratorOptions', () => {
  it('fills defaults for absent keys (undefined or null) and leaves keys without one undefined', () => {
    const all = { channels: 1, spinUs: 50, minChunk: undefined, checkEvery: 64, callerCopies: false };
    expect(checkMigratorOptions('drv', {}, spec)).toEqual({ ...all, mode: undefined });
    expect(checkMigratorOptions('drv', undefined, spec)).toEqual({ ...all, mode: undefined });
    expect(checkMigratorOptions('drv', { channels: null, spinUs: undefined }, spec)).toEqual({
      ...all,
      mode: undefined,
    });
    const o = checkMigratorOptions(
      'drv',
      { channels: 4, spinUs: 0.5, callerCopies: true, mode: 'fast' },
      spec,
    );
    expect(o).toEqual({ ...all, channels: 4, spinUs: 0.5, callerCopies: true, mode: 'fast' });
  });

  it('rejects options that are not an object', () => {
    for (const bad of [4, 'channels=2', true, [1, 2]]) {
      expect(optionError(() => checkMigratorOptions('drv', bad, spec))).toMatch(
        /^drv: options must be an object, got /,
      );
    }
    expect(optionError(() => checkMigratorOptions('drv', 4, spec))).toBe(
      'drv: options must be an object, got 4',
    );
  });

  it('rejects an unknown key with the closest known key and the list of known keys', () => {
    expect(optionError(() => checkMigratorOptions('drv', { chanels: 2 }, spec))).toBe(
      'drv: unknown option "chanels"; did you mean "channels"? ' +
        '(known options: channels, spinUs, minChunk, checkEvery, callerCopies, mode)',
    );
    expect(optionError(() => checkMigratorOptions('drv', { zzz: 1 }, spec))).toBe(
      'drv: unknown option "zzz"; known options: channels, spinUs, minChunk, checkEvery, callerCopies, mode',
    );
    expect(optionError(() => checkMigratorOptions('none', { a: 1 }, {}))).toBe(
      'none: unknown option "a"; it takes no options',
    );
    // Inherited names are not options.
    expect(optionError(() => checkMigratorOptions('drv', JSON.parse('{"__proto__": 1}'), spec))).toContain(
      'unknown option "__proto__"',
    );
  });

  it.each([
    [{ channels: 0 }, 'channels must be an integer in 1..16, got 0'],
    [{ channels: 17 }, 'channels must be an integer in 1..16, got 17'],
    [{ channels: 1.5 }, 'channels must be an integer in 1..16, got 1.5'],
    [{ channels: '2' }, 'channels must be an integer in 1..16, got "2"'],
    [{ channels: 2 ** 53 }, 'channels must be an integer in 1..16, got 9007199254740992'],
    [{ spinUs: -1 }, 'spinUs must be a number in 0..1000000 (µs), got -1'],
    [{ spinUs: Number.NaN }, 'spinUs must be a number in 0..1000000 (µs), got NaN'],
    [{ minChunk: 100 }, 'minChunk must be an integer >= 4096 (bytes), got 100'],
    [{ checkEvery: 0 }, 'checkEvery must be a positive integer, got 0'],
    [{ callerCopies: 'yes' }, 'callerCopies must be a boolean, got "yes"'],
    [{ callerCopies: 1 }, 'callerCopies must be a boolean, got 1'],
    [{ mode: 'medium' }, `mode must be 'fast' or 'slow', got "medium"`],
    [{ mode: { speed: 1 } }, `mode must be 'fast' or 'slow', got {"speed":1}`],
  ])('rejects %j: the key, what it must be and the value given', (options, message) => {
    expect(optionError(() => checkMigratorOptions('drv', options, spec))).toBe(`drv: ${message}`);
  });

  it("passes on a custom parser's own PagemigError unchanged", () => {
    const own = new PagemigError('ERR_MIGRATOR_OPTION', 'drv: timing: unknown field "bw"');
    const withTiming = {
      timing: {
        type: 'custom',
        expected: 'a profile',
        parse: () => {
          throw own;
        },
      },
    } as const;
    expect(() => checkMigratorOptions('drv', { timing: { bw: 1 } }, withTiming)).toThrow(own);
  });

  it('parses every integer in range to itself and rejects every other number (property)', () => {
    const inRange = fc
      .tuple(fc.integer({ min: -1000, max: 1000 }), fc.integer({ min: 0, max: 1000 }))
      .chain(([min, width]) =>
        fc.tuple(fc.constant(min), fc.constant(min + width), fc.integer({ min, max: min + width })),
      );
    fc.assert(
      fc.property(inRange, ([min, max, v]) => {
        const s = { n: { type: 'integer', min, max } } as const;
        return checkMigratorOptions('p', { n: v }, s).n === v;
      }),
    );
    const s = { n: { type: 'integer', min: -5, max: 40 } } as const;
    fc.assert(
      fc.property(
        fc.oneof(
          fc.integer({ max: -6 }),
          fc.integer({ min: 41 }),
          fc.double().filter((v) => !Number.isInteger(v)),
          fc.string(),
          fc.boolean(),
        ),
        (v) =>
          optionError(() => checkMigratorOptions('p', { n: v }, s)).startsWith(
            'p: n must be an integer in -5..40',
          ),
      ),
    );
  });
});

describe('suggestKey', () => {
  it('suggests the closest key within a third of the length, ignoring case, never the key itself', () => {
    expect(suggestKey('checkEvry', ['checkEvery'])).toBe('checkEvery');
    expect(suggestKey('CHANNELS', ['channels', 'timing'])).toBe('channels');
    expect(suggestKey('zzz', ['checkEvery'])).toBeUndefined();
    expect(suggestKey('channels', ['channels'])).toBeUndefined();
    expect(suggestKey('depht', new Set(['depth', 'dept']))).toBe('dept');
  });

  it('describes the known keys', () => {
    expect(describeKnownKeys(['a', 'b'])).toBe('known options: a, b');
    expect(describeKnownKeys([])).toBe('it takes no options');
  });
});
