import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import path from 'node:path';
import { checkChromeTrace, parseTraceLines } from '@pagemig/core';
import { describe, expect, it } from 'vitest';
import { onlyDrivers, run, tempDir } from './helpers.js';

const chrome = (file: string) =>
  JSON.parse(readFileSync(file, 'utf8')) as { traceEvents: Record<string, unknown>[] };
const names = (doc: { traceEvents: Record<string, unknown>[] }) =>
  new Set(doc.traceEvents.map((e) => e.name));

describe('--timeline', () => {
  it('migrate writes the run as Chrome trace JSON: engine phases and each DMA channel, valid for Perfetto', async () => {
    const dir = tempDir();
    const r = await run(
      [
        'migrate',
        '--total',
        '8MiB',
        '--folio',
        '64KiB',
        '--migrator',
        'ptdma',
        '-o',
        'channels=2',
        '--timeline',
        'run.json',
        '--json',
      ],
      { cwd: dir },
    );
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.timeline).toMatchObject({ file: path.join(dir, 'run.json'), format: 'chrome', dropped: 0 });
    const doc = chrome(path.join(dir, 'run.json'));
    expect(checkChromeTrace(doc)).toEqual([]);
    for (const n of ['migrate_pages', 'batch', 'unmap', 'flush', 'batch_copy', 'move', 'dma_desc', 'dma_irq'])
      expect(names(doc)).toContain(n);
    const threads = doc.traceEvents
      .filter((e) => e.name === 'thread_name')
      .map((e) => (e.args as { name: string }).name);
    // The run (2048 pages) keeps the engines polling, and only those that poll get its batches: one
    // per core beside the engine's thread (devicePollers), so both only on a host with 3+ cores.
    const used = availableParallelism() - 1 >= 2 ? ['pt0chan0', 'pt1chan0'] : ['pt0chan0'];
    expect(threads).toEqual(expect.arrayContaining(['<idle>-0', ...used]));
    expect(out.timeline.events).toBe(
      doc.traceEvents.filter((e) => e.ph === 'X' || (e.ph === 'i' && e.cat !== 'tracepoint')).length,
    );
  });

  it('a .txt file gets ftrace text that parses back, with the migrate: tracepoints', async () => {
    const dir = tempDir();
    const r = await run(['migrate', '--total', '4MiB', '--folio', '4KiB', '--timeline', 'run.txt'], {
      cwd: dir,
    });
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/timeline: .*run\.txt: \d+ events; ftrace text/);
    const lines = parseTraceLines(readFileSync(path.join(dir, 'run.txt'), 'utf8'));
    const events = new Set(lines.map((l) => l.event));
    for (const e of ['mm_migrate_pages_start', 'mm_migrate_pages', 'migrate_pages', 'fallback_copy', 'move'])
      expect(events).toContain(e);
  });

  it('compact records kcompactd’s compaction: compact_zone spans with the engine runs inside', async () => {
    const dir = tempDir();
    const r = await run(['compact', '--node-memory', '32MiB', '--timeline', 'c.json', '--json'], {
      cwd: dir,
    });
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout).timeline.format).toBe('chrome');
    const doc = chrome(path.join(dir, 'c.json'));
    expect(checkChromeTrace(doc)).toEqual([]);
    expect(names(doc)).toContain('compact_zone');
    expect(names(doc)).toContain('compaction:mm_compaction_begin');
  });

  it('bench writes one file per case and the report links them; --timeline-case picks one', async () => {
    const dir = tempDir();
    const drivers = onlyDrivers(['cpu-serial']);
    const args = [
      'bench',
      '--quick',
      '--only',
      'folio',
      '--max-total',
      '4MiB',
      '--out',
      'b.json',
      '--html',
      'r.html',
    ];
    const r = await run([...args, '--timeline', 't.json'], { cwd: dir, drivers });
    expect(r.code).toBe(0);
    const doc = JSON.parse(readFileSync(path.join(dir, 'b.json'), 'utf8'));
    const files = doc.timelines.map((t: { file: string }) => t.file);
    expect(files.length).toBe(doc.folioSweep.length);
    expect(files).toContain('t.folio.kernel.4MiB-4KiB.json');
    for (const f of files) {
      expect(existsSync(path.join(dir, f))).toBe(true);
      expect(checkChromeTrace(chrome(path.join(dir, f)))).toEqual([]);
    }
    const html = readFileSync(path.join(dir, 'r.html'), 'utf8');
    for (const f of files) expect(html).toContain(`href="${f}"`);
    expect(r.stdout).toMatch(
      /timeline: t\.folio\.cpu-serial\.4MiB-2MiB\.json \(folio\.cpu-serial\.4MiB-2MiB\)/,
    );

    const one = tempDir();
    const r1 = await run([...args, '--timeline', 'one.json', '--timeline-case', 'folio.cpu-serial'], {
      cwd: one,
      drivers,
    });
    expect(r1.code).toBe(0);
    expect(readdirSync(one).filter((f) => f.startsWith('one'))).toEqual(['one.json']);
    const d1 = JSON.parse(readFileSync(path.join(one, 'b.json'), 'utf8'));
    expect(d1.timelines).toEqual([
      expect.objectContaining({ case: 'folio.cpu-serial.4MiB-4KiB', file: 'one.json' }),
    ]);
  });

  it('--timeline-case without --timeline, and an unwritable --timeline, are usage errors', async () => {
    const r = await run(['bench', '--quick', '--timeline-case', 'folio']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--timeline-case chooses the case --timeline records/);
    const m = await run(['migrate', '--total', '4MiB', '--timeline', '/nonexistent/t.json']);
    expect(m.code).toBe(2);
    expect(m.stderr).toMatch(/--timeline \/nonexistent\/t\.json: the directory \/nonexistent does not exist/);
  });
});
