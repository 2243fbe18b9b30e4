import type { Machine, Migrator } from '@pagemig/core';
import { createMigrator as cpuMultithreaded } from '@pagemig/migrator-cpu-multithreaded';
import { createMigrator as cpuSerial } from '@pagemig/migrator-cpu-serial';
import { createMigrator as ptdma } from '@pagemig/migrator-ptdma';
import { createMigrator as sdxi } from '@pagemig/migrator-sdxi';
import { afterEach, describe, expect, it } from 'vitest';
import { attachNumaBalancing, type NumaBalancing } from '../src/index.js';
import {
  converge,
  nodesOf,
  remoteHotSet,
  routeNumaMisplaced,
  scannedAll,
  smallMachine,
  stopAndVerify,
  until,
} from './helpers.js';

let m: Machine | undefined;
let nb: NumaBalancing | undefined;
afterEach(async () => {
  await nb?.stop();
  if (m && !m.closed) {
    m.checkInvariants();
    await m.close();
  }
  nb = undefined;
  m = undefined;
});

const HOT = 64;
const COLD = 192;

describe('a thread on node 1 that keeps writing pages on node 0', () => {
  it('the pages it touches take hinting faults and move, the others stay; counters exact', async () => {
    m = await smallMachine();
    // One pass covers the whole area (1 MB = 256 pages) and the next would come a minute later.
    nb = attachNumaBalancing(m, { scanDelayMs: 0, scanPeriodMs: 60_000, scanSizeMb: 1 });
    const s = remoteHotSet(m, HOT, COLD);
    const v0 = m.vmstat();
    expect(m.sysctl.write('kernel.numa_balancing', '1')).toBe(0);
    await converge(s, nb);
    const v1 = m.vmstat();
    const d = (c: keyof typeof v0) => v1[c] - v0[c];
    expect({
      numa_pte_updates: d('numa_pte_updates'),
      numa_huge_pte_updates: d('numa_huge_pte_updates'),
      numa_hint_faults: d('numa_hint_faults'),
      numa_hint_faults_local: d('numa_hint_faults_local'),
      numa_pages_migrated: d('numa_pages_migrated'),
      pgmigrate_success: d('pgmigrate_success'),
      pgmigrate_fail: d('pgmigrate_fail'),
    }).toEqual({
      numa_pte_updates: HOT + COLD,
      numa_huge_pte_updates: 0,
      numa_hint_faults: HOT,
      numa_hint_faults_local: 0,
      numa_pages_migrated: HOT,
      pgmigrate_success: HOT,
      pgmigrate_fail: 0,
    });
    const st = nb.stats();
    expect(st).toMatchObject({
      counters: { numa_pte_updates: HOT + COLD, numa_hint_faults: HOT, numa_pages_migrated: HOT },
      scans: 1,
      ptesUpdated: HOT + COLD,
      migrations: HOT,
      pagesMigrated: HOT,
      pagesFailed: 0,
      foliosCopied: 0,
      migrator: null,
    });
    expect(st.processes).toEqual([
      expect.objectContaining({ pid: s.p.pid, comm: 'app', scans: 1, hintFaults: HOT, pagesMigrated: HOT }),
    ]);
    // migrate_misplaced_folio is one migrate_pages call per fault, as in the kernel.
    const lines = m.trace.lines('migrate:mm_migrate_pages');
    expect(lines.filter((l) => l.endsWith('mode=MIGRATE_ASYNC reason=numa_misplaced'))).toHaveLength(HOT);
    // The faults ran as the thread: its tid and its process's comm label the migrations.
    expect(lines.at(-1)).toMatch(new RegExp(`^ +app-${s.thread.tid} `));
    expect(nodesOf(s.p, s.addr, HOT).every((n) => n === 1)).toBe(true);
    expect(nodesOf(s.p, s.addr + HOT * 4096, COLD).every((n) => n === 0)).toBe(true);
    await nb.stop();
    await stopAndVerify(s);
    // The cold pages never moved: reading them after stop() takes no hinting fault.
    expect(m.vmstat().numa_hint_faults).toBe(v1.numa_hint_faults);
  });

  const migrators: [string, () => Migrator][] = [
    ['cpu-serial', () => cpuSerial()],
    ['cpu-multithreaded', () => cpuMultithreaded({ threads: 2 })],
    ['ptdma', () => ptdma({ channels: 2 })],
    ['sdxi', () => sdxi({ channels: 2 })],
  ];
  for (const [name, make] of migrators) {
    it(`converges with ${name} routed for numa_misplaced, which copies the folios`, async () => {
      m = await smallMachine();
      await routeNumaMisplaced(m, make());
      nb = attachNumaBalancing(m, { scanDelayMs: 0, scanPeriodMs: 20, scanSizeMb: 1 });
      const s = remoteHotSet(m, HOT, COLD);
      m.sysctl.write('kernel.numa_balancing', '1');
      await converge(s, nb);
      const st = nb.stats();
      expect(st.counters.numa_pages_migrated).toBe(HOT);
      expect(st.counters.numa_hint_faults).toBeGreaterThanOrEqual(HOT);
      expect(st.counters.numa_hint_faults_local).toBe(0);
      expect(st.pagesMigrated).toBe(HOT);
      expect(st.migrator).toBe(name);
      expect(st.foliosCopied).toBe(HOT);
      expect(st.phases.batchCopy).toBeGreaterThan(0);
      expect(nodesOf(s.p, s.addr + HOT * 4096, COLD).every((n) => n === 0)).toBe(true);
      await nb.stop();
      await stopAndVerify(s);
    });
  }
});

describe('kernel.numa_balancing', () => {
  it('0 (the default): no scanning; writing 1 starts it', async () => {
    m = await smallMachine();
    nb = attachNumaBalancing(m, { scanDelayMs: 0, scanPeriodMs: 10, scanSizeMb: 1 });
    const s = remoteHotSet(m, 16, 16);
    await new Promise((r) => setTimeout(r, 200));
    expect(m.vmstat().numa_pte_updates).toBe(0);
    expect(nb.stats().scans).toBe(0);
    expect(s.p.pageInfo(s.addr)!.protnone).toBe(false);
    m.sysctl.write('kernel.numa_balancing', '1');
    await until(() => scannedAll(s), 30_000, 'the first scan');
    expect(m.vmstat().numa_pte_updates).toBeGreaterThan(0);
    await stopAndVerify(s);
  });

  it('back to 0: the scanner stops; entries it left PROT_NONE still fault once', async () => {
    m = await smallMachine();
    nb = attachNumaBalancing(m, { scanDelayMs: 0, scanPeriodMs: 10, scanSizeMb: 1 });
    const p = m.spawn({ node: 0 });
    const a = p.mmap(8 * 4096, { thp: 'never' });
    p.touch(a, 8 * 4096, 'write');
    // A thread keeps the process running (so it is scanned); it writes the first page only.
    const t = p.spawnThread({
      workload: { kind: 'pattern', addr: a, bytes: 4096, lanes: 1, lane: 0 },
      node: 1,
    });
    m.sysctl.write('kernel.numa_balancing', '1');
    await until(() => p.pageInfo(a + 7 * 4096)!.protnone, 30_000, 'a scan of the last page');
    m.sysctl.write('kernel.numa_balancing', '0');
    await nb.settled();
    const updates = m.vmstat().numa_pte_updates;
    await new Promise((r) => setTimeout(r, 100));
    expect(m.vmstat().numa_pte_updates).toBe(updates);
    const faults = m.vmstat().numa_hint_faults;
    p.touch(a + 7 * 4096, 1, 'read');
    expect(m.vmstat().numa_hint_faults).toBe(faults + 1);
    t.stop();
    await t.join();
  });
});

describe('stop()', () => {
  it('makes every PROT_NONE entry accessible again and leaves a consistent machine', async () => {
    m = await smallMachine();
    nb = attachNumaBalancing(m, { scanDelayMs: 0, scanPeriodMs: 10, scanSizeMb: 1 });
    const s = remoteHotSet(m, 16, 64);
    m.sysctl.write('kernel.numa_balancing', '1');
    await until(() => scannedAll(s), 30_000, 'a full scan');
    await nb.stop();
    await nb.stop(); // idempotent
    for (let i = 0; i < 80; i++) expect(s.p.pageInfo(s.addr + i * 4096)!.protnone).toBe(false);
    m.checkInvariants();
    const updates = m.vmstat().numa_pte_updates;
    await new Promise((r) => setTimeout(r, 60));
    expect(m.vmstat().numa_pte_updates).toBe(updates);
    await stopAndVerify(s);
    // Detached: a new instance may attach.
    nb = attachNumaBalancing(m);
  });

  it('the machine closing stops it', async () => {
    m = await smallMachine();
    nb = attachNumaBalancing(m, { scanDelayMs: 0 });
    m.sysctl.write('kernel.numa_balancing', '1');
    await m.close();
    expect(nb.stats().scans).toBe(0);
  });
});
