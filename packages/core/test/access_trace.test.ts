import { readFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  type AccessTrace,
  formatAccessCsv,
  formatDamoRecord,
  parseAccessCsv,
  parseDamoRecord,
} from '../src/access_trace.js';
import { EINVAL, PagemigError } from '../src/errno.js';
import { expectErrno } from './helpers.js';

// The damo fixtures are written by test/fixtures/damo/make_fixtures.py with damo's own writer
// logic (write_json, write_json_compressed of damo 3.3.0; write_binary of damo before 2.0.2).
const fixture = (name: string) =>
  new Uint8Array(readFileSync(new URL(`./fixtures/damo/${name}`, import.meta.url)));

/** The trace the fixtures hold (times from the first snapshot's start). */
const FIXTURE: AccessTrace = {
  source: 'damo',
  records: [
    {
      startMs: 0,
      endMs: 100,
      regions: [
        { start: 0x7f0000000000, end: 0x7f0000010000, accesses: 20 },
        { start: 0x7f0000010000, end: 0x7f0000100000, accesses: 0 },
      ],
    },
    {
      startMs: 100,
      endMs: 200,
      regions: [
        { start: 0x7f0000000000, end: 0x7f0000008000, accesses: 5 },
        { start: 0x7f0000008000, end: 0x7f0000100000, accesses: 1 },
      ],
    },
    {
      startMs: 200,
      endMs: 300,
      regions: [
        { start: 0x7f0000000000, end: 0x7f0000100000, accesses: 3 },
        { start: 0x7fff00000000, end: 0x7fff00004000, accesses: 12 },
      ],
    },
  ],
};

describe('parseDamoRecord', () => {
  it("reads damo's json, json_compressed (zlib) and binary record files alike", () => {
    expect(parseDamoRecord(fixture('damon.data.json'))).toEqual(FIXTURE);
    expect(parseDamoRecord(fixture('damon.data'))).toEqual(FIXTURE);
    expect(parseDamoRecord(fixture('damon.data.rec'))).toEqual(FIXTURE);
  });

  it('reads gzip-compressed JSON', () => {
    expect(parseDamoRecord(new Uint8Array(gzipSync(fixture('damon.data.json'))))).toEqual(FIXTURE);
  });

  it('drops the fake snapshot damo adds after a lone binary snapshot, and derives its start from it', () => {
    const one: AccessTrace = { source: 'damo', records: [FIXTURE.records[0]!] };
    const bin = formatDamoRecord(one, { format: 'record' });
    expect(parseDamoRecord(bin)).toEqual(one);
  });

  it('reads format version 1 (int32 target ids) and picks a target by index', () => {
    const bin = formatDamoRecord(FIXTURE, { format: 'record', version: 1, targetId: -5 });
    expect(parseDamoRecord(bin)).toEqual(FIXTURE);
    expectErrno(() => parseDamoRecord(bin, { target: 1 }), EINVAL);
  });

  it('converts nr_accesses given only in percent with the record intervals', () => {
    const kv = JSON.parse(new TextDecoder().decode(fixture('damon.data.json')));
    for (const s of kv[0].snapshots) for (const r of s.regions) r.nr_accesses.samples = null;
    const t = parseDamoRecord(new TextEncoder().encode(JSON.stringify(kv)));
    // percent = samples * 100 / 20 in the fixture: 20 -> 100 % -> 20 samples; 5 -> 25 % -> 5.
    expect(t.records.map((r) => r.regions.map((g) => g.accesses))).toEqual([
      [20, 0],
      [5, 1],
      [3, 12],
    ]);
  });

  it('refuses bad files with EINVAL naming the place', () => {
    expect(expectErrno(() => parseDamoRecord(new Uint8Array()), EINVAL).message).toMatch(/empty/);
    const rec = fixture('damon.data.rec');
    expect(expectErrno(() => parseDamoRecord(rec.subarray(0, rec.length - 3)), EINVAL).message).toMatch(
      /truncated at byte \d+ \(nr_accesses\)/,
    );
    const kv = JSON.parse(new TextDecoder().decode(fixture('damon.data.json')));
    kv[0].snapshots[1].regions[0].end = 'lots';
    expect(
      expectErrno(() => parseDamoRecord(new TextEncoder().encode(JSON.stringify(kv))), EINVAL).message,
    ).toBe('EINVAL: damo record: record 0 snapshot 1 region 0 end "lots" is not a number');
    expect(
      expectErrno(() => parseDamoRecord(new TextEncoder().encode('[{"x": 1}]')), EINVAL).message,
    ).toMatch(/record 0 has no snapshots list/);
    expect(expectErrno(() => parseDamoRecord(Uint8Array.of(0x78, 0x9c, 1, 2, 3)), EINVAL).message).toMatch(
      /zlib data does not decompress/,
    );
  });

  it('the writers refuse a malformed trace or option with EINVAL naming it', () => {
    const rec = (g: object) =>
      ({ source: 'csv', records: [{ startMs: 0, endMs: 5, regions: [g] }] }) as AccessTrace;
    const ok = rec({ start: 0, end: 4096, accesses: 1 });
    const cases: [() => unknown, RegExp][] = [
      [() => formatDamoRecord(ok, { format: 'zzz' as never }), /formatDamoRecord: format "zzz" is not/],
      [() => formatDamoRecord(ok, { targetId: -1 }), /targetId -1 is not an integer >= 0/],
      [() => formatDamoRecord(ok, { format: 'record', version: 3 }), /version 3 is not 1 or 2/],
      [() => formatDamoRecord(rec({ start: 0, end: 4096, accesses: -1 })), /record 0 region 0: accesses -1/],
      [
        () => formatAccessCsv(rec({ start: 8192, end: 4096, accesses: 1 })),
        /formatAccessCsv record 0 region 0: range/,
      ],
      [() => formatAccessCsv(null as never), /formatAccessCsv: trace has no records list/],
    ];
    for (const [f, message] of cases) expect(expectErrno(f, EINVAL).message).toMatch(message);
  });

  it('property: parse(format(trace)) gives the trace back (json, json_compressed)', () => {
    fc.assert(
      fc.property(
        traceArb('damo', false),
        fc.constantFrom('json' as const, 'json_compressed' as const),
        (t, format) => {
          expect(parseDamoRecord(formatDamoRecord(t, { format }))).toEqual(t);
        },
      ),
      { numRuns: 150 },
    );
  });

  it('property: parse(format(trace)) gives the trace back (binary record, contiguous equal records)', () => {
    fc.assert(
      fc.property(traceArb('damo', true), fc.constantFrom(1, 2), (t, version) => {
        expect(parseDamoRecord(formatDamoRecord(t, { format: 'record', version }))).toEqual(t);
      }),
      { numRuns: 150 },
    );
  });

  it('property: garbage never throws anything but a PagemigError', () => {
    const valid = [fixture('damon.data.rec'), fixture('damon.data.json')];
    const mutated = fc
      .tuple(
        fc.constantFrom(...valid),
        fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 8 }),
        fc.nat(),
      )
      .map(([base, edits, cut]) => {
        const b = base.slice(0, Math.max(1, base.length - (cut % 64)));
        for (const [i, v] of edits) b[i % b.length] = v;
        return b;
      });
    fc.assert(
      fc.property(fc.oneof(fc.uint8Array({ maxLength: 300 }), mutated), (bytes) => {
        try {
          parseDamoRecord(bytes);
        } catch (e) {
          expect(PagemigError.isInstance(e), String(e)).toBe(true);
          expect((e as PagemigError).errno).toBe(EINVAL);
        }
      }),
      { numRuns: 400 },
    );
  });
});

describe('parseAccessCsv', () => {
  it('groups rows by time into records; ends come from the next record, the last lasts as the one before', () => {
    const t = parseAccessCsv(
      [
        '# recorded by hand',
        'time_ms,start,end,accesses',
        '0,0x1000,0x3000,4',
        '0,16384,20480,1',
        '',
        '50, 0x1000 ,0x2000, 7',
      ].join('\r\n'),
    );
    expect(t).toEqual({
      source: 'csv',
      records: [
        {
          startMs: 0,
          endMs: 50,
          regions: [
            { start: 0x1000, end: 0x3000, accesses: 4 },
            { start: 16384, end: 20480, accesses: 1 },
          ],
        },
        { startMs: 50, endMs: 100, regions: [{ start: 0x1000, end: 0x2000, accesses: 7 }] },
      ],
    });
    // A lone record lasts DAMON's default aggregation interval, 100 ms.
    expect(parseAccessCsv('time_ms,start,end,accesses\n7,0,4096,1\n').records[0]).toMatchObject({
      startMs: 7,
      endMs: 107,
    });
    expect(parseAccessCsv('time_ms,start,end,accesses\n')).toEqual({ source: 'csv', records: [] });
  });

  it('refuses bad rows with EINVAL naming the line and the field', () => {
    const bad = (text: string) => expectErrno(() => parseAccessCsv(text), EINVAL).message;
    expect(bad('start,end\n')).toMatch(/^EINVAL: access CSV line 1: the header must be/);
    expect(bad('# only a comment\n')).toMatch(/no header line/);
    expect(bad('time_ms,start,end,accesses\n0,0x1000,0x2000,1\n0,0x10zz,0x3000,1\n')).toBe(
      'EINVAL: access CSV line 3, field start: "0x10zz" is not a decimal or 0x hex integer',
    );
    expect(bad('time_ms,start,end,accesses\n0,8192,4096,1\n')).toMatch(
      /^EINVAL: access CSV line 2, field end: /,
    );
    expect(bad('time_ms,start,end,accesses\n0,0,4096,-1\n')).toMatch(/line 2, field accesses/);
    expect(bad('time_ms,start,end,accesses\n0,0,4096\n')).toMatch(/line 2: 3 fields, the header has 4/);
    expect(bad('time_ms,start,end,accesses\n10,0,4096,1\n5,0,4096,1\n')).toMatch(
      /line 3, field time_ms: time 5 goes back/,
    );
    expect(bad('time_ms,start,end,accesses,end_ms\n0,0,4096,1,100\n0,0,4096,1,90\n')).toMatch(
      /line 3, field end_ms: end_ms 90 differs/,
    );
    expect(bad('time_ms,start,end,accesses\n0,0x20000000000000,0x20000000001000,1\n')).toMatch(
      /field start: .* too large/,
    );
  });

  it('property: parse(format(trace)) gives the trace back', () => {
    fc.assert(
      fc.property(traceArb('csv', false), (t) => {
        expect(parseAccessCsv(formatAccessCsv(t))).toEqual(t);
      }),
      { numRuns: 200 },
    );
  });

  it('property: garbage never throws anything but a PagemigError', () => {
    const line = fc.array(
      fc.oneof(fc.string({ maxLength: 12 }), fc.constantFrom('0x1000', '12', '-1', '1e400', '')),
      {
        maxLength: 6,
      },
    );
    const text = fc
      .tuple(
        fc.boolean(),
        fc.array(
          line.map((f) => f.join(',')),
          { maxLength: 6 },
        ),
      )
      .map(([header, rows]) => [...(header ? ['time_ms,start,end,accesses'] : []), ...rows].join('\n'));
    fc.assert(
      fc.property(fc.oneof(text, fc.string()), (s) => {
        try {
          parseAccessCsv(s);
        } catch (e) {
          expect(PagemigError.isInstance(e), String(e)).toBe(true);
          expect((e as PagemigError).errno).toBe(EINVAL);
        }
      }),
      { numRuns: 400 },
    );
  });
});

/**
 * Traces a format can hold exactly: integer ms from 0 (damo rebases to the first start),
 * records in time order with at least one region (a CSV row per region); `contiguous`: equal,
 * back-to-back records (the binary record format keeps only end times).
 */
function traceArb(source: 'damo' | 'csv', contiguous: boolean): fc.Arbitrary<AccessTrace> {
  const region = fc
    .tuple(
      fc.integer({ min: 0, max: 2 ** 47 }),
      fc.integer({ min: 1, max: 2 ** 30 }),
      fc.integer({ min: 0, max: 10_000 }),
    )
    .map(([start, len, accesses]) => ({ start, end: start + len, accesses }));
  const rec = fc.tuple(
    fc.integer({ min: 0, max: 5000 }),
    fc.integer({ min: 1, max: 5000 }),
    fc.array(region, { minLength: 1, maxLength: 5 }),
  );
  return fc.tuple(fc.array(rec, { maxLength: 6 }), fc.integer({ min: 1, max: 1000 })).map(([recs, len]) => {
    let t = 0;
    const records = recs.map(([gap, dur, regions], i) => {
      const startMs = contiguous || i === 0 ? t : t + gap;
      const endMs = startMs + (contiguous ? len : dur);
      t = endMs;
      return { startMs, endMs, regions };
    });
    return { source, records };
  });
}
