import { fileURLToPath } from 'node:url';
import { runUntilExit } from '@pagemig/testkit';
import { describe, expect, it } from 'vitest';

const child = fileURLToPath(new URL('./fixtures/exit-child.mjs', import.meta.url));
const cwd = fileURLToPath(new URL('..', import.meta.url));
const run = (args: string[], timeoutMs: number) => runUntilExit(child, args, { cwd, timeoutMs });

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
