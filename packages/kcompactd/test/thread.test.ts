import { createMachine, type Machine } from '@pagemig/core';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { attachKcompactd, type Kcompactd } from '../src/index.js';
import { fragment, keptPfns, verifyBytes } from './helpers.js';

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

describe('onRun listeners that throw', () => {
  it('cannot fail the compaction or lose the folio direct compaction allocated', async () => {
    m = await createMachine({ prefault: false, nodes: [{ memory: '16MiB' }] });
    const f = fragment(m, { fill: 0.96 });
    kd = attachKcompactd(m, { proactiveness: 0 });
    await kd.settled();
    const seen: string[] = [];
    const bug = new Error('listener bug');
    kd.onRun(() => {
      throw bug;
    });
    kd.onRun((r) => seen.push(r.trigger));
    const free0 = m.freePages(0);
    const success0 = m.vmstat().compact_success;
    const got = await kd.allocFolioDetailed({ order: 9, nid: 0 });
    // The slow path also woke kcompactd: let its run end before counting free pages.
    await kd.settled();
    // The allocation completed: a 512-page folio, counted as a success, handed to the caller.
    expect(got.pfn).toBeGreaterThanOrEqual(0);
    expect(got.attempts.at(-1)).toMatchObject({ status: 'success', allocated: true });
    expect(m.vmstat().compact_success - success0).toBe(1);
    expect(m.freePages(0)).toBe(free0 - 512);
    m.kernel.folioPut(got.pfn);
    expect(m.freePages(0)).toBe(free0);
    // A manual compaction resolves with its result, not the listener's error.
    const r = await kd.compactNode(0);
    expect(r.zones.map((z) => z.status)).toEqual(['complete']);
    // Every run reached the next listener (kcompactd's too); the errors are kept, with one
    // warning for the listener.
    const directRuns = got.attempts.flatMap((a) => a.zones).length;
    expect(seen.filter((t) => t === 'direct')).toHaveLength(directRuns);
    expect(seen.at(-1)).toBe('manual');
    expect(kd.listenerErrors).toEqual(seen.map((trigger) => ({ trigger, error: bug })));
    await new Promise((resolve) => setImmediate(resolve));
    const ours = warnings.filter((w) => (w as { code?: string }).code === 'PAGEMIG_KCOMPACTD_LISTENER');
    expect(ours).toHaveLength(1);
    expect(ours[0]!.message).toMatch(
      /^a kd\.onRun listener threw \(listener bug\) after a (direct|kcompactd) compaction of node 0; the compaction went on \(kd\.listenerErrors\)$/,
    );
    expect(kd.errors).toEqual([]);
    expect(verifyBytes(f)).toBeGreaterThan(0);
    m.checkInvariants();
  });

  it('cannot kill kcompactd: a proactive pass that tells a throwing listener leaves the thread asleep', async () => {
    m = await createMachine({ prefault: false, nodes: [{ memory: '16MiB' }] });
    fragment(m, { fill: 0.96 });
    kd = attachKcompactd(m, { proactiveness: 0 });
    await kd.settled();
    kd.onRun(() => {
      throw 'not even an Error';
    });
    expect(m.sysctl.write('vm.compaction_proactiveness', '100')).toBe(0);
    expect(await settledWithin(kd.settled(), 3000)).toBe('settled');
    expect(kd.threads()[0]).toMatchObject({ sleeping: true, stopped: false, proactiveRuns: 1 });
    expect(kd.listenerErrors).toEqual([{ trigger: 'proactive', error: 'not even an Error' }]);
    expect(kd.errors).toEqual([]);
    m.checkInvariants();
  });
});

describe("kcompactd's sleep longer than Node's longest timer (2^31 - 1 ms)", () => {
  // A proactive pass that cannot lower the score backs off 64 check intervals: 2^26 ms * 64 and
  // 1e300 ms * 64 are past 2^31 - 1, which Node would turn into a 1 ms timer.
  for (const checkIntervalMs of [2 ** 26, 1e300])
    it(`checkIntervalMs ${checkIntervalMs}: one pass without progress, then asleep, no warning`, async () => {
      m = await createMachine({ prefault: false, nodes: [{ memory: '16MiB' }] });
      const f = fragment(m, { fill: 0.96 });
      // Everything still mapped is pinned: compaction can move nothing.
      const unpin = keptPfns(f).map((pfn) => m!.pinFolio(pfn));
      kd = attachKcompactd(m, { proactiveness: 0, checkIntervalMs });
      await kd.settled();
      expect(m.sysctl.write('vm.compaction_proactiveness', '100')).toBe(0);
      await kd.settled();
      await new Promise((r) => setTimeout(r, 200));
      expect(kd.threads()[0]).toMatchObject({ proactiveRuns: 1, sleeping: true });
      expect(kd.stats().proactive.pagesMigrated).toBe(0);
      expect(warnings.filter((w) => w.name === 'TimeoutOverflowWarning')).toEqual([]);
      await kd.stop();
      for (const u of unpin) u();
      expect(verifyBytes(f)).toBeGreaterThan(0);
      m.checkInvariants();
    });
});
