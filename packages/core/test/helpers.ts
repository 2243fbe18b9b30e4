import { afterEach, expect } from 'vitest';
import type { MachineConfig } from '../src/config.js';
import { PagemigError } from '../src/errno.js';
import { createMachine, type Machine } from '../src/machine.js';
import { defineMigrator, type Migrator } from '../src/migrator.js';
import { PAGE_SIZE } from '../src/mmzone.js';

/** Runs `fn`, expects a PagemigError and returns it. */
export function catchPagemig(fn: () => unknown): PagemigError {
  let err: unknown;
  try {
    fn();
  } catch (e) {
    err = e;
  }
  expect(err, 'expected a PagemigError to be thrown').toBeDefined();
  expect(PagemigError.isInstance(err), `expected a PagemigError, got ${String(err)}`).toBe(true);
  return err as PagemigError;
}

/** Expects `fn` to throw a PagemigError carrying `errno` (and the errno's name as code). */
export function expectErrno(fn: () => unknown, errno: number, code?: string): PagemigError {
  const e = catchPagemig(fn);
  expect(e.errno).toBe(errno);
  if (code) expect(e.code).toBe(code);
  return e;
}

/** True when two byte arrays hold the same bytes (no deep-equality on big arrays). */
export function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return (
    Buffer.compare(
      Buffer.from(a.buffer, a.byteOffset, a.byteLength),
      Buffer.from(b.buffer, b.byteOffset, b.byteLength),
    ) === 0
  );
}

/** `pages` pages where page j is filled with a sequence seeded by `seed` and j; no byte is zero. */
export function pattern(pages: number, seed = 1): Uint8Array {
  const out = new Uint8Array(pages * PAGE_SIZE);
  for (let j = 0; j < pages; j++) {
    const base = j * PAGE_SIZE;
    for (let k = 0; k < PAGE_SIZE; k++) out[base + k] = (((j + 1) * 31 + k * 7 + seed * 13) % 251) + 1;
  }
  return out;
}

/** The bytes of `n` pages filled with one value. */
export function filled(n: number, value: number): Uint8Array {
  return new Uint8Array(n).fill(value);
}

/** True when every byte is zero. */
export function allZero(a: Uint8Array): boolean {
  for (let i = 0; i < a.length; i++) if (a[i] !== 0) return false;
  return true;
}

/**
 * The machine factory of a test file: two 32 MiB nodes, not pre-faulted, unless `config` says
 * otherwise. After each test every machine it made is checked against the model's invariants and
 * closed. Call it at the top level of the file (it registers the afterEach hook).
 */
export function machinesCheckedAfterEach(): (config?: Partial<MachineConfig>) => Promise<Machine> {
  const machines: Machine[] = [];
  afterEach(async () => {
    for (const m of machines.splice(0)) {
      m.checkInvariants();
      await m.close();
    }
  });
  return async (config = {}) => {
    const m = await createMachine({
      nodes: [{ memory: '32MiB' }, { memory: '32MiB' }],
      prefault: false,
      ...config,
    });
    machines.push(m);
    return m;
  };
}

/**
 * A migrator whose batch copy waits until the test releases it (copying nothing: the CPU copies
 * the batch afterwards), so a test can act while a migration is in flight.
 */
export function gateMigrator(name = 'gate', extra: Partial<Migrator> = {}) {
  let release!: () => void;
  let started!: () => void;
  const gate = new Promise<void>((r) => {
    release = r;
  });
  const running = new Promise<void>((r) => {
    started = r;
  });
  const migrator = defineMigrator({
    apiVersion: 'pagemig.migrator/v1' as const,
    name,
    version: '1.0.0',
    engines: { core: '^0.1.0' },
    capabilities: { offloadsCpu: true, channels: 1, maxInFlightBatches: 1, needsSharedMemory: false },
    init() {},
    copyBatch() {
      started();
      return gate;
    },
    dispose() {},
    ...extra,
  });
  return { migrator, running, release: () => release() };
}
