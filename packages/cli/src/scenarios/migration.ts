import {
  type Machine,
  type MigrateModeName,
  type MigrateReasonName,
  type MigrationResult,
  PAGE_SIZE,
} from '@pagemig/core';
import { median, rawCopier } from '@pagemig-tools/bench';
import { CliError, ExitCode, usageError } from '../exit_codes.js';
import { formatSize } from '../table.js';
import { PATTERN_PIECE, PatternStream } from './pattern.js';

/** Folio sizes the model maps: 4 KiB pages, mTHP orders 2..8, PMD THP. */
export const FOLIO_SIZES = [4, 16, 32, 64, 128, 256, 512, 1024, 2048].map((k) => k << 10);

/** The reference copy never exceeds this per pass (the copy rate is flat beyond a few MiB). */
export const REFERENCE_MAX_BYTES = 256 << 20;

export function checkFolioSize(bytes: number, flag = '--folio'): number {
  if (!FOLIO_SIZES.includes(bytes))
    throw usageError(
      `${flag}: ${formatSize(bytes)} is not a folio size; use one of ${FOLIO_SIZES.map(formatSize).join(', ')}`,
    );
  return bytes;
}

/** The mmap `thp` setting that faults in folios of `bytes`. */
export function thpFor(bytes: number): 'never' | 'always' | string {
  if (bytes === PAGE_SIZE) return 'never';
  if (bytes === 2 << 20) return 'always';
  return formatSize(bytes);
}

export interface MigrationSpec {
  total: number;
  folio: number;
  from: number;
  to: number;
  mode: MigrateModeName;
  reason: MigrateReasonName;
  seed: number;
  /** Leave the process and its migrated memory mapped (until the machine closes), for `proc`. */
  keepMapped?: boolean;
}

export interface MigrationOutcome {
  bytes: number;
  folioBytes: number;
  folios: number;
  result: MigrationResult;
  /** bytes / wall seconds of migrate_pages(). */
  bytesPerSec: number;
  /** The same run's TypedArray.set copy of the same bytes (at most REFERENCE_MAX_BYTES) in folio-sized pieces. */
  rawBytesPerSec: number;
  ratio: number;
  /** Every byte read back equal, every folio on the target node, invariants hold. */
  verified: true;
}

/**
 * The raw-copy reference, timed right after each run: the median of three passes, since a single
 * pass of a few milliseconds is at the mercy of the neighbours on a shared machine. The buffers are
 * kept: allocating and pre-faulting them per run would dominate small runs.
 */
export class Reference {
  private readonly copiers = new Map<number, ReturnType<typeof rawCopier>>();
  pass(bytes: number, chunk: number): number {
    const size = Math.min(bytes, REFERENCE_MAX_BYTES);
    let copier = this.copiers.get(size);
    if (!copier) this.copiers.set(size, (copier = rawCopier(size)));
    const piece = Math.min(chunk, size);
    return size / median([copier.pass(piece), copier.pass(piece), copier.pass(piece)]);
  }
}

/**
 * Fills `total` bytes of a new process's memory on node `from` with folios of `folio` bytes,
 * migrates them all with migrate_pages() to node `to`, verifies every byte, the placement and the
 * model's invariants, then times a raw copy of the same bytes for the ratio.
 */
export async function runMigration(
  m: Machine,
  spec: MigrationSpec,
  ref = new Reference(),
): Promise<MigrationOutcome> {
  const { total, folio } = spec;
  if (total % folio !== 0)
    throw usageError(`--total ${formatSize(total)} is not a multiple of the folio size ${formatSize(folio)}`);
  const p = m.spawn({ comm: 'pagemig', memsAllowed: [spec.from, spec.to], node: spec.from });
  try {
    const a = p.mmap(total, { thp: thpFor(folio), node: spec.from });
    const piece = Math.min(PATTERN_PIECE, total);
    const buf = new Uint8Array(piece);
    const write = new PatternStream(spec.seed);
    for (let off = 0; off < total; off += piece) p.write(a + off, write.next(piece, buf));
    const pfns = new Array<number>(total / folio);
    for (let i = 0; i < pfns.length; i++) {
      const info = p.pageInfo(a + i * folio)!;
      if (info.order !== Math.log2(folio / PAGE_SIZE))
        throw new CliError(
          `expected ${formatSize(folio)} folios, the fault mapped order ${info.order}`,
          ExitCode.FAILURE,
        );
      pfns[i] = info.headPfn;
    }
    const result = await m.migrateFolios(pfns, { node: spec.to, mode: spec.mode, reason: spec.reason });
    if (result.ret !== 0)
      throw new CliError(
        `migrate_pages() returned ${result.ret}: ${result.nrFailed} folios not migrated${result.errno ? ` (errno ${result.errno})` : ''}`,
        ExitCode.FAILURE,
        'ERR_MIGRATION',
      );
    verify(p, a, spec, piece);
    m.checkInvariants();
    const bytesPerSec = total / result.wallSeconds;
    const rawBytesPerSec = ref.pass(total, folio);
    return {
      bytes: total,
      folioBytes: folio,
      folios: pfns.length,
      result,
      bytesPerSec,
      rawBytesPerSec,
      ratio: bytesPerSec / rawBytesPerSec,
      verified: true,
    };
  } finally {
    if (!spec.keepMapped) p.exit();
  }
}

function verify(p: ReturnType<Machine['spawn']>, a: number, spec: MigrationSpec, piece: number): void {
  const check = new PatternStream(spec.seed);
  const expected = new Uint8Array(piece);
  for (let off = 0; off < spec.total; off += piece) {
    const info = p.pageInfo(a + off)!;
    if (info.node !== spec.to)
      throw new CliError(
        `verification failed: the page at offset ${off} is on node ${info.node}, not ${spec.to}`,
        ExitCode.FAILURE,
        'ERR_VERIFY',
      );
    if (Buffer.compare(p.read(a + off, piece), check.next(piece, expected)) !== 0)
      throw new CliError(
        `verification failed: bytes differ in the ${formatSize(piece)} at offset ${off}`,
        ExitCode.FAILURE,
        'ERR_VERIFY',
      );
  }
}
