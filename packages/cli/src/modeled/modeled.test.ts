import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Command } from 'commander';
import { describe, expect, it } from 'vitest';
import { registerModeledCommands, runModeledBench } from './index.js';

function buffers() {
  const out: string[] = [];
  const err: string[] = [];
  return {
    io: { stdout: { write: (s: string) => out.push(s) }, stderr: { write: (s: string) => err.push(s) } },
    out: () => out.join(''),
    err: () => err.join(''),
  };
}

async function run(args: string[]) {
  const b = buffers();
  let code = -1;
  const program = new Command('pagemig').exitOverride();
  registerModeledCommands(program, { io: b.io, exit: (c) => (code = c) });
  await program.parseAsync(args, { from: 'user' });
  return { code, out: b.out(), err: b.err() };
}

describe('pagemig bench --clock modeled', () => {
  it('prints every published table beside the modeled one, marks held-out cells, and the held-out median', async () => {
    const b = buffers();
    expect(await runModeledBench({ profile: 'zen3-epyc-ptdma', json: false }, b.io)).toBe(0);
    const text = b.out();
    expect(text.split('\n')[0]).toMatch(/MODELED clock/);
    for (const t of ['7.4a', '7.4b', '7.4c', '7.4d', '7.3d']) expect(text).toContain(`${t} `);
    expect(text).toContain('modeled (held out)');
    expect(text).toMatch(/[+-]\d+%\*/);
    const median = Number(
      /held-out cells: 80, median \|error\| of the modeled values (\d+)%/.exec(text)?.[1],
    );
    expect(median).toBeLessThanOrEqual(20);
  });

  it('--json: one document with schemaVersion, the cells and the findings', async () => {
    const b = buffers();
    await runModeledBench({ profile: 'zen3-epyc-ptdma', json: true }, b.io);
    const doc = JSON.parse(b.out());
    expect(doc).toMatchObject({
      schemaVersion: 1,
      command: 'bench',
      ok: true,
      clock: 'modeled',
      profile: 'zen3-epyc-ptdma',
    });
    expect(doc.cells).toHaveLength(141);
    expect(doc.heldOutMedianAbsError).toBeLessThanOrEqual(0.2);
  });

  it('an unknown profile is a usage error naming the shipped ones', async () => {
    const b = buffers();
    expect(await runModeledBench({ profile: 'zen9', json: false }, b.io)).toBe(2);
    expect(b.err()).toContain('shipped: dram-cxl, zen3-epyc-ptdma');
  });
});

describe('pagemig predict / calibrate', () => {
  it('predict runs a scenario the series never measured and prints its assumptions', async () => {
    const r = await run(['predict', '--scenario', 'mthp-sdxi']);
    expect(r.code).toBe(0);
    expect(r.out).toContain('MODELED clock (profile dram-cxl');
    expect(r.out).toContain('8 sdxi channel(s)');
    expect(r.out).toMatch(/assumptions:\n {2}- time is MODELED/);
  });

  it('predict --json carries the shape, the modeled phases and the assumptions', async () => {
    const r = await run(['predict', '--folio', '64K', '--copier', 'threads', '--threads', '4', '--json']);
    const doc = JSON.parse(r.out);
    expect(doc).toMatchObject({ schemaVersion: 1, command: 'predict', clock: 'modeled' });
    expect(doc.shape.copier).toEqual({ kind: 'threads', threads: 4, placement: 'spread' });
    expect(doc.modeled.totalSeconds).toBeGreaterThan(0);
    expect(doc.assumptions.length).toBeGreaterThan(3);
  });

  it('calibrate fits a user measurements file, writes the fitted profile, and never reads held-out cells', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pagemig-cal-'));
    const cell = (GBps: number, heldOut: boolean, channels: number) => ({
      table: 'mine',
      row: String(channels),
      column: '2M',
      case: {
        folioBytes: 2 << 20,
        folios: 512,
        batchPages: 262144,
        copier: { kind: 'dma', engine: 'ptdma', channels },
      },
      GBps,
      heldOut,
    });
    const data = join(dir, 'm.json');
    writeFileSync(
      data,
      JSON.stringify({ schemaVersion: 1, measurements: [cell(20, false, 1), cell(1, true, 4)] }),
    );
    const out = join(dir, 'fitted.json');
    const r = await run([
      'calibrate',
      '--profile',
      'zen3-epyc-ptdma',
      '--data',
      data,
      '--free',
      'dma.ptdma.channelGBps',
      '--out',
      out,
      '--json',
    ]);
    expect(r.code).toBe(0);
    const doc = JSON.parse(r.out);
    expect(doc).toMatchObject({ schemaVersion: 1, command: 'calibrate', cellsUsed: 1, cellsHeldOut: 1 });
    expect(doc.rmsLogError).toBeLessThan(doc.rmsLogErrorBefore);
    expect(JSON.parse(readFileSync(out, 'utf8')).dma.ptdma.channelGBps).toBe(doc.parameters[0].fitted);
  });

  it('calibrate explains a broken measurements file', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pagemig-cal-'));
    const data = join(dir, 'bad.json');
    writeFileSync(data, JSON.stringify({ schemaVersion: 1, measurements: [{ table: 't' }] }));
    const r = await run(['calibrate', '--profile', 'zen3-epyc-ptdma', '--data', data]);
    expect(r.code).toBe(2);
    expect(r.err).toContain('invalid measurements');
    expect(r.err).toContain('measurements.0.GBps');
  });
});
