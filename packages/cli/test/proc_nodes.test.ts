import { describe, expect, it } from 'vitest';
import { run, tempDir } from './helpers.js';

/**
 * `pagemig proc` on a machine with a memory-less node (memory 0) and a CPU-less one (cpus 0):
 * the kernel prints no buddyinfo line and no zoneinfo block for a node without memory
 * (frag_show walks populated zones only).
 */
const config = JSON.stringify({
  machine: {
    nodes: [{ memory: '32MiB' }, { memory: '32MiB', tier: 'cxl', cpus: 0 }, { memory: 0 }],
  },
});

describe('pagemig proc with memory-less and CPU-less nodes', () => {
  it('buddyinfo and zoneinfo list nodes 0 and 1 only', async () => {
    const cwd = tempDir({ 'pagemig.config.json': config });
    const buddy = await run(['proc', 'buddyinfo', '--scenario', 'idle'], { cwd });
    expect(buddy).toMatchObject({ code: 0, stderr: '' });
    const lines = buddy.stdout.split('\n');
    expect(lines).toHaveLength(3);
    expect(lines[0]).toMatch(/^Node 0, zone {3}Normal( +\d+){11} $/);
    expect(lines[1]).toMatch(/^Node 1, zone {3}Normal( +\d+){11} $/);
    const zoneinfo = await run(['proc', 'zoneinfo', '--scenario', 'idle'], { cwd });
    expect(zoneinfo.code).toBe(0);
    expect(zoneinfo.stdout.match(/^Node \d+, zone/gm)).toEqual(['Node 0, zone', 'Node 1, zone']);
  });

  it('the migrate scenario between the CPU node and the CXL node', async () => {
    const cwd = tempDir({ 'pagemig.config.json': config });
    const r = await run(['proc', 'vmstat', '--json'], { cwd });
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout).text).toMatch(/^pgmigrate_success 4096$/m);
  });

  it('a bad cpus count names the field (exit 4)', async () => {
    const cwd = tempDir({
      'pagemig.config.json': JSON.stringify({ machine: { nodes: [{ memory: '32MiB', cpus: -1 }] } }),
    });
    const r = await run(['proc', 'buddyinfo', '--scenario', 'idle'], { cwd });
    expect(r.code).toBe(4);
    expect(r.stderr).toMatch(/machine\.nodes\[0\]\.cpus/);
  });
});
