import { describe, expect, it } from 'vitest';
import { ExitCode } from '../src/exit_codes.js';
import { run, runBin } from './helpers.js';

/** stdout under --json: exactly one JSON document. */
function oneDocument(stdout: string) {
  const doc = JSON.parse(stdout);
  expect(stdout.trimEnd()).toBe(JSON.stringify(doc, null, 2));
  return doc;
}

// Issue 20: predict and calibrate exited 0 on every error, even with "exitCode": 2 in the document.
describe('pagemig predict / calibrate errors', () => {
  it.each([
    [
      ['predict', '--profile', 'bogus'],
      'ERR_UNKNOWN_PROFILE',
      'no hardware profile named "bogus"; shipped: ',
    ],
    [['predict', '--folio', '12XB'], 'ERR_USAGE', '--folio: cannot parse "12XB"'],
    [
      ['predict', '--from', '9'],
      'ERR_USAGE',
      '--from 9: profile zen3-epyc-ptdma has no node 9 (its nodes are 0..1)',
    ],
    [['predict', '--total', '0'], 'ERR_USAGE', '--total 0 must be a positive multiple of the folio size'],
    [
      ['predict', '--folio', '3MiB'],
      'ERR_USAGE',
      '--folio 3MiB: a folio is a power of two from 4KiB to 2MiB',
    ],
    [['predict', '--from', '0', '--to', '0'], 'ERR_USAGE', '--from and --to are both node 0'],
    [
      ['predict', '--engine', 'dsa'],
      'ERR_USAGE',
      '--engine dsa: profile zen3-epyc-ptdma has no such DMA engine',
    ],
    [['predict', '--profile', 'missing.json'], 'ERR_USAGE', '--profile missing.json: cannot read the file'],
    [
      ['calibrate', '--profile', 'dram-cxl'],
      'ERR_USAGE',
      'no published measurements for dram-cxl; pass --data <file>',
    ],
    [
      ['calibrate', '--profile', 'zen3-epyc-ptdma', '--data', 'missing.json'],
      'ERR_USAGE',
      '--data missing.json: cannot read the file: ENOENT',
    ],
    [
      ['calibrate', '--profile', 'zen3-epyc-ptdma', '--free', 'bogus.param'],
      'ERR_USAGE',
      '--free: profile zen3-epyc-ptdma has no numeric parameter "bogus.param"',
    ],
    [['calibrate'], 'ERR_USAGE', "required option '--profile <name|file.json>' not specified"],
    [['predict', '--threads', '0'], 'ERR_USAGE', '--threads must be an integer from 1 to 1024'],
    // Ten million modeled threads ran the heap out of memory (a V8 abort, no JSON at all).
    [
      ['predict', '--copier', 'threads', '--threads', '10000000'],
      'ERR_USAGE',
      '--threads must be an integer from 1 to 1024',
    ],
    [['predict', '--channels', '1e9'], 'ERR_USAGE', '--channels must be an integer from 1 to 1024'],
  ])('%j exits 2 with one JSON error document', async (args, code, message) => {
    const r = await run([...args, '--json']);
    expect(r.code).toBe(ExitCode.USAGE);
    const doc = oneDocument(r.stdout);
    expect(doc).toMatchObject({
      schemaVersion: 1,
      command: args[0],
      ok: false,
      error: { code, exitCode: 2 },
    });
    expect(doc.error.message).toContain(message);
    expect(r.stderr).toContain(message);
  });

  it('the process exits with the code the document says (bin)', async () => {
    const predict = await runBin(['predict', '--profile', 'bogus', '--json']);
    expect(predict.code).toBe(2);
    expect(oneDocument(predict.stdout).error.exitCode).toBe(2);
    const calibrate = await runBin(['calibrate', '--profile', 'dram-cxl']);
    expect(calibrate).toMatchObject({ code: 2, stdout: '' });
    expect(calibrate.stderr).toBe(
      'pagemig calibrate: no published measurements for dram-cxl; pass --data <file>\n',
    );
  });

  it('a named scenario may model a copy inside one node; a good prediction exits 0', async () => {
    const r = await run(['predict', '--scenario', 'cxl-compaction', '--json']);
    expect(r.code).toBe(0);
    expect(oneDocument(r.stdout)).toMatchObject({ ok: true, shape: { from: 1, to: 1 } });
    expect((await run(['predict'])).code).toBe(0);
  });

  it('help: predict defaults in binary units, calibrate lists the profiles and says --profile is required', async () => {
    const predict = await run(['predict', '--help']);
    expect(predict.code).toBe(0);
    expect(predict.stdout).toContain('(default: "2MiB")');
    expect(predict.stdout).toContain('(default: "1GiB")');
    const calibrate = await run(['calibrate', '--help']);
    expect(calibrate.stdout.replace(/\s+/g, ' ')).toContain(
      '--profile <name|file.json> required: the profile to start from: dram-cxl, zen3-epyc-ptdma, or a profile .json file',
    );
    expect(calibrate.stdout).toMatch(/Examples:\n {2}\$ pagemig calibrate --profile zen3-epyc-ptdma/);
  });
});
