import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import { compileAccessTrace, replayAccessTrace } from '../src/access_replay.js';
import type { AccessTrace } from '../src/access_trace.js';
import { EFAULT, EINVAL } from '../src/errno.js';
import { createMachine, type Machine } from '../src/machine.js';
import { MPOL_MF_MOVE } from '../src/mempolicy.js';
import { PAGE_SIZE } from '../src/mmzone.js';
import { changeProtNuma, flushProtNuma } from '../src/mprotect.js';
import {
  type AccessResult,
  type ReplayWorkload,
  seededRandom,
  verifyAccess,
} from '../src/workload_access.js';
import { untilRunning } from './live.js';

const machines: Machine[] = [];
afterEach(async () => {
  await Promise.all(machines.splice(0).map((x) => x.close()));
});

async function machine(clock: 'manual' | 'wall' = 'manual'): Promise<Machine> {
  const m = await createMachine({
    nodes: [{ memory: '16MiB' }, { memory: '16MiB' }],
    prefault: false,
    clock,
  });
  machines.push(m);
  return m;
}

const region = (start: number, pages: number, accesses: number) => ({
  start,
  end: start + pages * PAGE_SIZE,
  accesses,
});

describe('compileAccessTrace', () => {
  const HI = 0x7fff00000000;
  const trace: AccessTrace = {
    source: 'damo',
    records: [
      { startMs: 0, endMs: 100, regions: [region(0x7f0000000000, 16, 20), region(0x7f0000010000, 240, 0)] },
      { startMs: 100, endMs: 200, regions: [region(0x7f0000000000, 256, 3), region(HI, 4, 12)] },
    ],
  };

  it('lays the address ranges end to end without the gaps between them', () => {
    const t = compileAccessTrace(trace, 260 * PAGE_SIZE);
    expect(t.records).toBe(2);
    expect([...new Int32Array(t.regionOffset)]).toEqual([0, 2, 4]);
    expect([...new Int32Array(t.firstPage)]).toEqual([0, 16, 0, 256]);
    expect([...new Int32Array(t.nrPages)]).toEqual([16, 240, 256, 4]);
    expect([...new Int32Array(t.accesses)]).toEqual([20, 0, 3, 12]);
    expect([...new Float64Array(t.startMs)]).toEqual([0, 100]);
    expect([...new Float64Array(t.endMs)]).toEqual([100, 200]);
  });

  it('scales down what does not fit, keeping every region at least a page', () => {
    const t = compileAccessTrace(trace, 130 * PAGE_SIZE);
    expect([...new Int32Array(t.firstPage)]).toEqual([0, 8, 0, 128]);
    expect([...new Int32Array(t.nrPages)]).toEqual([8, 120, 128, 2]);
    const tiny = compileAccessTrace(trace, PAGE_SIZE);
    expect([...new Int32Array(tiny.firstPage)]).toEqual([0, 0, 0, 0]);
    expect([...new Int32Array(tiny.nrPages)]).toEqual([1, 1, 1, 1]);
  });

  it('puts records in time order', () => {
    const reversed = compileAccessTrace({ ...trace, records: [...trace.records].reverse() }, 260 * PAGE_SIZE);
    const t = compileAccessTrace(trace, 260 * PAGE_SIZE);
    for (const k of ['startMs', 'endMs', 'regionOffset', 'firstPage', 'nrPages', 'accesses'] as const)
      expect(new Uint8Array(reversed[k])).toEqual(new Uint8Array(t[k]));
  });

  it('refuses a region without a page', () => {
    expect(() => compileAccessTrace(trace, 100)).toThrow(expect.objectContaining({ errno: EINVAL }));
  });
});

describe('the replay workload (user thread)', () => {
  it('accesses every page of a region `accesses` times during its record, and its writes verify', async () => {
    const m = await machine('wall');
    const p = m.spawn();
    const pages = 8;
    const a = p.mmap(pages * PAGE_SIZE);
    const trace: AccessTrace = {
      source: 'csv',
      records: [
        { startMs: 0, endMs: 40, regions: [region(0x10000, 4, 2)] },
        { startMs: 40, endMs: 80, regions: [region(0x14000, 4, 3), region(0x10000, 1, 1)] },
      ],
    };
    const w: ReplayWorkload = {
      kind: 'replay',
      addr: a,
      bytes: pages * PAGE_SIZE,
      trace: compileAccessTrace(trace, pages * PAGE_SIZE),
      writeShare: 1,
      histogram: true,
    };
    const r = await p.spawnThread<AccessResult>({ workload: w }).done;
    expect(r).toMatchObject({ kind: 'replay', pattern: 'replay', passes: 1, errors: 0 });
    const hist = [...r.pageAccesses!];
    // Passes the thread could not make in time are counted, never lost silently.
    expect(hist.reduce((x, y) => x + y, 0) + r.skipped).toBe(8 + 12 + 1);
    if (r.skipped === 0) expect(hist).toEqual([3, 2, 2, 2, 3, 3, 3, 3]);
    // Every page the thread wrote verifies; on a loaded host a skipped record leaves its pages unwritten.
    const written = hist.filter((x) => x > 0).length;
    if (r.skipped === 0) expect(written).toBe(8);
    expect(verifyAccess((x, n) => p.read(x, n), w, [r])).toMatchObject({ checked: written, mismatches: 0 });
  });

  it('loops over the trace until stopped, faster with speed', async () => {
    const m = await machine('wall');
    const p = m.spawn();
    const a = p.mmap(4 * PAGE_SIZE);
    const trace: AccessTrace = {
      source: 'csv',
      records: [{ startMs: 0, endMs: 40, regions: [region(0, 4, 1)] }],
    };
    const w: ReplayWorkload = {
      kind: 'replay',
      addr: a,
      bytes: 4 * PAGE_SIZE,
      trace: compileAccessTrace(trace, 4 * PAGE_SIZE),
      speed: 4,
      loop: true,
      writeShare: 0.5,
    };
    const t = p.spawnThread<AccessResult>({ workload: w });
    await untilRunning([t]);
    await new Promise((r) => setTimeout(r, 200));
    t.stop();
    const r = await t.done;
    // A pass takes 10 ms of wall time here: many passes, four accesses each.
    expect(r.passes).toBeGreaterThanOrEqual(2);
    expect(r.ops + r.skipped).toBeGreaterThanOrEqual(4 * r.passes);
    expect(r.errors).toBe(0);
    expect(verifyAccess((x, n) => p.read(x, n), w, [r]).mismatches).toBe(0);
  });

  it('a looped trace without a single access ends at once instead of spinning without end', async () => {
    const m = await machine('wall');
    const p = m.spawn();
    const a = p.mmap(4 * PAGE_SIZE);
    const trace: AccessTrace = {
      source: 'csv',
      records: [{ startMs: 0, endMs: 4000, regions: [region(0, 4, 0)] }],
    };
    const w: ReplayWorkload = {
      kind: 'replay',
      addr: a,
      bytes: 4 * PAGE_SIZE,
      trace: compileAccessTrace(trace, 4 * PAGE_SIZE),
      loop: true,
      durationMs: 60_000,
    };
    const t0 = performance.now();
    const r = await p.spawnThread<AccessResult>({ workload: w }).done;
    expect(performance.now() - t0).toBeLessThan(10_000);
    expect(r).toMatchObject({ ops: 0, passes: 0, errors: 0 });
  });
});

/** A trace whose hot area wanders over a 256-page space, made from `seed`. */
function wanderingTrace(seed: number, records: number): AccessTrace {
  const rnd = seededRandom(seed);
  const base = 0x7f0000000000;
  return {
    source: 'csv',
    records: [...Array(records)].map((_, i) => {
      const hot = Math.floor(rnd() * 224);
      return {
        startMs: i * 100,
        endMs: (i + 1) * 100,
        regions: [
          region(base, hot, 1),
          region(base + hot * PAGE_SIZE, 32, 1 + Math.floor(rnd() * 6)),
          region(base + (hot + 32) * PAGE_SIZE, 224 - hot, 0),
        ].filter((g) => g.end > g.start),
      };
    }),
  };
}

describe('replayAccessTrace (main thread, manual clock)', () => {
  it('needs a manual clock, a mapped region and sane options', async () => {
    const wall = await machine('wall');
    const pw = wall.spawn();
    const aw = pw.mmap(8 * PAGE_SIZE);
    const trace = wanderingTrace(1, 2);
    await expect(
      replayAccessTrace(wall, pw, trace, { addr: aw, bytes: 8 * PAGE_SIZE }),
    ).rejects.toMatchObject({
      errno: EINVAL,
      message: expect.stringMatching(/clock is 'wall'.*clock: 'manual'/),
    });
    const m = await machine();
    const p = m.spawn();
    const a = p.mmap(8 * PAGE_SIZE);
    const run = (o: object) => replayAccessTrace(m, p, trace, { addr: a, bytes: 8 * PAGE_SIZE, ...o });
    await expect(run({ stepMs: 0 })).rejects.toMatchObject({ errno: EINVAL, message: /stepMs 0/ });
    await expect(run({ writeShare: -1 })).rejects.toMatchObject({ errno: EINVAL, message: /writeShare -1/ });
    await expect(run({ onStep: 5 })).rejects.toMatchObject({
      errno: EINVAL,
      message: /onStep 5 is not a function/,
    });
    await expect(run({ bytes: 16 * PAGE_SIZE })).rejects.toMatchObject({
      errno: EFAULT,
      message: /not mapped/,
    });
    expect(m.clock.now()).toBe(0);
    expect(m.vmstat().pgfault).toBe(0);
  });

  it('walks the trace in steps: accesses per record, clock advanced before each onStep', async () => {
    const m = await machine();
    const p = m.spawn();
    const pages = 8;
    const a = p.mmap(pages * PAGE_SIZE);
    const trace: AccessTrace = {
      source: 'csv',
      records: [
        { startMs: 0, endMs: 100, regions: [region(0, 4, 2)] },
        { startMs: 100, endMs: 300, regions: [region(4 * PAGE_SIZE, 4, 3)] },
      ],
    };
    const seen: [number, number][] = [];
    const r = await replayAccessTrace(m, p, trace, {
      addr: a,
      bytes: pages * PAGE_SIZE,
      stepMs: 50,
      writeShare: 0.5,
      onStep: (t) => {
        seen.push([t, m.clock.now()]);
      },
    });
    expect(seen).toEqual([
      [50, 50],
      [100, 100],
      [150, 150],
      [200, 200],
      [250, 250],
      [300, 300],
    ]);
    expect(r).toMatchObject({ steps: 6, accesses: 4 * 2 + 4 * 3, endMs: 300 });
    expect(r.reads + r.writes).toBe(r.accesses);
    expect(r.writes).toBeGreaterThan(0);
    // Written pages were faulted in for writing, the others map the zero page.
    for (let i = 0; i < pages; i++) expect(p.pageInfo(a + i * PAGE_SIZE)).toBeTruthy();
    m.checkInvariants();
  });

  it('property: every region gets exactly `accesses` passes over its pages, whatever the step (records of no length too)', async () => {
    const m = await machine();
    const pages = 64;
    const rec = fc.record({
      len: fc.integer({ min: 0, max: 300 }),
      gap: fc.integer({ min: 0, max: 100 }),
      regions: fc.array(
        fc.record({
          page: fc.integer({ min: 0, max: 200 }),
          n: fc.integer({ min: 1, max: 40 }),
          a: fc.nat(5),
        }),
        { minLength: 1, maxLength: 3 },
      ),
    });
    await fc.assert(
      fc.asyncProperty(
        fc.array(rec, { minLength: 1, maxLength: 5 }),
        fc.integer({ min: 1, max: 250 }),
        async (rs, stepMs) => {
          let t = 0;
          const trace: AccessTrace = {
            source: 'csv',
            records: rs.map((r) => {
              const startMs = t + r.gap;
              t = startMs + r.len;
              return {
                startMs,
                endMs: t,
                regions: r.regions.map((g) => region(g.page * PAGE_SIZE, g.n, g.a)),
              };
            }),
          };
          const compiled = compileAccessTrace(trace, pages * PAGE_SIZE);
          const nr = new Int32Array(compiled.nrPages);
          const acc = new Int32Array(compiled.accesses);
          let want = 0;
          for (let g = 0; g < nr.length; g++) want += nr[g]! * acc[g]!;
          const p = m.spawn();
          const a = p.mmap(pages * PAGE_SIZE);
          const r = await replayAccessTrace(m, p, compiled, { addr: a, bytes: pages * PAGE_SIZE, stepMs });
          expect(r.accesses).toBe(want);
          expect(r.steps).toBe(Math.max(1, Math.ceil((t - trace.records[0]!.startMs) / stepMs)));
          p.exit();
        },
      ),
      { numRuns: 40 },
    );
    m.checkInvariants();
  });

  it('the same trace and seed on two fresh machines place every page the same (NUMA balancing mode 1)', async () => {
    const trace = wanderingTrace(11, 8);
    const run = async () => {
      const m = await machine();
      m.sysctl.write('kernel.numa_balancing', '1');
      const p = m.spawn({ node: 0 });
      const pages = 256;
      const a = p.mmap(pages * PAGE_SIZE);
      p.touch(a, pages * PAGE_SIZE, 'write');
      const addrs = [...Array(pages)].map((_, i) => a + i * PAGE_SIZE);
      // Everything starts on node 1, away from the task's node.
      expect(
        (
          await p.movePages(
            0,
            addrs,
            addrs.map(() => 1),
            MPOL_MF_MOVE,
          )
        ).ret,
      ).toBe(0);
      const r = await replayAccessTrace(m, p, trace, {
        addr: a,
        bytes: pages * PAGE_SIZE,
        seed: 5,
        stepMs: 50,
        writeShare: 0.2,
        // A stepped task_numa_work: every page of the process PROT_NONE again after each step.
        onStep: async () => {
          for (const vma of p.mm.vmas) changeProtNuma(m.kernel, vma, vma.startVpn, vma.endVpn, 0);
          await flushProtNuma(p.mm);
        },
      });
      const placement = (await p.movePages(0, addrs, null, 0)).status;
      m.checkInvariants();
      const v = m.vmstat();
      return {
        r,
        placement,
        counters: [v.numa_hint_faults, v.numa_pages_migrated, v.pgmigrate_success, v.pgfault],
      };
    };
    const one = await run();
    const two = await run();
    expect(one.r.steps).toBe(16);
    expect(one.placement.filter((n) => n === 0).length).toBeGreaterThan(0);
    expect(one.counters[1]).toBeGreaterThan(0);
    expect(two.placement).toEqual(one.placement);
    expect(two.counters).toEqual(one.counters);
    expect(two.r).toEqual(one.r);
  });
});
