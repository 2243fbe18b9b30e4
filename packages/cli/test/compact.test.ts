import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { run, tempDir } from './helpers.js';

describe('pagemig compact', () => {
  it('fragments, compacts, verifies; JSON has maps, counters and the SVG file', async () => {
    const dir = tempDir();
    const r = await run(
      ['compact', '--node-memory', '32MiB', '--migrator', 'cpu-serial', '--svg', 'zone.svg', '--json'],
      { cwd: dir },
    );
    expect(r.code).toBe(0);
    const doc = JSON.parse(r.stdout);
    expect(doc).toMatchObject({
      schemaVersion: 1,
      command: 'compact',
      ok: true,
      verified: true,
      node: 0,
      svg: path.join(dir, 'zone.svg'),
    });
    expect(doc.zones).toHaveLength(1);
    expect(doc.zones[0].status).toBe('complete');
    expect(doc.pagesMigrated).toBeGreaterThan(0);
    expect(doc.counters.pgmigrate_success).toBe(doc.pagesMigrated);
    expect(doc.counters.pgmigrate_fail).toBe(doc.zones[0].pagesFailed);
    // 16 blocks of 2MiB, one line of the map; compaction frees whole pageblocks.
    expect(doc.maps.before.text).toMatch(/^[.mUx]{16}\n$/);
    expect(doc.maps.after.freeHugeBlocks).toBeGreaterThan(doc.maps.before.freeHugeBlocks);
    expect(doc.maps.after.blocks.free).toBe(doc.maps.after.freeHugeBlocks);
    const svg = readFileSync(path.join(dir, 'zone.svg'), 'utf8');
    expect(svg.startsWith('<svg')).toBe(true);
    expect(svg).toContain('before compaction');
    expect(svg).toContain('after compaction');
  });

  it('prints the maps and the counter table', async () => {
    const r = await run(['compact', '--node-memory', '32MiB', '--columns', '8']);
    expect(r.code).toBe(0);
    const lines = r.stdout.split('\n');
    expect(lines[0]).toBe(
      "node 0 before compaction ('.' free, 'm' movable, 'U' unmovable, 'x' mixed; one character per 2MiB pageblock):",
    );
    expect(lines[1]).toMatch(/^[.mUx]{8}$/);
    expect(lines[2]).toMatch(/^[.mUx]{8}$/);
    expect(lines[3]).toBe('after:');
    expect(r.stdout).toMatch(/│ Normal │ complete │ +\d+ │/);
    expect(r.stdout).toMatch(/│ pgmigrate_success +│ +\d+ │/);
    expect(lines.at(-2)).toBe('every kept page verified');
  });

  it('exits 2 for a node the machine does not have', async () => {
    const r = await run(['compact', '--node', '1', '--node-memory', '32MiB']);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe('pagemig compact: --node 1 does not exist: the machine has 1 node(s)\n');
  });

  // Issue 20: an unwritable --svg failed only after the whole run.
  it('checks the --svg path before running (exit 2, one JSON document)', async () => {
    const t0 = performance.now();
    const r = await run(['compact', '--svg', '/nonexistent/x.svg', '--json']);
    expect(r.code).toBe(2);
    expect(JSON.parse(r.stdout).error).toEqual({
      code: 'ERR_USAGE',
      message: '--svg /nonexistent/x.svg: the directory /nonexistent does not exist',
      exitCode: 2,
    });
    expect(performance.now() - t0).toBeLessThan(2000);
    const dir = tempDir();
    const isDir = await run(['compact', '--svg', '.'], { cwd: dir });
    expect(isDir.code).toBe(2);
    expect(isDir.stderr).toBe(`pagemig compact: --svg .: ${dir} is a directory\n`);
    // access(2) lets root write anywhere, even into /proc: only opening the file tells.
    const proc = await run(['compact', '--svg', '/proc/x.svg', '--json']);
    expect(proc.code).toBe(2);
    expect(JSON.parse(proc.stdout).error.message).toMatch(
      /^--svg \/proc\/x\.svg: \/proc\/x\.svg cannot be written \(E[A-Z]+\)$/,
    );
    // The probe leaves nothing behind, and an existing file is not truncated.
    const kept = tempDir({ 'zone.svg': 'old' });
    const ok = await run(['compact', '--svg', 'zone.svg', '--timeline', '/proc/t.json', '--json'], {
      cwd: kept,
    });
    expect(ok.code).toBe(2);
    expect(readFileSync(path.join(kept, 'zone.svg'), 'utf8')).toBe('old');
    expect(readdirSync(kept)).toEqual(['zone.svg']);
  });
});
