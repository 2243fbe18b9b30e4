import {
  BATCH_ROW_INTS,
  createMachine,
  type Machine,
  type MachineConfig,
  MigrateMode,
  type MigrateModeValue,
  type MigrateOptions,
  MigrateReason,
  type MigrateReasonValue,
  MigrationBatch,
  type MigrationResult,
  type MmapOptions,
  PAGE_SIZE,
  type Process,
} from '@pagemig/core';

/**
 * Fixtures for migrator tests: machine builders, regions filled with a verifiable pattern, a
 * whole-machine checksum that migration must not change, and the "every folio mapped exactly
 * once" check. They return problems as strings instead of asserting, so any test runner can use
 * them (`expect(problems).toEqual([])`).
 */

export interface TestMachineOptions {
  /** Nodes (each `nodeMemory`). Default 2. */
  nodes?: number;
  /** Default '64MiB'. */
  nodeMemory?: string | number;
  backing?: 'shared' | 'none';
  migrationBatchPages?: number;
  /** Commit RAM at creation. Default false (tests touch little memory). */
  prefault?: boolean;
}

/** A small NUMA machine for tests: `nodes` × `nodeMemory`, not pre-faulted. */
export function createTestMachine(opts: TestMachineOptions = {}): Promise<Machine> {
  const n = opts.nodes ?? 2;
  const config: MachineConfig = {
    nodes: Array.from({ length: n }, () => ({ memory: opts.nodeMemory ?? '64MiB' })),
    prefault: opts.prefault ?? false,
    backing: opts.backing ?? 'shared',
    ...(opts.migrationBatchPages !== undefined ? { migrationBatchPages: opts.migrationBatchPages } : {}),
  };
  return createMachine(config);
}

/** `bytes` of a pattern seeded by `seed`: no byte is zero, and every page differs. */
export function patternBytes(bytes: number, seed = 1): Uint8Array {
  const out = new Uint8Array(bytes);
  const words = new Uint32Array(out.buffer, 0, bytes >>> 2);
  let x = (seed * 2654435761) >>> 0 || 1;
  for (let i = 0; i < words.length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    words[i] = (x >>> 0) | 0x01010101;
  }
  for (let i = words.length * 4; i < bytes; i++) out[i] = (i & 0x7f) + 1;
  return out;
}

/** Writes a pattern at `addr` and returns the bytes written. */
export function fillPattern(p: Process, addr: number, bytes: number, seed = 1): Uint8Array {
  const data = patternBytes(bytes, seed);
  p.write(addr, data);
  return data;
}

/** Compares the memory at `addr` with `expected`; returns problems (empty when equal). */
export function verifyPattern(p: Process, addr: number, expected: Uint8Array): string[] {
  const got = p.read(addr, expected.length);
  if (Buffer.compare(Buffer.from(got.buffer, got.byteOffset, got.length), Buffer.from(expected)) === 0)
    return [];
  let i = 0;
  while (got[i] === expected[i]) i++;
  let bad = 0;
  for (let j = 0; j < got.length; j++) if (got[j] !== expected[j]) bad++;
  return [
    `${bad} bytes differ at 0x${addr.toString(16)}+; first at +${i} (page ${Math.floor(i / PAGE_SIZE)}): got ${got[i]}, expected ${expected[i]}`,
  ];
}

/** Head pfns of the folios backing [addr, addr + bytes), in address order. */
export function headsOf(p: Process, addr: number, bytes: number): number[] {
  const seen = new Set<number>();
  for (let off = 0; off < bytes; off += PAGE_SIZE) {
    const info = p.pageInfo(addr + off);
    if (!info || info.zeroPage) throw new Error(`page at +${off} is not populated`);
    seen.add(info.headPfn);
  }
  return [...seen];
}

export interface TestRegion {
  p: Process;
  addr: number;
  bytes: number;
  data: Uint8Array;
  heads: number[];
}

/** A region of `bytes` in `p` (or a new process) on `node`, filled with a pattern. */
export function populateRegion(
  m: Machine,
  opts: {
    bytes: number;
    thp?: MmapOptions['thp'];
    shared?: boolean;
    node?: number;
    seed?: number;
    p?: Process;
  },
): TestRegion {
  const p = opts.p ?? m.spawn({ privileged: true });
  const addr = p.mmap(opts.bytes, {
    thp: opts.thp ?? 'never',
    shared: opts.shared ?? false,
    node: opts.node ?? 0,
  });
  const data = fillPattern(p, addr, opts.bytes, opts.seed ?? 1);
  return { p, addr, bytes: opts.bytes, data, heads: headsOf(p, addr, opts.bytes) };
}

/** Migrates every folio of the region (as it is mapped now) to `node`. */
export function migrateRegion(
  m: Machine,
  r: TestRegion,
  node: number,
  opts: Omit<MigrateOptions, 'node'> = {},
): Promise<MigrationResult> {
  return m.migrateFolios(headsOf(r.p, r.addr, r.bytes), { ...opts, node });
}

/** Nodes the pages of the region are on (page granularity), without duplicates, sorted. */
export function regionNodes(r: TestRegion): number[] {
  const nodes = new Set<number>();
  for (let off = 0; off < r.bytes; off += PAGE_SIZE) nodes.add(r.p.pageInfo(r.addr + off)?.node ?? -1);
  return [...nodes].sort((a, b) => a - b);
}

/**
 * "Every folio mapped exactly once" for a private region of one process: each page present in
 * its own frame (no zero page), each folio's mapcount equal to its mappings here, no frame
 * shared, and the bytes equal to `r.data`. Returns the problems.
 */
export function checkRegion(m: Machine, r: TestRegion): string[] {
  const problems: string[] = [];
  const k = m.kernel;
  const frames = new Set<number>();
  const maps = new Map<number, number>();
  for (let off = 0; off < r.bytes; off += PAGE_SIZE) {
    const info = r.p.pageInfo(r.addr + off);
    if (!info) {
      problems.push(`page +${off} is not mapped`);
      continue;
    }
    if (info.zeroPage) problems.push(`page +${off} maps the zero page`);
    if (frames.has(info.pfn)) problems.push(`page +${off} shares frame ${info.pfn}`);
    frames.add(info.pfn);
    maps.set(info.headPfn, (maps.get(info.headPfn) ?? 0) + (info.huge ? 1 / 512 : 1));
  }
  for (const [head, n] of maps) {
    const mc = k.pages.mapcount[head]!;
    if (mc !== Math.round(n))
      problems.push(`folio ${head}: mapcount ${mc}, mapped ${Math.round(n)} times here`);
  }
  // Reading a region with holes would fault: compare bytes only when every page is there.
  if (k.mem.backed && r.data.length && !problems.some((x) => x.includes('not mapped')))
    problems.push(...verifyPattern(r.p, r.addr, r.data));
  return problems;
}

/**
 * A checksum of every process's mapped memory by virtual address (pid, page, bytes): migration,
 * compaction and splits must leave it unchanged. Untouched and zero pages count as zeros.
 */
export function machineChecksum(m: Machine): string {
  let h1 = 0x811c9dc5;
  let h2 = 0x01000193;
  const mix = (x: number) => {
    h1 = Math.imul(h1 ^ x, 0x01000193);
    h2 = Math.imul(h2 ^ x, 0x5bd1e995) ^ (h2 >>> 15);
  };
  const pids = [...m.kernel.processes.keys()].sort((a, b) => a - b);
  for (const pid of pids) {
    const p = m.process(pid)!;
    mix(pid);
    for (const vma of p.maps()) {
      for (let addr = vma.start; addr < vma.end; addr += PAGE_SIZE) {
        const info = p.pageInfo(addr);
        if (!info || info.zeroPage) continue;
        mix((addr / PAGE_SIZE) >>> 0);
        if (!m.kernel.mem.backed) continue;
        const bytes = m.kernel.mem.view(info.pfn);
        const words = new Int32Array(bytes.buffer, bytes.byteOffset, PAGE_SIZE / 4);
        for (let i = 0; i < words.length; i++) mix(words[i]!);
      }
    }
  }
  return (h1 >>> 0).toString(16).padStart(8, '0') + (h2 >>> 0).toString(16).padStart(8, '0');
}

/**
 * A batch of `(srcPfn, dstPfn, nrPages)` rows in a SharedArrayBuffer, as the engine hands one to a
 * migrator: for calling `copyBatch` by hand. Default reason `syscall_or_cpuset`, mode MIGRATE_SYNC.
 */
export function batchOf(
  rows: readonly (readonly [src: number, dst: number, nrPages: number])[],
  reason: MigrateReasonValue = MigrateReason.MR_SYSCALL,
  mode: MigrateModeValue = MigrateMode.MIGRATE_SYNC,
): MigrationBatch {
  const table = new Int32Array(new SharedArrayBuffer(Math.max(rows.length, 1) * BATCH_ROW_INTS * 4));
  rows.forEach(([s, d, n], i) => {
    table.set([s, d, n, 0], i * BATCH_ROW_INTS);
  });
  return new MigrationBatch(table, rows.length, reason, mode);
}

/**
 * `n` one-page rows from every other frame from `src` to every other frame from `dst`: rows
 * that never merge into one descriptor, for `batchOf`.
 */
export function scatteredRows(
  n: number,
  src: number,
  dst: number,
): [src: number, dst: number, nrPages: number][] {
  return Array.from({ length: n }, (_, i) => [src + 2 * i, dst + 2 * i, 1]);
}

/** The rows of `batch` its migrator marked copied, in order. */
export function markedRows(batch: MigrationBatch): number[] {
  const out: number[] = [];
  for (let i = 0; i < batch.rows; i++) if (batch.isCopied(i)) out.push(i);
  return out;
}
