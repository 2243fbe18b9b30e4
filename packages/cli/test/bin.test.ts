import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import { binPath, runBin, tempDir } from './helpers.js';

const { version } = createRequire(import.meta.url)('../package.json') as { version: string };

// The built bin as users run it (pnpm build first: the test task depends on build).
describe('pagemig (bin)', () => {
  it('prints help with the exit codes and every command', async () => {
    const r = await runBin(['--help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^Usage: pagemig \[options\] \[command\]/);
    for (const c of [
      'bench',
      'migrate',
      'compact',
      'numa',
      'drivers',
      'proc',
      'trace',
      'report',
      'calibrate',
      'predict',
    ])
      expect(r.stdout).toMatch(new RegExp(`^  ${c}\\b`, 'm'));
    expect(r.stdout).toContain('  3  a migrator is not installed (the message names the package to install)');
  });

  it.each(['bench', 'migrate', 'compact', 'numa', 'drivers', 'proc', 'trace', 'report'])(
    'has help with examples for %s',
    async (c) => {
      const r = await runBin([c, '--help']);
      expect(r.code).toBe(0);
      expect(r.stdout).toMatch(new RegExp(`^Usage: pagemig ${c} `));
      expect(r.stdout).toContain('--json');
      expect(r.stdout).toMatch(new RegExp(`Examples:\\n  \\$ pagemig ${c}`));
    },
  );

  it('Ctrl-C under --json still prints the one document, as an error, and exits 130', async () => {
    const child = spawn(
      process.execPath,
      [
        binPath,
        'tier',
        '--dram',
        '8MiB',
        '--cxl',
        '32MiB',
        '--duration',
        '60000',
        '--out',
        tempDir(),
        '--json',
      ],
      {
        env: { ...process.env, CI: '1' },
      },
    );
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    // Once the run is under way (the machine is built), as a user would press Ctrl-C.
    await new Promise((r) => setTimeout(r, 1500));
    child.kill('SIGINT');
    const code = await new Promise((r) => child.on('exit', (c) => r(c)));
    expect(code).toBe(130);
    expect(JSON.parse(stdout)).toMatchObject({
      command: 'tier',
      ok: false,
      error: { code: 'ERR_INTERRUPTED', message: 'interrupted by SIGINT', exitCode: 130 },
    });
    expect(stderr).toContain('pagemig: interrupted by SIGINT');
  });

  it('help for a command that does not exist is a usage error naming it; no command at all says so', async () => {
    const r = await runBin(['help', 'nosuch', '--json']);
    expect(r.code).toBe(2);
    expect(JSON.parse(r.stdout).error.message).toMatch(
      /^unknown command "nosuch"; commands: bench, migrate, /,
    );
    const none = await runBin(['--json']);
    expect(none.code).toBe(2);
    expect(JSON.parse(none.stdout).error.message).toBe('no command given');
  });

  it('prints its version', async () => {
    const r = await runBin(['--version']);
    expect(r).toEqual({ code: 0, stdout: `${version}\n`, stderr: '' });
  });

  it('exits 2 on an unknown command or option', async () => {
    const cmd = await runBin(['frobnicate']);
    expect(cmd.code).toBe(2);
    expect(cmd.stderr).toMatch(/^error: unknown command 'frobnicate'/);
    const opt = await runBin(['migrate', '--totl', '4MiB']);
    expect(opt.code).toBe(2);
    expect(opt.stderr).toMatch(/^error: unknown option '--totl'\n\(Did you mean --total\?\)/);
  });

  it('migrates and prints one JSON document', async () => {
    const r = await runBin([
      'migrate',
      '--total',
      '4MiB',
      '--folio',
      '2MiB',
      '--migrator',
      'ptdma',
      '-o',
      'channels=2',
      '--json',
    ]);
    expect(r.code).toBe(0);
    const doc = JSON.parse(r.stdout);
    expect(doc).toMatchObject({
      schemaVersion: 1,
      command: 'migrate',
      verified: true,
      folios: 2,
      migrator: { id: 'ptdma', options: { channels: 2 } },
      offload: { migrator: 'ptdma', foliosCopied: 2 },
    });
  });

  it('exits 3 for a migrator that is not installed', async () => {
    const r = await runBin(['migrate', '--migrator', 'nope', '--json']);
    expect(r.code).toBe(3);
    expect(JSON.parse(r.stdout).error.code).toBe('ERR_MIGRATOR_NOT_INSTALLED');
  });
});
