import { expect, it } from 'vitest';
import { runCompactionBusySystem } from '../src/main.js';

it('compacts under a working user thread with cpu-serial and with PTDMA, losing nothing', async () => {
  const r = await runCompactionBusySystem();
  expect(r.runs.map((x) => x.migrator)).toEqual(['cpu-serial', 'ptdma']);
  for (const x of r.runs) {
    // A 128 MiB node half in use in 64 KiB pieces: thousands of pages move, through the migrator.
    expect(x.pagesMigrated).toBeGreaterThan(5000);
    expect(x.foliosCopiedByMigrator).toBeGreaterThan(0);
    expect(x.foliosCopiedByMigrator).toBeLessThanOrEqual(x.pagesMigrated);
    expect(x.engineCpuMs).toBeGreaterThan(0);
    // The scenario checked every page of the workload region and every write of the thread.
    expect(x.pagesVerified).toBeGreaterThan(5000);
    expect(x.lostWrites).toBe(0);
  }
  // The comparison is normalised per page, so the two runs need not migrate the same count.
  const [serial, dma] = r.runs as [(typeof r.runs)[0], (typeof r.runs)[0]];
  expect(r.freedMs).toBeCloseTo(
    ((serial.engineCpuUsPerPage - dma.engineCpuUsPerPage) * dma.pagesMigrated) / 1e3,
    6,
  );
});
