/// <reference lib="dom" />
/// <reference lib="dom.iterable" />
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { chromium } from 'playwright-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { onlyDrivers, run, tempDir } from './helpers.js';

const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

let dir: string;
beforeAll(async () => {
  dir = tempDir();
  const r = await run(['bench', '--quick', '--max-total', '8MiB', '--out', 'bench.json'], {
    cwd: dir,
    drivers: onlyDrivers(['cpu-serial']),
  });
  expect(r.code).toBe(0);
});

describe('pagemig report', () => {
  it('writes one self-contained HTML file with every chart', async () => {
    const r = await run(['report', 'bench.json', '-o', 'report.html', '--json'], { cwd: dir });
    expect(r.code).toBe(0);
    const doc = JSON.parse(r.stdout);
    expect(doc).toMatchObject({
      schemaVersion: 1,
      command: 'report',
      ok: true,
      output: path.join(dir, 'report.html'),
      charts: ['throughput', 'phases', 'size', 'share', 'compaction'],
    });
    const html = readFileSync(doc.output, 'utf8');
    expect(doc.bytes).toBe(Buffer.byteLength(html));
    // Nothing to fetch: no external script, stylesheet or image.
    expect(html).not.toMatch(/<(script|link|img)[^>]+(src|href)=/);
    expect(html).toContain('Chart.js v4');
  });

  it('loads in headless Chromium without errors and draws every chart', async () => {
    await run(['report', 'bench.json', '-o', 'report.html'], { cwd: dir });
    const profile = mkdtempSync(path.join(os.tmpdir(), 'pagemig-chromium-'));
    const context = await chromium.launchPersistentContext(profile, {
      executablePath: '/usr/bin/chromium',
      headless: true,
      args: CHROMIUM_ARGS,
      offline: true,
    });
    try {
      const page = await context.newPage();
      const errors: string[] = [];
      const requests: string[] = [];
      page.on('console', (m) => {
        if (m.type() === 'error') errors.push(m.text());
      });
      page.on('pageerror', (e) => errors.push(e.message));
      page.on('request', (req) => requests.push(req.url()));
      const url = pathToFileURL(path.join(dir, 'report.html')).href;
      await page.goto(url, { waitUntil: 'load' });
      expect(errors).toEqual([]);
      expect(requests).toEqual([url]);
      const painted = await page.evaluate(() =>
        [...document.querySelectorAll('canvas')].map((c) => {
          const px = c.getContext('2d')!.getImageData(0, 0, c.width, c.height).data;
          let n = 0;
          for (let i = 3; i < px.length; i += 4) if (px[i] !== 0) n++;
          return { id: c.id, painted: n };
        }),
      );
      expect(painted.map((c) => c.id)).toEqual([
        'chart-throughput',
        'chart-phases',
        'chart-size',
        'chart-share',
        'chart-compaction',
      ]);
      for (const c of painted) expect(c.painted, c.id).toBeGreaterThan(5000);
      expect(await page.locator('figure svg').count()).toBe(1);
    } finally {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
    }
  });

  it('exits 2 for a file that is not a bench result', async () => {
    writeFileSync(path.join(dir, 'other.json'), JSON.stringify({ schemaVersion: 1, command: 'migrate' }));
    const r = await run(['report', 'other.json'], { cwd: dir });
    expect(r.code).toBe(2);
    expect(r.stderr).toBe(
      `pagemig report: ${path.join(dir, 'other.json')} is not a pagemig bench result (schemaVersion 1): command: Invalid input: expected "bench"\n`,
    );
    const missing = await run(['report', 'none.json'], { cwd: dir });
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/^pagemig report: cannot read .+none\.json: ENOENT/);
  });
});
