import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { ModeledBenchDocument } from '../src/modeled/document.js';
import { run, tempDir } from './helpers.js';

const read = (dir: string, file: string) => JSON.parse(readFileSync(path.join(dir, file), 'utf8'));

describe('pagemig bench --clock modeled: results JSON and report', () => {
  it('writes --out and --html and keeps only the --quick cells of the --only experiments', async () => {
    const dir = tempDir();
    const r = await run(
      [
        'bench',
        '--clock',
        'modeled',
        '--quick',
        '--only',
        'folio,share',
        '--out',
        'm.json',
        '--html',
        'm.html',
        '--json',
      ],
      { cwd: dir },
    );
    expect(r.code, r.stderr).toBe(0);
    const doc = JSON.parse(r.stdout) as ModeledBenchDocument & { ok: boolean; files: Record<string, string> };
    expect(doc).toMatchObject({
      schemaVersion: 1,
      command: 'bench',
      ok: true,
      clock: 'modeled',
      preset: 'quick',
      profile: 'zen3-epyc-ptdma',
      experiments: ['folio', 'share'],
      files: { results: path.join(dir, 'm.json'), report: path.join(dir, 'm.html') },
    });
    const file = read(dir, 'm.json') as ModeledBenchDocument;
    const { ok: _ok, files: _files, ...body } = doc;
    expect(file).toEqual(body);
    expect([...new Set(file.cells.map((c) => c.table))]).toEqual(['7.4a', '7.4b', '7.4c', '7.3d']);
    expect(new Set(file.cells.filter((c) => c.table !== '7.3d').map((c) => c.column))).toEqual(
      new Set(['4K', '64K', '2M']),
    );
    expect(file.cells.filter((c) => c.heldOut)).toHaveLength(30);
    expect(file.heldOutMedianAbsError).toBeLessThanOrEqual(0.2);
    expect(file.copyShare.map((c) => c.printed)).toEqual(['<1%', '~35%', '~66%', '~97%']);
    // Throughput against threads/channels at the smallest and largest folio: kernel, threads, ptdma.
    expect(new Set(file.lanes.map((l) => `${l.folioBytes} ${l.copier}`))).toEqual(
      new Set([
        '4096 kernel',
        '4096 threads',
        '4096 ptdma',
        '2097152 kernel',
        '2097152 threads',
        '2097152 ptdma',
      ]),
    );
    const html = readFileSync(path.join(dir, 'm.html'), 'utf8');
    expect(html).toContain('MODELED, not measured');
    expect(html).toContain('id="table-7.4c"');
    expect(html).not.toContain('id="table-7.4d"');
  });

  it('the full preset keeps every published cell; text mode names the files', async () => {
    const dir = tempDir();
    const r = await run(['bench', '--clock', 'modeled', '--out', 'full.json'], { cwd: dir });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.split('\n')[0]).toMatch(/^pagemig bench \(full\), MODELED clock/);
    expect(r.stdout).toMatch(/held-out cells: 80, median \|error\| of the modeled values \d+%/);
    expect(r.stdout.endsWith(`results: ${path.join(dir, 'full.json')}\n`)).toBe(true);
    const doc = read(dir, 'full.json') as ModeledBenchDocument;
    expect(doc.cells).toHaveLength(141);
    expect(doc.preset).toBe('full');
    expect(doc.notes).toContain(
      'compaction is not modeled: the series published no compaction figures and the timing model has no compaction; `pagemig bench --only compaction` measures it on this machine',
    );
  });

  it('a profile without published data still predicts the channel scaling', async () => {
    const dir = tempDir();
    const r = await run(
      ['bench', '--clock', 'modeled', '--profile', 'dram-cxl', '--out', 'd.json', '--html', 'd.html'],
      { cwd: dir },
    );
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('No published measurements exist for profile dram-cxl');
    const doc = read(dir, 'd.json') as ModeledBenchDocument;
    expect(doc.cells).toEqual([]);
    expect(doc.findings).toBeNull();
    expect(doc.lanes.some((l) => l.copier === 'sdxi' && l.lanes === 16)).toBe(true);
    expect(doc.copyShare.every((c) => c.published === null)).toBe(true);
    const html = readFileSync(path.join(dir, 'd.html'), 'utf8');
    expect(html).toContain('id="chart-lanes-2M"');
  });

  it('an unknown profile is a usage error and writes nothing, on either clock', async () => {
    const dir = tempDir();
    const m = await run(['bench', '--clock', 'modeled', '--profile', 'zen9', '--out', 'x.json'], {
      cwd: dir,
    });
    expect(m.code).toBe(2);
    expect(m.stderr).toContain('shipped: dram-cxl, zen3-epyc-ptdma');
    expect(existsSync(path.join(dir, 'x.json'))).toBe(false);
    const real = await run(['bench', '--quick', '--profile', 'zen9', '--out', 'y.json'], { cwd: dir });
    expect(real.code).toBe(2);
    expect(real.stderr).toMatch(/^pagemig bench: --profile: .*zen9/);
    expect(existsSync(path.join(dir, 'y.json'))).toBe(false);
  });
});
