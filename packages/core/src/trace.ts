/**
 * Tracepoints (include/trace/events/*.h): each event is kept with the kernel's printed text and
 * rendered like a line of /sys/kernel/tracing/trace.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
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

export class Tracer {
  private readonly t0 = performance.now();
  private readonly listeners = new Map<string, Set<TraceListener>>();
  private readonly records: TraceRecord[] = [];
  /** Ring capacity, like the trace buffer: the oldest records are dropped first. */
  capacity = 100_000;
  /** Who is "current" when an event fires outside any `during` (the idle task). */
  current: { pid: number; comm: string } = { pid: 0, comm: '<idle>' };
  /**
   * The task an event belongs to follows the async call that emits it, so two processes' syscalls
   * that overlap in time still label their own events.
   */
  private readonly task = new AsyncLocalStorage<{ pid: number; comm: string }>();

  /** Runs `fn` with `who` as the current task, so its events (across awaits) carry that pid and comm. */
  during<T>(who: { pid: number; comm: string }, fn: () => Promise<T>): Promise<T> {
    return this.task.run(who, fn);
  }

  /** Subscribe to `system:event`, a bare event name, a system (`migrate`), or `*`. Returns off(). */
  on(name: string, cb: TraceListener): () => void {
    let set = this.listeners.get(name);
    if (!set) this.listeners.set(name, (set = new Set()));
    set.add(cb);
    return () => set.delete(cb);
  }

  emit(system: string, event: string, fields: Record<string, string | number>, text: string): void {
    const name = `${system}:${event}`;
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
    this.records.push(rec);
    if (this.records.length > this.capacity) this.records.splice(0, this.records.length - this.capacity);
    for (const key of [name, event, system, '*']) {
      const set = this.listeners.get(key);
      if (set) for (const cb of set) cb(rec);
    }
  }

  /** Records so far, optionally only those of one event or system. */
  events(filter?: string): TraceRecord[] {
    return filter
      ? this.records.filter((r) => r.name === filter || r.event === filter || r.system === filter)
      : [...this.records];
  }

  /**
   * Lines in the trace file's format: `"%16s-%-7d [%03d] %s %5lu.%06lu: "`, then the event name and
   * its text (kernel/trace/trace_output.c).
   */
  lines(filter?: string): string[] {
    return this.events(filter).map((r) => {
      const us = Math.round(r.ts * 1e6);
      const ts = `${String(Math.floor(us / 1e6)).padStart(5)}.${String(us % 1e6).padStart(6, '0')}`;
      return `${r.comm.padStart(16)}-${String(r.pid).padEnd(7)} [000] ..... ${ts}: ${r.event}: ${r.text}`;
    });
  }

  clear(): void {
    this.records.length = 0;
  }
}
