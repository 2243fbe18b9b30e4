import {
  DRIVER_FAULT_SITES,
  type DriverFaultSite,
  type FaultPlan,
  type FaultRule,
  type Machine,
  type MigrateOptions,
  type Migrator,
  PAGE_SIZE,
} from '@pagemig/core';
import {
  checkRegion,
  machineChecksum,
  migrateRegion,
  populateRegion,
  regionNodes,
  type TestRegion,
} from '../fixtures.js';
import { expectDeclined, GATED_REGION_PAGES, gatedRegion, thpFor } from '../offload_gate.js';
import type { Suite } from '../suite.js';

type Run = (m: Machine, r: TestRegion, opts: Omit<MigrateOptions, 'node'>) => Promise<void>;

/** Driver sites the suite injects, run only for migrators that declare them. */
const DRIVER_RULES: Record<DriverFaultSite, FaultRule[]> = {
  copy_batch: [{ site: 'copy_batch', action: 'throw' }],
  copy_row: [{ site: 'copy_row', action: 'garbage', nth: 3 }],
  device_error: [{ site: 'device_error', nth: 5, code: 'EIO' }],
  device_hang: [{ site: 'device_hang', nth: 5, timeoutMs: 20 }],
  worker_exit: [{ site: 'worker_exit', nth: 2 }],
};

const title = (rule: FaultRule) =>
  `engine site ${rule.site}${rule.action ? ` (${rule.action})` : ''}: every folio mapped once, bytes intact`;

/**
 * Injects `rules` and runs `check` on a region of up to `folios` folios that the migrator's gate
 * accepts. A fault of the migrator's path cannot fire in a batch the gate declines, so when it
 * declines every region, the decline itself is checked and no fault may fire.
 */
async function onGatedRegion(
  s: Suite,
  m: Machine,
  mig: Migrator,
  spec: { folios: number; seed: number; rules: FaultRule[] },
  check: (r: TestRegion, plan: FaultPlan, opts: Omit<MigrateOptions, 'node'>) => Promise<void>,
): Promise<void> {
  const gated = gatedRegion(mig, spec.folios);
  if (!gated) {
    const plan = m.injectFaults(spec.rules)!;
    await expectDeclined(s.expect, m, mig, spec.folios);
    s.expect(plan.fired()).toBe(0);
    return;
  }
  const r = populateRegion(m, {
    bytes: (gated.folios << gated.order) * PAGE_SIZE,
    thp: thpFor(gated.order),
    seed: spec.seed,
  });
  await check(r, m.injectFaults(spec.rules)!, { reason: gated.reason });
}

/** faults/*: the engine's fault sites, and the driver sites the migrator declares. */
export function faultCases(s: Suite): void {
  const { expect, factory } = s;
  // Gated regions of large folios must still be one batch (migrator_call-partial counts on it).
  const gatedMachine = { migrationBatchPages: GATED_REGION_PAGES };

  // Sites before the copy: the migrator is registered but the fault never reaches it.
  const engine: [string, FaultRule[], Run][] = [
    [
      'faults/alloc_dst',
      [{ site: 'alloc_dst', nth: 3 }],
      async (m, r) => {
        const res = await migrateRegion(m, r, 1);
        expect({ ret: res.ret, nrSucceeded: res.nrSucceeded }).toEqual({ ret: -12, nrSucceeded: 2 });
      },
    ],
    [
      'faults/unmap_pin',
      [{ site: 'unmap_pin', times: Number.POSITIVE_INFINITY, match: { order: 0 } }],
      async (m, r) => {
        const res = await migrateRegion(m, r, 1);
        expect(res.ret).toBe(r.heads.length);
        expect(regionNodes(r)).toEqual([0]);
        expect(m.vmstat().pgmigrate_fail).toBe(r.heads.length);
      },
    ],
  ];
  // The engine's call of the migrator misbehaves: only batches the gate accepts are called.
  const migratorCall: [string, FaultRule[], Run][] = [
    [
      'faults/migrator_call-throw',
      [{ site: 'migrator_call', action: 'throw' }],
      async (m, r, opts) => {
        const res = await migrateRegion(m, r, 1, opts);
        expect({
          ret: res.ret,
          failures: res.offload.failures,
          copied: res.offload.foliosCopied,
        }).toEqual({
          ret: 0,
          failures: 1,
          copied: 0,
        });
      },
    ],
    [
      'faults/migrator_call-partial',
      [{ site: 'migrator_call', action: 'partial' }],
      async (m, r, opts) => {
        const res = await migrateRegion(m, r, 1, opts);
        expect(res.ret).toBe(0);
        expect(res.offload.foliosCopied).toBeLessThanOrEqual(Math.ceil(r.heads.length / 2));
      },
    ],
    [
      'faults/migrator_call-hang',
      [{ site: 'migrator_call', action: 'hang' }],
      async (m, r, opts) => {
        const res = await migrateRegion(m, r, 1, { ...opts, copyTimeoutMs: 20, abortGraceMs: 20 });
        expect({ ret: res.ret, failures: res.offload.failures }).toEqual({ ret: 0, failures: 1 });
        expect(typeof m.offload.status()[0]?.disabled).toBe('string');
      },
    ],
  ];

  s.describe('fault plan', () => {
    for (const [id, rules, run] of engine) {
      s.test(id, title(rules[0]!), () =>
        s.withMachine(async (m) => {
          const r = populateRegion(m, { bytes: 16 * PAGE_SIZE, thp: 'never', seed: 31 });
          const plan = m.injectFaults(rules)!;
          await run(m, r, {});
          expect(plan.fired()).toBeGreaterThan(0);
          expect(checkRegion(m, r)).toEqual([]);
        }),
      );
    }

    for (const [id, rules, run] of migratorCall) {
      s.test(id, title(rules[0]!), () =>
        s.withMachine(
          (m, mig) =>
            onGatedRegion(s, m, mig, { folios: 16, seed: 31, rules }, async (r, plan, opts) => {
              await run(m, r, opts);
              expect(plan.fired()).toBeGreaterThan(0);
              expect(checkRegion(m, r)).toEqual([]);
            }),
          gatedMachine,
        ),
      );
    }

    // Driver sites: only those the migrator declares it honours.
    for (const site of DRIVER_FAULT_SITES) {
      const pruned = s.caps !== undefined && !(s.caps.faultSites ?? []).includes(site);
      s.test(
        `faults/${site}`,
        `driver site ${site} (declared in capabilities.faultSites)`,
        async () => {
          const probe = await factory();
          const declared = (probe.capabilities.faultSites ?? []).includes(site);
          await probe.dispose();
          if (!declared) return;
          await s.withMachine(
            (m, mig) =>
              onGatedRegion(
                s,
                m,
                mig,
                { folios: 32, seed: 41, rules: DRIVER_RULES[site] },
                async (r, plan, opts) => {
                  const before = machineChecksum(m);
                  const res = await migrateRegion(m, r, 1, { ...opts, copyTimeoutMs: 5000 });
                  expect(res.ret).toBe(0);
                  expect(plan.fired(site)).toBeGreaterThan(0);
                  // Whatever the driver did, the engine copied what it did not mark.
                  expect(res.offload.foliosCopied).toBeLessThanOrEqual(r.heads.length - 1);
                  expect(regionNodes(r)).toEqual([1]);
                  expect(checkRegion(m, r)).toEqual([]);
                  expect(machineChecksum(m)).toBe(before);
                },
              ),
            gatedMachine,
          );
        },
        pruned,
      );
    }
  });
}
