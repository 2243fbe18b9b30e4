import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { runExitLifetimeSuite, runUntilExit } from '../src/index.js';

const dir = mkdtempSync(join(tmpdir(), 'pagemig-exit-'));
function script(name: string, body: string): string {
  const file = join(dir, name);
  writeFileSync(file, body);
  return file;
}

describe('runUntilExit', () => {
  it('reports the exit code and what the child printed', async () => {
    const s = script(
      'ok.mjs',
      "console.log('out', process.argv[2]); console.error('err'); process.exitCode = 3;",
    );
    expect(await runUntilExit(s, ['arg'], { cwd: dir, timeoutMs: 10_000 })).toEqual({
      code: 3,
      out: 'out arg\n',
      err: 'err\n',
    });
  });

  it('kills a child that a handle keeps alive and says timeout', async () => {
    const s = script('stuck.mjs', "console.log('started'); setInterval(() => {}, 1000);");
    const r = await runUntilExit(s, [], { cwd: dir, timeoutMs: 1500 });
    expect(r).toEqual({ code: 'timeout', out: 'started\n', err: '' });
  });
});

runExitLifetimeSuite({
  describe,
  it,
  expect,
  child: fileURLToPath(new URL('./fixtures/lifetime-child.mjs', import.meta.url)),
  threads: 'mock threads',
  states: { closed: ['removed'], idle: ['up'] },
});
