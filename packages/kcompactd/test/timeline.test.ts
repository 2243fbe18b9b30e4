import { checkChromeTrace, createMachine, type Machine, parseTraceLines } from '@pagemig/core';
import { afterEach, describe, expect, it } from 'vitest';
import { attachKcompactd, type CompactRun, type Kcompactd } from '../src/index.js';
import { fragment, verifyBytes } from './helpers.js';

let m: Machine | undefined;
let kd: Kcompactd | undefined;
afterEach(async () => {
  await kd?.stop();
  await m?.close();
  kd = undefined;
  m = undefined;
});

describe('timeline of compaction', () => {
  it('kcompactd runs on its own thread: kcompactd ⊃ compact_zone ⊃ migrate_pages ⊃ batch, with the compaction: tracepoints', async () => {
    m = await createMachine({ nodes: [{ memory: '64MiB' }] });
    const f = fragment(m, { fill: 0.98 });
    m.timeline.start();
    kd = attachKcompactd(m, { proactiveness: 50, checkIntervalMs: 20 });
    const run = await new Promise<CompactRun>((resolve) => {
      const off = kd!.onRun((r) => {
        if (r.trigger !== 'proactive') return;
        off();
        resolve(r);
      });
    });
    await kd.settled();
    const cap = m.timeline.stop();
    expect(verifyBytes(f)).toBeGreaterThan(0);
    expect(checkChromeTrace(JSON.parse(cap.toChromeJson()))).toEqual([]);
    const daemon = cap.find('kcompactd');
    expect(daemon.length).toBeGreaterThan(0);
    const thread = cap.thread(daemon[0]!.tid)!;
    expect(thread).toMatchObject({ process: 'kernel', kind: 'task', comm: 'kcompactd0' });
    expect(daemon[0]!.args).toMatchObject({ nid: 0, proactive: 1 });
    const zones = cap.find('compact_zone').filter((z) => z.tid === thread.tid);
    expect(zones.some((z) => z.args.migrated === run.pagesMigrated)).toBe(true);
    const runs = cap.find('migrate_pages').filter((e) => e.tid === thread.tid);
    expect(runs).toHaveLength(run.migrateCalls);
    // Each engine run lies inside a zone run, which lies inside the daemon's span.
    const inside = (a: { ts: number; dur: number }, b: { ts: number; dur: number }) =>
      a.ts >= b.ts && a.ts + a.dur <= b.ts + b.dur + 1e-6;
    expect(runs.every((r) => zones.some((z) => inside(r, z)))).toBe(true);
    expect(zones.every((z) => daemon.some((d) => inside(z, d)))).toBe(true);
    // The ftrace text carries the compaction: tracepoints and the spans, and parses back.
    const lines = parseTraceLines(cap.toFtrace());
    expect(lines.some((l) => l.event === 'mm_compaction_end' && l.comm === 'kcompactd0')).toBe(true);
    expect(lines.filter((l) => l.event === 'compact_zone')).toHaveLength(cap.find('compact_zone').length);
  });
});
