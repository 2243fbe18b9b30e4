import { describe, expect, it } from 'vitest';
import { run } from './helpers.js';

const tiny = ['--node-memory', '32MiB'];

describe('pagemig proc numa_maps', () => {
  it("prints every live process's /proc/PID/numa_maps after the scenario, head(1)-style", async () => {
    const r = await run(['proc', 'numa_maps', ...tiny]);
    expect(r.code).toBe(0);
    // The migrate scenario leaves its two processes mapped: 8 MiB of 4 KiB pages and 8 MiB of THPs,
    // each area bound to node 0 (mmap node: 0) and migrated to node 1 by migrate_pages(2).
    const files = r.stdout.split(/\n(?===> )/);
    expect(files).toHaveLength(2);
    expect(files[0]).toMatch(
      /^==> \/proc\/\d+\/numa_maps <==\n7f[0-9a-f]{10} bind:0 anon=2048 dirty=2048 active=0 N1=2048 kernelpagesize_kB=4\n$/,
    );
    expect(files[1]).toMatch(
      /^==> \/proc\/\d+\/numa_maps <==\n7f[0-9a-f]{10} bind:0 anon=2048 dirty=2048 active=0 N1=2048 kernelpagesize_kB=4\n$/,
    );
  });

  it('--pid prints one file as the kernel has it; --json gives each process', async () => {
    const all = JSON.parse((await run(['proc', 'numa_maps', ...tiny, '--json'])).stdout);
    expect(all).toMatchObject({ command: 'proc', ok: true, file: '/proc/*/numa_maps', scenario: 'migrate' });
    expect(all.processes).toHaveLength(2);
    const [first] = all.processes;
    expect(first).toMatchObject({ comm: 'pagemig', file: `/proc/${first.pid}/numa_maps` });
    const one = await run(['proc', 'numa_maps', ...tiny, '--pid', String(first.pid)]);
    expect(one.code).toBe(0);
    expect(one.stdout).toBe(first.text);
    expect(one.stdout).toMatch(
      /^7f[0-9a-f]{10} bind:0 anon=2048 dirty=2048 active=0 N1=2048 kernelpagesize_kB=4\n$/,
    );
  });

  it('refuses a pid that is not alive, and --pid for a file that is not per process (exit 2)', async () => {
    const none = await run(['proc', 'numa_maps', ...tiny, '--scenario', 'idle', '--pid', '5']);
    expect(none.code).toBe(2);
    expect(none.stderr).toBe('pagemig proc: --pid: no process 5 is alive after the scenario; live: none\n');
    const other = await run(['proc', 'vmstat', '--pid', '1']);
    expect(other.code).toBe(2);
    expect(other.stderr).toBe('pagemig proc: --pid: only numa_maps is per process\n');
    const bad = await run(['proc', 'numa_maps', '--pid', 'x']);
    expect(bad.code).toBe(2);
  });
});
