import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { capTotal } from '../src/bench/presets.js';
import type { BenchDocument } from '../src/bench/schema.js';
import { onlyDrivers, run, tempDir } from './helpers.js';

vi.mock('../src/modeled/index.js', async (load) => ({
  ...(await load<typeof import('../src/modeled/index.js')>()),
  runModeledBench: vi.fn(async () => 5),
}));

const M = 1 << 20;

describe('capTotal', () => {
  it('keeps the requested cap when it fits and says what the series ran', () => {
    expect(capTotal(64 * M, 16 * 2 ** 30)).toMatchObject({ bytes: 64 * M });
    expect(capTotal(64 * M, 16 * 2 ** 30).note).toMatch(
      /^total-size sweep capped at 32 folios of 2MiB \(64MiB; the series goes to 8192 = 16GiB\): --max-total 64MiB; source and destination nodes both hold the run in RAM \(288MiB with the reference buffers\)/,
    );
  });

  it('halves the cap until source, destination and reference fit in half of the free RAM', () => {
    const c = capTotal(16 * 2 ** 30, 8 * 2 ** 30);
    expect(c.bytes).toBe(1 << 30); // 2 x (1GiB + 16MiB) + 512MiB <= 4GiB; 2GiB would not fit
    expect(c.note).toContain('lowered from --max-total 16GiB to fit half of the 8GiB of free RAM');
  });

  it('runs the whole series when there is room', () => {
    expect(capTotal(16 * 2 ** 30, 128 * 2 ** 30)).toEqual({
      bytes: 16 * 2 ** 30,
      note: "total-size sweep runs the series' 1..8192 folios of 2MiB",
    });
  });
});

describe('pagemig bench', () => {
  it('runs the quick suite and writes the results JSON and the report', async () => {
    const dir = tempDir();
    const r = await run(
      ['bench', '--quick', '--max-total', '16MiB', '--out', 'r.json', '--html', 'r.html', '--json'],
      { cwd: dir, drivers: onlyDrivers(['cpu-serial']) },
    );
    expect(r.code).toBe(0);
    const doc = JSON.parse(r.stdout) as BenchDocument & { files: Record<string, string> };
    expect(doc).toMatchObject({ schemaVersion: 1, command: 'bench', preset: 'quick', clock: 'real' });
    expect(doc.files).toEqual({ results: path.join(dir, 'r.json'), report: path.join(dir, 'r.html') });
    expect(JSON.parse(readFileSync(path.join(dir, 'r.json'), 'utf8'))).toMatchObject({
      schemaVersion: 1,
      seconds: doc.seconds,
    });
    expect(existsSync(path.join(dir, 'r.html'))).toBe(true);
    expect(doc.migrators.used).toEqual(['none', 'cpu-serial']);
    expect(doc.migrators.missing.map((d) => d.id)).toEqual(['cpu-multithreaded', 'ptdma', 'sdxi']);
    expect(doc.settings).toMatchObject({
      folioSweepBytes: 16 * M,
      sizeSweepFolios: [1, 8],
      maxTotalBytes: 16 * M,
      reps: 1,
    });

    expect(doc.folioSweep.map((x) => [x.label, x.folioBytes, x.folios])).toEqual([
      ['kernel', 4096, 4096],
      ['kernel', 64 << 10, 256],
      ['kernel', 2 * M, 8],
      ['cpu-serial', 4096, 4096],
      ['cpu-serial', 64 << 10, 256],
      ['cpu-serial', 2 * M, 8],
    ]);
    for (const x of [...doc.folioSweep, ...doc.sizeSweep]) {
      expect(x.ratio).toBeCloseTo(x.bytesPerSec / x.rawBytesPerSec, 10);
      expect(x.offloadedFolios).toBe(x.migrator === 'none' ? 0 : x.folios);
    }
    expect(doc.sizeSweep.map((x) => [x.label, x.folios])).toEqual([
      ['kernel', 1],
      ['kernel', 8],
      ['cpu-serial', 1],
      ['cpu-serial', 8],
    ]);
    expect(doc.copyShare.map((x) => `${x.label} ${x.folios}x${x.folioBytes}`)).toEqual([
      'kernel 1x4096',
      'kernel 512x4096',
      'kernel 1x2097152',
      'kernel 8x2097152',
      'cpu-serial 1x4096',
      'cpu-serial 512x4096',
      'cpu-serial 1x2097152',
      'cpu-serial 8x2097152',
    ]);
    for (const x of doc.copyShare) {
      // One 4 KiB copy can take less than the timer's resolution; anything larger cannot.
      if (x.bytes >= 2 * M) expect(x.copyShare).toBeGreaterThan(0);
      expect(x.copyShare).toBeLessThan(1);
      expect(x.runs).toBe(x.bytes < 4 * M ? 15 : 1);
    }
    expect(doc.compaction).toHaveLength(1);
    const c = doc.compaction[0]!;
    expect(c).toMatchObject({ label: 'cpu-serial', status: 'complete' });
    expect(c.pagesMigrated).toBeGreaterThan(0);
    expect(c.mapSvg.startsWith('<svg')).toBe(true);
    expect(c.mapBefore).not.toBe(c.mapAfter);
    expect(doc.notes[0]).toMatch(/^total-size sweep capped at 8 folios of 2MiB \(16MiB;/);
    expect(doc.notes).toContain('ptdma not installed (pnpm add @pagemig/migrator-ptdma)');
  });

  it('prints the tables as text', async () => {
    const r = await run(['bench', '--quick', '--only', 'size', '--max-total', '4MiB', '--out', 'b.json'], {
      drivers: onlyDrivers(['cpu-serial']),
    });
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(
      /^pagemig bench \(quick, real clock\): .+; medians of 1 run\(s\); every run verified\n/,
    );
    expect(r.stdout).toContain('Total-size sweep: 2MiB folios, 1 thread/channel (series RFC V3 table d)');
    expect(r.stdout).toMatch(
      /│ cpu-serial +│ +1 │ +2MiB │ +\d+\.\d\d │ +\d+\.\d\d │ +\d+\.\d\d │( +\d+% │){5} +\d+(\.\d+)? │ +1\/1 │/,
    );
    // Every phase has a column, and `other` is the rest: the shares add up to the wall time.
    expect(r.stdout).toMatch(
      /│ copy │ unmap │ flush │ move │ other │ engine CPU ms \(±\d+(\.\d+)?\) │ offloaded │/,
    );
    expect(r.stdout).toContain('other = the rest (batching, retries, putback, tracing)');
    expect(r.stdout).toMatch(
      /engine CPU ms: the engine thread's schedstat, read once per run; it moves in steps of about/,
    );
    expect(r.stdout).not.toContain('Folio-size sweep');
    expect(r.stdout).toMatch(/\nresults: .+b\.json; \d+\.\d s\n$/);
    expect(r.stderr).toBe('');
  });

  it('rejects unknown experiments and clocks (exit 2)', async () => {
    const only = await run(['bench', '--only', 'folio,speed']);
    expect(only.code).toBe(2);
    expect(only.stderr).toBe(
      'pagemig bench: --only: unknown experiment "speed"; use a list of folio, size, share, compaction\n',
    );
    const clock = await run(['bench', '--clock', 'wall']);
    expect(clock.code).toBe(2);
    expect(clock.stderr).toBe('pagemig bench: --clock: expected real or modeled, got "wall"\n');
    // A cap below the smallest run was raised to it without a word (and the header said 128MiB).
    const tiny = await run(['bench', '--quick', '--max-total', '0']);
    expect(tiny.code).toBe(2);
    expect(tiny.stderr).toBe('pagemig bench: --max-total: "0" is below one 2MiB folio, the smallest run\n');
  });

  it('hands --clock modeled to the timing model and returns its exit code', async () => {
    const { runModeledBench } = await import('../src/modeled/index.js');
    const r = await run(['bench', '--clock', 'modeled', '--profile', 'dram-cxl', '--json']);
    expect(r.code).toBe(5);
    expect(runModeledBench).toHaveBeenCalledWith(
      expect.objectContaining({ profile: 'dram-cxl', json: true, out: 'pagemig-bench.json' }),
      expect.anything(),
    );
  });
});
