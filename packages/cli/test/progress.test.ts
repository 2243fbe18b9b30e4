import { describe, expect, it } from 'vitest';
import type { Io } from '../src/io.js';
import { progressEnabled } from '../src/progress.js';
import { onlyDrivers, run } from './helpers.js';

const io = (isTTY: boolean, env: Record<string, string> = {}): Io => ({
  stdout: { write: () => true },
  stderr: { write: () => true, isTTY },
  env,
  cwd: '/',
});

describe('progress bars', () => {
  it('are shown only on a terminal, outside CI, without --json', () => {
    expect(progressEnabled(io(true), false)).toBe(true);
    expect(progressEnabled(io(false), false)).toBe(false);
    expect(progressEnabled(io(true, { CI: 'true' }), false)).toBe(false);
    expect(progressEnabled(io(true), true)).toBe(false);
  });

  it('draw on stderr while the bench runs, and leave stdout to the results', async () => {
    const tty = await run(['bench', '--quick', '--only', 'size', '--max-total', '2MiB', '--out', 'b.json'], {
      drivers: onlyDrivers(['cpu-serial']),
      tty: true,
    });
    expect(tty.code).toBe(0);
    expect(tty.stderr).toContain('bench quick [');
    expect(tty.stderr).toContain('2/2 size cpu-serial');
    expect(tty.stdout).not.toContain('bench quick [');
    const json = await run(
      ['bench', '--quick', '--only', 'size', '--max-total', '2MiB', '--out', 'b.json', '--json'],
      {
        drivers: onlyDrivers(['cpu-serial']),
        tty: true,
      },
    );
    expect(json.stderr).toBe('');
  });
});
