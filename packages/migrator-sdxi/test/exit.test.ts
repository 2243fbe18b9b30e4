import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const child = fileURLToPath(new URL('./fixtures/exit-child.mjs', import.meta.url));

/** Runs the child script; resolves with its exit code and output, or 'timeout' after `ms`. */
function run(args: string[], ms: number): Promise<{ code: number | 'timeout'; out: string; err: string }> {
  return new Promise((resolve) => {
    const c = spawn(process.execPath, [child, ...args], {
      cwd: fileURLToPath(new URL('..', import.meta.url)),
    });
    let out = '';
    let err = '';
    c.stdout.on('data', (d) => {
      out += d;
    });
    c.stderr.on('data', (d) => {
      err += d;
    });
    const timer = setTimeout(() => {
      c.kill('SIGKILL');
      resolve({ code: 'timeout', out, err });
    }, ms);
    c.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? -1, out, err });
    });
  });
}

describe('the function thread and process lifetime', () => {
  it('machine.close() ends the function thread and the process exits on its own', async () => {
    const r = await run([], 15_000);
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    expect(JSON.parse(r.out)).toEqual({ ok: true, state: 'removed' });
  });

  it('an idle function thread never keeps a process alive, even without close()', async () => {
    const r = await run(['no-close'], 15_000);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.out)).toEqual({ ok: true, state: 'up' });
  });
});
