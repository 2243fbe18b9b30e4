import { describe, expect, it } from 'vitest';
import { run } from './helpers.js';

const tiny = ['--node-memory', '32MiB'];

describe('pagemig proc', () => {
  it('prints /proc/buddyinfo in the kernel format after the migrate scenario', async () => {
    const r = await run(['proc', 'buddyinfo', ...tiny]);
    expect(r.code).toBe(0);
    const lines = r.stdout.split('\n');
    expect(lines).toHaveLength(3);
    expect(lines[2]).toBe('');
    expect(lines[0]).toMatch(/^Node 0, zone {3}Normal( +\d+){11} $/);
    expect(lines[1]).toMatch(/^Node 1, zone {3}Normal( +\d+){11} $/);
    // The file is printed while the migrated 16 MiB is still mapped on node 1: node 1 has 16 MiB
    // less free than the idle machine's, node 0 as much as the idle machine's.
    const idle = (await run(['proc', 'buddyinfo', ...tiny, '--scenario', 'idle'])).stdout.split('\n');
    const freePages = (line: string) =>
      line
        .trim()
        .split(/ +/)
        .slice(4)
        .reduce((s, n, order) => s + Number(n) * 2 ** order, 0);
    expect(freePages(idle[1]!) - freePages(lines[1]!)).toBe(4096);
    expect(freePages(idle[0]!)).toBe(freePages(lines[0]!));
  });

  it('counts the scenario in /proc/vmstat (JSON)', async () => {
    const r = await run(['proc', 'vmstat', ...tiny, '--json']);
    expect(r.code).toBe(0);
    const doc = JSON.parse(r.stdout);
    expect(doc).toMatchObject({
      schemaVersion: 1,
      command: 'proc',
      ok: true,
      file: '/proc/vmstat',
      scenario: 'migrate',
    });
    // Two 8 MiB migrations: 2048 + 2048 base pages.
    expect(doc.text).toMatch(/^pgmigrate_success 4096$/m);
    const idle = JSON.parse((await run(['proc', 'vmstat', ...tiny, '--scenario', 'idle', '--json'])).stdout);
    expect(idle.text).toMatch(/^pgmigrate_success 0$/m);
  });

  it('rejects an unknown file and an unknown scenario with exit 2', async () => {
    const file = await run(['proc', 'meminfo']);
    expect(file.code).toBe(2);
    expect(file.stderr).toMatch(
      /^error: command-argument value 'meminfo' is invalid for argument 'file'\. Allowed choices are buddyinfo, pagetypeinfo, vmstat, zoneinfo, numa_maps\./,
    );
    const scenario = await run(['proc', 'vmstat', '--scenario', 'busy']);
    expect(scenario.code).toBe(2);
    expect(scenario.stderr).toBe(
      'pagemig proc: --scenario: unknown scenario "busy"; use one of migrate, compact, idle\n',
    );
  });
});

describe('pagemig trace', () => {
  it('prints the migrate: tracepoint lines of the scenario', async () => {
    const r = await run(['trace', ...tiny, '--event', 'mm_migrate_pages']);
    expect(r.code).toBe(0);
    const lines = r.stdout.trimEnd().split('\n');
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatch(
      /^ +<idle>-0 +\[000\] \.\.\.\.\. +\d+\.\d{6}: mm_migrate_pages: nr_succeeded=2048 nr_failed=0 nr_thp_succeeded=0 nr_thp_failed=0 nr_thp_split=0 nr_split=0 mode=MIGRATE_SYNC reason=syscall_or_cpuset$/,
    );
    expect(lines[1]).toMatch(/mm_migrate_pages: nr_succeeded=2048 nr_failed=0 nr_thp_succeeded=4 /);
  });

  it('limits the lines and reports the total in JSON; compaction events after compact', async () => {
    const r = await run([
      'trace',
      '--nodes',
      '1',
      ...tiny,
      '--scenario',
      'compact',
      '--event',
      'compaction',
      '--limit',
      '3',
      '--json',
    ]);
    expect(r.code).toBe(0);
    const doc = JSON.parse(r.stdout);
    expect(doc).toMatchObject({
      schemaVersion: 1,
      command: 'trace',
      ok: true,
      scenario: 'compact',
      event: 'compaction',
    });
    expect(doc.lines).toHaveLength(3);
    expect(doc.total).toBeGreaterThan(3);
    expect(doc.lines[0]).toMatch(/: mm_compaction_kcompactd_sleep: nid=0$/);
    expect(doc.lines[1]).toMatch(
      /: mm_compaction_begin: zone_start=0x0 migrate_pfn=0x0 free_pfn=0x[0-9a-f]+ zone_end=0x2000, mode=sync$/,
    );
  });

  // Issue 17: the compact scenario writes vm.compact_memory from a root shell, and the write
  // returns once compact_nodes() is done, so its compaction is the shell's (sysctl_compaction_handler
  // runs in the writer's context); the per-entry migrate events are off until asked for.
  it('compact: the compaction lines are the writing shell’s; --event set_migration_pte enables it', async () => {
    const r = await run([
      'trace',
      '--nodes',
      '1',
      ...tiny,
      '--scenario',
      'compact',
      '--event',
      'mm_compaction_end',
    ]);
    expect(r.code).toBe(0);
    const lines = r.stdout.trimEnd().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^ +sh-\d+ +\[000\] \.{5} +\d+\.\d{6}: mm_compaction_end: .* status=complete$/);
    const pte = await run([
      'trace',
      ...tiny,
      '--event',
      'migrate:set_migration_pte',
      '--limit',
      '1',
      '--json',
    ]);
    expect(pte.code).toBe(0);
    const doc = JSON.parse(pte.stdout);
    // 8 MiB of 4 KiB folios (2048 entries) and 8 MiB of 2 MiB THPs (4 PMD entries).
    expect(doc.total).toBe(2048 + 4);
    expect(doc.lines[0]).toMatch(/: set_migration_pte: addr=7f[0-9a-f]+, pte=[0-9a-f]+ order=0$/);
    const all = await run(['trace', ...tiny, '--json']);
    expect(JSON.parse(all.stdout).lines.some((l: string) => l.includes('migration_pte'))).toBe(false);
  });

  // Issue 20: an unknown event printed nothing and exited 0.
  it('refuses an unknown event (exit 2) and lists the valid ones; accepts system:event', async () => {
    const r = await run(['trace', '--event', 'bogus', '--json']);
    expect(r.code).toBe(2);
    const doc = JSON.parse(r.stdout);
    expect(doc).toMatchObject({ command: 'trace', ok: false, error: { code: 'ERR_USAGE', exitCode: 2 } });
    expect(doc.error.message).toMatch(
      /^--event: unknown event "bogus"; use a system or one of its events \(or system:event\): migrate \(mm_migrate_pages_start, mm_migrate_pages, set_migration_pte, remove_migration_pte\); compaction \(mm_compaction_isolate_migratepages, .+\); pagemig \(migrate_phases\)$/,
    );
    const ok = await run(['trace', ...tiny, '--event', 'migrate:mm_migrate_pages_start']);
    expect(ok.code).toBe(0);
    expect(ok.stdout.trimEnd().split('\n')).toHaveLength(2);
  });
});
