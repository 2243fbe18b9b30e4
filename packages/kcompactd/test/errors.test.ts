import { createMachine, EINVAL, ESRCH, type Machine } from '@pagemig/core';
import { afterEach, describe, expect, it } from 'vitest';
import { attachKcompactd, type Kcompactd } from '../src/index.js';

let m: Machine | undefined;
let kd: Kcompactd | undefined;
afterEach(async () => {
  await kd?.stop();
  await m?.close();
  kd = undefined;
  m = undefined;
});

const einval = (message: string) => expect.objectContaining({ errno: EINVAL, message: `EINVAL: ${message}` });

describe('kcompactd argument errors', () => {
  it('a node that is no node id, does not exist or has no memory is named as such', async () => {
    m = await createMachine({
      prefault: false,
      nodes: [{ memory: '16MiB' }, { memory: 0 }, { memory: '16MiB' }],
    });
    kd = attachKcompactd(m, { proactiveness: 0 });
    const runsOn = '(kcompactd runs on the nodes with memory: 0,2)';
    const cases: [unknown, string][] = [
      ['0', 'node "0" is not a node id'],
      [0.5, 'node 0.5 is not a node id'],
      [undefined, 'node undefined is not a node id'],
      [1, `node 1 has no kcompactd: it has no memory ${runsOn}`],
      [3, `node 3 has no kcompactd: no such node ${runsOn}`],
      [-1, `node -1 has no kcompactd: no such node ${runsOn}`],
    ];
    for (const [nid, message] of cases) {
      await expect(kd.compactNode(nid as number)).rejects.toThrow(einval(`kd.compactNode: ${message}`));
      expect(() => kd!.wakeup(nid as number, 9)).toThrow(einval(`kd.wakeup: ${message}`));
    }
    expect(kd.stats().manual.runs).toBe(0);
  });

  it('kd.allocFolio refuses unknown keys, a task that is no process or has exited; nothing is allocated', async () => {
    m = await createMachine({ prefault: false, nodes: [{ memory: '16MiB' }] });
    kd = attachKcompactd(m, { proactiveness: 0 });
    const free0 = m.freePages(0);
    const p = m.spawn();
    const gone = m.spawn();
    gone.exit();
    const cases: [unknown, unknown, string][] = [
      [
        { order: 0, nid: 0, ordr: 1 },
        {},
        'allocation request: unknown field "ordr"; did you mean "order"? (known fields: order, nid, mt, thisNode, allowed, kswapdReclaim, localNid, interleave, gfp)',
      ],
      [
        { order: 0, nid: 0, foo: 1 },
        {},
        'allocation request: unknown field "foo"; known fields: order, nid, mt, thisNode, allowed, kswapdReclaim, localNid, interleave, gfp',
      ],
      [{ order: 0, nid: 0 }, { tsk: p }, 'unknown option "tsk"; did you mean "task"? (known options: task)'],
      [{ order: 0, nid: 0 }, { task: {} }, 'task must be a process (m.spawn()), got {}'],
      [{ order: 0, nid: 0 }, { task: 'p' }, 'task must be a process (m.spawn()), got "p"'],
      [{ order: 0, nid: 0 }, null, 'options must be an object like { task }, got null'],
    ];
    for (const [req, opts, message] of cases) {
      await expect(kd.allocFolio(req as never, opts as never)).rejects.toThrow(
        einval(`kd.allocFolio: ${message}`),
      );
      await expect(kd.allocFolioDetailed(req as never, opts as never)).rejects.toThrow(
        einval(`kd.allocFolioDetailed: ${message}`),
      );
    }
    // The request's own fields are core's to check, values shown as given.
    await expect(kd.allocFolio({ order: '3', nid: 0 } as never)).rejects.toThrow(
      einval('allocation request: order "3" is not an integer in 0..10'),
    );
    await expect(kd.allocFolio({ order: 0, nid: 0 }, { task: gone })).rejects.toThrow(
      expect.objectContaining({
        code: 'ERR_PROCESS_EXITED',
        errno: ESRCH,
        message: `kd.allocFolio: task: process ${gone.pid} has exited`,
      }),
    );
    expect(m.freePages(0)).toBe(free0);
    // A good request with a live task still allocates.
    const pfn = await kd.allocFolio({ order: 0, nid: 0 }, { task: p });
    expect(pfn).toBeGreaterThanOrEqual(0);
    m.kernel.folioPut(pfn);
    expect(m.freePages(0)).toBe(free0);
    m.checkInvariants();
  });

  it('after stop(), ERR_KCOMPACTD_STOPPED names the method called', async () => {
    m = await createMachine({ prefault: false, nodes: [{ memory: '16MiB' }] });
    kd = attachKcompactd(m, { proactiveness: 0 });
    await kd.stop();
    const stopped = (what: string) =>
      expect.objectContaining({ code: 'ERR_KCOMPACTD_STOPPED', message: `kd.${what}: kcompactd is stopped` });
    await expect(kd.compactNode(0)).rejects.toThrow(stopped('compactNode'));
    await expect(kd.compactMemory()).rejects.toThrow(stopped('compactMemory'));
    await expect(kd.allocFolio({ order: 0, nid: 0 })).rejects.toThrow(stopped('allocFolio'));
    await expect(kd.allocFolioDetailed({ order: 0, nid: 0 })).rejects.toThrow(stopped('allocFolioDetailed'));
    expect(() => kd!.wakeup(0, 9)).toThrow(stopped('wakeup'));
  });
});
