/**
 * The timeline recorder (`m.timeline`): spans of the engine's phases, of DMA channels and copy
 * workers, of user threads and daemons on one clock, exported as Chrome trace-event JSON (Perfetto,
 * chrome://tracing) and as ftrace text. Off by default; while off, a recording site costs one load
 * of the shared flag word and a branch. The shared buffer and its record layout are in
 * timeline_writer.ts.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { EBUSY, EINVAL, hostNoMem, kernelError } from './errno.js';
import {
  type TimelineHandle,
  TimelineWriter,
  TL_BATCH,
  TL_BATCH_COPY,
  TL_CAPACITY,
  TL_COMPACT_ZONE,
  TL_COPY_SHARE,
  TL_CURSOR,
  TL_DMA_COMPLETION,
  TL_DMA_DESC,
  TL_DMA_IRQ,
  TL_DROPPED,
  TL_EPOCH_MS,
  TL_FALLBACK_COPY,
  TL_FIRST_CUSTOM_KIND,
  TL_FLAG,
  TL_FLUSH,
  TL_FOLIO_MOVE,
  TL_HEADER_BYTES,
  TL_KCOMPACTD,
  TL_MAX_RECORDS,
  TL_MAX_TRACKS,
  TL_MOVE,
  TL_OPT_FOLIOS,
  TL_OPTIONS,
  TL_RECORD_BYTES,
  TL_RECORD_F64,
  TL_RECORD_INTS,
  TL_RUN,
  TL_START_US,
  TL_TRACK_BASE,
  TL_TRACK_INTS,
  TL_UNMAP,
  TL_USER_FAULT,
  TL_USER_MIGRATION_WAIT,
  TL_USER_RUNNING,
  TL_USER_TLB_ACK,
} from './timeline_writer.js';
import { formatTraceLine, type TraceRecord, type Tracer } from './trace.js';

/** Which kind of thread a track stands for. */
export type TimelineTrackKind = 'task' | 'dma' | 'worker' | 'user' | 'daemon' | 'custom';

/** A kind of record: its name, category, whether it is an instant, and its arguments' names. */
export interface TimelineKind {
  readonly id: number;
  readonly name: string;
  /** Chrome's `cat`: engine, dma, worker, user, daemon or custom. */
  readonly cat: string;
  readonly instant: boolean;
  readonly args: readonly string[];
}

const BUILTIN_KINDS: readonly TimelineKind[] = [
  {
    id: TL_RUN,
    name: 'migrate_pages',
    cat: 'engine',
    instant: false,
    args: ['folios', 'node', 'reason', 'mode'],
  },
  { id: TL_BATCH, name: 'batch', cat: 'engine', instant: false, args: ['batch', 'folios', 'mode', 'passes'] },
  { id: TL_UNMAP, name: 'unmap', cat: 'engine', instant: false, args: ['batch', 'folios'] },
  { id: TL_FLUSH, name: 'flush', cat: 'engine', instant: false, args: ['batch', 'shootdown'] },
  {
    id: TL_BATCH_COPY,
    name: 'batch_copy',
    cat: 'engine',
    instant: false,
    args: ['batch', 'rows', 'pages', 'copied'],
  },
  { id: TL_FALLBACK_COPY, name: 'fallback_copy', cat: 'engine', instant: false, args: ['batch', 'folios'] },
  { id: TL_MOVE, name: 'move', cat: 'engine', instant: false, args: ['batch', 'folios'] },
  {
    id: TL_FOLIO_MOVE,
    name: 'folio_move',
    cat: 'engine',
    instant: false,
    args: ['src_pfn', 'dst_pfn', 'order', 'batch'],
  },
  {
    id: TL_DMA_DESC,
    name: 'dma_desc',
    cat: 'dma',
    instant: false,
    args: ['batch', 'bytes', 'status', 'descs'],
  },
  { id: TL_DMA_COMPLETION, name: 'dma_completion', cat: 'dma', instant: true, args: ['batch', 'status'] },
  { id: TL_DMA_IRQ, name: 'dma_irq', cat: 'dma', instant: true, args: ['batch', 'bytes', 'status'] },
  {
    id: TL_COPY_SHARE,
    name: 'copy_share',
    cat: 'worker',
    instant: false,
    args: ['batch', 'pages', 'start_row', 'copied'],
  },
  { id: TL_USER_RUNNING, name: 'running', cat: 'user', instant: false, args: [] },
  { id: TL_USER_FAULT, name: 'fault', cat: 'user', instant: false, args: ['vpn', 'write', 'result'] },
  { id: TL_USER_MIGRATION_WAIT, name: 'migration_wait', cat: 'user', instant: false, args: ['vpn', 'pfn'] },
  { id: TL_USER_TLB_ACK, name: 'tlb_ack', cat: 'user', instant: false, args: ['gen'] },
  {
    id: TL_COMPACT_ZONE,
    name: 'compact_zone',
    cat: 'daemon',
    instant: false,
    args: ['nid', 'zone', 'order', 'migrated'],
  },
  { id: TL_KCOMPACTD, name: 'kcompactd', cat: 'daemon', instant: false, args: ['nid', 'proactive'] },
];

/** A registered track: a thread that records (or a lane of a task on the engine's thread). */
export interface TimelineTrack {
  readonly id: number;
  readonly name: string;
  /** The process it is shown under (Chrome's pid). */
  readonly process: string;
  readonly kind: TimelineTrackKind;
  /** The pid printed in ftrace lines (a task's pid, a user thread's tid, else a synthetic one). */
  readonly pid: number;
}

interface TrackEntry extends TimelineTrack {
  /** User threads: true while the thread runs (a capture closes its open `running` span). */
  readonly isRunning?: () => boolean;
}

/** One thread of a capture: a track, or a sub-track (a pool worker) of one. */
export interface TimelineThread {
  /** Chrome's tid (unique in the capture). */
  readonly tid: number;
  readonly name: string;
  readonly process: string;
  readonly kind: TimelineTrackKind;
  /** ftrace's comm and pid. */
  readonly comm: string;
  readonly pid: number;
  readonly track: number;
  readonly sub: number;
}

/** A recorded span (`ph: 'X'`) or instant (`ph: 'i'`); times in µs after the machine's creation. */
export interface TimelineEvent {
  readonly name: string;
  readonly cat: string;
  readonly ph: 'X' | 'i';
  readonly ts: number;
  readonly dur: number;
  /** The thread (TimelineThread.tid). */
  readonly tid: number;
  readonly args: Readonly<Record<string, number>>;
}

export interface TimelineStartOptions {
  /** Records the buffer holds (64 bytes each); more are dropped and counted. Default 262144 (16 MiB). */
  capacity?: number;
  /** Also record one `folio_move` span per folio moved (costs a record per folio). Default false. */
  folios?: boolean;
}

/** What a migrator gets as `ctx.timeline`: its tracks, and a way to record from any thread. */
export interface MigratorTimeline {
  /** The shared buffer: hand `{ buffer, track }` to a worker or device thread (`TimelineWriter`). */
  readonly buffer: SharedArrayBuffer;
  /** True while recording (one load of the shared flag word). */
  readonly recording: boolean;
  /** Registers a track, e.g. a DMA channel under process `'ptdma'`; returns its id. */
  track(name: string, process: string, kind?: TimelineTrackKind): number;
  /** Sets a track's tag word: a device thread reads it (`writer.tag()`) to label its records with the batch. */
  tag(track: number, value: number): void;
  /** A writer for the engine's thread (records with `writer.record(kind, track, beginUs, endUs, ...)`). */
  readonly writer: TimelineWriter;
  /** A kind of your own: `name`, its category and argument names; returns its id (the same for the same name). */
  kind(name: string, opts?: { args?: readonly string[]; instant?: boolean; cat?: string }): number;
}

const DEFAULT_CAPACITY = 1 << 18;
/** ftrace pids of tracks that are not tasks: far above any pid_max. */
const SYNTHETIC_PID = 1 << 22;

/** The recorder of one machine (`m.timeline`). */
export class Timeline {
  /** The shared buffer every recording thread writes into. */
  readonly buffer: SharedArrayBuffer;
  /** The engine thread's writer. */
  readonly writer: TimelineWriter;
  private readonly i32: Int32Array;
  private readonly f64: Float64Array;
  private readonly trackList: TrackEntry[] = [];
  private readonly kinds = new Map<number, TimelineKind>();
  private readonly kindIds = new Map<string, number>();
  /** Lanes (tracks) of each task on the engine's thread, and those in use by a run. */
  private readonly lanes = new Map<string, number[]>();
  private readonly busy = new Set<number>();
  private readonly laneStore = new AsyncLocalStorage<number>();
  private batchSeq = 0;
  private startTraceTs = 0;
  private view: MigratorTimeline | null = null;

  constructor(
    private readonly trace: Tracer,
    /** The process a task's lanes are shown under (a user process's name), or undefined for kernel threads. */
    private readonly processOf: (pid: number) => { pid: number; comm: string } | undefined = () => undefined,
  ) {
    this.buffer = new SharedArrayBuffer(TL_HEADER_BYTES, {
      maxByteLength: TL_HEADER_BYTES + TL_MAX_RECORDS * TL_RECORD_BYTES,
    });
    this.i32 = new Int32Array(this.buffer);
    this.f64 = new Float64Array(this.buffer);
    // The epoch is the tracer's zero, so timeline times and tracepoint times share one clock.
    this.f64[TL_EPOCH_MS] = performance.timeOrigin + trace.originMs;
    this.writer = new TimelineWriter(this.buffer, 0, -trace.originMs);
    for (const k of BUILTIN_KINDS) {
      this.kinds.set(k.id, k);
      this.kindIds.set(k.name, k.id);
    }
  }

  /** True while recording: one load of the shared flag word. */
  get on(): boolean {
    return this.i32[TL_FLAG] !== 0;
  }

  /** True while recording. */
  get recording(): boolean {
    return this.i32[TL_FLAG] !== 0;
  }

  /** Whether per-folio spans are recorded. */
  get folios(): boolean {
    return (this.i32[TL_OPTIONS]! & TL_OPT_FOLIOS) !== 0;
  }

  /** Every track registered so far. */
  get tracks(): readonly TimelineTrack[] {
    return this.trackList.map(({ id, name, process, kind, pid }) => ({ id, name, process, kind, pid }));
  }

  /**
   * Starts recording (EBUSY if it already is). Threads started earlier record too: they hold the
   * shared buffer since they started.
   */
  start(opts: TimelineStartOptions = {}): void {
    if (this.on) throw kernelError(EBUSY, 'timeline: already recording; stop() it first');
    if (typeof opts !== 'object' || opts === null)
      throw kernelError(EINVAL, 'timeline.start: options must be an object');
    const capacity = opts.capacity ?? DEFAULT_CAPACITY;
    if (!Number.isInteger(capacity) || capacity < 1 || capacity > TL_MAX_RECORDS)
      throw kernelError(
        EINVAL,
        `timeline.start: capacity must be an integer in 1..${TL_MAX_RECORDS}, got ${String(capacity)}`,
      );
    const bytes = TL_HEADER_BYTES + capacity * TL_RECORD_BYTES;
    if (this.buffer.byteLength < bytes) {
      try {
        this.buffer.grow(bytes);
      } catch (e) {
        throw hostNoMem(e, `timeline.start: a buffer of ${capacity} records`);
      }
    }
    const i = this.i32;
    Atomics.store(i, TL_CURSOR, 0);
    Atomics.store(i, TL_DROPPED, 0);
    Atomics.store(i, TL_CAPACITY, capacity);
    Atomics.store(i, TL_OPTIONS, opts.folios ? TL_OPT_FOLIOS : 0);
    this.startTraceTs = (performance.now() - this.trace.originMs) / 1000;
    this.f64[TL_START_US] = this.writer.now();
    Atomics.store(i, TL_FLAG, 1);
  }

  /** Stops recording and returns what was recorded (EINVAL if it was not recording). */
  stop(): TimelineCapture {
    if (!this.on) throw kernelError(EINVAL, 'timeline: not recording; start() it first');
    const stopUs = this.writer.now();
    const i = this.i32;
    const f = this.f64;
    Atomics.store(i, TL_FLAG, 0);
    const n = Math.min(Atomics.load(i, TL_CURSOR), i[TL_CAPACITY]!);
    const startUs = f[TL_START_US]!;
    const raw: RawRecord[] = [];
    const iBase = TL_HEADER_BYTES / 4;
    const fBase = TL_HEADER_BYTES / 8;
    for (let r = 0; r < n; r++) {
      const ib = iBase + r * TL_RECORD_INTS;
      let kind = Atomics.load(i, ib);
      // A writer that took its slot just before the flag dropped finishes within microseconds.
      for (let spin = 0; kind === 0 && spin < 100_000; spin++) kind = Atomics.load(i, ib);
      if (kind === 0) continue;
      const fb = fBase + r * TL_RECORD_F64;
      raw.push({
        kind,
        track: i[ib + 1]!,
        sub: i[ib + 2]!,
        begin: f[fb + 2]!,
        end: f[fb + 3]!,
        a: [f[fb + 4]!, f[fb + 5]!, f[fb + 6]!, f[fb + 7]!],
      });
      Atomics.store(i, ib, 0);
    }
    // User threads still running: their open `running` span ends with the capture.
    for (const t of this.trackList) {
      if (!t.isRunning?.()) continue;
      const since = Math.max(f[(TL_TRACK_BASE + t.id * TL_TRACK_INTS + 2) / 2]!, startUs);
      raw.push({ kind: TL_USER_RUNNING, track: t.id, sub: 0, begin: since, end: stopUs, a: [0, 0, 0, 0] });
    }
    const trace = this.trace.events().filter((r) => r.ts >= this.startTraceTs && r.ts <= stopUs / 1e6);
    return new TimelineCapture(
      [...this.trackList],
      new Map(this.kinds),
      raw,
      trace,
      startUs,
      stopUs,
      Atomics.load(i, TL_DROPPED),
    );
  }

  /** Registers a track; returns its id (the handle's `track`). */
  track(
    name: string,
    process: string,
    kind: TimelineTrackKind = 'custom',
    opts: { pid?: number; isRunning?: () => boolean } = {},
  ): number {
    const id = this.trackList.length;
    if (id >= TL_MAX_TRACKS) return TL_MAX_TRACKS - 1; // the last track takes the overflow
    this.trackList.push({
      id,
      name: String(name),
      process: String(process),
      kind,
      pid: opts.pid ?? SYNTHETIC_PID + id,
      ...(opts.isRunning ? { isRunning: opts.isRunning } : {}),
    });
    return id;
  }

  /** What a thread needs to record on `track`. */
  handle(track: number): TimelineHandle {
    return { buffer: this.buffer, track };
  }

  /** A kind of your own; the same id for the same name. */
  kind(name: string, opts: { args?: readonly string[]; instant?: boolean; cat?: string } = {}): number {
    const have = this.kindIds.get(name);
    if (have !== undefined) return have;
    const id = TL_FIRST_CUSTOM_KIND + this.kindIds.size - BUILTIN_KINDS.length;
    this.kinds.set(id, {
      id,
      name,
      cat: opts.cat ?? 'custom',
      instant: opts.instant ?? false,
      args: [...(opts.args ?? [])].slice(0, 4),
    });
    this.kindIds.set(name, id);
    return id;
  }

  /** A span on `track` from the engine's thread, its times from `performance.now()` (ms). */
  span(kind: number, track: number, beginMs: number, endMs: number, a0 = 0, a1 = 0, a2 = 0, a3 = 0): void {
    const w = this.writer;
    w.record(kind, track, w.us(beginMs), w.us(endMs), a0, a1, a2, a3);
  }

  /** The next batch's number (1, 2, ... per machine): the label that ties a batch to its copies. */
  nextBatch(): number {
    return ++this.batchSeq;
  }

  /**
   * The lane the current task records a run on: the lane of an enclosing span (compaction's), or
   * the first lane of the task that no run uses. Release it with `releaseLane`.
   */
  acquireLane(): { lane: number; own: boolean } {
    const outer = this.laneStore.getStore();
    if (outer !== undefined) return { lane: outer, own: false };
    const task = this.trace.currentTask();
    const key = `${task.pid}:${task.comm}`;
    let list = this.lanes.get(key);
    if (!list) this.lanes.set(key, (list = []));
    let lane = list.find((l) => !this.busy.has(l));
    if (lane === undefined) {
      const owner = task.pid > 0 ? this.processOf(task.pid) : undefined;
      const process = owner ? `${owner.comm} (pid ${owner.pid})` : 'kernel';
      const name = `${task.comm}-${task.pid}${list.length ? ` #${list.length + 1}` : ''}`;
      lane = this.track(name, process, 'task', { pid: task.pid });
      list.push(lane);
    }
    this.busy.add(lane);
    return { lane, own: true };
  }

  releaseLane(lane: number): void {
    this.busy.delete(lane);
  }

  /**
   * Runs `fn` as a span of `kind` on the current task's lane; spans recorded inside it (the
   * engine's runs) nest on the same lane. `args` turns its result into the span's arguments. When
   * not recording this is `fn()`.
   */
  async within<T>(
    kind: number,
    fn: () => Promise<T>,
    args?: (r: T | undefined) => readonly number[],
  ): Promise<T> {
    if (!this.on) return fn();
    const { lane, own } = this.acquireLane();
    const t0 = performance.now();
    let r: T | undefined;
    try {
      r = await this.laneStore.run(lane, fn);
      return r;
    } finally {
      const a = args ? args(r) : [];
      this.span(kind, lane, t0, performance.now(), a[0], a[1], a[2], a[3]);
      if (own) this.releaseLane(lane);
    }
  }

  /** The view migrators get as `ctx.timeline`. */
  migratorView(): MigratorTimeline {
    if (this.view) return this.view;
    const tl = this;
    this.view = {
      buffer: this.buffer,
      get recording() {
        return tl.on;
      },
      track: (name, process, kind = 'custom') => this.track(name, process, kind),
      tag: (track, value) => this.writer.setTag(track, value),
      writer: this.writer,
      kind: (name, opts) => this.kind(name, opts),
    };
    return this.view;
  }
}

interface RawRecord {
  kind: number;
  track: number;
  sub: number;
  begin: number;
  end: number;
  a: [number, number, number, number];
}

/** A Chrome trace-event file: open it in https://ui.perfetto.dev or chrome://tracing. */
export interface ChromeTrace {
  traceEvents: Record<string, unknown>[];
  displayTimeUnit: 'ms' | 'ns';
  otherData: Record<string, unknown>;
}

/** What one `m.timeline.stop()` recorded, with its exports. */
export class TimelineCapture {
  /** The threads that recorded (tracks and pool workers' sub-tracks), by tid. */
  readonly threads: readonly TimelineThread[];
  /** Spans and instants, by start time (an enclosing span before what it encloses). */
  readonly events: readonly TimelineEvent[];

  constructor(
    readonly tracks: readonly TimelineTrack[],
    private readonly kinds: ReadonlyMap<number, TimelineKind>,
    raw: readonly RawRecord[],
    /** The tracepoints emitted during the capture (`m.trace` records). */
    readonly trace: readonly TraceRecord[],
    /** When the capture started and stopped, µs after the machine's creation. */
    readonly startUs: number,
    readonly stopUs: number,
    /** Records that did not fit in the buffer. */
    readonly dropped: number,
  ) {
    const threads: TimelineThread[] = [];
    const byKey = new Map<number, TimelineThread>();
    const threadOf = (track: number, sub: number): TimelineThread => {
      const key = track * 0x10000 + sub;
      let t = byKey.get(key);
      if (!t) {
        const tr = tracks[track] ?? {
          id: track,
          name: `track ${track}`,
          process: 'unknown',
          kind: 'custom',
          pid: SYNTHETIC_PID + track,
        };
        const name = sub ? `${tr.name}-${sub}` : tr.name;
        t = {
          tid: threads.length + 1,
          name,
          process: tr.process,
          kind: tr.kind,
          comm: tr.kind === 'task' ? name.replace(/-\d+( #\d+)?$/, '') : name.replace(/\s+/g, '_'),
          pid: sub ? SYNTHETIC_PID + TL_MAX_TRACKS + track * 1024 + (sub % 1024) : tr.pid,
          track,
          sub,
        };
        threads.push(t);
        byKey.set(key, t);
      }
      return t;
    };
    const events: TimelineEvent[] = [];
    for (const r of raw) {
      const k = kinds.get(r.kind);
      if (!k) continue;
      const args: Record<string, number> = {};
      k.args.forEach((name, j) => {
        args[name] = r.a[j]!;
      });
      events.push({
        name: k.name,
        cat: k.cat,
        ph: k.instant ? 'i' : 'X',
        ts: r.begin,
        dur: k.instant ? 0 : Math.max(0, r.end - r.begin),
        tid: threadOf(r.track, r.sub).tid,
        args,
      });
    }
    events.sort((a, b) => a.ts - b.ts || b.dur - a.dur);
    this.threads = threads;
    this.events = events;
  }

  /** The thread of an event (or a tid). */
  thread(tid: number): TimelineThread | undefined {
    return this.threads[tid - 1];
  }

  /** Events named `name` (and on the thread named `thread`, if given). */
  find(name: string, thread?: string): TimelineEvent[] {
    return this.events.filter(
      (e) => e.name === name && (thread === undefined || this.thread(e.tid)?.name === thread),
    );
  }

  /**
   * Chrome's trace-event format: complete (`X`) events and instants with `ts`/`dur` in µs, the
   * process and thread names as metadata (`M`), the tracepoints as instants on their task's thread,
   * and a flow (`s` → `f`) from each batch's copy on the engine's thread to its last descriptor on
   * every DMA channel (and its share on every copy worker) that worked on it.
   */
  toChromeTrace(): ChromeTrace {
    const out: Record<string, unknown>[] = [];
    const pids = new Map<string, number>();
    const pidOf = (process: string) => {
      let p = pids.get(process);
      if (p === undefined) {
        p = pids.size + 1;
        pids.set(process, p);
        out.push({ ph: 'M', name: 'process_name', pid: p, tid: 0, args: { name: process } });
        out.push({ ph: 'M', name: 'process_sort_index', pid: p, tid: 0, args: { sort_index: p } });
      }
      return p;
    };
    // Tracepoints land on their task's first lane, or on a thread of their own.
    const threads = [...this.threads];
    const taskThread = new Map<string, TimelineThread>();
    for (const t of threads)
      if (t.kind === 'task' && !taskThread.has(`${t.pid}:${t.comm}`)) taskThread.set(`${t.pid}:${t.comm}`, t);
    const traceThread = (r: TraceRecord): TimelineThread => {
      const key = `${r.pid}:${r.comm}`;
      let t = taskThread.get(key);
      if (!t) {
        t = {
          tid: threads.length + 1,
          name: `${r.comm}-${r.pid}`,
          process: 'kernel',
          kind: 'task',
          comm: r.comm,
          pid: r.pid,
          track: -1,
          sub: 0,
        };
        threads.push(t);
        taskThread.set(key, t);
      }
      return t;
    };
    const traceTids = this.trace.map(traceThread);
    for (const t of threads) {
      const pid = pidOf(t.process);
      out.push({ ph: 'M', name: 'thread_name', pid, tid: t.tid, args: { name: t.name } });
      out.push({ ph: 'M', name: 'thread_sort_index', pid, tid: t.tid, args: { sort_index: t.tid } });
    }
    const pidOfTid = (tid: number) => pids.get(threads[tid - 1]!.process)!;
    for (const e of this.events) {
      const base = { name: e.name, cat: e.cat, ts: e.ts, pid: pidOfTid(e.tid), tid: e.tid, args: e.args };
      out.push(e.ph === 'X' ? { ...base, ph: 'X', dur: e.dur } : { ...base, ph: 'i', s: 't' });
    }
    this.trace.forEach((r, j) => {
      const t = traceTids[j]!;
      out.push({
        name: r.name,
        cat: 'tracepoint',
        ph: 'i',
        s: 't',
        ts: r.ts * 1e6,
        pid: pidOfTid(t.tid),
        tid: t.tid,
        args: { ...r.fields, text: r.text },
      });
    });
    let flowId = 0;
    for (const f of this.flows()) {
      const id = ++flowId;
      const from = f.from;
      const to = f.to;
      out.push({
        name: 'batch',
        cat: 'flow',
        ph: 's',
        id,
        ts: from.ts + Math.min(from.dur / 2, 1),
        pid: pidOfTid(from.tid),
        tid: from.tid,
      });
      out.push({
        name: 'batch',
        cat: 'flow',
        ph: 'f',
        bp: 'e',
        id,
        ts: to.ts + to.dur / 2,
        pid: pidOfTid(to.tid),
        tid: to.tid,
      });
    }
    return {
      traceEvents: out,
      displayTimeUnit: 'ms',
      otherData: {
        generator: 'pagemig timeline',
        clock: 'µs after the machine was created (one clock for every thread)',
        startUs: this.startUs,
        stopUs: this.stopUs,
        dropped: this.dropped,
      },
    };
  }

  /** `toChromeTrace()` as JSON text. */
  toChromeJson(): string {
    return JSON.stringify(this.toChromeTrace());
  }

  /**
   * Each batch copy and what served it: for every batch, its `batch_copy` span on the engine's
   * thread and the last `dma_desc`/`copy_share` span of that batch on each channel or worker.
   */
  flows(): { batch: number; from: TimelineEvent; to: TimelineEvent }[] {
    const copies = new Map<number, TimelineEvent>();
    for (const e of this.events) if (e.name === 'batch_copy' && e.args.batch) copies.set(e.args.batch, e);
    const last = new Map<string, TimelineEvent>();
    for (const e of this.events) {
      if ((e.name !== 'dma_desc' && e.name !== 'copy_share') || !copies.has(e.args.batch!)) continue;
      const key = `${e.args.batch}:${e.tid}`;
      const have = last.get(key);
      if (!have || have.ts <= e.ts) last.set(key, e);
    }
    return [...last.values()]
      .map((to) => ({ batch: to.args.batch!, from: copies.get(to.args.batch!)!, to }))
      .sort((a, b) => a.from.ts - b.from.ts || a.to.ts - b.to.ts);
  }

  /**
   * The capture as trace-file text (`m.trace.lines()`'s format; `parseTraceLines` reads it back):
   * the tracepoints emitted meanwhile (migrate:, compaction:, pagemig:) as they are, and each span
   * or instant as a line at its start, `<kind>: dur_us=<µs> <arg>=<value> ...` (no dur_us for an
   * instant), with the thread's comm and pid.
   */
  toFtrace(): string {
    const lines: { ts: number; line: string }[] = this.trace.map((r) => ({
      ts: r.ts,
      line: formatTraceLine(r),
    }));
    for (const e of this.events) {
      const t = this.thread(e.tid)!;
      const fields = Object.entries(e.args).map(([k, v]) => `${k}=${v}`);
      if (e.ph === 'X') fields.unshift(`dur_us=${e.dur.toFixed(3)}`);
      const ts = Math.round(e.ts) / 1e6;
      lines.push({
        ts,
        line: formatTraceLine({ comm: t.comm, pid: t.pid, ts, event: e.name, text: fields.join(' ') }),
      });
    }
    lines.sort((a, b) => a.ts - b.ts);
    const head = [
      '# tracer: nop',
      '#',
      `# entries-in-buffer/entries-written: ${lines.length}/${lines.length + this.dropped}   #P:1`,
      '#',
      '#                                _-----=> irqs-off/BH-disabled',
      '#                               / _----=> need-resched',
      '#                              | / _---=> hardirq/softirq',
      '#                              || / _--=> preempt-depth',
      '#                              ||| / _-=> migrate-disable',
      '#                              |||| /     delay',
      '#           TASK-PID     CPU#  |||||  TIMESTAMP  FUNCTION',
      '#              | |         |   |||||     |         |',
    ];
    return `${[...head, ...lines.map((l) => l.line)].join('\n')}\n`;
  }

  /** The kinds this capture knows (built in and defined), by id. */
  kindList(): TimelineKind[] {
    return [...this.kinds.values()];
  }
}

/**
 * Checks a Chrome trace-event file against the format's rules that viewers rely on: every `X`
 * event has numeric `ts` and `dur` (≥ 0), integer `pid` and `tid` and a `name`; metadata names
 * every process and thread that has events; on one thread, complete events never overlap unless one
 * encloses the other; every flow start has its end. Returns the problems found (none: `[]`).
 */
export function checkChromeTrace(trace: unknown): string[] {
  const problems: string[] = [];
  const events = (trace as { traceEvents?: unknown })?.traceEvents;
  if (!Array.isArray(events)) return ['traceEvents is not an array'];
  const processNames = new Set<number>();
  const threadNames = new Set<string>();
  const used = new Map<string, { pid: number; tid: number }>();
  const spans = new Map<string, { ts: number; end: number; name: string }[]>();
  const flows = new Map<unknown, string>();
  events.forEach((e: Record<string, unknown>, i) => {
    const where = `event ${i} (${String(e.name)})`;
    if (typeof e.ph !== 'string') problems.push(`${where}: no ph`);
    if (e.ph === 'M') {
      if (e.name === 'process_name') processNames.add(e.pid as number);
      if (e.name === 'thread_name') threadNames.add(`${e.pid}:${e.tid}`);
      return;
    }
    if (!Number.isInteger(e.pid) || !Number.isInteger(e.tid))
      problems.push(`${where}: pid and tid must be integers`);
    if (typeof e.ts !== 'number' || !Number.isFinite(e.ts)) problems.push(`${where}: ts must be a number`);
    const key = `${e.pid}:${e.tid}`;
    used.set(key, { pid: e.pid as number, tid: e.tid as number });
    if (e.ph === 'X') {
      if (typeof e.name !== 'string' || !e.name) problems.push(`${where}: X without a name`);
      if (typeof e.dur !== 'number' || !(e.dur >= 0)) problems.push(`${where}: X needs dur >= 0`);
      let list = spans.get(key);
      if (!list) spans.set(key, (list = []));
      list.push({ ts: e.ts as number, end: (e.ts as number) + (e.dur as number), name: String(e.name) });
    } else if (e.ph === 's') flows.set(e.id, where);
    else if (e.ph === 'f') {
      if (!flows.has(e.id)) problems.push(`${where}: flow end ${String(e.id)} without a start before it`);
      else flows.set(e.id, '');
    }
  });
  for (const [id, where] of flows) if (where) problems.push(`${where}: flow ${String(id)} has no end`);
  for (const [key, { pid }] of used) {
    if (!processNames.has(pid)) problems.push(`pid ${pid} has no process_name`);
    if (!threadNames.has(key)) problems.push(`thread ${key} has no thread_name`);
  }
  const EPS = 1e-3;
  for (const [key, list] of spans) {
    list.sort((a, b) => a.ts - b.ts || b.end - a.end);
    const stack: { ts: number; end: number; name: string }[] = [];
    for (const s of list) {
      while (stack.length && stack.at(-1)!.end <= s.ts + EPS) stack.pop();
      const top = stack.at(-1);
      if (top && s.end > top.end + EPS)
        problems.push(
          `thread ${key}: ${s.name} [${s.ts}, ${s.end}] overlaps ${top.name} [${top.ts}, ${top.end}] without nesting`,
        );
      stack.push(s);
    }
  }
  return problems;
}
