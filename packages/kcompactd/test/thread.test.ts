import { createMachine, type Machine } from '@pagemig/core';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { attachKcompactd, type Kcompactd } from '../src/index.js';
import { fragment, verifyBytes } from './helpers.js';

let m: Machine | undefined;
let kd: Kcompactd | undefined;
const warnings: Error[] = [];
const onWarning = (w: Error) => warnings.push(w);
process.on('warning', onWarning);
afterEach(async () => {
  vi.restoreAllMocks();
  await kd?.stop();
  await m?.close();
  kd = undefined;
  m = undefined;
  warnings.length = 0;
});

/** 'settled', or 'hang' when `p` has not settled after `ms`. */
function settledWithin(p: Promise<unknown>, ms: number): Promise<'settled' | 'hang'> {
  let timer: NodeJS.Timeout | undefined;
  const hang = new Promise<'hang'>((r) => {
    timer = setTimeout(() => r('hang'), ms);
  });
  return Promise.race([p.then(() => 'settled' as const), hang]).finally(() => clearTimeout(timer));
}

describe('a kcompactd thread that dies', () => {
  it('is marked stopped: settled() resolves, the error is in kd.errors, the other node goes on', async () => {
    m = await createMachine({ prefault: false, nodes: [{ memory: '16MiB' }, { memory: '16MiB' }] });
    const f = fragment(m, { nid: 0, fill: 0.96 });
    kd = attachKcompactd(m, { proactiveness: 0 });
    await kd.settled();
    // An internal failure in the proactive pass of node 0 (after its compaction).
    const boom = new Error('record failed');
    const record = kd.record.bind(kd);
    vi.spyOn(kd, 'record').mockImplementation((trigger, runs) => {
      if (trigger === 'proactive' && runs[0]?.nid === 0) throw boom;
      record(trigger, runs);
    });
    expect(m.sysctl.write('vm.compaction_proactiveness', '100')).toBe(0);
    expect(await settledWithin(kd.settled(), 3000)).toBe('settled');
    expect(kd.errors).toEqual([boom]);
    expect(kd.threads().map((t) => ({ nid: t.nid, stopped: t.stopped, sleeping: t.sleeping }))).toEqual([
      { nid: 0, stopped: true, sleeping: false },
      { nid: 1, stopped: false, sleeping: true },
    ]);
    // The dead thread is not woken; the live one still is.
    expect(kd.wakeup(0, 9)).toBe(false);
    expect(kd.threads()[0]!.maxOrder).toBe(9);
    expect(await settledWithin(kd.settled(), 3000)).toBe('settled');
    expect(verifyBytes(f)).toBeGreaterThan(0);
    await kd.stop();
    m.checkInvariants();
  });
});
