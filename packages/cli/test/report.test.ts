/// <reference lib="dom" />
/// <reference lib="dom.iterable" />
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { type BrowserContext, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
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

const MEASURED_CHARTS = [
  'throughput',
  'lanes-4KiB',
  'lanes-2MiB',
  'phases',
  'size',
  'share',
  'compaction-workload',
  'compaction-cpu',
];
const MODELED_CHARTS = ['lanes-4K', 'lanes-2M', 'folio', 'size', 'share'];

let dir: string;
let profile: string;
let context: BrowserContext;
beforeAll(async () => {
  dir = tempDir();
  // cpu-serial and one DMA engine (1 and 2 channels), with the zen3 profile's predictions beside.
  const r = await run(
    ['bench', '--quick', '--max-total', '8MiB', '--profile', 'zen3-epyc-ptdma', '--out', 'bench.json'],
    { cwd: dir, drivers: onlyDrivers(['cpu-serial', 'ptdma']) },
  );
  expect(r.code, r.stderr).toBe(0);
  const m = await run(
    ['bench', '--clock', 'modeled', '--quick', '--out', 'modeled.json', '--html', 'modeled.html'],
    {
      cwd: dir,
    },
  );
  expect(m.code, m.stderr).toBe(0);
  profile = mkdtempSync(path.join(os.tmpdir(), 'pagemig-chromium-'));
  context = await chromium.launchPersistentContext(profile, {
    executablePath: '/usr/bin/chromium',
    headless: true,
    args: CHROMIUM_ARGS,
    offline: true,
    viewport: { width: 1100, height: 900 },
  });
}, 180_000);

afterAll(async () => {
  await context?.close();
  if (profile) rmSync(profile, { recursive: true, force: true });
});

/** Opens `file` offline; fails on any console error or any request but the file itself. */
async function open(file: string): Promise<Page> {
  const page = await context.newPage();
  const errors: string[] = [];
  const requests: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(m.text());
  });
  page.on('pageerror', (e) => errors.push(e.message));
  page.on('request', (req) => requests.push(req.url()));
  const url = pathToFileURL(path.join(dir, file)).href;
  await page.goto(url, { waitUntil: 'load' });
  expect(errors).toEqual([]);
  expect(requests).toEqual([url]);
  return page;
}

/** Every canvas: its id, how many pixels it painted, and how many series its chart draws. */
function canvases(page: Page) {
  return page.evaluate(() =>
    [...document.querySelectorAll('canvas')].map((c) => {
      const px = c.getContext('2d')!.getImageData(0, 0, c.width, c.height).data;
      let n = 0;
      for (let i = 3; i < px.length; i += 4) if (px[i] !== 0) n++;
      const chart = (
        globalThis as unknown as {
          Chart: { getChart(c: HTMLCanvasElement): { data: { datasets: { label: string }[] } } };
        }
      ).Chart.getChart(c);
      return { id: c.id, painted: n, series: chart.data.datasets.map((d) => d.label) };
    }),
  );
}

/** A data table's header cells and its rows (first cell = row label). */
function table(page: Page, id: string) {
  return page.evaluate((id) => {
    const t = document.getElementById(`table-${id}`);
    if (!t) return null;
    const text = (el: Element) => el.textContent ?? '';
    return {
      head: [...t.querySelectorAll('thead th')].map(text),
      rows: [...t.querySelectorAll('tbody tr')].map((tr) => [...tr.children].map(text)),
      held: t.querySelectorAll('td.held').length,
    };
  }, id);
}

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
      charts: MEASURED_CHARTS,
    });
    const html = readFileSync(doc.output, 'utf8');
    expect(doc.bytes).toBe(Buffer.byteLength(html));
    // Nothing to fetch: no external script, stylesheet or image.
    expect(html).not.toMatch(/<(script|link|img)[^>]+(src|href)=/);
    expect(html).toContain('Chart.js v4');
  });

  it('loads in headless Chromium without errors, draws every chart and prints its numbers', async () => {
    const page = await open('report.html');
    const drawn = await canvases(page);
    expect(drawn.map((c) => c.id)).toEqual(MEASURED_CHARTS.map((id) => `chart-${id}`));
    for (const c of drawn) expect(c.painted, c.id).toBeGreaterThan(5000);
    const series = Object.fromEntries(drawn.map((c) => [c.id.slice('chart-'.length), c.series]));

    // One thread/channel per migrator against folio size, with the raw copy.
    expect(series.throughput).toEqual(['kernel', 'cpu-serial', 'ptdma x1', 'raw copy (same run)']);
    // Channels on the x axis: measured here, and the profile's predictions for the same runs.
    for (const id of ['lanes-4KiB', 'lanes-2MiB'])
      expect(series[id]).toEqual([
        'kernel (one thread)',
        'cpu-serial (one thread)',
        'ptdma',
        'raw copy (same run)',
        'kernel, modeled (zen3-epyc-ptdma)',
        'ptdma, modeled (zen3-epyc-ptdma)',
      ]);
    // The series' published copy share beside this machine's.
    expect(series.share).toEqual([
      'published: kernel, Zen 3 EPYC (RFC V3)',
      'kernel (here)',
      'cpu-serial (here)',
      'ptdma x1 (here)',
    ]);
    expect(series.phases).toHaveLength(5);
    expect(series['compaction-workload']).toHaveLength(1);

    // Under every chart, a table with one row per series (or per migrator).
    for (const id of MEASURED_CHARTS) expect(await table(page, id), id).not.toBeNull();
    for (const id of ['throughput', 'lanes-4KiB', 'lanes-2MiB', 'size', 'share']) {
      const t = (await table(page, id))!;
      expect(
        t.rows.map((r) => r[0]),
        id,
      ).toEqual(series[id]);
      for (const r of t.rows) expect(r, id).toHaveLength(t.head.length);
    }
    expect((await table(page, 'throughput'))!.head).toEqual(['GB/s', '4KiB', '64KiB', '2MiB']);
    expect((await table(page, 'lanes-2MiB'))!.head).toEqual(['GB/s at N threads/channels', '1', '2']);
    const share = (await table(page, 'share'))!;
    expect(share.head).toEqual([
      'copy share of migrate_pages()',
      '1 x 4KiB',
      '512 x 4KiB',
      '1 x 2MiB',
      '512 x 2MiB (here: 4)',
    ]);
    expect(share.rows[0]).toEqual(['published: kernel, Zen 3 EPYC (RFC V3)', '<1%', '~35%', '~66%', '~97%']);
    expect((await table(page, 'phases'))!.rows).toHaveLength(8); // 4 variants x smallest and largest folio
    const workload = (await table(page, 'compaction-workload'))!;
    expect(workload.rows.map((r) => r[0])).toEqual(['cpu-serial', 'ptdma x1']);
    expect(workload.head).toEqual([
      'migrator',
      'alone (page visits/s)',
      'during compaction (page visits/s)',
      'during / alone',
    ]);
    const cpu = (await table(page, 'compaction-cpu'))!;
    expect(cpu.rows.map((r) => r[0])).toEqual(['cpu-serial', 'ptdma x1']);
    for (const r of cpu.rows) expect(Number(r[2])).toBeGreaterThan(0); // engine CPU µs per page

    const caveat = await page.locator('#caveat').textContent();
    expect(caveat).toContain(`os.availableParallelism() = ${os.availableParallelism()}`);
    expect(caveat).toContain('emulated DMA engines');
    expect(await page.locator('figure svg').count()).toBe(2);
    await page.close();
  });

  it('renders the modeled bench: published beside predicted, errors, held-out cells marked', async () => {
    const r = await run(['report', 'modeled.json', '-o', 'modeled2.html', '--json'], { cwd: dir });
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout).charts).toEqual(MODELED_CHARTS);
    expect(readFileSync(path.join(dir, 'modeled2.html'), 'utf8')).toBe(
      readFileSync(path.join(dir, 'modeled.html'), 'utf8'),
    );

    const page = await open('modeled.html');
    expect(await page.locator('#modeled-banner').textContent()).toMatch(/^MODELED, not measured/);
    const drawn = await canvases(page);
    expect(drawn.map((c) => c.id)).toEqual(MODELED_CHARTS.map((id) => `chart-${id}`));
    for (const c of drawn) expect(c.painted, c.id).toBeGreaterThan(5000);
    const lanes = drawn.find((c) => c.id === 'chart-lanes-2M')!;
    expect(lanes.series).toEqual([
      'kernel (baseline), published',
      'kernel (baseline), modeled',
      'mtcopy threads, published',
      'mtcopy threads, modeled',
      'dcbm, ptdma channels, published',
      'dcbm, ptdma channels, modeled',
    ]);
    const lt = (await table(page, 'lanes-2M'))!;
    expect(lt.head).toEqual(['GB/s at N threads/channels', '1', '2', '4', '8', '12', '16']);
    expect(lt.rows).toHaveLength(9); // published, modeled, error per copier
    expect(lt.held).toBe(10); // threads and channels 2..16
    // The series' tables, --quick: 4K, 64K and 2M columns; 7.4c's N = 2..16 rows are held out.
    const dcbm = (await table(page, '7.4c'))!;
    expect(dcbm.head).toEqual(['', '4K', '64K', '2M']);
    expect(dcbm.rows).toHaveLength(18);
    expect(dcbm.held).toBe(15);
    expect((await table(page, '7.4d'))!.rows.map((r) => r[0])).toContain('32: error');
    expect((await table(page, 'share'))!.rows.map((r) => r[0])).toEqual(['published', 'modeled']);
    await page.close();
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
