import { MIGRATE_MOVABLE, PAGEBLOCK_ORDER } from './mmzone.js';

const MT_MASK = 0x7;
/** PB_compact_skip: the compaction scanners skip this block until the hints are reset. */
export const PB_SKIP = 0x8;

/** Per-pageblock flags (include/linux/pageblock-flags.h): a migratetype and the skip hint. */
export class Pageblocks {
  readonly flags: Uint8Array;

  constructor(nrPages: number) {
    const n = Math.ceil(nrPages / (1 << PAGEBLOCK_ORDER));
    // At boot every pageblock is MOVABLE.
    this.flags = new Uint8Array(new SharedArrayBuffer(n)).fill(MIGRATE_MOVABLE);
  }

  migratetype(pfn: number): number {
    return this.flags[pfn >>> PAGEBLOCK_ORDER]! & MT_MASK;
  }

  setMigratetype(pfn: number, mt: number): void {
    const i = pfn >>> PAGEBLOCK_ORDER;
    this.flags[i] = (this.flags[i]! & ~MT_MASK) | mt;
  }

  skip(pfn: number): boolean {
    return (this.flags[pfn >>> PAGEBLOCK_ORDER]! & PB_SKIP) !== 0;
  }

  setSkip(pfn: number, on: boolean): void {
    const i = pfn >>> PAGEBLOCK_ORDER;
    this.flags[i] = on ? this.flags[i]! | PB_SKIP : this.flags[i]! & ~PB_SKIP;
  }
}
