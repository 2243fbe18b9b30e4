// The busy-system scenario on a small node: a user thread touches its fragmented memory while
// kcompactd compacts the node; nothing it wrote may be lost and every byte must survive.
import { createMachine, type Machine } from '@pagemig/core';
import { createMigrator as cpuSerial } from '@pagemig/migrator-cpu-serial';
import { afterEach, describe, expect, it } from 'vitest';
import { attachKcompactd, type Kcompactd, runBusyScenario } from '../src/index.js';

let m: Machine | undefined;
let kd: Kcompactd | undefined;
afterEach(async () => {
  await kd?.stop();
  await m?.close();
  kd = undefined;
  m = undefined;
});

describe('busy system', () => {
  it('user threads keep working (and lose nothing) while kcompactd migrates their pages through cpu-serial', async () => {
    m = await createMachine({ nodes: [{ memory: '64MiB' }] });
    await m.offload.register(cpuSerial(), 'compaction');
    kd = attachKcompactd(m, { proactiveness: 0 });
    const r = await runBusyScenario(m, kd, { threads: 2, baselineMs: 100 });
    expect(r.threads).toBe(2);
    expect(r.workloadPages).toBeGreaterThan(7000);
    expect(r.pagesVerified).toBe(r.workloadPages);
    expect(r.baselinePagesPerSec).toBeGreaterThan(0);
    expect(r.duringPagesPerSec).toBeGreaterThan(0);
    expect(r.compaction).toMatchObject({ trigger: 'proactive', mode: 'MIGRATE_SYNC_LIGHT' });
    expect(r.compaction.pagesMigrated).toBeGreaterThan(1000);
    expect(r.compaction.offload.migrator).toBe('cpu-serial');
    expect(r.workload.map((w) => w.errors)).toEqual([0, 0]);
    // The threads' TLBs were shot down for the pages that moved.
    expect(r.workload.every((w) => w.tlbFlushes > 0)).toBe(true);
    // The knob is back to what it was; the process is gone.
    expect(m.kernel.vm.compaction_proactiveness).toBe(0);
    m.checkInvariants();
  });
});
