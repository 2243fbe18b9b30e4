/**
 * The events a machine has (/sys/kernel/tracing/available_events): core's from boot, a daemon's
 * once defined. Enabling, disabling or listening to an event the machine does not have is EINVAL
 * (as writing it to set_event is), so a misspelt name is an error instead of a trace that stays
 * silent.
 */
import { describe, expect, it } from 'vitest';
import { EINVAL } from '../src/errno.js';
import { MPOL_MF_MOVE } from '../src/mempolicy.js';
import { CORE_TRACE_EVENTS } from '../src/migrate_trace.js';
import { PAGE_SIZE } from '../src/mmzone.js';
import { catchPagemig, machinesCheckedAfterEach, pattern } from './helpers.js';

const machine = machinesCheckedAfterEach();

describe('available events', () => {
  it("lists core's events at boot, sorted as system:event", async () => {
    const m = await machine();
    expect(m.trace.availableEvents()).toEqual([
      'migrate:mm_migrate_pages',
      'migrate:mm_migrate_pages_start',
      'migrate:remove_migration_pte',
      'migrate:set_migration_pte',
      'pagemig:migrate_phases',
    ]);
  });

  it('every event a migration emits is one of them', async () => {
    const m = await machine();
    m.trace.enable('*');
    const p = m.spawn();
    const a = p.mmap(4 * PAGE_SIZE, { node: 0 });
    const data = pattern(4, 3);
    p.write(a, data);
    const status = [0, 0, 0, 0];
    await p.movePages(
      0,
      [0, 1, 2, 3].map((i) => a + i * PAGE_SIZE),
      [1, 1, 1, 1],
      MPOL_MF_MOVE,
      status,
    );
    expect([...status]).toEqual([1, 1, 1, 1]);
    expect(p.read(a, 4 * PAGE_SIZE)).toEqual(data);
    const emitted = new Set(m.trace.events().map((r) => r.name));
    const core = Object.entries(CORE_TRACE_EVENTS).flatMap(([s, es]) => es.map((e) => `${s}:${e}`));
    expect([...emitted].sort()).toEqual(core.sort());
  });

  it('define() adds a system, is idempotent, and refuses names that are not identifiers', async () => {
    const m = await machine();
    m.trace.define('compaction', ['mm_compaction_begin', 'mm_compaction_end']);
    m.trace.define('compaction', ['mm_compaction_begin']);
    expect(m.trace.availableEvents().filter((e) => e.startsWith('compaction:'))).toEqual([
      'compaction:mm_compaction_begin',
      'compaction:mm_compaction_end',
    ]);
    for (const [system, events] of [
      ['a:b', ['x']],
      ['sys', ['x y']],
      ['sys', 'x'],
      [7, ['x']],
      ['sys', [null]],
    ] as const) {
      const e = catchPagemig(() => m.trace.define(system as never, events as never));
      expect(e).toMatchObject({ code: 'ERR_INVALID_ARGUMENT', errno: EINVAL });
      expect(e.message).toMatch(/^trace\.define\(.*(is not a system or event name|must be an array)/);
    }
    expect(catchPagemig(() => m.trace.define('sys', null as never)).message).toBe(
      'trace.define("sys", null): the events must be an array of names',
    );
    expect(catchPagemig(() => m.trace.define('sys', ['ok', undefined] as never)).message).toBe(
      'trace.define("sys", ["ok",null]): undefined is not a system or event name (letters, digits and _)',
    );
    // Nothing of a refused definition stays.
    expect(m.trace.availableEvents().some((e) => e.startsWith('sys:'))).toBe(false);
  });

  it('an event that fires exists from then on, even if no code defined it', async () => {
    const m = await machine();
    m.trace.emit('test', 'tick', { i: 1 }, 'i=1');
    expect(m.trace.availableEvents()).toContain('test:tick');
    const seen: number[] = [];
    m.trace.on('tick', (r) => seen.push(r.fields.i as number));
    m.trace.emit('test', 'tick', { i: 2 }, 'i=2');
    m.trace.disable('test');
    m.trace.emit('test', 'tick', { i: 3 }, 'i=3');
    expect(seen).toEqual([2]);
  });
});

describe('names the machine does not have', () => {
  it('enable, disable and on refuse them with EINVAL and the closest event', async () => {
    const m = await machine();
    const e = catchPagemig(() => m.trace.enable('migrate:mm_migrate_page'));
    expect(e).toMatchObject({ code: 'ERR_INVALID_ARGUMENT', errno: EINVAL });
    expect(e.message).toBe(
      'trace.enable: this machine has no event "migrate:mm_migrate_page" (did you mean "migrate:mm_migrate_pages"?); m.trace.availableEvents() lists its events, and a daemon\'s events exist once the daemon is attached',
    );
    expect(catchPagemig(() => m.trace.disable('migrat')).message).toMatch(
      /^trace\.disable: this machine has no system or event "migrat" \(did you mean "migrate"\?\)/,
    );
    expect(catchPagemig(() => m.trace.on('mm_migrate_page', () => {})).message).toMatch(
      /^trace\.on: this machine has no system or event "mm_migrate_page" \(did you mean "mm_migrate_pages"\?\)/,
    );
    // A daemon's system before the daemon is attached: no hint, but the reason.
    expect(catchPagemig(() => m.trace.enable('vmscan')).message).toMatch(
      /no system or event "vmscan"; .*a daemon's events exist once the daemon is attached$/,
    );
    // enable takes no bare event name (events/<name>/enable is a system's directory), on does.
    expect(catchPagemig(() => m.trace.enable('mm_migrate_pages')).errno).toBe(EINVAL);
    const off = m.trace.on('mm_migrate_pages', () => {});
    off();
  });

  it('a refused name changes no switch: what was recorded still is', async () => {
    const m = await machine();
    m.trace.disable('pagemig');
    for (const bad of ['*x', 'migrate:nope', 'nope'])
      expect(catchPagemig(() => m.trace.disable(bad)).errno).toBe(EINVAL);
    expect(m.trace.isEnabled('migrate:mm_migrate_pages')).toBe(true);
    expect(m.trace.isEnabled('pagemig:migrate_phases')).toBe(false);
    expect(m.trace.isEnabled('migrate:set_migration_pte')).toBe(false);
  });

  it('reading the buffer with a name nothing emitted finds nothing, as grep on the trace file would', async () => {
    const m = await machine();
    expect(m.trace.events('vmscan')).toEqual([]);
    expect(m.trace.lines('migrate:nope')).toEqual([]);
  });
});
