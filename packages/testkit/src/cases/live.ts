import {
  PAGE_SIZE,
  type PatternResult,
  type UserThread,
  verifyPattern as verifyLivePattern,
} from '@pagemig/core';
import { migrateRegion, type TestRegion } from '../fixtures.js';
import type { Suite } from '../suite.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** live/*: user threads keep writing while their memory migrates (worker threads; optional). */
export function liveCases(s: Suite): void {
  const { expect } = s;
  if (!s.liveThreads) return;

  s.test('live/threads', 'user threads write a pattern while their memory migrates back and forth', () =>
    s.withMachine(async (m) => {
      const p = m.spawn({ privileged: true });
      const bytes = 64 * PAGE_SIZE;
      const a = p.mmap(bytes, { thp: '16KiB', node: 0 });
      p.touch(a, bytes, 'write');
      const w = { addr: a, bytes, lanes: 2 };
      const threads: UserThread<PatternResult>[] = [0, 1, -1].map((lane) =>
        p.spawnThread<PatternResult>({ workload: { kind: 'pattern', ...w, lane } }),
      );
      try {
        while (threads.some((t) => t.state === 'starting')) await sleep(2);
        const r: TestRegion = { p, addr: a, bytes, data: new Uint8Array(0), heads: [] };
        for (let i = 0; i < 16; i++) {
          const res = await migrateRegion(m, r, (i + 1) & 1);
          expect(res.ret).toBe(0);
        }
      } finally {
        for (const t of threads) t.stop();
      }
      const results = await Promise.all(threads.map((t) => t.join()));
      expect(results.map((x) => x.errors)).toEqual([0, 0, 0]);
      expect(verifyLivePattern((x, n) => p.read(x, n), w, results).mismatches).toBe(0);
    }),
  );
}
