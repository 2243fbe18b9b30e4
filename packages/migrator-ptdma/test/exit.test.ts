import { fileURLToPath } from 'node:url';
import { runUntilExit } from '@pagemig/testkit';
import { describe, expect, it } from 'vitest';

const child = fileURLToPath(new URL('./fixtures/exit-child.mjs', import.meta.url));
const cwd = fileURLToPath(new URL('..', import.meta.url));
const run = (args: string[], timeoutMs: number) => runUntilExit(child, args, { cwd, timeoutMs });

describe('device threads and process lifetime', () => {
  it('machine.close() ends the device threads and the process exits on its own', async () => {
    const r = await run([], 15_000);
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    expect(JSON.parse(r.out)).toEqual({ ok: true, states: ['removed', 'removed'] });
  });

  it('an idle device thread never keeps a process alive, even without close()', async () => {
    const r = await run(['no-close'], 15_000);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.out)).toEqual({ ok: true, states: ['up', 'up'] });
  });
});
