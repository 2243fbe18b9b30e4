import { hostNoMem } from './errno.js';
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
 *
 * A PROT_NONE entry (a NUMA hinting entry made by change_prot_numa) keeps the pfn and the write,
 * dirty and accessed bits with present and migration clear: the MMU faults on it, while the
 * kernel still counts it as a mapping, as pte_present() does on x86 (where _PAGE_PROTNONE reuses
 * _PAGE_GLOBAL while _PAGE_PRESENT is clear). A PTE marks it with bit 6 (PTE_PROTNONE), a bit only
 * PMDs use (PMD_TABLE); a huge PMD needs no bit of its own: PMD_HUGE without present or
 * migration. No pfn bit is taken, so the largest machine stays at MAX_PTE_PFN frames.
 */
export const PTE_PRESENT = 1 << 0;
export const PTE_WRITE = 1 << 1;
export const PTE_DIRTY = 1 << 2;
export const PTE_ACCESSED = 1 << 3;
export const PTE_MIGRATION = 1 << 4;
export const PMD_HUGE = 1 << 5;
export const PMD_TABLE = 1 << 6;
/** PTE level only: a PROT_NONE (NUMA hinting) entry; the same bit as PMD_TABLE, which no PTE uses. */
export const PTE_PROTNONE = 1 << 6;
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
/**
 * pte_protnone/pmd_protnone for a leaf entry: a PTE word or a huge PMD word (as pageEntry returns
 * it), never a PMD that points at a PTE table.
 */
export function pteIsProtnone(leaf: number): boolean {
  return (leaf & (PTE_PRESENT | PTE_MIGRATION)) === 0 && (leaf & (PMD_HUGE | PTE_PROTNONE)) !== 0;
}
/**
 * pte_present/pmd_present for a leaf entry: it maps its frame, accessible or PROT_NONE. This is
 * the kernel's view (rmap, mapcounts, move_pages, pagemap); the MMU needs PTE_PRESENT itself.
 */
export function pteIsPresent(leaf: number): boolean {
  return (leaf & PTE_PRESENT) !== 0 || pteIsProtnone(leaf);
}
export function pteIsMigration(pte: number): boolean {
  return (pte & (PTE_PRESENT | PTE_MIGRATION)) === PTE_MIGRATION;
}
/** pte_modify(entry, PAGE_NONE) of a present leaf: it keeps pfn, write, dirty and accessed. */
export function pteMkProtnone(leaf: number): number {
  return leaf & PMD_HUGE ? leaf & ~PTE_PRESENT : (leaf & ~PTE_PRESENT) | PTE_PROTNONE;
}
/** pte_modify(entry, vm_page_prot) of a PROT_NONE leaf: accessible again, young (pte_mkyoung). */
export function pteMkAccessible(leaf: number): number {
  return (leaf & ~PTE_PROTNONE) | PTE_PRESENT | PTE_ACCESSED;
}

const TABLE_BYTES = PTRS_PER_PTE * 4;
/** What one address space's page tables take from the host, as spawn's and fork's ENOMEM say it. */
export const PT_HOST_RESERVATION = `${(NR_PMDS * TABLE_BYTES) / 2 ** 20} MiB of host address space each`;

/** One address space's page tables (pgd/p4d/pud folded into one PMD directory). */
export class PageTables {
  readonly pmd: Int32Array;
  /**
   * PTE tables, table t at [t * 512, t * 512 + 512): a growable buffer that reserves the host
   * address space of every table the process could have (256 MiB) and commits it as tables are
   * added, so user threads keep one buffer. Reserved up front: a host that cannot hold another
   * address space fails here, with room to spare, rather than in V8's heap later.
   */
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

  /** A RangeError when the host cannot give them (spawn and fork make it ENOMEM). */
  constructor() {
    this.pmd = new Int32Array(new SharedArrayBuffer(NR_PMDS * 4));
    this.pteBuffer = new SharedArrayBuffer(0, { maxByteLength: NR_PMDS * TABLE_BYTES });
    this.ptes = new Int32Array(this.pteBuffer, 0, 0);
  }

  /**
   * The PTE words: a fixed-length view over every table allocated so far, replaced when the
   * buffer grows (take it after allocTable). Not a length-tracking view: V8 compiles loads from
   * one ~20x slower and atomics on one ~5x slower, and every unmap and remap goes through here.
   */
  get pte(): Int32Array {
    return this.ptes;
  }

  /** Index into `pte` of the entry for page `vpn`, or -1 when no PTE table covers it. */
  pteIndex(vpn: number): number {
    const e = this.pmd[vpn >>> 9]!;
    return e & PMD_TABLE ? (e >>> PTE_PFN_SHIFT) * PTRS_PER_PTE + (vpn & 511) : -1;
  }

  /**
   * Installs an empty PTE table under PMD `pmdIdx` and returns its first entry's index; ENOMEM
   * (nothing changed) when the host cannot commit the buffer's growth.
   */
  allocTable(pmdIdx: number): number {
    let t = this.freeTables.pop();
    if (t === undefined) {
      t = this.nrTables;
      if ((t + 1) * TABLE_BYTES > this.pteBuffer.byteLength) {
        const grown = Math.min(
          Math.max(this.pteBuffer.byteLength * 2, 64 * TABLE_BYTES),
          this.pteBuffer.maxByteLength,
        );
        try {
          this.pteBuffer.grow(grown);
        } catch (e) {
          throw hostNoMem(e, `a page table (committing ${grown} bytes of the PTE buffer)`);
        }
        this.ptes = new Int32Array(this.pteBuffer, 0, grown / 4);
      }
      this.nrTables++;
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
