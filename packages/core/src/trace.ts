/**
 * Tracepoints (include/trace/events/*.h): each event is kept with the kernel's printed text and
 * rendered like a line of /sys/kernel/tracing/trace.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { EINVAL, PagemigError } from './errno.js';
import { listenerThrew } from './listener_errors.js';
import { suggestKey } from './migrator_options.js';
import { show } from './show.js';

export interface TraceRecord {
  /** `system:event`, e.g. `migrate:mm_migrate_pages`. */
  readonly name: string;
  readonly system: string;
  readonly event: string;
  readonly fields: Readonly<Record<string, string | number>>;
  /** The event's TP_printk text, exactly as the kernel prints it. */
  readonly text: string;
  /** Seconds since the machine was created. */
  readonly ts: number;
  readonly pid: number;
  readonly comm: string;
}

export type TraceListener = (record: TraceRecord) => void;

/** The task an event is attributed to, and the node its CPU is on (numa_node_id()). */
export interface TraceTask {
  readonly pid: number;
  readonly comm: string;
  readonly node?: number;
}

/**
 * Events recorded only once enabled (`m.trace.enable(name)`), as every event of a kernel is off
 * until enabled: they fire once per page table entry, so while off a site costs one flag load.
 * pagemig enables every other event at boot.
 */
export const TRACE_EVENTS_OFF_BY_DEFAULT = [
  'migrate:set_migration_pte',
  'migrate:remove_migration_pte',
] as const;

const TRACE_WARNING = (name: string) => ({
  code: 'PAGEMIG_TRACE_LISTENER',
  text: (why: string) => `a listener of ${name} threw (${why}); the event went on`,
});

/** What trace names look like: `*`, a system or bare event (`migrate`), or `system:event`. */
const TRACE_NAME = /^(\*|\w+|\w+:\w+)$/;
const IDENTIFIER = /^\w+$/;

export class Tracer {
  private readonly t0 = performance.now();
  /** The events this machine has, by system (available_events): core's, and each attached daemon's. */
  private readonly systems = new Map<string, Set<string>>();
  /** Every defined event's bare name (a listener may name an event without its system). */
  private readonly eventNames = new Set<string>();
  private readonly listeners = new Map<string, Set<TraceListener>>();
  /** A ring, like the trace buffer: `count` records from `start`, the oldest dropped first. */
  private records: TraceRecord[] = [];
  private start = 0;
  private count = 0;
  private cap = 100_000;
  /**
   * Errors thrown by listeners (the newest 100). A tracepoint cannot fail the code it traces: a
   * listener that throws is reported here and with a process warning, and the event goes on.
   */
  readonly listenerErrors: { event: string; error: unknown }[] = [];
  private readonly warned = new Set<string>();
  /** Who is "current" when an event fires outside any `during` (the idle task). */
  current: TraceTask = { pid: 0, comm: '<idle>' };
  /**
   * The task an event belongs to follows the async call that emits it, so two processes' syscalls
   * that overlap in time still label their own events.
   */
  private readonly task = new AsyncLocalStorage<TraceTask>();
  /** events/<system>/<event>/enable written for one event, a system, or all (`*`). */
  private readonly eventState = new Map<string, boolean>();
  private readonly systemState = new Map<string, boolean>();
  private allState: boolean | undefined;
  /** Whether some event other than the default-off ones is off (emit then checks). */
  private filtering = false;
  /** migrate:set_migration_pte is enabled: its site reads this before building the event. */
  setMigrationPte = false;
  /** migrate:remove_migration_pte is enabled. */
  removeMigrationPte = false;

  /**
   * Adds `system`'s events to those the machine has, as loading the code that defines them does:
   * core defines its own at boot, a daemon its own when it is attached. `enable`, `disable` and
   * `on` refuse names that are not defined, so a misspelt event is an error, not silence.
   */
  define(system: string, events: readonly string[]): void {
    const what = `trace.define(${show(system)}, ${show(events)})`;
    if (!Array.isArray(events))
      throw new PagemigError('ERR_INVALID_ARGUMENT', `${what}: the events must be an array of names`, {
        errno: EINVAL,
      });
    const names: unknown[] = [system, ...events];
    const bad = names.findIndex((x) => typeof x !== 'string' || !IDENTIFIER.test(x));
    if (bad >= 0)
      throw new PagemigError(
        'ERR_INVALID_ARGUMENT',
        `${what}: ${show(names[bad])} is not a system or event name (letters, digits and _)`,
        { errno: EINVAL },
      );
    for (const e of events) this.add(system, e);
  }

  private add(system: string, event: string): void {
    let set = this.systems.get(system);
    if (!set) this.systems.set(system, (set = new Set()));
    set.add(event);
    this.eventNames.add(event);
  }

  /** Every defined event as `system:event`, sorted, as /sys/kernel/tracing/available_events lists them. */
  availableEvents(): string[] {
    const out: string[] = [];
    for (const [system, events] of this.systems) for (const e of events) out.push(`${system}:${e}`);
    return out.sort();
  }

  /**
   * Refuses a name that is not `*`, a defined system, a defined `system:event` or (where
   * `bare`) a defined event's own name, with the closest defined name when there is one.
   */
  private checkName(op: string, name: unknown, bare: boolean): asserts name is string {
    if (typeof name !== 'string' || !TRACE_NAME.test(name))
      throw new PagemigError(
        'ERR_INVALID_ARGUMENT',
        `${op}: ${show(name)} is not an event ('migrate:mm_migrate_pages'${bare ? " or 'mm_migrate_pages'" : ''}), a system ('migrate') or '*'`,
        { errno: EINVAL },
      );
    if (name === '*') return;
    const colon = name.indexOf(':');
    if (
      colon < 0
        ? this.systems.has(name) || (bare && this.eventNames.has(name))
        : this.systems.get(name.slice(0, colon))?.has(name.slice(colon + 1))
    )
      return;
    const known = [...this.systems.keys(), ...this.availableEvents(), ...(bare ? this.eventNames : [])];
    const hint = suggestKey(name, known);
    throw new PagemigError(
      'ERR_INVALID_ARGUMENT',
      `${op}: this machine has no ${colon < 0 ? 'system or event' : 'event'} ${JSON.stringify(name)}${hint ? ` (did you mean ${JSON.stringify(hint)}?)` : ''}; m.trace.availableEvents() lists its events, and a daemon's events exist once the daemon is attached`,
      { errno: EINVAL },
    );
  }

  /** `defined`: the events the machine has from the start, by system (core's own). */
  constructor(defined: Readonly<Record<string, readonly string[]>> = {}) {
    for (const [system, events] of Object.entries(defined)) this.define(system, events);
  }

  /** The clock's zero: `performance.now()` (ms) when the machine was created; `ts` counts from it. */
  get originMs(): number {
    return this.t0;
  }

  /** The task whose code runs now (what an event emitted now would carry). */
  currentTask(): TraceTask {
    return this.task.getStore() ?? this.current;
  }

  /**
   * Runs `fn` with `who` (a process, or any `{ pid, comm, node? }`) as the current task, so its
   * events (across awaits) carry that pid and comm, and its allocations count local to its node.
   */
  during<T>(who: TraceTask, fn: () => T): T {
    return this.task.run(who, fn);
  }

  /**
   * Enables events, as writing 1 to /sys/kernel/tracing/events/.../enable: one event
   * (`migrate:set_migration_pte`), a system (`migrate`), or every event (`*`).
   */
  enable(name: string): void {
    this.setEnabled(name, true);
  }

  /** Disables events (`system:event`, a system, or `*`): they are neither recorded nor passed to listeners. */
  disable(name: string): void {
    this.setEnabled(name, false);
  }

  /** Whether `system:event` is recorded. */
  isEnabled(name: string): boolean {
    const state =
      this.eventState.get(name) ?? this.systemState.get(name.slice(0, name.indexOf(':'))) ?? this.allState;
    return state ?? !(TRACE_EVENTS_OFF_BY_DEFAULT as readonly string[]).includes(name);
  }

  private setEnabled(name: string, on: boolean): void {
    this.checkName(`trace.${on ? 'enable' : 'disable'}`, name, false);
    // A wider switch overrides the narrower ones below it, as the kernel's enable files do.
    if (name === '*') {
      this.eventState.clear();
      this.systemState.clear();
      this.allState = on;
    } else if (!name.includes(':')) {
      for (const e of this.eventState.keys()) if (e.startsWith(`${name}:`)) this.eventState.delete(e);
      this.systemState.set(name, on);
    } else this.eventState.set(name, on);
    this.setMigrationPte = this.isEnabled('migrate:set_migration_pte');
    this.removeMigrationPte = this.isEnabled('migrate:remove_migration_pte');
    this.filtering =
      this.allState === false || [...this.systemState.values(), ...this.eventState.values()].some((v) => !v);
  }

  /**
   * Subscribe to `system:event`, a bare event name, a system (`migrate`), or `*`. Returns off().
   * Listeners see enabled events only (the default-off ones need `enable()` first). The name must
   * be defined (availableEvents()): a daemon's events are, once the daemon is attached.
   */
  on(name: string, cb: TraceListener): () => void {
    // Checked here, not at the first event: a listener that is no function would throw at every
    // event (each kept in listenerErrors), and a name that matches no event would never be called.
    this.checkName('trace.on', name, true);
    if (typeof cb !== 'function')
      throw new PagemigError(
        'ERR_INVALID_ARGUMENT',
        `trace.on(${JSON.stringify(name)}): the listener ${show(cb)} is not a function`,
        {
          errno: EINVAL,
        },
      );
    let set = this.listeners.get(name);
    if (!set) this.listeners.set(name, (set = new Set()));
    set.add(cb);
    return () => set.delete(cb);
  }

  emit(system: string, event: string, fields: Record<string, string | number>, text: string): void {
    const name = `${system}:${event}`;
    // An event that fires exists from then on, even if its code (an entry of a daemon package
    // used without attaching the daemon) did not define it first.
    if (!this.systems.get(system)?.has(event)) this.add(system, event);
    if (this.filtering && !this.isEnabled(name)) return;
    const who = this.task.getStore() ?? this.current;
    const rec: TraceRecord = {
      name,
      system,
      event,
      fields,
      text,
      ts: (performance.now() - this.t0) / 1000,
      pid: who.pid,
      comm: who.comm,
    };
    // O(1) once full: the newest record takes the oldest one's slot.
    if (this.count < this.cap) this.records[(this.start + this.count++) % this.cap] = rec;
    else {
      this.records[this.start] = rec;
      this.start = (this.start + 1) % this.cap;
    }
    for (const key of [name, event, system, '*']) {
      const set = this.listeners.get(key);
      if (set) for (const cb of set) this.call(cb, rec);
    }
  }

  private call(cb: TraceListener, rec: TraceRecord): void {
    try {
      cb(rec);
    } catch (error) {
      // One warning per event name.
      listenerThrew(
        this.listenerErrors,
        { event: rec.name, error },
        this.warned,
        rec.name,
        TRACE_WARNING(rec.name),
        error,
      );
    }
  }

  /** Ring capacity (the oldest records are dropped first); setting it keeps the newest records. */
  get capacity(): number {
    return this.cap;
  }
  set capacity(n: number) {
    if (!Number.isSafeInteger(n) || n < 1)
      throw new PagemigError('ERR_INVALID_ARGUMENT', `trace capacity must be a positive integer, got ${n}`);
    const kept = this.inOrder().slice(-n);
    this.records = kept;
    this.start = 0;
    this.count = kept.length;
    this.cap = n;
  }

  /** The records, oldest first. */
  private inOrder(): TraceRecord[] {
    if (this.start === 0) return this.records.slice(0, this.count);
    const out: TraceRecord[] = new Array(this.count);
    for (let i = 0; i < this.count; i++) out[i] = this.records[(this.start + i) % this.cap]!;
    return out;
  }

  /** Records so far, optionally only those of one event or system. */
  events(filter?: string): TraceRecord[] {
    const all = this.inOrder();
    return filter ? all.filter((r) => r.name === filter || r.event === filter || r.system === filter) : all;
  }

  /**
   * Lines in the trace file's format: `"%16s-%-7d [%03d] %s %5lu.%06lu: "`, then the event name and
   * its text (kernel/trace/trace_output.c).
   */
  lines(filter?: string): string[] {
    return this.events(filter).map(formatTraceLine);
  }

  clear(): void {
    this.records = [];
    this.start = 0;
    this.count = 0;
  }
}

/** One line of the trace file (`"%16s-%-7d [%03d] %s %5lu.%06lu: "`, the event and its text), as `lines()` prints it. */
export function formatTraceLine(r: {
  readonly comm: string;
  readonly pid: number;
  readonly ts: number;
  readonly event: string;
  readonly text: string;
}): string {
  const us = Math.round(r.ts * 1e6);
  const ts = `${String(Math.floor(us / 1e6)).padStart(5)}.${String(us % 1e6).padStart(6, '0')}`;
  return `${r.comm.padStart(16)}-${String(r.pid).padEnd(7)} [000] ..... ${ts}: ${r.event}: ${r.text}`;
}

/** A line of a trace file, parsed back (`parseTraceLines`). */
export interface ParsedTraceLine {
  readonly comm: string;
  readonly pid: number;
  readonly cpu: number;
  /** The irqs-off/need-resched/hardirq/softirq/preempt-depth column, e.g. `.....`. */
  readonly flags: string;
  /** Seconds, as printed (µs resolution). */
  readonly ts: number;
  readonly event: string;
  readonly text: string;
  /** The text's `key=value` pairs (numbers where the value is one). */
  readonly fields: Record<string, string | number>;
}

const LINE = /^\s*(.*?)-(\d+)\s+\[(\d+)\]\s+(?:(\S{4,5})\s+)?(\d+\.\d+):\s+([\w:]+):\s?(.*)$/;
const FIELD = /([A-Za-z_][\w.]*)=(\S*)/g;
const NUMBER = /^-?(?:\d+\.?\d*|\.\d+)(?:e[+-]?\d+)?$/i;

/**
 * Parses the trace file's lines (`m.trace.lines()`, the timeline's `toFtrace()`, or a real
 * kernel's `/sys/kernel/tracing/trace` or `trace-cmd report` output): comment lines (`#`) and
 * lines that are not events are skipped.
 */
export function parseTraceLines(text: string | readonly string[]): ParsedTraceLine[] {
  const lines = typeof text === 'string' ? text.split('\n') : text;
  const out: ParsedTraceLine[] = [];
  for (const line of lines) {
    if (!line || line.startsWith('#')) continue;
    const m = LINE.exec(line);
    if (!m) continue;
    const body = m[7]!;
    const fields: Record<string, string | number> = {};
    for (const f of body.matchAll(FIELD)) fields[f[1]!] = NUMBER.test(f[2]!) ? Number(f[2]) : f[2]!;
    out.push({
      comm: m[1]!,
      pid: Number(m[2]),
      cpu: Number(m[3]),
      flags: m[4] ?? '',
      ts: Number(m[5]),
      event: m[6]!,
      text: body,
      fields,
    });
  }
  return out;
}
