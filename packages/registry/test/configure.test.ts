import type { Machine } from '@pagemig/core';
import { createMigrator } from '@pagemig/migrator-cpu-serial';
import { afterEach, describe, expect, it } from 'vitest';
import { createRegistry } from '../src/index.js';
import { caught, fixtures, migrateAndVerify, smallMachine } from './helpers.js';

let m: Machine | undefined;
afterEach(async () => {
  await m?.close();
  m = undefined;
});

const reg = () => createRegistry({ root: fixtures });

describe('configure', () => {
  it('routes compaction to one migrator and registers another as the default', async () => {
    m = await smallMachine();
    const r = reg();
    const out = await r.configure(m, {
      default: { id: 'cpu-serial', options: { checkEvery: 16 }, reasons: 'all' },
      routes: { compaction: { id: 'fake', options: { channels: 2 } } },
    });
    const routing = m.offload.routing();
    expect(routing.compaction).toBe('fake');
    expect(routing.syscall_or_cpuset).toBe('cpu-serial');
    expect(routing.numa_misplaced).toBe('cpu-serial');
    expect(m.offload.active?.name).toBe('cpu-serial');
    expect(out.default?.name).toBe('cpu-serial');
    expect(out.routes.compaction?.name).toBe('fake');
    expect(out.migrators.map((x) => x.name)).toEqual(['cpu-serial', 'fake']);
    // The route is real: a compaction migration goes through the fake migrator.
    const { result, pages } = await migrateAndVerify(m, 'compaction', 3);
    expect(result.offload).toMatchObject({ migrator: 'fake', foliosCopied: pages });
    const other = await migrateAndVerify(m, 'syscall_or_cpuset', 4);
    expect(other.result.offload.migrator).toBe('cpu-serial');
  });

  it('loads each (id, options) once and takes a reason list for the default', async () => {
    m = await smallMachine();
    const out = await reg().configure(m, {
      default: { id: 'fake', reasons: 'numa_misplaced,demotion' },
      routes: { compaction: { id: 'fake' }, damon: { id: 'pagemig-migrator-fake' } },
    });
    expect(out.migrators).toHaveLength(1);
    expect(out.routes.compaction).toBe(out.default);
    expect(m.offload.reasonMask).toBe('numa_misplaced,demotion');
    const routing = m.offload.routing();
    expect(routing).toMatchObject({
      compaction: 'fake',
      damon: 'fake',
      demotion: 'fake',
      syscall_or_cpuset: null,
    });
  });

  it('uses registered objects by name', async () => {
    m = await smallMachine();
    const r = reg();
    const own = r.register({ ...createMigrator(), name: 'my-copy' });
    const out = await r.configure(m, { routes: { demotion: { id: 'my-copy' } } });
    expect(out.routes.demotion).toBe(own);
    expect(out.default).toBeNull();
    expect(m.offload.routing().demotion).toBe('my-copy');
  });

  it('rejects bad shapes, naming the field', async () => {
    m = await smallMachine();
    const cases: [unknown, string][] = [
      [null, 'configure: config:'],
      [{ default: { id: 3 } }, 'configure: default.id:'],
      [{ default: { id: '' } }, 'configure: default.id:'],
      [{ default: { id: 'fake', reasons: true } }, 'configure: default.reasons:'],
      [{ default: { id: 'fake', option: {} } }, 'configure: default:'],
      [{ routes: { compaction: { id: 'fake', options: 7 } } }, 'configure: routes.compaction.options:'],
      [{ routes: { compaction: 'fake' } }, 'configure: routes.compaction:'],
      [{ routes: [] }, 'configure: routes:'],
      [{ defaults: {} }, 'configure: config:'],
    ];
    for (const [config, prefix] of cases) {
      const e = await caught(() => reg().configure(m!, config as never));
      expect(e.code, JSON.stringify(config)).toBe('ERR_INVALID_CONFIG');
      expect(e.message.startsWith(prefix), `${e.message} should start with ${prefix}`).toBe(true);
    }
    const unknownKey = await caught(() => reg().configure(m!, { defaults: {} } as never));
    expect(unknownKey.message).toContain('defaults');
    const machine = await caught(() => reg().configure({} as never, {}));
    expect(machine.code).toBe('ERR_INVALID_CONFIG');
    expect(m.offload.active).toBeNull();
  });

  it('unknown reasons are core’s EINVAL, before anything is loaded or wired', async () => {
    m = await smallMachine();
    const route = await caught(() =>
      reg().configure(m!, { default: { id: 'cpu-serial' }, routes: { compacton: { id: 'fake' } } as never }),
    );
    expect(route.code).toBe('EINVAL');
    expect(route.errno).toBe(22);
    expect(route.message).toContain('routes.compacton');
    expect(route.message).toContain('unknown migrate reason "compacton"');
    expect(route.message).toContain('did you mean "compaction"?');
    const mask = await caught(() => reg().configure(m!, { routes: { all: { id: 'fake' } } as never }));
    expect(mask.code).toBe('EINVAL');
    expect(mask.message).toContain('one migrate reason');
    const reasons = await caught(() =>
      reg().configure(m!, { default: { id: 'fake', reasons: 'compaction,bogus' } }),
    );
    expect(reasons.code).toBe('EINVAL');
    expect(reasons.message).toContain('default.reasons');
    expect(m.offload.active).toBeNull();
    expect(Object.values(m.offload.routing()).every((v) => v === null)).toBe(true);
  });

  it('load errors surface before the machine is touched', async () => {
    m = await smallMachine();
    const e = await caught(() =>
      reg().configure(m!, { default: { id: 'cpu-serial' }, routes: { compaction: { id: 'nvme-dma' } } }),
    );
    expect(e.code).toBe('ERR_MIGRATOR_NOT_INSTALLED');
    expect(m.offload.active).toBeNull();
  });

  it('one driver with two option sets gets two instances, the second as <name>#2', async () => {
    m = await smallMachine();
    const out = await reg().configure(m, {
      default: { id: 'cpu-serial' },
      routes: {
        compaction: { id: 'cpu-serial', options: { checkEvery: 2 } },
        demotion: { id: 'cpu-serial' },
        damon: { id: 'cpu-serial', options: { checkEvery: 2 } },
      },
    });
    expect(out.migrators.map((x) => x.name)).toEqual(['cpu-serial', 'cpu-serial#2']);
    expect(out.routes.demotion).toBe(out.default);
    expect(out.routes.damon).toBe(out.routes.compaction);
    expect(m.offload.routing()).toMatchObject({
      syscall_or_cpuset: 'cpu-serial',
      demotion: 'cpu-serial',
      compaction: 'cpu-serial#2',
      damon: 'cpu-serial#2',
    });
    const { result, pages } = await migrateAndVerify(m, 'compaction', 3);
    expect(result.offload).toMatchObject({ migrator: 'cpu-serial#2', foliosCopied: pages });
    const other = await migrateAndVerify(m, 'syscall_or_cpuset', 4);
    expect(other.result.offload.migrator).toBe('cpu-serial');
  });

  it('the machine’s own errors pass through (EBUSY when a default is registered)', async () => {
    m = await smallMachine();
    await m.offload.register(createMigrator(), 'all');
    const e = await caught(() => reg().configure(m!, { default: { id: 'fake' } }));
    expect(e.code).toBe('EBUSY');
  });
});
