/**
 * Fault injection (lib/fault-inject.c, fail_page_alloc): a plan of faults that the engine and the
 * migrators honour in tests. Each rule names a *site*; code at that site asks the plan with
 * `plan.hit(site, info)` and gets the rule back when it fires (null otherwise, and always null
 * without a plan, so an honoured site costs one null check in production).
 *
 * Sites the engine honours (any migrator, also none):
 *   alloc_dst      the destination allocation on the target node fails (target node out of memory)
 *   unmap_pin      the folio gets a DMA pin (FOLL_PIN) right after its unmap; the move phase then
 *                  sees extra references, retries and restores the old mappings; the pin is
 *                  dropped when the batch ends
 *   migrator_call  the engine's call into the routed migrator's copyBatch behaves as a faulty
 *                  migrator: action 'throw' | 'reject' | 'hang' (never settles: the copy timeout
 *                  aborts it and the engine abandons it) | 'partial' (marks of every other row
 *                  are dropped after the call, so the engine copies those rows)
 *
 * Sites drivers honour (read the plan from `ctx.faults` in copyBatch; declare the sites in
 * `capabilities.faultSites` so the conformance suite runs those cases):
 *   copy_batch     at the start of copyBatch: 'throw' | 'reject' | 'hang' (settles only when the
 *                  signal aborts) | 'hang_ignore_abort' (never settles)
 *   copy_row       per row (info.row): 'skip' (not copied, not marked) | 'garbage' (the
 *                  destination is scribbled, not marked)
 *   device_error   a descriptor completes with an error status (`code`) at row info.row: rows
 *                  completed before stay marked, the rest are left to the engine
 *   device_hang    the device stops completing at row info.row; the driver times out after
 *                  `timeoutMs`, resets the channel and leaves the unfinished rows unmarked
 *   worker_exit    a copy worker dies while copying row info.row; its unfinished rows stay
 *                  unmarked and the driver replaces the worker
 */
import { EINVAL, PagemigError } from './errno.js';
import { show } from './show.js';

export type EngineFaultSite = 'alloc_dst' | 'unmap_pin' | 'migrator_call';
export type DriverFaultSite = 'copy_batch' | 'copy_row' | 'device_error' | 'device_hang' | 'worker_exit';
export type FaultSite = EngineFaultSite | DriverFaultSite;

export const ENGINE_FAULT_SITES: readonly EngineFaultSite[] = ['alloc_dst', 'unmap_pin', 'migrator_call'];
export const DRIVER_FAULT_SITES: readonly DriverFaultSite[] = [
  'copy_batch',
  'copy_row',
  'device_error',
  'device_hang',
  'worker_exit',
];

export type FaultAction = 'throw' | 'reject' | 'hang' | 'hang_ignore_abort' | 'partial' | 'skip' | 'garbage';

/** What the code at a site tells the plan about the hit (rules can match on it). */
export interface FaultInfo {
  node?: number;
  migrator?: string;
  /** Folio order. */
  order?: number;
  /** Batch row. */
  row?: number;
  pfn?: number;
}

export interface FaultRule {
  site: FaultSite;
  action?: FaultAction;
  /** The first matching hit that fires (1-based). Default 1. */
  nth?: number;
  /** After the first, fire on every `every`-th matching hit. Default 1 (each hit). */
  every?: number;
  /** How many times the rule fires. Default 1; Infinity for always. */
  times?: number;
  /** Fire with this probability on each eligible hit (seeded, reproducible). Default 1. */
  probability?: number;
  /** Only hits whose info has these values. */
  match?: FaultInfo;
  /** device_error: the status code the device reports. */
  code?: number | string;
  /** device_hang: how long the driver waits for a completion before it resets. */
  timeoutMs?: number;
  message?: string;
}

export interface FaultRecord {
  site: FaultSite;
  action: FaultAction | undefined;
  /** Index of the rule in the plan. */
  rule: number;
  /** The matching hit number of that rule (1-based). */
  hit: number;
  info: FaultInfo;
}

/** The error an injected fault throws (or rejects with). */
export class InjectedFault extends Error {
  readonly injected = true;
  constructor(
    readonly site: FaultSite,
    message: string,
    readonly code?: number | string,
  ) {
    super(message);
    this.name = 'InjectedFault';
  }
  static isInstance(e: unknown): e is InjectedFault {
    return typeof e === 'object' && e !== null && (e as { injected?: unknown }).injected === true;
  }
}

const SITES: readonly string[] = [...ENGINE_FAULT_SITES, ...DRIVER_FAULT_SITES];

/** The actions each site knows (the first is the default); sites without actions take none. */
export const FAULT_SITE_ACTIONS: Readonly<Record<FaultSite, readonly FaultAction[]>> = {
  alloc_dst: [],
  unmap_pin: [],
  migrator_call: ['throw', 'reject', 'hang', 'partial'],
  copy_batch: ['throw', 'reject', 'hang', 'hang_ignore_abort'],
  copy_row: ['skip', 'garbage'],
  device_error: [],
  device_hang: [],
  worker_exit: [],
};

const RULE_KEYS = [
  'site',
  'action',
  'nth',
  'every',
  'times',
  'probability',
  'match',
  'code',
  'timeoutMs',
  'message',
];
const MATCH_KEYS = ['node', 'migrator', 'order', 'row', 'pfn'];

function badPlan(message: string): never {
  throw new PagemigError('ERR_INVALID_FAULT_PLAN', `fault plan: ${message}`, { errno: EINVAL });
}

/** Checks one rule; errors name the rule's index and the accepted values. */
function checkRule(r: unknown, i: number): void {
  if (typeof r !== 'object' || r === null || Array.isArray(r))
    badPlan(`rule ${i} must be an object like { site: 'alloc_dst' }, got ${r === null ? 'null' : typeof r}`);
  const rule = r as Record<string, unknown>;
  for (const key of Object.keys(rule))
    if (!RULE_KEYS.includes(key))
      badPlan(`rule ${i}: unknown key ${JSON.stringify(key)}; known: ${RULE_KEYS.join(', ')}`);
  if (typeof rule.site !== 'string' || !SITES.includes(rule.site))
    badPlan(`rule ${i}: fault site ${show(rule.site)} is not one of ${SITES.join(', ')}`);
  const actions = FAULT_SITE_ACTIONS[rule.site as FaultSite];
  if (rule.action !== undefined && !actions.includes(rule.action as FaultAction))
    badPlan(
      `rule ${i}: action ${show(rule.action)} is not one of site ${rule.site}'s: ${actions.length ? actions.join(', ') : 'none (leave action out)'}`,
    );
  const int1 = (key: 'nth' | 'every') => {
    const v = rule[key];
    if (v !== undefined && !(Number.isInteger(v) && (v as number) >= 1))
      badPlan(`rule ${i}: ${key} must be an integer >= 1, got ${show(v)}`);
  };
  int1('nth');
  int1('every');
  const times = rule.times;
  if (
    times !== undefined &&
    !((Number.isInteger(times) && (times as number) >= 1) || times === Number.POSITIVE_INFINITY)
  )
    badPlan(`rule ${i}: times must be an integer >= 1 or Infinity, got ${show(times)}`);
  const pr = rule.probability;
  if (pr !== undefined && !(typeof pr === 'number' && pr >= 0 && pr <= 1))
    badPlan(`rule ${i}: probability must be in 0..1, got ${show(pr)}`);
  if (rule.match !== undefined) {
    const m = rule.match;
    if (typeof m !== 'object' || m === null || Array.isArray(m))
      badPlan(`rule ${i}: match must be an object like { node: 1 }`);
    for (const [key, v] of Object.entries(m)) {
      if (!MATCH_KEYS.includes(key))
        badPlan(`rule ${i}: match key ${JSON.stringify(key)} is not one of ${MATCH_KEYS.join(', ')}`);
      const ok = key === 'migrator' ? typeof v === 'string' : v === undefined || Number.isInteger(v);
      if (!ok)
        badPlan(
          `rule ${i}: match.${key} must be ${key === 'migrator' ? 'a migrator name' : 'an integer'}, got ${show(v)}`,
        );
    }
  }
  if (rule.code !== undefined && typeof rule.code !== 'string' && typeof rule.code !== 'number')
    badPlan(`rule ${i}: code must be a string or a number`);
  const t = rule.timeoutMs;
  if (t !== undefined && !(typeof t === 'number' && t > 0 && t <= 2 ** 31 - 1))
    badPlan(`rule ${i}: timeoutMs must be a positive number of ms, got ${show(t)}`);
  if (rule.message !== undefined && typeof rule.message !== 'string')
    badPlan(`rule ${i}: message must be a string`);
}

/** A plan of faults. Build it with `createFaultPlan(rules)` and hand it to `m.injectFaults(plan)`. */
export class FaultPlan {
  readonly rules: readonly Readonly<FaultRule>[];
  /** Every fault that fired, in order. */
  readonly log: FaultRecord[] = [];
  private readonly hitCounts: number[];
  private readonly fireCounts: number[];
  private readonly siteHits = new Map<FaultSite, number>();
  private seed: number;

  /**
   * Checks every rule (site, the site's actions, counts, match keys; unknown keys are refused):
   * a bad plan throws ERR_INVALID_FAULT_PLAN (errno EINVAL) naming the rule.
   */
  constructor(rules: readonly FaultRule[], opts: { seed?: number } = {}) {
    if (!Array.isArray(rules))
      badPlan(`rules must be an array of rules, got ${rules === null ? 'null' : typeof rules}`);
    rules.forEach(checkRule);
    if (typeof opts !== 'object' || opts === null) badPlan('options must be an object like { seed: 1 }');
    if (opts.seed !== undefined && !Number.isFinite(opts.seed))
      badPlan(`seed must be a number, got ${show(opts.seed)}`);
    this.rules = rules.map((r) => ({ ...r, ...(r.match ? { match: { ...r.match } } : {}) }));
    this.hitCounts = rules.map(() => 0);
    this.fireCounts = rules.map(() => 0);
    this.seed = (opts.seed ?? 0x9e3779b9) >>> 0 || 1;
  }

  /** Whether any rule names `site` (lets a driver skip work for sites nobody asked for). */
  has(site: FaultSite): boolean {
    return this.rules.some((r) => r.site === site);
  }

  /** Called at a site: returns the rule that fires on this hit, or null. */
  hit(site: FaultSite, info: FaultInfo = {}): Readonly<FaultRule> | null {
    this.siteHits.set(site, (this.siteHits.get(site) ?? 0) + 1);
    // Every matching rule counts the hit; the first one due fires (one fault per hit).
    let fired: Readonly<FaultRule> | null = null;
    for (let i = 0; i < this.rules.length; i++) {
      const r = this.rules[i]!;
      if (r.site !== site || !matches(r.match, info)) continue;
      const n = ++this.hitCounts[i]!;
      if (fired) continue;
      const nth = r.nth ?? 1;
      if (n < nth || (n - nth) % (r.every ?? 1) !== 0) continue;
      if (this.fireCounts[i]! >= (r.times ?? 1)) continue;
      if (r.probability !== undefined && this.random() >= r.probability) continue;
      this.fireCounts[i]!++;
      this.log.push({ site, action: r.action, rule: i, hit: n, info: { ...info } });
      fired = r;
    }
    return fired;
  }

  /** Faults fired (at `site`, or in total). */
  fired(site?: FaultSite): number {
    return site ? this.log.filter((l) => l.site === site).length : this.log.length;
  }

  /** Times code asked the plan at `site`. */
  hits(site: FaultSite): number {
    return this.siteHits.get(site) ?? 0;
  }

  /** True when every rule with a finite `times` fired that often. */
  exhausted(): boolean {
    return this.rules.every(
      (r, i) => !Number.isFinite(r.times ?? 1) || this.fireCounts[i]! >= (r.times ?? 1),
    );
  }

  /** xorshift32 in [0, 1). */
  private random(): number {
    let x = this.seed;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    this.seed = x >>> 0;
    return this.seed / 2 ** 32;
  }
}

function matches(m: FaultInfo | undefined, info: FaultInfo): boolean {
  if (!m) return true;
  for (const key of Object.keys(m) as (keyof FaultInfo)[]) {
    if (m[key] !== undefined && m[key] !== info[key]) return false;
  }
  return true;
}

export function createFaultPlan(rules: readonly FaultRule[], opts: { seed?: number } = {}): FaultPlan {
  return new FaultPlan(rules, opts);
}
