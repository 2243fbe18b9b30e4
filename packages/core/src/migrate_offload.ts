import { EBUSY, EINVAL, ENOMEM, EOPNOTSUPP, kernelError, PagemigError } from './errno.js';
import type { Kernel } from './kernel.js';
import type { MigrateModeName, MigrateModeValue, MigrateReasonValue } from './migrate_mode.js';
import {
  formatReasonMask,
  type MigrateReasonName,
  migrateReasonNames,
  parseReasonMask,
  REASON_MASK_ALL,
  resolveMode,
  resolveReason,
} from './migrate_mode.js';
import {
  MIGRATOR_API_VERSION,
  type MigrationRunInfo,
  type Migrator,
  type MigratorContext,
} from './migrator.js';
import { CORE_VERSION, MigratorErrorCode, validateMigrator } from './migrator_validate.js';
import { MAX_PAGE_ORDER, MIGRATE_UNMOVABLE } from './mmzone.js';
import { PG_reserved } from './page.js';
import { show } from './show.js';

/** A migrator that keeps failing is disabled after this many consecutive failed batches. */
export const MIGRATOR_MAX_CONSECUTIVE_FAILURES = 3;

/** A run a migrator was told about (runStart), for its runEnd. */
export interface ServedRun {
  readonly migrator: Migrator;
  readonly info: MigrationRunInfo;
}

/** Host-side state of one initialised migrator. */
export interface MigratorEntry {
  readonly migrator: Migrator;
  inFlight: Set<Promise<unknown>>;
  /**
   * Frees the destinations its abandoned batch copies still hold, each once: when that copy
   * settles, or when the migrator is disposed (it may write no more), whichever comes first.
   */
  readonly held: Set<() => void>;
  batches: number;
  foliosOffered: number;
  foliosCopied: number;
  failures: number;
  consecutiveFailures: number;
  disabled: string | null;
  counters: Record<string, number>;
}

export interface MigratorStatus {
  name: string;
  version: string;
  /** Reasons it serves: the default migrator's mask plus reasons routed to it. */
  reasons: string;
  isDefault: boolean;
  batches: number;
  foliosOffered: number;
  foliosCopied: number;
  failures: number;
  disabled: string | null;
  counters: Record<string, number>;
  stats?: Record<string, unknown>;
}

/**
 * migrate_copy_offload.c, plus routing: one default migrator registered with a reason mask
 * (EBUSY while one is active), `unregister` that waits for in-flight batches, and a routing table
 * that can send a reason to another migrator.
 */
export class OffloadHost {
  private readonly entries = new Map<Migrator, MigratorEntry>();
  private defaultEntry: MigratorEntry | null = null;
  private mask = 0;
  private readonly routes = new Map<number, MigratorEntry>();
  readonly log: string[] = [];

  constructor(private readonly k: Kernel) {}

  private context(m: Migrator, entry: () => MigratorEntry): MigratorContext {
    const k = this.k;
    const say = (level: string) => (message: string) => {
      this.log.push(`${level}: ${m.name}: ${message}`);
    };
    return {
      sections: this.k.mem.sections,
      sectionPfnShift: this.k.mem.pagesPerSectionShift,
      pageSize: 4096,
      nrPages: this.k.nrPages,
      logger: { info: say('info'), warn: say('warn'), error: say('error') },
      count: (name, delta = 1) => {
        const c = entry().counters;
        c[name] = (c[name] ?? 0) + delta;
      },
      allocCoherent: (pages, nid = 0) => {
        if (!Number.isInteger(pages) || pages < 1 || pages > 1 << MAX_PAGE_ORDER) {
          throw kernelError(EINVAL, `allocCoherent: ${pages} pages is not in 1..${1 << MAX_PAGE_ORDER}`);
        }
        if (!this.k.nodes[nid]) throw kernelError(EINVAL, `allocCoherent: node ${nid} does not exist`);
        const order = Math.ceil(Math.log2(pages));
        const pfn = this.k.allocFolio({ order, nid, mt: MIGRATE_UNMOVABLE });
        if (pfn < 0) throw kernelError(ENOMEM, `allocCoherent: no ${1 << order} free pages on node ${nid}`);
        this.k.pages.flags[pfn]! |= PG_reserved;
        this.k.mem.zeroPages(pfn, 1 << order);
        return pfn;
      },
      freeCoherent: (pfn) => {
        const p = this.k.pages;
        if (!Number.isInteger(pfn) || pfn < 0 || pfn >= this.k.nrPages || !(p.flags[pfn]! & PG_reserved)) {
          throw kernelError(EINVAL, `freeCoherent: pfn ${pfn} was not returned by allocCoherent`);
        }
        p.flags[pfn]! &= ~PG_reserved;
        this.k.folioPut(pfn);
      },
      host: { coreVersion: CORE_VERSION, apiVersion: MIGRATOR_API_VERSION },
      timeline: k.timeline.migratorView(),
      get faults() {
        return k.faults;
      },
    };
  }

  private async acquire(m: Migrator): Promise<MigratorEntry> {
    const have = this.entries.get(m);
    if (have) return have;
    try {
      validateMigrator(m);
    } catch (e) {
      // A getter that throws, a Proxy: what cannot be read is not a migrator.
      if (PagemigError.isInstance(e)) throw e;
      throw new PagemigError(
        MigratorErrorCode.INVALID,
        `a migrator's fields could not be read: ${describeError(e)}`,
        { cause: e },
      );
    }
    if (m.capabilities.needsSharedMemory && !this.k.mem.backed) {
      throw kernelError(
        EOPNOTSUPP,
        `migrator ${m.name} needs shared memory, but this machine has backing: 'none'`,
      );
    }
    const entry: MigratorEntry = {
      migrator: m,
      inFlight: new Set(),
      held: new Set(),
      batches: 0,
      foliosOffered: 0,
      foliosCopied: 0,
      failures: 0,
      consecutiveFailures: 0,
      disabled: null,
      counters: {},
    };
    for (const other of this.entries.keys()) {
      if (other.name === m.name)
        throw kernelError(EBUSY, `another migrator named ${m.name} is already in use`);
    }
    this.entries.set(m, entry);
    try {
      await m.init(this.context(m, () => entry));
    } catch (e) {
      this.entries.delete(m);
      // The driver's own error as it threw it; a value that is no Error (a Symbol, null) gets one
      // the caller can read a code and a message from.
      if (e instanceof Error) throw e;
      throw new PagemigError('ERR_MIGRATOR_INIT', `migrator ${m.name}: init failed: ${describeError(e)}`, {
        cause: e,
      });
    }
    return entry;
  }

  private async release(entry: MigratorEntry): Promise<void> {
    if (this.defaultEntry === entry || [...this.routes.values()].includes(entry)) return;
    while (entry.inFlight.size) await Promise.allSettled([...entry.inFlight]);
    this.entries.delete(entry.migrator);
    const m = entry.migrator;
    await (m[Symbol.asyncDispose] ? m[Symbol.asyncDispose]!() : m.dispose());
    for (const free of [...entry.held]) free();
  }

  /** migrate_offload_register: EBUSY while another default migrator is registered. */
  async register(m: Migrator, reasonMask: string | number | readonly string[] = 'all'): Promise<void> {
    this.k.assertOpen('offload.register');
    const mask = parseReasonMask(reasonMask);
    if (this.defaultEntry) {
      throw kernelError(
        EBUSY,
        `migrator ${this.defaultEntry.migrator.name} is registered; unregister it first`,
      );
    }
    const entry = await this.acquire(m);
    if (this.k.closed) {
      // The machine closed while this migrator's init was running: nothing may start on it.
      await this.release(entry);
      this.k.assertOpen('offload.register');
    }
    // Another register may have won while this migrator's init was running.
    const raced = this.defaultEntry as MigratorEntry | null;
    if (raced) {
      await this.release(entry);
      throw kernelError(EBUSY, `migrator ${raced.migrator.name} is registered; unregister it first`);
    }
    this.defaultEntry = entry;
    this.mask = mask;
  }

  /** migrate_offload_unregister: stops new batches, waits for in-flight ones, disposes. */
  async unregister(m: Migrator): Promise<void> {
    const entry = this.defaultEntry;
    if (!entry || entry.migrator !== m)
      throw kernelError(EINVAL, `migrator ${m?.name} is not the registered migrator`);
    this.defaultEntry = null;
    this.mask = 0;
    await this.release(entry);
  }

  /** migrate_offload_set_reason_mask: only the registered migrator's mask can change. */
  setReasonMask(m: Migrator, reasonMask: string | number | readonly string[]): void {
    if (!this.defaultEntry || this.defaultEntry.migrator !== m)
      throw kernelError(EINVAL, `migrator ${m?.name} is not the registered migrator`);
    this.mask = parseReasonMask(reasonMask);
  }

  /** The registered migrator's reason mask, printed with the kernel's reason names. */
  get reasonMask(): string {
    return formatReasonMask(this.mask);
  }

  /** Every migrator in use on this machine: the registered one and those routed to. */
  inUse(): Migrator[] {
    return [...this.entries.keys()];
  }

  /** The registered (default) migrator, or null. */
  get active(): Migrator | null {
    return this.defaultEntry?.migrator ?? null;
  }

  /** Sends one reason to `m` instead of the default migrator; null removes the route. */
  async route(reason: MigrateReasonName | number, m: Migrator | null): Promise<void> {
    if (m !== null) this.k.assertOpen('offload.route');
    const r = resolveReason(reason);
    const old = this.routes.get(r);
    if (m === null) {
      this.routes.delete(r);
      if (old) await this.release(old);
      return;
    }
    const entry = await this.acquire(m);
    if (this.k.closed) {
      await this.release(entry);
      this.k.assertOpen('offload.route');
    }
    this.routes.set(r, entry);
    if (old && old !== entry) await this.release(old);
  }

  /** The routing table: reason name → migrator name (the default's mask included). */
  routing(): Record<string, string | null> {
    const out: Record<string, string | null> = {};
    migrateReasonNames.forEach((name, r) => {
      out[name] = this.entryFor(r)?.migrator.name ?? null;
    });
    return out;
  }

  /** The migrator that copies batches of `reason`, if any and not disabled. */
  entryFor(reason: number): MigratorEntry | null {
    const routed = this.routes.get(reason);
    if (routed) return routed.disabled ? null : routed;
    const d = this.defaultEntry;
    if (d && !d.disabled && this.mask & (1 << reason) & REASON_MASK_ALL) return d;
    return null;
  }

  /**
   * A migration run of `reason` begins: the migrator routed for it hears `runStart` (its threads
   * stay awake for the run). Returns what `runEnd` needs when the run ends, or null when no
   * migrator serves the reason or it does not listen for runs.
   */
  runStart(
    reason: MigrateReasonValue | MigrateReasonName,
    mode: MigrateModeValue | MigrateModeName,
    node: number,
    heads: ArrayLike<number>,
  ): ServedRun | null {
    const r = this.checkRun('runStart', reason, mode, node);
    if (heads === null || typeof heads !== 'object' || !Number.isSafeInteger(heads.length))
      throw kernelError(EINVAL, 'runStart: heads must be an array of folio head pfns');
    const nrPages = this.k.nrPages;
    for (let i = 0; i < heads.length; i++) {
      const h = heads[i]!;
      if (!Number.isInteger(h) || h < 0 || h >= nrPages)
        throw kernelError(EINVAL, `runStart: heads[${i}] = ${show(h)} is not a pfn of this machine`);
    }
    const m = this.entryFor(r)?.migrator;
    if (!m || (!m.runStart && !m.runEnd)) return null;
    let pages = 0;
    for (let i = 0; i < heads.length; i++) pages += 1 << this.k.folioOrder(heads[i]!);
    return this.announce(m, { reason: r, mode: resolveMode(mode), node, folios: heads.length, pages });
  }

  /**
   * A daemon's pass that makes many runs of `reason` (compact_zone migrates cluster by cluster):
   * the migrator hears one runStart for the whole pass, with 0 folios and the base pages the pass
   * may move, so what it keeps awake stays awake between the clusters (each still a run of its own).
   */
  passStart(
    reason: MigrateReasonValue | MigrateReasonName,
    mode: MigrateModeValue | MigrateModeName,
    node: number,
    pages: number,
  ): ServedRun | null {
    const r = this.checkRun('passStart', reason, mode, node);
    if (!Number.isSafeInteger(pages) || pages < 0)
      throw kernelError(EINVAL, `passStart: pages must be an integer >= 0, got ${show(pages)}`);
    const m = this.entryFor(r)?.migrator;
    if (!m || (!m.runStart && !m.runEnd)) return null;
    return this.announce(m, { reason: r, mode: resolveMode(mode), node, folios: 0, pages });
  }

  /** The reason of a run or pass to announce, its mode and node checked (EINVAL naming `what`). */
  private checkRun(
    what: string,
    reason: MigrateReasonValue | MigrateReasonName,
    mode: MigrateModeValue | MigrateModeName,
    node: number,
  ): MigrateReasonValue {
    const r = resolveReason(reason);
    resolveMode(mode);
    if (!Number.isInteger(node) || !this.k.nodes[node])
      throw kernelError(
        EINVAL,
        `${what}: node ${show(node)} does not exist (nodes 0..${this.k.nodes.length - 1})`,
      );
    return r;
  }

  private announce(m: Migrator, info: MigrationRunInfo): ServedRun {
    try {
      m.runStart?.(info);
    } catch (e) {
      this.log.push(`warn: ${m.name}: runStart failed: ${describeError(e)}`);
    }
    return { migrator: m, info };
  }

  /**
   * The run `runStart` or `passStart` announced ended (however it ended): the same migrator hears
   * `runEnd`. Null (nothing was announced) does nothing.
   */
  runEnd(run: ServedRun | null): void {
    if (run === null) return;
    if (typeof run !== 'object' || !run.migrator || !run.info)
      throw kernelError(EINVAL, 'runEnd: expected what runStart or passStart returned');
    try {
      run.migrator.runEnd?.(run.info);
    } catch (e) {
      this.log.push(`warn: ${run.migrator.name}: runEnd failed: ${describeError(e)}`);
    }
  }

  /** Records the outcome of a batch; repeated failures disable the migrator with a logged reason. */
  recordBatch(entry: MigratorEntry, offered: number, copied: number, error: unknown): void {
    entry.batches++;
    entry.foliosOffered += offered;
    entry.foliosCopied += copied;
    if (error === undefined) {
      entry.consecutiveFailures = 0;
      return;
    }
    entry.failures++;
    entry.consecutiveFailures++;
    const why = describeError(error);
    this.log.push(`warn: ${entry.migrator.name}: batch failed, copied on the CPU instead: ${why}`);
    if (entry.consecutiveFailures >= MIGRATOR_MAX_CONSECUTIVE_FAILURES && !entry.disabled) {
      entry.disabled = `disabled after ${entry.consecutiveFailures} consecutive failed batches; last error: ${why}`;
      this.log.push(`error: ${entry.migrator.name}: ${entry.disabled}`);
    }
  }

  status(): MigratorStatus[] {
    return [...this.entries.values()].map((e) => {
      const reasons = migrateReasonNames.filter(
        (_, r) => this.routes.get(r) === e || (this.defaultEntry === e && this.mask & (1 << r)),
      );
      return {
        name: e.migrator.name,
        version: e.migrator.version,
        reasons: reasons.length ? reasons.join(',') : 'none',
        isDefault: this.defaultEntry === e,
        batches: e.batches,
        foliosOffered: e.foliosOffered,
        foliosCopied: e.foliosCopied,
        failures: e.failures,
        disabled: e.disabled,
        counters: { ...e.counters },
        ...(e.migrator.stats ? { stats: e.migrator.stats() } : {}),
      };
    });
  }

  /** Unregisters and disposes everything (machine.close()). */
  async closeAll(): Promise<void> {
    this.defaultEntry = null;
    this.mask = 0;
    const entries = [...this.entries.values()];
    this.routes.clear();
    for (const e of entries) await this.release(e);
  }
}

/** A failed batch's error as text, whatever the migrator threw (even what cannot be printed). */
function describeError(error: unknown): string {
  try {
    return error instanceof Error ? String(error.message) : String(error);
  } catch {
    return `an unprintable ${typeof error}`;
  }
}
