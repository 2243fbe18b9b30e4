import { fileURLToPath } from 'node:url';
import { runExitLifetimeSuite } from '@pagemig/testkit';
import { describe, expect, it } from 'vitest';

runExitLifetimeSuite({
  describe,
  it,
  expect,
  child: fileURLToPath(new URL('./fixtures/exit-child.mjs', import.meta.url)),
  threads: 'device threads',
  states: { closed: ['removed', 'removed'], idle: ['up', 'up'] },
});
