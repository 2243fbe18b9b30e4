/**
 * One check for the options a migrator's `createMigrator` (or a policy daemon's `attach`) takes:
 * each key's type, range and default are declared once, and every error is ERR_MIGRATOR_OPTION
 * with the same wording whichever driver throws it.
 */
import { distance } from 'fastest-levenshtein';
import { PagemigError } from './errno.js';

interface RangeSpec {
  /** Inclusive bounds. */
  readonly min?: number;
  readonly max?: number;
  /** Shown after the range in errors, e.g. 'bytes', 'µs'. */
  readonly unit?: string;
}

/** A safe integer within `min..max`. */
export interface IntegerOptionSpec extends RangeSpec {
  readonly type: 'integer';
  readonly default?: number;
}

/** A finite number within `min..max`. */
export interface NumberOptionSpec extends RangeSpec {
  readonly type: 'number';
  readonly default?: number;
}

export interface BooleanOptionSpec {
  readonly type: 'boolean';
  readonly default?: boolean;
}

/** Anything else: `parse` checks and converts a value that is present. */
export interface CustomOptionSpec<T> {
  readonly type: 'custom';
  /** What a valid value is, for "<key> must be <expected>, got <value>". */
  readonly expected: string;
  /** The parsed value, or undefined when `value` is invalid. A PagemigError it throws is passed on as is. */
  parse(value: unknown): T | undefined;
  readonly default?: T;
}

export type MigratorOptionSpec =
  | IntegerOptionSpec
  | NumberOptionSpec
  | BooleanOptionSpec
  | CustomOptionSpec<unknown>;

/** Every key a driver accepts, in the order errors list them. */
export type MigratorOptionsSpec = { readonly [key: string]: MigratorOptionSpec };

type OptionValue<O> = O extends { type: 'integer' | 'number' }
  ? number
  : O extends { type: 'boolean' }
    ? boolean
    : O extends { parse(value: unknown): infer T }
      ? Exclude<T, undefined>
      : never;

/** What `checkMigratorOptions` returns: every key of the spec, undefined only where it has no default. */
export type ParsedMigratorOptions<S extends MigratorOptionsSpec> = {
  -readonly [K in keyof S]: S[K] extends { default: unknown }
    ? OptionValue<S[K]>
    : OptionValue<S[K]> | undefined;
};

/**
 * The closest of `known` to `key` within an edit distance of a third of the key's length (at least
 * 1), ignoring case, or undefined. `key` itself is never suggested.
 */
export function suggestKey(key: string, known: Iterable<string>): string | undefined {
  const max = Math.max(1, Math.floor(key.length / 3));
  const lower = key.toLowerCase();
  let best: string | undefined;
  let bestDistance = Number.POSITIVE_INFINITY;
  for (const k of known) {
    if (k === key) continue;
    const d = distance(lower, k.toLowerCase());
    if (d <= max && d < bestDistance) {
      best = k;
      bestDistance = d;
    }
  }
  return best;
}

/** "known options: a, b", or "it takes no options" (`noun`: what the keys are, default "option"). */
export function describeKnownKeys(known: readonly string[], noun = 'option'): string {
  return known.length ? `known ${noun}s: ${known.join(', ')}` : `it takes no ${noun}s`;
}

/**
 * The message for the first key of `given` that is not one of `known`, with the closest known key
 * and the list of them (`unknown option "shard"; did you mean "shared"? (known options: ...)`), or
 * undefined when every key is known. `noun` names the keys ("option", "field").
 */
export function unknownOption(given: object, known: readonly string[], noun = 'option'): string | undefined {
  for (const key of Object.keys(given)) {
    if (known.includes(key)) continue;
    const hint = suggestKey(key, known);
    const tail = hint
      ? `did you mean ${JSON.stringify(hint)}? (${describeKnownKeys(known, noun)})`
      : describeKnownKeys(known, noun);
    return `unknown ${noun} ${JSON.stringify(key)}; ${tail}`;
  }
  return undefined;
}

/** A value as an error message shows it: strings quoted, NaN as NaN, long objects cut. */
function formatValue(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v);
  if (typeof v === 'function') return 'a function';
  if (typeof v === 'bigint') return `${v}n`;
  if (typeof v !== 'object' || v === null) return String(v);
  try {
    const s = JSON.stringify(v);
    return s.length > 60 ? `${s.slice(0, 57)}...` : s;
  } catch {
    return Object.prototype.toString.call(v);
  }
}

function expectation(spec: MigratorOptionSpec): string {
  if (spec.type === 'boolean') return 'a boolean';
  if (spec.type === 'custom') return spec.expected;
  const { min, max, unit } = spec;
  const a = spec.type === 'integer' ? 'an integer' : 'a number';
  let s: string;
  if (min !== undefined && max !== undefined) s = `${a} in ${min}..${max}`;
  else if (min === 0) s = `a non-negative ${spec.type}`;
  else if (min === 1 && spec.type === 'integer') s = 'a positive integer';
  else if (min !== undefined) s = `${a} >= ${min}`;
  else if (max !== undefined) s = `${a} <= ${max}`;
  else s = spec.type === 'integer' ? 'a safe integer' : 'a finite number';
  return unit ? `${s} (${unit})` : s;
}

/** The value parsed, or undefined when it does not fit the spec. */
function parseValue(spec: MigratorOptionSpec, v: unknown): unknown {
  switch (spec.type) {
    case 'boolean':
      return typeof v === 'boolean' ? v : undefined;
    case 'custom':
      return spec.parse(v);
    default: {
      if (typeof v !== 'number') return undefined;
      if (spec.type === 'integer' ? !Number.isSafeInteger(v) : !Number.isFinite(v)) return undefined;
      const inRange = (spec.min === undefined || v >= spec.min) && (spec.max === undefined || v <= spec.max);
      return inRange ? v : undefined;
    }
  }
}

function optionError(driver: string, message: string): PagemigError {
  return new PagemigError('ERR_MIGRATOR_OPTION', `${driver}: ${message}`);
}

/**
 * Checks `options` against `spec` and returns every key of the spec parsed: a key that is absent
 * (undefined or null, as `??` treats it) gets its default. Throws ERR_MIGRATOR_OPTION, the message
 * starting with `<driver>: `, for options that are not an object (undefined counts as `{}`), an
 * unknown key (with the closest known key and the list of known keys), and a value of the wrong
 * type or out of range (naming the key, what it must be, and the value given).
 */
export function checkMigratorOptions<const S extends MigratorOptionsSpec>(
  driver: string,
  options: unknown,
  spec: S,
): ParsedMigratorOptions<S> {
  const given = options ?? {};
  if (typeof given !== 'object' || Array.isArray(given))
    throw optionError(driver, `options must be an object, got ${formatValue(options)}`);
  const known = Object.keys(spec);
  const unknown = unknownOption(given, known);
  if (unknown) throw optionError(driver, unknown);
  const values = given as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  for (const key of known) {
    const s = spec[key]!;
    const v = values[key];
    if (v === undefined || v === null) {
      out[key] = s.default;
      continue;
    }
    const parsed = parseValue(s, v);
    if (parsed === undefined)
      throw optionError(driver, `${key} must be ${expectation(s)}, got ${formatValue(v)}`);
    out[key] = parsed;
  }
  return out as ParsedMigratorOptions<S>;
}
