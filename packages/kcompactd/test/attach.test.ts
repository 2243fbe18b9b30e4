import { createMachine, EBUSY, EINVAL, ENOENT, type Machine } from '@pagemig/core';
import { afterEach, describe, expect, it } from 'vitest';
import { attachKcompactd, type Kcompactd, type KcompactdOptions } from '../src/index.js';

let m: Machine | undefined;
let kd: Kcompactd | undefined;
afterEach(async () => {
  await kd?.stop();
  await m?.close();
  kd = undefined;
  m = undefined;
});

const optionError = (message: string) =>
  expect.objectContaining({
    code: 'ERR_KCOMPACTD_OPTION',
    errno: EINVAL,
    message: `attachKcompactd: ${message}`,
  });

describe('attachKcompactd options', () => {
  it('refuses bad values naming the option and showing the value as given (strings quoted)', async () => {
    m = await createMachine({ prefault: false, nodes: [{ memory: '16MiB' }] });
    const bad: [unknown, string][] = [
      [{ proactiveness: '20' }, 'proactiveness must be an integer in 0..100, got "20"'],
      [{ checkIntervalMs: [5] }, 'checkIntervalMs must be a positive number of ms, got [5]'],
      [{ checkIntervalMs: '5' }, 'checkIntervalMs must be a positive number of ms, got "5"'],
      [{ clusterMax: '4' }, 'clusterMax must be a positive integer, got "4"'],
      [{ clusterMax: 4n }, 'clusterMax must be a positive integer, got 4n'],
      [
        { copyTimeoutMs: 2 ** 31 },
        'copyTimeoutMs must be a positive number of ms up to 2147483647 (as vm.migrate_copy_timeout_ms), got 2147483648',
      ],
      [
        { copyTimeoutMs: 1e300 },
        'copyTimeoutMs must be a positive number of ms up to 2147483647 (as vm.migrate_copy_timeout_ms), got 1e+300',
      ],
      [
        { copyTimeoutMs: 0 },
        'copyTimeoutMs must be a positive number of ms up to 2147483647 (as vm.migrate_copy_timeout_ms), got 0',
      ],
    ];
    for (const [opts, message] of bad)
      expect(() => attachKcompactd(m!, opts as KcompactdOptions)).toThrow(optionError(message));
    // The engine's limit itself is accepted, and is what the compactions get.
    kd = attachKcompactd(m, { copyTimeoutMs: 2 ** 31 - 1, proactiveness: 0 });
    expect(kd.zoneOpts().copyTimeoutMs).toBe(2 ** 31 - 1);
    const r = await kd.compactNode(0);
    expect(r.zones.map((z) => z.status)).toEqual(['complete']);
    expect(kd.errors).toEqual([]);
  });

  it('reads each option once: a getter that would throw on a later read changes nothing', async () => {
    m = await createMachine({ prefault: false, nodes: [{ memory: '16MiB' }] });
    const reads: Record<string, number> = {};
    const once =
      <T>(key: string, v: T) =>
      () => {
        reads[key] = (reads[key] ?? 0) + 1;
        if (reads[key] > 1) throw new Error(`${key} read again`);
        return v;
      };
    const opts = Object.defineProperties(
      {},
      {
        proactiveness: { enumerable: true, get: once('proactiveness', 30) },
        checkIntervalMs: { enumerable: true, get: once('checkIntervalMs', 250) },
        clusterMax: { enumerable: true, get: once('clusterMax', 16) },
        copyTimeoutMs: { enumerable: true, get: once('copyTimeoutMs', 5000) },
      },
    ) as KcompactdOptions;
    kd = attachKcompactd(m, opts);
    expect(reads).toEqual({ proactiveness: 1, checkIntervalMs: 1, clusterMax: 1, copyTimeoutMs: 1 });
    expect(kd.checkIntervalMs).toBe(250);
    expect(kd.zoneOpts()).toMatchObject({ clusterMax: 16, copyTimeoutMs: 5000 });
    expect(m.sysctl.read('vm.compaction_proactiveness')).toBe('30\n');
  });

  it('a refused attach (an allocator hook taken) leaves the machine as it was, naming attachKcompactd', async () => {
    m = await createMachine({ prefault: false, nodes: [{ memory: '16MiB' }] });
    const k = m.kernel;
    for (const taken of ['kswapdSleep', 'directCompact'] as const) {
      const off =
        taken === 'kswapdSleep'
          ? k.setAllocHook('kswapdSleep', () => undefined)
          : k.setAllocHook('directCompact', async () => ({
              pfn: -1,
              attempt: { priority: 0, status: 'skipped', allocated: false },
            }));
      expect(() => attachKcompactd(m!, { proactiveness: 77 })).toThrow(
        expect.objectContaining({
          code: 'EBUSY',
          errno: EBUSY,
          message: `EBUSY: attachKcompactd: the allocator's ${taken} hook is already installed (m.kernel.setAllocHook); remove it first`,
        }),
      );
      // Nothing of the refused attach stayed: not the proactiveness, not the sysctl actions, not
      // the other hook.
      expect(m.sysctl.read('vm.compaction_proactiveness')).toBe('20\n');
      expect(await m.sysctl.writeAsync('vm.compact_memory', '1')).toBe(ENOENT);
      expect(m.sysctl.write('vm.compaction_proactiveness', '20')).toBe(0);
      for (const other of ['kswapdSleep', 'directCompact'] as const)
        if (other !== taken) k.setAllocHook(other, (() => undefined) as never)();
      off();
    }
    // With the hooks free again, an attach works.
    kd = attachKcompactd(m, { proactiveness: 77 });
    expect(m.sysctl.read('vm.compaction_proactiveness')).toBe('77\n');
    expect(await m.sysctl.writeAsync('vm.compact_memory', '1')).toBe(0);
    await kd.settled();
    m.checkInvariants();
  });
});
