/**
 * The timeline's shared buffer and its writer (`@pagemig/core/timeline-writer`). Every thread that
 * records (the engine's, copy workers, emulated devices, user threads) writes fixed-size records
 * into one SharedArrayBuffer with an atomic cursor: no message, no allocation per record. This
 * module imports nothing, so a worker or a device thread loads a few kilobytes.
 *
 * Layout (little-endian, `TL_HEADER_BYTES` of header, then `capacity` records of 64 bytes):
 *
 * | Int32 word | meaning |
 * | --- | --- |
 * | 0 `TL_FLAG` | 1 while recording; every writer looks at it first (one load, one branch when off) |
 * | 1 `TL_CURSOR` | the next record, taken with `Atomics.add` |
 * | 2 `TL_CAPACITY` | records the buffer holds for this capture |
 * | 3 `TL_DROPPED` | records that did not fit |
 * | 4 `TL_OPTIONS` | bit 0: per-folio spans |
 * | Float64 4 (Int32 8-9) `TL_EPOCH_MS` | the clock's zero: `performance.timeOrigin + performance.now()` of the main thread when the machine was created |
 * | Float64 5 (Int32 10-11) `TL_START_US` | when the capture started (µs after the epoch) |
 * | from Int32 word 16 | per track: 4 words, `[tag, spare, openSince (Float64)]` |
 *
 * A record is 16 Int32 words / 8 Float64 words: Int32 0 the kind (stored last, with
 * `Atomics.store`: 0 means not written yet), Int32 1 the track, Int32 2 a sub-track (a worker's
 * threadId, 0 for the track itself), Float64 2 begin µs, Float64 3 end µs, Float64 4..7 four
 * arguments (their names depend on the kind).
 *
 * The clock: every thread's `performance.now()` has its own origin (`performance.timeOrigin`, the
 * thread's start). A writer turns it into µs after the machine's epoch with one addition:
 * `(performance.timeOrigin - epoch + performance.now()) * 1000`, the offset computed once per
 * writer. `test/timeline.test.ts` checks that a worker's clock agrees with the main thread's within
 * a shared-memory round trip.
 */

/** Int32 words of the header. */
export const TL_FLAG = 0;
export const TL_CURSOR = 1;
export const TL_CAPACITY = 2;
export const TL_DROPPED = 3;
export const TL_OPTIONS = 4;
/** Float64 words of the header. */
export const TL_EPOCH_MS = 4;
export const TL_START_US = 5;
/** TL_OPTIONS bit: record one span per folio moved. */
export const TL_OPT_FOLIOS = 1;

/** Per-track words start here (Int32 index); 4 words per track. */
export const TL_TRACK_BASE = 16;
export const TL_TRACK_INTS = 4;
export const TL_MAX_TRACKS = 4096;
export const TL_HEADER_BYTES = (TL_TRACK_BASE + TL_MAX_TRACKS * TL_TRACK_INTS) * 4;
export const TL_RECORD_BYTES = 64;
/** Int32 and Float64 words per record. */
export const TL_RECORD_INTS = TL_RECORD_BYTES / 4;
export const TL_RECORD_F64 = TL_RECORD_BYTES / 8;
/** The most records a capture may hold (the buffer reserves, and grows into, this much). */
export const TL_MAX_RECORDS = 1 << 20;

/*
 * Record kinds. The engine's (1..15) nest on one task's lane: run ⊃ batch ⊃ phase ⊃ folio.
 */
export const TL_RUN = 1;
export const TL_BATCH = 2;
export const TL_UNMAP = 3;
export const TL_FLUSH = 4;
export const TL_BATCH_COPY = 5;
export const TL_FALLBACK_COPY = 6;
export const TL_MOVE = 7;
export const TL_FOLIO_MOVE = 8;
/** A DMA descriptor (group) executed by a device, on its channel's track. */
export const TL_DMA_DESC = 16;
/** Device side: the completion interrupt raised (instant). */
export const TL_DMA_COMPLETION = 17;
/** Host side: the interrupt handler completed a descriptor (instant, on the channel's track). */
export const TL_DMA_IRQ = 18;
/** A copy worker's share of a batch. */
export const TL_COPY_SHARE = 24;
/** User threads. */
export const TL_USER_RUNNING = 32;
export const TL_USER_FAULT = 33;
export const TL_USER_MIGRATION_WAIT = 34;
export const TL_USER_TLB_ACK = 35;
/** Daemons. */
export const TL_COMPACT_ZONE = 40;
export const TL_KCOMPACTD = 41;
/** Kinds from here on are defined at run time (`timeline.kind(name)`). */
export const TL_FIRST_CUSTOM_KIND = 64;

/** What a thread needs to record on a track: the shared buffer and the track's id. */
export interface TimelineHandle {
  readonly buffer: SharedArrayBuffer;
  readonly track: number;
}

const I_RECORDS = TL_HEADER_BYTES / 4;
const F_RECORDS = TL_HEADER_BYTES / 8;

/**
 * Writes records into a timeline buffer from any thread. `on` is one load of the shared flag word;
 * call it first and skip the clock reads when it is false, so a disabled timeline costs one branch.
 */
export class TimelineWriter {
  readonly i32: Int32Array;
  readonly f64: Float64Array;
  /** This thread's `performance.timeOrigin` minus the epoch, in ms. */
  private readonly offsetMs: number;

  constructor(
    readonly buffer: SharedArrayBuffer,
    readonly track = 0,
    offsetMs?: number,
  ) {
    // Length-tracking views: they follow the buffer when a capture grows it.
    this.i32 = new Int32Array(buffer);
    this.f64 = new Float64Array(buffer);
    this.offsetMs = offsetMs ?? performance.timeOrigin - this.f64[TL_EPOCH_MS]!;
  }

  /** True while recording: one load of the shared flag word. */
  get on(): boolean {
    return this.i32[TL_FLAG] !== 0;
  }

  /** Whether per-folio spans are wanted. */
  get folios(): boolean {
    return (this.i32[TL_OPTIONS]! & TL_OPT_FOLIOS) !== 0;
  }

  /** Now, in µs after the machine's epoch (the clock every thread shares). */
  now(): number {
    return (this.offsetMs + performance.now()) * 1000;
  }

  /** `performance.now()` of this thread (ms) → µs after the epoch. */
  us(perfNowMs: number): number {
    return (this.offsetMs + perfNowMs) * 1000;
  }

  /** The track's tag word (the batch its thread works on, set by the submitter). */
  tag(track = this.track): number {
    return Atomics.load(this.i32, TL_TRACK_BASE + track * TL_TRACK_INTS);
  }

  setTag(track: number, value: number): void {
    Atomics.store(this.i32, TL_TRACK_BASE + track * TL_TRACK_INTS, value);
  }

  /** When the track's thread last started running (see `TL_USER_RUNNING`), µs. */
  openSince(track = this.track): number {
    return this.f64[(TL_TRACK_BASE + track * TL_TRACK_INTS + 2) / 2]!;
  }

  setOpenSince(us: number, track = this.track): void {
    this.f64[(TL_TRACK_BASE + track * TL_TRACK_INTS + 2) / 2] = us;
  }

  /** When the capture started, µs after the epoch. */
  get startUs(): number {
    return this.f64[TL_START_US]!;
  }

  /**
   * Appends a record (a span, or an instant when end = begin). Drops it, and counts the drop, when
   * the buffer is full or recording stopped meanwhile.
   */
  record(
    kind: number,
    track: number,
    beginUs: number,
    endUs: number,
    a0 = 0,
    a1 = 0,
    a2 = 0,
    a3 = 0,
    sub = 0,
  ): void {
    const i = this.i32;
    if (i[TL_FLAG] === 0) return;
    const r = Atomics.add(i, TL_CURSOR, 1);
    if (r >= i[TL_CAPACITY]!) {
      Atomics.add(i, TL_DROPPED, 1);
      return;
    }
    const f = this.f64;
    const fb = F_RECORDS + r * TL_RECORD_F64;
    f[fb + 2] = beginUs;
    f[fb + 3] = endUs;
    f[fb + 4] = a0;
    f[fb + 5] = a1;
    f[fb + 6] = a2;
    f[fb + 7] = a3;
    const ib = I_RECORDS + r * TL_RECORD_INTS;
    i[ib + 1] = track;
    i[ib + 2] = sub;
    Atomics.store(i, ib, kind);
  }

  /** A span on this writer's track. */
  span(kind: number, beginUs: number, endUs: number, a0 = 0, a1 = 0, a2 = 0, a3 = 0): void {
    this.record(kind, this.track, beginUs, endUs, a0, a1, a2, a3);
  }

  /** An instant on this writer's track, now. */
  instant(kind: number, a0 = 0, a1 = 0, a2 = 0, a3 = 0): void {
    if (this.i32[TL_FLAG] === 0) return;
    const t = this.now();
    this.record(kind, this.track, t, t, a0, a1, a2, a3);
  }
}

/** A writer for a handle passed to a thread, or null without one. */
export function timelineWriter(h: TimelineHandle | null | undefined): TimelineWriter | null {
  return h ? new TimelineWriter(h.buffer, h.track) : null;
}
