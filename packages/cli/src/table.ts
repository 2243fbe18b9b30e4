import Table from 'cli-table3';

export type Align = 'left' | 'right';
export interface Column {
  header: string;
  align?: Align;
}

/** An aligned, uncoloured table with one line per row. */
export function renderTable(columns: (string | Column)[], rows: unknown[][]): string {
  const cols = columns.map((c) => (typeof c === 'string' ? { header: c, align: 'left' as Align } : c));
  const table = new Table({
    head: cols.map((c) => c.header),
    colAligns: cols.map((c) => c.align ?? 'left'),
    style: { head: [], border: [] },
    chars: { mid: '', 'left-mid': '', 'mid-mid': '', 'right-mid': '' },
  });
  for (const row of rows) table.push(row.map((cell) => String(cell)));
  return `${table.toString()}\n`;
}

/** Binary units: 4096 → '4KiB', 2097152 → '2MiB' (the spelling core's parseSize accepts). */
export function formatSize(n: number): string {
  for (const [shift, unit] of [
    [30, 'GiB'],
    [20, 'MiB'],
    [10, 'KiB'],
  ] as const) {
    const d = 2 ** shift;
    if (n >= d) return `${Number((n / d).toPrecision(3))}${unit}`;
  }
  return `${n}B`;
}

export const gbps = (bytesPerSec: number) => (bytesPerSec / 1e9).toFixed(2);
export const pct = (part: number, whole: number) =>
  whole > 0 ? `${((100 * part) / whole).toFixed(0)}%` : '-';
