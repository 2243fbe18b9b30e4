import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { formatDamoRecord, parseAccessCsv } from '@pagemig/core';
import { describe, expect, it } from 'vitest';
import { hotSetArrivals } from '../src/tier/sampler.js';
import { run, tempDir } from './helpers.js';

/** A small machine and a short run: 8 MiB DRAM, 32 MiB CXL, a 16 MiB region (twice DRAM). */
const SMALL = ['--dram', '8MiB', '--cxl', '32MiB', '--bytes', '16MiB', '--duration', '1500'];
const HOTSET = ['--hot', '1MiB', '--move-every', '500', '--sample-ms', '25', '--scan-period-ms', '50'];
const PAGES = (16 << 20) / 4096;

describe('pagemig tier', () => {
  it('demotes and promotes under a moving hot set; --json is one document, the files match it', async () => {
    const cwd = tempDir();
    const r = await run(['tier', ...SMALL, ...HOTSET, '--migrator', 'cpu-serial', '--json', '--out', 'out'], {
      cwd,
    });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const doc = JSON.parse(r.stdout);
    expect(doc).toMatchObject({
      schemaVersion: 1,
      command: 'tier',
      ok: true,
      machine: {
        nodes: [
          { node: 0, tier: 'dram', memory: 8 << 20, cpus: true },
          { node: 1, tier: 'cxl', memory: 32 << 20, cpus: false },
        ],
      },
      workload: { kind: 'access', pattern: 'hotset', bytes: 16 << 20, hotBytes: 1 << 20, moveEveryMs: 500 },
      sampling: { everyMs: 25, arrivedShare: 0.9 },
      files: { json: path.join(cwd, 'out', 'tier.json'), html: path.join(cwd, 'out', 'tier.html') },
    });
    expect(doc.runs).toHaveLength(1);
    const run0 = doc.runs[0];
    expect(run0).toMatchObject({
      migrator: { label: 'cpu-serial', routes: { demotion: 'cpu-serial', numa_misplaced: 'cpu-serial' } },
      verified: true,
      invariants: true,
    });
    // The region is twice DRAM: after first touch and kswapd, pages sit on both tiers.
    const [dram0, cxl0] = run0.placement.before;
    expect(dram0).toBeGreaterThan(0);
    expect(cxl0).toBeGreaterThan(0);
    expect(dram0 + cxl0).toBe(PAGES);
    // Demotions (kswapd or direct) and mode-2 promotions both happened, as vmstat counts them.
    expect(run0.pagesDemoted).toBe(run0.counters.pgdemote_kswapd + run0.counters.pgdemote_direct);
    expect(run0.pagesDemoted).toBeGreaterThan(0);
    expect(run0.pagesPromoted).toBe(run0.counters.pgpromote_success);
    expect(run0.pagesPromoted).toBeGreaterThan(0);
    const { pgpromote_candidate: cand, pgpromote_candidate_nrl: nrl } = run0.counters;
    expect(cand + nrl).toBeGreaterThanOrEqual(run0.pagesPromoted);
    expect(run0.counters.pgmigrate_success).toBeGreaterThanOrEqual(run0.pagesPromoted + run0.pagesDemoted);
    expect(run0.promotion.migrator).toBe('cpu-serial');
    expect(run0.promotion.cpuPerPageSeconds).toBeGreaterThanOrEqual(0);
    expect(run0.promotion.cpuPerPageVsRawCopy).toBe(
      run0.promotion.cpuPerPageSeconds / doc.rawCopy4KiBSeconds,
    );
    // The hot set moved (first range at 0, then every 500 ms); each move is a page range of the region.
    expect(run0.moves.length).toBeGreaterThanOrEqual(2);
    for (const mv of run0.moves) {
      expect(mv.pages).toBe(256);
      expect(mv.firstPage).toBeGreaterThanOrEqual(0);
      expect(mv.firstPage).toBeLessThan(PAGES);
    }
    // Samples: every region page is on one tier or moving, time grows.
    expect(run0.samples.length).toBeGreaterThan(5);
    for (const s of run0.samples) expect(s.dram + s.cxl).toBeLessThanOrEqual(PAGES);
    const times = run0.samples.map((s: { tMs: number }) => s.tMs);
    expect([...times].sort((a, b) => a - b)).toEqual(times);
    expect(run0.samples.at(-1).promoted).toBeLessThanOrEqual(run0.pagesPromoted);
    // Modeled time: the thread's accesses priced by tier; DRAM and CXL both hit.
    // A write checks the word's last value, then stores: two accesses.
    expect(run0.modeled.accesses).toBe(run0.workload.reads + 2 * run0.workload.writes);
    expect(run0.workload.ops).toBe(run0.workload.reads + run0.workload.writes);
    expect(run0.modeled.totalNs).toBeCloseTo(run0.modeled.accessNs + run0.modeled.stallNs, 3);
    expect(run0.modeled.byTier.dram.accesses).toBeGreaterThan(0);
    expect(run0.modeled.byTier.cxl.accesses).toBeGreaterThan(0);
    // tier.json is the same document; tier.html carries the charts and their data.
    const file = JSON.parse(readFileSync(path.join(cwd, 'out', 'tier.json'), 'utf8'));
    const { ok: _ok, ...rest } = doc;
    expect(file).toEqual(rest);
    const html = readFileSync(path.join(cwd, 'out', 'tier.html'), 'utf8');
    for (const id of ['pages-per-tier', 'migration-rates', 'workload-time', 'hot-set-arrival'])
      expect(html).toContain(`<canvas id="chart-${id}"`);
    expect(html).toContain('cpu-serial: DRAM');
    expect(html).toContain('cpu-serial: promoted/s');
    expect(html).toMatch(/<script>[\s\S]*Chart[\s\S]*<\/script>/);
    expect(html).not.toMatch(/<script[^>]+src=/);
  }, 60_000);

  it('prints the table, the placement and what the numbers are', async () => {
    const cwd = tempDir();
    const r = await run(['tier', ...SMALL, ...HOTSET], { cwd });
    expect(r.code).toBe(0);
    const lines = r.stdout.split('\n');
    expect(lines[0]).toBe(
      'machine: node 0 DRAM 8MiB (CPUs), node 1 CXL 32MiB (no CPUs); kswapd demotes, kernel.numa_balancing=2 promotes',
    );
    expect(lines[1]).toBe('workload: hotset over 16MiB for 1500 ms, seed 1');
    expect(r.stdout).toMatch(
      /│ migrator +│ promoted │ demoted │ hot set on DRAM ms \(median, arrived\/moves\) │/,
    );
    expect(r.stdout).toMatch(/│ none +│ +[1-9]\d* │ +[1-9]\d* │ +(\d+|-) \(\d+\/[1-9]\) │/);
    expect(r.stdout).toMatch(/│ region pages │ DRAM before │ DRAM after │ CXL before │ CXL after │/);
    expect(r.stdout).toMatch(/placement sampled every 25 ms with move_pages\(2\) with nodes = NULL/);
    expect(lines.at(-2)).toBe(
      `every byte of the region and the invariants verified; wrote ${path.join(cwd, 'pagemig-tier', 'tier.json')} and ${path.join(cwd, 'pagemig-tier', 'tier.html')}`,
    );
    expect(existsSync(path.join(cwd, 'pagemig-tier', 'tier.html'))).toBe(true);
  }, 60_000);

  it('--compare runs the same workload with each migrator', async () => {
    const r = await run(
      [
        'tier',
        ...SMALL,
        '--workload',
        'zipf',
        '--sample-ms',
        '50',
        '--compare',
        'cpu-serial,ptdma',
        '--json',
      ],
      { cwd: tempDir() },
    );
    expect(r.code).toBe(0);
    const doc = JSON.parse(r.stdout);
    expect(doc.workload).toMatchObject({ kind: 'access', pattern: 'zipf', seed: 1 });
    expect(doc.runs.map((x: { migrator: { routes: unknown } }) => x.migrator.routes)).toEqual([
      { demotion: 'cpu-serial', numa_misplaced: 'cpu-serial' },
      { demotion: 'ptdma', numa_misplaced: 'ptdma' },
    ]);
    for (const x of doc.runs) {
      expect(x.verified).toBe(true);
      expect(x.pagesDemoted).toBeGreaterThan(0);
      // The Zipf ranks moved every second (the default); the top ranks are a tenth of the region.
      expect(x.moves.length).toBeGreaterThanOrEqual(1);
      for (const mv of x.moves) expect(mv.pages).toBe(Math.floor(PAGES / 10));
    }
  }, 90_000);

  it('routes each reason to its own migrator', async () => {
    const r = await run(
      ['tier', ...SMALL, '--duration', '800', '--migrator', 'demotion=cpu-serial', '--json'],
      { cwd: tempDir() },
    );
    expect(r.code).toBe(0);
    const doc = JSON.parse(r.stdout);
    expect(doc.runs[0].migrator).toEqual({
      label: 'demotion=cpu-serial',
      routes: { demotion: 'cpu-serial', numa_misplaced: 'none' },
    });
    expect(doc.runs[0].promotion.migrator).toBeNull();
  }, 60_000);

  it('replays a CSV trace and the same trace as a damo record file', async () => {
    const rows = ['time_ms,start,end,accesses'];
    for (let t = 0; t < 1000; t += 100) rows.push(`${t},0x100000,0x300000,50`, `${t},0x800000,0x900000,5`);
    const csv = `${rows.join('\n')}\n`;
    const cwd = tempDir({ 'trace.csv': csv });
    // damo's binary 'record' format, written by core's formatDamoRecord from the same trace.
    writeFileSync(path.join(cwd, 'damon.data'), formatDamoRecord(parseAccessCsv(csv), { format: 'record' }));
    for (const [file, format] of [
      ['trace.csv', 'csv'],
      ['damon.data', 'damo'],
    ]) {
      const r = await run(['tier', ...SMALL, '--duration', '1000', '--trace', file!, '--json'], { cwd });
      expect(r.code).toBe(0);
      const doc = JSON.parse(r.stdout);
      expect(doc.workload).toMatchObject({ kind: 'replay', file, format, records: 10 });
      expect(doc.workload.trace).toBeUndefined();
      expect(doc.runs[0].verified).toBe(true);
      expect(doc.runs[0].workload).toMatchObject({ pattern: 'replay' });
      expect(doc.runs[0].workload.ops).toBeGreaterThan(0);
      expect(doc.runs[0].moves).toEqual([]);
    }
  }, 60_000);

  describe('usage errors (exit 2) name the flag', () => {
    const cases: [string[], RegExp][] = [
      [['--dram', '3MiB'], /^--dram: "3MiB" is not a positive multiple of 2MiB$/],
      [['--cxl', 'lots'], /--cxl/],
      [['--workload', 'random'], /^--workload: expected one of hotset, zipf, uniform, scan, got "random"$/],
      [['--write-share', '2'], /^--write-share: expected a number from 0 to 1, got "2"$/],
      [['--workload', 'uniform', '--hot', '1MiB'], /^--hot is for --workload hotset or zipf$/],
      [['--workload', 'scan', '--move-every', '100'], /^--move-every is for --workload hotset or zipf$/],
      [['--workload', 'zipf', '--hot', '1MiB', '--move-every', '0'], /^--hot with --workload zipf names/],
      [['--workload', 'scan', '--zipf-s', '1.2'], /^--zipf-s is for --workload zipf$/],
      [
        ['--workload', 'zipf', '--zipf-s', '0'],
        /^--zipf-s: expected a number above 0 and up to 10, got "0"$/,
      ],
      [
        ['--migrator', 'demotion=ptdma,compaction=sdxi'],
        /^--migrator: "compaction" is not a reason a tiering run migrates for/,
      ],
      [['--migrator', 'demotion=ptdma,demotion=sdxi'], /^--migrator: demotion is given twice$/],
      [['--compare', 'ptdma,ptdma'], /^--compare: ptdma is given twice$/],
      [['--compare', 'ptdma,sdxi', '--migrator', 'ptdma'], /^--compare and --migrator: give one of them$/],
      [['--dram', '8MiB', '--cxl', '8MiB', '--bytes', '32MiB'], /^--bytes 32MiB does not fit in DRAM \+ CXL/],
      [
        ['--dram', '32MiB', '--cxl', '96MiB', '--bytes', '1TiB'],
        /^--bytes 1TiB does not fit in DRAM \+ CXL \(32MiB \+ 96MiB/,
      ],
      [
        ['--dram', '1TiB'],
        /^--bytes 2TiB \(the default: twice --dram\) does not fit in DRAM \+ CXL \(1TiB \+ 256MiB/,
      ],
      [['--trace-format', 'csv'], /^--trace-format needs --trace$/],
      [['--duration', '0'], /^--duration: expected an integer from 1/],
    ];
    it.each(cases)('%j', async (args, message) => {
      const r = await run(['tier', ...args, '--json']);
      expect(r.code).toBe(2);
      const doc = JSON.parse(r.stdout);
      expect(doc).toMatchObject({ schemaVersion: 1, command: 'tier', ok: false, error: { exitCode: 2 } });
      expect(doc.error.message).toMatch(message);
    });
  });

  it('a bad trace file is a usage error naming the file, the line and the field', async () => {
    const cwd = tempDir({ 'bad.csv': 'time_ms,start,end,accesses\n0,0x1000,0x2000,1\n100,0x1000,zz,1\n' });
    const r = await run(['tier', '--trace', 'bad.csv'], { cwd });
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/^pagemig tier: --trace bad\.csv: .*line 3, field end/m);
    const missing = await run(['tier', '--trace', 'nope.damo'], { cwd });
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/--trace nope\.damo: ENOENT/);
    const damo = await run(['tier', '--trace', 'bad.csv', '--trace-format', 'damo'], { cwd });
    expect(damo.code).toBe(2);
    expect(damo.stderr).toMatch(/^pagemig tier: --trace bad\.csv: /m);
  });

  it('a trace with nothing to replay is a usage error, not a run that measured nothing', async () => {
    const cwd = tempDir({
      'header.csv': 'time_ms,start,end,accesses\n',
      'idle.csv': 'time_ms,start,end,accesses\n0,0,4096000,0\n100,0,4096000,0\n',
    });
    const empty = await run(['tier', ...SMALL, '--trace', 'header.csv', '--json'], { cwd });
    expect(empty.code).toBe(2);
    expect(JSON.parse(empty.stdout).error).toMatchObject({
      exitCode: 2,
      code: 'ERR_TRACE',
      message: '--trace header.csv: the trace has no records',
    });
    // Before: the replay looped over records without accesses forever, whatever --duration said.
    const idle = await run(['tier', ...SMALL, '--duration', '500', '--trace', 'idle.csv', '--json'], { cwd });
    expect(idle.code).toBe(2);
    expect(JSON.parse(idle.stdout).error.message).toBe(
      '--trace idle.csv: every region of its 2 record(s) has 0 accesses: there is nothing to replay',
    );
  });

  it('an --out directory that cannot be made is a usage error before anything runs', async () => {
    const r = await run(['tier', '--out', 'file/out'], { cwd: tempDir({ file: 'not a directory' }) });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^pagemig tier: --out file\/out: \S+\/file\/out cannot be created \(ENOTDIR\)/);
    // Under /proc nothing can be made, not even by root (Node's recursive mkdir never returned).
    const proc = await run(['tier', '--out', '/proc/pagemig-x/y', '--json']);
    expect(proc.code).toBe(2);
    expect(JSON.parse(proc.stdout).error.message).toMatch(
      /^--out \/proc\/pagemig-x\/y: \/proc\/pagemig-x cannot be created/,
    );
  });

  it('the last sample is taken when the workload ends, not a whole --sample-ms later', async () => {
    // With a minute between samples the run used to wait out the minute after its 1.5 s workload.
    const r = await run(['tier', ...SMALL, '--sample-ms', '60000', '--out', tempDir(), '--json']);
    expect(r.code).toBe(0);
    const run0 = JSON.parse(r.stdout).runs[0];
    expect(run0.samples.length).toBe(2);
    expect(run0.samples[1].tMs).toBeLessThan(10_000);
  });

  it('a migrator that is not installed exits 3', async () => {
    const r = await run(['tier', ...SMALL, '--migrator', 'pagemig-migrator-nosuch', '--json']);
    expect(r.code).toBe(3);
    expect(JSON.parse(r.stdout).error.exitCode).toBe(3);
  });
});

describe('hotSetArrivals', () => {
  // Ten region pages; samples every 10 ms; node 255 = not present.
  const nodes = [
    [1, 1, 1, 1, 1, 0, 0, 0, 0, 0],
    [0, 1, 1, 1, 1, 0, 0, 0, 0, 0],
    [0, 0, 0, 0, 1, 0, 0, 1, 1, 1],
    [0, 0, 0, 0, 0, 1, 1, 1, 1, 0],
    [0, 0, 0, 0, 0, 1, 255, 0, 0, 0],
  ].map((n) => Uint8Array.from(n));
  const samples = nodes.map((_, i) => ({ tMs: i * 10, dram: 0, cxl: 0, promoted: 0, demoted: 0 }));

  it('times each move until 90% of its pages are on DRAM, before the next move', () => {
    const moves = [
      { atMs: 0, firstPage: 0, pages: 5 }, // 4 of 5 at 20 ms is under 90%; 5 of 5 at 30 ms
      { atMs: 31, firstPage: 8, pages: 4 }, // wraps: pages 8, 9, 0, 1, all on DRAM at 40 ms
    ];
    expect(hotSetArrivals(moves, samples, nodes)).toEqual([30, 9]);
    // The same first move with the next one at 25 ms: it had not arrived by then.
    expect(hotSetArrivals([moves[0]!, { ...moves[1]!, atMs: 25 }], samples, nodes)).toEqual([null, 15]);
  });

  it('a page not present or on CXL does not count; a move after the last sample has not arrived', () => {
    expect(hotSetArrivals([{ atMs: 35, firstPage: 5, pages: 5 }], samples, nodes)).toEqual([null]);
    expect(hotSetArrivals([{ atMs: 41, firstPage: 0, pages: 1 }], samples, nodes)).toEqual([null]);
  });
});
