import type { MmTlb } from './tlbflush.js';

/**
 * Page tables in shared memory: a PMD directory whose entries map a 2 MiB folio or point at a
 * PTE table of 512 entries. Entries are Int32 words updated with Atomics so user threads and the
 * migration engine agree on them:
 *
 *   bit 0 present | 1 write | 2 dirty | 3 accessed | 4 migration | 5 huge | 6 table | 7..31 pfn
 *
 * A migration entry (migration set, present clear) keeps the pfn of the folio being migrated and
 * whether the mapping was writable (SWP_MIGRATION_WRITE vs _READ), plus young/dirty.
 */
export const PTE_PRESENT = 1 << 0;
export const PTE_WRITE = 1 << 1;
export const PTE_DIRTY = 1 << 2;
export const PTE_ACCESSED = 1 << 3;
export const PTE_MIGRATION = 1 << 4;
export const PMD_HUGE = 1 << 5;
export const PMD_TABLE = 1 << 6;
export const PTE_PFN_SHIFT = 7;
export const PTE_FLAGS_MASK = (1 << PTE_PFN_SHIFT) - 1;
/** The largest pfn an entry can hold (128 GiB of 4 KiB pages). */
export const MAX_PTE_PFN = 2 ** (32 - PTE_PFN_SHIFT) - 1;
/** The shared zero page: a frame outside every zone, read as zeros. */
export const ZERO_PFN = MAX_PTE_PFN;

export const PTRS_PER_PTE = 512;
/** User address space of one process: 256 GiB starting at USER_BASE. */
export const USER_BASE = 0x7f00_0000_0000;
export const USER_PAGES = 2 ** 26;
export const NR_PMDS = USER_PAGES / PTRS_PER_PTE;

export function mkPte(pfn: number, flags: number): number {
  return (pfn << PTE_PFN_SHIFT) | flags | 0;
}
export function ptePfn(pte: number): number {
  return pte >>> PTE_PFN_SHIFT;
}
export function pteIsPresent(pte: number): boolean {
  return (pte & PTE_PRESENT) !== 0;
}
export function pteIsMigration(pte: number): boolean {
  return (pte & (PTE_PRESENT | PTE_MIGRATION)) === PTE_MIGRATION;
}

const TABLE_BYTES = PTRS_PER_PTE * 4;

/** One address space's page tables (pgd/p4d/pud folded into one PMD directory). */
export class PageTables {
  readonly pmd: Int32Array;
  /** PTE tables, table t at [t * 512, t * 512 + 512); the buffer grows as tables are added. */
  readonly pteBuffer: SharedArrayBuffer;
  private ptes: Int32Array;
  private readonly freeTables: number[] = [];
  private nrTables = 0;
  /** Live PTE tables (nr_page_table_pages). */
  tablesInUse = 0;
  /**
   * The shootdown state of the address space once it ran a user thread (tlbflush.ts MmTlb);
   * null for an address space that never had threads, whose flushes cost nothing.
   */
  tlb: MmTlb | null = null;

  constructor() {
    this.pmd = new Int32Array(new SharedArrayBuffer(NR_PMDS * 4));
    this.pteBuffer = new SharedArrayBuffer(0, { maxByteLength: NR_PMDS * TABLE_BYTES });
    this.ptes = new Int32Array(this.pteBuffer);
  }

  /** The PTE words (a length-tracking view that follows the buffer as it grows). */
  get pte(): Int32Array {
    return this.ptes;
  }

  /** Index into `pte` of the entry for page `vpn`, or -1 when no PTE table covers it. */
  pteIndex(vpn: number): number {
    const e = this.pmd[vpn >>> 9]!;
    return e & PMD_TABLE ? (e >>> PTE_PFN_SHIFT) * PTRS_PER_PTE + (vpn & 511) : -1;
  }

  /** Installs an empty PTE table under PMD `pmdIdx` and returns its first entry's index. */
  allocTable(pmdIdx: number): number {
    let t = this.freeTables.pop();
    if (t === undefined) {
      t = this.nrTables++;
      if ((t + 1) * TABLE_BYTES > this.pteBuffer.byteLength) {
        const grown = Math.min(
          Math.max(this.pteBuffer.byteLength * 2, 64 * TABLE_BYTES),
          this.pteBuffer.maxByteLength,
        );
        this.pteBuffer.grow(grown);
        this.ptes = new Int32Array(this.pteBuffer);
      }
    }
    this.ptes.fill(0, t * PTRS_PER_PTE, (t + 1) * PTRS_PER_PTE);
    Atomics.store(this.pmd, pmdIdx, mkPte(t, PMD_TABLE));
    this.tablesInUse++;
    return t * PTRS_PER_PTE;
  }

  /** Removes the PTE table under `pmdIdx` (its entries must already be clear). */
  freeTable(pmdIdx: number): void {
    const e = this.pmd[pmdIdx]!;
    if (!(e & PMD_TABLE)) return;
    Atomics.store(this.pmd, pmdIdx, 0);
    this.freeTables.push(e >>> PTE_PFN_SHIFT);
    this.tablesInUse--;
  }

  tableEmpty(pmdIdx: number): boolean {
    const e = this.pmd[pmdIdx]!;
    if (!(e & PMD_TABLE)) return true;
    const base = (e >>> PTE_PFN_SHIFT) * PTRS_PER_PTE;
    for (let i = 0; i < PTRS_PER_PTE; i++) if (this.ptes[base + i] !== 0) return false;
    return true;
  }
}
