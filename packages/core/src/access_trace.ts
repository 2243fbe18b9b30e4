import { deflateSync, gunzipSync, inflateSync } from 'node:zlib';
import { EINVAL, kernelError } from './errno.js';
import { show } from './show.js';

/**
 * Recorded memory access traces: DAMON's user-space tool damo (`damo record`, default output file
 * damon.data) and a plain CSV, parsed into one shape that access_replay.ts replays.
 *
 * damo formats, from damo's own readers and writers (github.com/damonitor/damo):
 * - 'json' and 'json_compressed' (damo's default since v2.0.2): `json.dumps([record.to_kvpairs(raw=True)
 *   ...], indent=4)`, compressed with Python's `zlib.compress` for json_compressed
 *   (src/_damo_records.py write_json / write_json_compressed, damo 3.3.0). A record is one
 *   monitoring target: `{ kdamond_idx, context_idx, intervals: { sample_us, aggr_us, ... },
 *   scheme_idx, target_id, snapshots: [{ start_time, end_time (ns), regions: [{ start, end,
 *   nr_accesses: { samples, percent }, age, ... }], total_bytes }] }`; raw numbers are written as
 *   decimal strings.
 * - 'record', damo's own binary format (removed in damo v2.0.2, _damon_result.py write_binary /
 *   parse_binary_format_record at commit b929c27f^): native byte order (little endian here), an
 *   optional header `"damon_recfmt_ver"` + int32 version, then per snapshot: int64 sec, int64 nsec
 *   (its end time), uint32 nr_tasks, and per task a target id (int32 in version 1, uint64
 *   otherwise), uint32 nr_regions and per region uint64 start, uint64 end, uint32 nr_accesses.
 *   Only end times are stored: a record's snapshots are contiguous and the first one is as long
 *   as the average (set_first_snapshot_start_time); the writer adds a fake last snapshot (one
 *   region 0-0) after a lone snapshot so its length is known, and the reader drops it.
 * gzip-compressed JSON is accepted as well.
 */

/** One region of a record: [start, end) was accessed `accesses` times per page during the record. */
export interface AccessRegion {
  start: number;
  end: number;
  /**
   * DAMON's nr_accesses: in how many sampling intervals of the aggregation interval the region
   * was found accessed; a replay accesses each page of the region this many times.
   */
  accesses: number;
}

/** One aggregation interval (a DAMON snapshot; a group of CSV rows with the same time). */
export interface AccessRecord {
  /** Start and end of the interval, ms (damo: from the first snapshot's start; CSV: as written). */
  startMs: number;
  endMs: number;
  regions: AccessRegion[];
}

/** A parsed access trace: records in time order, each with its regions. */
export interface AccessTrace {
  source: 'damo' | 'csv';
  records: AccessRecord[];
}

const fail = (what: string, why: string): never => {
  throw kernelError(EINVAL, `${what}: ${why}`);
};

/** What the writers accept: a trace as the parsers give one (EINVAL naming the record and field). */
function checkTrace(trace: AccessTrace, what: string): void {
  if (!trace || !Array.isArray(trace.records)) fail(what, 'trace has no records list');
  trace.records.forEach((r, i) => {
    if (!(Number.isFinite(r?.startMs) && Number.isFinite(r.endMs) && r.endMs >= r.startMs))
      fail(`${what} record ${i}`, `runs from ${show(r?.startMs)} to ${show(r?.endMs)} ms`);
    if (!Array.isArray(r.regions)) fail(`${what} record ${i}`, 'regions is not a list');
    r.regions.forEach((g, j) => {
      const at = `${what} record ${i} region ${j}`;
      if (!(Number.isSafeInteger(g?.start) && Number.isSafeInteger(g.end) && g.start >= 0 && g.end > g.start))
        fail(at, `range ${show(g?.start)}..${show(g?.end)} is not a non-empty address range`);
      if (!(Number.isInteger(g.accesses) && g.accesses >= 0 && g.accesses <= 0xffffffff))
        fail(at, `accesses ${show(g.accesses)} is not a count in 0..2^32-1`);
    });
  });
}

// ---------------------------------------------------------------------------------------------
// CSV

/**
 * The CSV header: `time_ms,start,end,accesses`, optionally `,end_ms`. A row is one region of the
 * record that starts at time_ms; consecutive rows with the same time_ms form one record, and
 * times grow from record to record. A record ends at its end_ms, else where the next one starts;
 * the last one lasts as long as the one before it (100 ms, DAMON's default aggregation interval,
 * if it is the only one). Addresses are decimal or 0x-prefixed hex; blank lines and lines
 * starting with # are skipped.
 */
export const ACCESS_CSV_HEADER = 'time_ms,start,end,accesses';
const LAST_RECORD_MS = 100;

function csvNumber(s: string, line: number, field: string, integer: boolean): number {
  const what = `access CSV line ${line}, field ${field}`;
  let v: number;
  if (integer && /^0x[0-9a-f]+$/i.test(s)) v = Number.parseInt(s.slice(2), 16);
  else if (integer ? /^[0-9]+$/.test(s) : /^[0-9]+(\.[0-9]+)?([eE][+-]?[0-9]+)?$/.test(s)) v = Number(s);
  else return fail(what, `${JSON.stringify(s)} is not a ${integer ? 'decimal or 0x hex integer' : 'number'}`);
  if (integer ? !Number.isSafeInteger(v) : !Number.isFinite(v)) fail(what, `${s} is too large`);
  return v;
}

/** Parses the access CSV (see ACCESS_CSV_HEADER); errors are EINVAL naming the line and field. */
export function parseAccessCsv(text: string): AccessTrace {
  if (typeof text !== 'string') fail('access CSV', `text must be a string, got ${typeof text}`);
  // A byte order mark (spreadsheet exports) is not part of the header.
  const lines = text.replace(/^\uFEFF/, '').split('\n');
  let withEnd: boolean | undefined;
  const records: AccessRecord[] = [];
  const explicitEnd: boolean[] = [];
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.replace(/\r$/, '').trim();
    if (line === '' || line.startsWith('#')) continue;
    const n = i + 1;
    const fields = line.split(',').map((f) => f.trim());
    if (withEnd === undefined) {
      const h = fields.join(',');
      if (h !== ACCESS_CSV_HEADER && h !== `${ACCESS_CSV_HEADER},end_ms`)
        fail(
          `access CSV line ${n}`,
          `the header must be "${ACCESS_CSV_HEADER}" or "${ACCESS_CSV_HEADER},end_ms", got "${line}"`,
        );
      withEnd = fields.length === 5;
      continue;
    }
    const want = withEnd ? 5 : 4;
    if (fields.length !== want)
      fail(`access CSV line ${n}`, `${fields.length} fields, the header has ${want}`);
    const t = csvNumber(fields[0]!, n, 'time_ms', false);
    const start = csvNumber(fields[1]!, n, 'start', true);
    const end = csvNumber(fields[2]!, n, 'end', true);
    const accesses = csvNumber(fields[3]!, n, 'accesses', true);
    if (end <= start)
      fail(`access CSV line ${n}, field end`, `end ${fields[2]} is not above start ${fields[1]}`);
    const endMs = withEnd ? csvNumber(fields[4]!, n, 'end_ms', false) : undefined;
    if (endMs !== undefined && endMs <= t)
      fail(`access CSV line ${n}, field end_ms`, `end_ms ${endMs} is not after time_ms ${t}`);
    let rec = records[records.length - 1];
    if (!rec || rec.startMs !== t) {
      if (rec && t < rec.startMs)
        fail(
          `access CSV line ${n}, field time_ms`,
          `time ${t} goes back (the record before starts at ${rec.startMs})`,
        );
      if (rec && endMs === undefined) rec.endMs = t;
      if (rec && rec.endMs > t)
        fail(
          `access CSV line ${n}, field time_ms`,
          `time ${t} is before the end_ms ${rec.endMs} of the record before`,
        );
      rec = { startMs: t, endMs: endMs ?? Number.NaN, regions: [] };
      records.push(rec);
      explicitEnd.push(endMs !== undefined);
    } else if (endMs !== undefined && endMs !== rec.endMs)
      fail(
        `access CSV line ${n}, field end_ms`,
        `end_ms ${endMs} differs from ${rec.endMs} of its record's first row`,
      );
    rec.regions.push({ start, end, accesses });
  }
  if (withEnd === undefined) fail('access CSV', `no header line ("${ACCESS_CSV_HEADER}")`);
  const last = records[records.length - 1];
  if (last && !explicitEnd[records.length - 1]) {
    const prev = records[records.length - 2];
    last.endMs = last.startMs + (prev ? prev.endMs - prev.startMs : LAST_RECORD_MS);
  }
  return { source: 'csv', records };
}

/** Writes a trace as access CSV (with the end_ms column, so parseAccessCsv gives the same trace back). */
export function formatAccessCsv(trace: AccessTrace): string {
  checkTrace(trace, 'formatAccessCsv');
  const out = [`${ACCESS_CSV_HEADER},end_ms`];
  trace.records.forEach((r, i) => {
    if (!r.regions.length) fail(`access CSV record ${i}`, 'a record without regions has no row');
    for (const g of r.regions)
      out.push(`${r.startMs},0x${g.start.toString(16)},0x${g.end.toString(16)},${g.accesses},${r.endMs}`);
  });
  return `${out.join('\n')}\n`;
}

// ---------------------------------------------------------------------------------------------
// damo

const RECFMT_MAGIC = 'damon_recfmt_ver';

/** Options of parseDamoRecord. */
export interface DamoParseOptions {
  /** Which monitoring target (index in the file, in order of appearance) to read. Default 0. */
  target?: number;
}

/**
 * Parses damo's record output (damon.data): JSON, zlib- or gzip-compressed JSON, or the binary
 * 'record' format (see the top of this file). One target is read (`target`, default the first);
 * times are in ms from its first snapshot's start. Errors are EINVAL naming what is wrong where.
 */
export function parseDamoRecord(bytes: Uint8Array, options: DamoParseOptions = {}): AccessTrace {
  if (!(bytes instanceof Uint8Array)) fail('damo record', 'bytes must be a Uint8Array');
  const target = options.target ?? 0;
  if (bytes.length === 0) fail('damo record', 'the file is empty');
  if (!Number.isSafeInteger(target) || target < 0) fail('damo record', `target ${target} is not an index`);
  let targets: AccessRecord[][];
  if (bytes.length >= 16 && ascii(bytes, 0, 16) === RECFMT_MAGIC) targets = parseBinary(bytes, true);
  else if (bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b)
    targets = parseJson(unzip(() => gunzipSync(bytes), 'gzip'));
  else if (bytes.length >= 2 && (bytes[0]! & 0x0f) === 8 && ((bytes[0]! << 8) | bytes[1]!) % 31 === 0)
    targets = parseJson(unzip(() => inflateSync(bytes), 'zlib'));
  else if (firstNonSpace(bytes) === 0x5b) targets = parseJson(new TextDecoder().decode(bytes));
  else targets = parseBinary(bytes, false);
  if (targets.length === 0) return { source: 'damo', records: [] };
  const recs =
    targets[target] ??
    fail('damo record', `target ${target} does not exist (the file has ${targets.length})`);
  const t0 = recs.length ? recs[0]!.startMs : 0;
  return {
    source: 'damo',
    records: recs.map((r) => ({ startMs: r.startMs - t0, endMs: r.endMs - t0, regions: r.regions })),
  };
}

function ascii(b: Uint8Array, from: number, to: number): string {
  let s = '';
  for (let i = from; i < to; i++) s += String.fromCharCode(b[i]!);
  return s;
}

function firstNonSpace(b: Uint8Array): number {
  for (let i = 0; i < b.length; i++) if (![0x20, 0x09, 0x0a, 0x0d].includes(b[i]!)) return b[i]!;
  return -1;
}

function unzip(fn: () => Buffer, kind: string): string {
  try {
    return new TextDecoder().decode(fn());
  } catch (e) {
    return fail('damo record', `${kind} data does not decompress (${(e as Error).message})`);
  }
}

/** A damo number: a JSON number or the decimal string damo writes with raw=True. */
function damoNumber(v: unknown, what: string): number {
  let n = Number.NaN;
  if (typeof v === 'number') n = v;
  else if (typeof v === 'string' && /^-?[0-9]+(\.[0-9]+)?$/.test(v.replaceAll(',', '')))
    n = Number(v.replaceAll(',', ''));
  if (!Number.isFinite(n) || Math.abs(n) > Number.MAX_SAFE_INTEGER)
    fail('damo record', `${what} ${show(v)} is not a number`);
  return n;
}

function damoAddr(v: unknown, what: string): number {
  const n = damoNumber(v, what);
  if (!Number.isSafeInteger(n) || n < 0) fail('damo record', `${what} ${show(v)} is not an address`);
  return n;
}

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/** _damo_records.py parse_json → DamonRecord.from_kvpairs, one list of records per target. */
function parseJson(text: string): AccessRecord[][] {
  let kv: unknown;
  try {
    kv = JSON.parse(text);
  } catch (e) {
    return fail('damo record', `not JSON (${(e as Error).message})`);
  }
  if (!Array.isArray(kv)) fail('damo record', 'the JSON is not a list of records');
  return (kv as unknown[]).map((rec, ti) => {
    const at = `record ${ti}`;
    if (!isObject(rec) || !Array.isArray(rec.snapshots))
      return fail('damo record', `${at} has no snapshots list`);
    const iv = rec.intervals;
    // nr_accesses given only in percent converts with the record's intervals (add_unset_unit).
    const maxSamples =
      isObject(iv) && iv.sample_us !== undefined && iv.aggr_us !== undefined
        ? damoNumber(iv.aggr_us, `${at} intervals.aggr_us`) /
          damoNumber(iv.sample_us, `${at} intervals.sample_us`)
        : Number.NaN;
    return (rec.snapshots as unknown[]).map((s, si) => {
      const sat = `${at} snapshot ${si}`;
      if (!isObject(s) || !Array.isArray(s.regions)) return fail('damo record', `${sat} has no regions list`);
      const startMs = damoNumber(s.start_time, `${sat} start_time`) / 1e6;
      const endMs = damoNumber(s.end_time, `${sat} end_time`) / 1e6;
      if (!(endMs >= startMs))
        fail('damo record', `${sat} ends (${s.end_time}) before it starts (${s.start_time})`);
      const regions = (s.regions as unknown[]).map((g, gi) => {
        const gat = `${sat} region ${gi}`;
        if (!isObject(g)) return fail('damo record', `${gat} is not an object`);
        const start = damoAddr(g.start, `${gat} start`);
        const end = damoAddr(g.end, `${gat} end`);
        if (end <= start) fail('damo record', `${gat} end ${end} is not above start ${start}`);
        return { start, end, accesses: nrAccesses(g.nr_accesses, gat, maxSamples) };
      });
      return { startMs, endMs, regions };
    });
  });
}

function nrAccesses(v: unknown, at: string, maxSamples: number): number {
  let n: number;
  if (isObject(v)) {
    if (v.samples !== null && v.samples !== undefined) n = damoNumber(v.samples, `${at} nr_accesses.samples`);
    else if (v.percent !== null && v.percent !== undefined && Number.isFinite(maxSamples))
      n = Math.floor((damoNumber(v.percent, `${at} nr_accesses.percent`) * maxSamples) / 100);
    else
      return fail(
        'damo record',
        `${at} nr_accesses has no samples (and no percent with the record's intervals)`,
      );
  } else n = damoNumber(v, `${at} nr_accesses`);
  if (!Number.isSafeInteger(n) || n < 0) fail('damo record', `${at} nr_accesses ${n} is not a count`);
  return n;
}

/** _damon_result.py parse_binary_format_record (damo before v2.0.2). */
function parseBinary(b: Uint8Array, header: boolean): AccessRecord[][] {
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  let off = 0;
  const need = (n: number, what: string) => {
    if (off + n > b.length)
      fail(
        'damo record',
        header
          ? `binary record truncated at byte ${off} (${what})`
          : 'not a damo record file (neither JSON, zlib/gzip-compressed JSON, nor the binary record format)',
      );
  };
  const u64 = (what: string) => {
    need(8, what);
    const v = dv.getBigUint64(off, true);
    off += 8;
    if (v > BigInt(Number.MAX_SAFE_INTEGER))
      fail('damo record', `${what} ${v} at byte ${off - 8} is too large`);
    return Number(v);
  };
  const u32 = (what: string) => {
    need(4, what);
    off += 4;
    return dv.getUint32(off - 4, true);
  };
  let version = 0;
  if (header) {
    off = 16;
    need(4, 'format version');
    version = dv.getInt32(off, true);
    off += 4;
  }
  const byTarget = new Map<number, { endNs: number[]; regions: AccessRegion[][] }>();
  while (off + 16 <= b.length) {
    const sec = u64('snapshot end time (sec)');
    const nsec = u64('snapshot end time (nsec)');
    const endNs = sec * 1e9 + nsec;
    const nrTasks = u32('nr_tasks');
    for (let t = 0; t < nrTasks; t++) {
      let id: number;
      if (version === 1) {
        need(4, 'target id');
        id = dv.getInt32(off, true);
        off += 4;
      } else id = u64('target id');
      let tgt = byTarget.get(id);
      if (!tgt) byTarget.set(id, (tgt = { endNs: [], regions: [] }));
      const prev = tgt.endNs[tgt.endNs.length - 1];
      if (prev !== undefined && endNs < prev)
        fail('damo record', `snapshot is not sorted by time (byte ${off})`);
      const nr = u32('nr_regions');
      const regions: AccessRegion[] = [];
      for (let r = 0; r < nr; r++) {
        const start = u64('region start');
        const end = u64('region end');
        const accesses = u32('nr_accesses');
        regions.push({ start, end, accesses });
      }
      tgt.endNs.push(endNs);
      tgt.regions.push(regions);
    }
  }
  if (off !== b.length) need(16, 'snapshot end time');
  return [...byTarget.values()].map(({ endNs, regions }) => {
    // The fake snapshot write_binary adds after a lone one: one region 0-0 (nr_accesses -1).
    const last = regions[regions.length - 1];
    const fake = regions.length === 2 && last!.length === 1 && last![0]!.start === 0 && last![0]!.end === 0;
    const n = endNs.length;
    const first = n >= 2 ? endNs[0]! - (endNs[n - 1]! - endNs[0]!) / (n - 1) : endNs[0]!;
    const recs = endNs.map((e, i) => ({
      startMs: (i === 0 ? first : endNs[i - 1]!) / 1e6,
      endMs: e / 1e6,
      regions: regions[i]!,
    }));
    if (fake) recs.pop();
    for (const [i, r] of recs.entries()) {
      for (const [gi, g] of r.regions.entries())
        if (g.end <= g.start)
          fail('damo record', `snapshot ${i} region ${gi} end ${g.end} is not above start ${g.start}`);
    }
    return recs;
  });
}

/** Options of formatDamoRecord. */
export interface DamoFormatOptions {
  /** damo's file type. Default 'json_compressed' (damo's default). */
  format?: 'json' | 'json_compressed' | 'record';
  /** The target id written. Default 0. */
  targetId?: number;
  /** 'record' format version (1: int32 target ids, 2: uint64). Default 2. */
  version?: number;
  /** DAMON intervals written with a JSON record, µs. Default damo's 5 ms / 100 ms / 1 s. */
  intervals?: { sampleUs: number; aggrUs: number; opsUpdateUs: number };
}

/**
 * Writes a trace as damo writes its record output (write_json, write_json_compressed, and the
 * old write_binary): times become ns. The binary format keeps only end times, so it gives back
 * the same trace only for contiguous records of equal length.
 */
export function formatDamoRecord(trace: AccessTrace, options: DamoFormatOptions = {}): Uint8Array {
  checkTrace(trace, 'formatDamoRecord');
  const format = options.format ?? 'json_compressed';
  const id = options.targetId ?? 0;
  if (!['json', 'json_compressed', 'record'].includes(format))
    fail('formatDamoRecord', `format ${show(format)} is not 'json', 'json_compressed' or 'record'`);
  // Version 1 of the binary format stores int32 target ids; the others unsigned ones.
  const signedId = format === 'record' && options.version === 1;
  if (!Number.isSafeInteger(id) || (id < 0 && !signedId))
    fail(
      'formatDamoRecord',
      `targetId ${show(id)} is not an integer >= 0 (negative only in record version 1)`,
    );
  if (options.version !== undefined && ![1, 2].includes(options.version))
    fail('formatDamoRecord', `version ${show(options.version)} is not 1 or 2`);
  const ns = (ms: number) => Math.round(ms * 1e6);
  if (format === 'record') {
    const version = options.version ?? 2;
    let snaps = trace.records.map((r) => ({ end: ns(r.endMs), regions: r.regions, fake: false }));
    if (snaps.length === 1) {
      const r = trace.records[0]!;
      snaps = [
        ...snaps,
        {
          end: ns(r.endMs + (r.endMs - r.startMs)),
          regions: [{ start: 0, end: 0, accesses: 0xffffffff }],
          fake: true,
        },
      ];
    }
    let size = 20;
    for (const s of snaps) size += 24 + (version === 1 ? 4 : 8) + s.regions.length * 20;
    const out = new Uint8Array(size);
    const dv = new DataView(out.buffer);
    for (let i = 0; i < 16; i++) out[i] = RECFMT_MAGIC.charCodeAt(i);
    dv.setInt32(16, version, true);
    let off = 20;
    for (const s of snaps) {
      dv.setBigInt64(off, BigInt(Math.floor(s.end / 1e9)), true);
      dv.setBigInt64(off + 8, BigInt(s.end % 1e9), true);
      dv.setUint32(off + 16, 1, true);
      off += 20;
      if (version === 1) {
        dv.setInt32(off, id, true);
        off += 4;
      } else {
        dv.setBigUint64(off, BigInt(id), true);
        off += 8;
      }
      dv.setUint32(off, s.regions.length, true);
      off += 4;
      for (const g of s.regions) {
        dv.setBigUint64(off, BigInt(g.start), true);
        dv.setBigUint64(off + 8, BigInt(g.end), true);
        dv.setUint32(off + 16, g.accesses, true);
        off += 20;
      }
    }
    return out;
  }
  const iv = options.intervals ?? { sampleUs: 5000, aggrUs: 100000, opsUpdateUs: 1000000 };
  const maxSamples = iv.aggrUs / iv.sampleUs;
  // DamonRecord.to_kvpairs(raw=True): numbers as '%d' strings; None as null.
  const kv = [
    {
      kdamond_idx: null,
      context_idx: null,
      intervals: { sample_us: `${iv.sampleUs}`, aggr_us: `${iv.aggrUs}`, ops_update_us: `${iv.opsUpdateUs}` },
      scheme_idx: null,
      target_id: id,
      scheme_filters: [],
      snapshots: trace.records.map((r) => ({
        start_time: `${ns(r.startMs)}`,
        end_time: `${ns(r.endMs)}`,
        regions: r.regions.map((g) => ({
          start: `${g.start}`,
          end: `${g.end}`,
          nr_accesses: { samples: g.accesses, percent: Math.floor((g.accesses * 100) / maxSamples) },
          age: { usec: null, aggr_intervals: '0' },
          probe_hits: [],
          sz_filter_passed: '0',
        })),
        total_bytes: `${r.regions.reduce((n, g) => n + g.end - g.start, 0)}`,
        damos_stats: null,
        sample_interval_us: null,
      })),
      data_source: 'unknown',
    },
  ];
  const json = new TextEncoder().encode(JSON.stringify(kv, null, 4));
  return format === 'json' ? json : new Uint8Array(deflateSync(json));
}
