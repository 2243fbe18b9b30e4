import type { Copier } from './run_time.js';

/**
 * The series' published measurements on its 2-socket Zen 3 EPYC with PTDMA, verbatim from
 * kernel-series.md section 7 (means in GB/s; the ± spread is kept for the report). Each cell says
 * whether calibration may use it: the multi-thread and multi-channel rows (N = 2..16) are held
 * out and only predicted.
 */

/** One migration the series timed: `folios` folios of `folioBytes` moved node 0 -> node 1 by move_pages(). */
export interface BenchCase {
  folioBytes: number;
  folios: number;
  /** NR_MAX_BATCHED_MIGRATION: 512 on vanilla kernels, HPAGE_PUD_NR with the series' test patch. */
  batchPages: number;
  copier: Copier;
}

export interface Measurement {
  table: string;
  row: string;
  column: string;
  case: BenchCase;
  GBps: number;
  sd?: number;
  /** Never used by calibration; predicted and scored. */
  heldOut: boolean;
}

export interface PublishedTable {
  id: string;
  title: string;
  source: string;
}

const KiB = 1024;
const GiB = 1024 ** 3;
const VANILLA_BATCH = 512;
const PUD_BATCH = 262144;
const sizes = [4, 16, 64, 128, 256, 512, 1024, 2048].map((k) => k * KiB);
const label = (b: number) => (b >= 1024 * KiB ? `${b / (1024 * KiB)}M` : `${b / KiB}K`);
const oneGiB = (folioBytes: number) => GiB / folioBytes;

export const zen3Tables: readonly PublishedTable[] = [
  {
    id: '7.4a',
    title: 'Baseline (vanilla, single-threaded, folio by folio)',
    source: 'RFC V3 cover (2025-09)',
  },
  { id: '7.4b', title: 'mtcopy, N threads (spread across CCDs)', source: 'RFC V3 cover (2025-09)' },
  { id: '7.4c', title: 'dcbm (SG-based), N PTDMA channels', source: 'RFC V3 cover (2025-09)' },
  {
    id: '7.4d',
    title: 'Total-size sweep, 2MB folios, 1 thread / 1 channel',
    source: 'RFC V3 cover (2025-09)',
  },
  {
    id: '7.3d',
    title: 'CPU placement, 2MB folios (spread across CCDs vs fill one CCD)',
    source: 'RFC V2 cover (2025-03)',
  },
];

function sweep(
  table: string,
  rows: readonly (readonly [number, readonly (readonly [number, number])[]])[],
  copier: (n: number) => Copier,
  batchPages: number,
): Measurement[] {
  return rows.flatMap(([n, cells]) =>
    cells.map(([GBps, sd], j) => ({
      table,
      row: n === 0 ? 'baseline' : String(n),
      column: label(sizes[j]!),
      case: { folioBytes: sizes[j]!, folios: oneGiB(sizes[j]!), batchPages, copier: copier(n) },
      GBps,
      sd,
      heldOut: n > 1,
    })),
  );
}

const baseline = sweep(
  '7.4a',
  [
    [
      0,
      [
        [3.73, 0.33],
        [5.53, 0.36],
        [5.9, 0.56],
        [6.34, 0.08],
        [6.5, 0.05],
        [6.86, 0.61],
        [6.92, 0.71],
        [10.67, 0.36],
      ],
    ],
  ],
  () => ({ kind: 'kernel' }),
  VANILLA_BATCH,
);

const mtcopy = sweep(
  '7.4b',
  [
    [
      1,
      [
        [3.84, 0.1],
        [5.23, 0.31],
        [6.01, 0.55],
        [6.34, 0.6],
        [7.16, 1.0],
        [7.12, 0.78],
        [7.1, 0.86],
        [10.94, 0.13],
      ],
    ],
    [
      2,
      [
        [4.04, 0.19],
        [6.72, 0.38],
        [7.68, 0.12],
        [8.15, 0.06],
        [8.45, 0.09],
        [9.29, 0.17],
        [9.87, 1.01],
        [17.8, 0.12],
      ],
    ],
    [
      4,
      [
        [4.72, 0.21],
        [8.41, 0.7],
        [10.08, 1.67],
        [11.44, 2.42],
        [10.45, 0.17],
        [12.6, 1.97],
        [12.38, 1.73],
        [31.41, 1.14],
      ],
    ],
    [
      8,
      [
        [4.91, 0.28],
        [8.62, 0.13],
        [10.4, 0.2],
        [13.94, 3.75],
        [11.03, 0.61],
        [14.96, 3.29],
        [12.84, 0.63],
        [33.5, 3.29],
      ],
    ],
    [
      12,
      [
        [4.84, 0.24],
        [8.75, 0.08],
        [10.16, 0.26],
        [10.92, 0.22],
        [11.72, 0.14],
        [14.02, 2.51],
        [14.09, 2.65],
        [34.7, 2.38],
      ],
    ],
    [
      16,
      [
        [4.77, 0.22],
        [8.95, 0.69],
        [10.36, 0.26],
        [11.03, 0.22],
        [11.58, 0.3],
        [13.88, 2.71],
        [13.0, 0.75],
        [35.89, 2.07],
      ],
    ],
  ],
  (n) => ({ kind: 'threads', threads: n, placement: 'spread' }),
  PUD_BATCH,
);

const dcbm = sweep(
  '7.4c',
  [
    [
      1,
      [
        [2.75, 0.19],
        [2.86, 0.13],
        [3.28, 0.2],
        [4.57, 0.72],
        [5.03, 0.62],
        [4.69, 0.25],
        [4.78, 0.34],
        [12.5, 0.24],
      ],
    ],
    [
      2,
      [
        [3.35, 0.19],
        [4.57, 0.19],
        [5.35, 0.55],
        [6.71, 0.71],
        [7.4, 1.07],
        [7.38, 0.61],
        [7.21, 0.73],
        [14.23, 0.34],
      ],
    ],
    [
      4,
      [
        [4.01, 0.17],
        [6.36, 0.26],
        [7.71, 0.89],
        [9.4, 1.35],
        [10.27, 1.96],
        [10.6, 1.42],
        [12.35, 2.64],
        [26.84, 0.91],
      ],
    ],
    [
      8,
      [
        [4.46, 0.16],
        [7.74, 0.13],
        [9.72, 1.29],
        [10.88, 0.16],
        [12.12, 2.54],
        [15.62, 3.96],
        [13.29, 2.65],
        [45.27, 2.6],
      ],
    ],
    [
      12,
      [
        [4.6, 0.22],
        [8.9, 0.84],
        [11.26, 2.19],
        [16.0, 4.41],
        [14.9, 4.38],
        [14.57, 2.84],
        [13.79, 3.18],
        [59.94, 4.19],
      ],
    ],
    [
      16,
      [
        [4.61, 0.25],
        [9.08, 0.79],
        [11.14, 1.75],
        [13.95, 3.85],
        [13.69, 3.39],
        [15.47, 3.44],
        [15.44, 4.65],
        [63.69, 5.01],
      ],
    ],
  ],
  (n) => ({ kind: 'dma', engine: 'ptdma', channels: n }),
  PUD_BATCH,
);

const THP = 2048 * KiB;
const countSweep: readonly (readonly [number, number, number, number, number, number, number])[] = [
  [1, 7.96, 2.22, 6.43, 0.66, 6.52, 0.45],
  [8, 8.2, 0.75, 8.82, 1.1, 8.88, 0.54],
  [16, 7.54, 0.61, 9.06, 0.95, 9.03, 0.62],
  [32, 8.68, 0.77, 10.11, 0.42, 10.17, 0.5],
  [64, 9.08, 1.03, 10.12, 0.44, 11.21, 0.24],
  [256, 10.53, 0.39, 10.77, 0.28, 12.43, 0.12],
  [512, 10.59, 0.29, 10.81, 0.19, 12.61, 0.07],
  [2048, 10.86, 0.26, 11.05, 0.05, 12.75, 0.03],
  [8192, 10.84, 0.18, 11.12, 0.05, 12.81, 0.02],
];
const countCopiers: readonly (readonly [string, Copier, number])[] = [
  ['baseline', { kind: 'kernel' }, VANILLA_BATCH],
  ['MT CPU', { kind: 'threads', threads: 1, placement: 'spread' }, PUD_BATCH],
  ['DMA', { kind: 'dma', engine: 'ptdma', channels: 1 }, PUD_BATCH],
];
const folioCount = countSweep.flatMap(([folios, ...v]) =>
  countCopiers.map(([column, copier, batchPages], j) => ({
    table: '7.4d',
    row: String(folios),
    column,
    case: { folioBytes: THP, folios, batchPages, copier },
    GBps: v[2 * j]!,
    sd: v[2 * j + 1]!,
    heldOut: false,
  })),
);

// [threads, spread, ±, packed, ±]
const placementRows: readonly (readonly [number, number, number, number, number])[] = [
  [1, 10.6, 0.06, 10.44, 0.47],
  [2, 17.21, 0.12, 10.93, 0.11],
  [4, 29.94, 0.16, 10.99, 0.04],
  [8, 37.07, 1.62, 11.08, 0.03],
  [16, 36.19, 0.97, 17.91, 0.12],
];
const placement = placementRows.flatMap(([threads, ...v]) =>
  (['spread', 'packed'] as const).map((pl, j) => ({
    table: '7.3d',
    row: String(threads),
    column: pl,
    case: {
      folioBytes: THP,
      folios: oneGiB(THP),
      batchPages: PUD_BATCH,
      copier: { kind: 'threads', threads, placement: pl } as Copier,
    },
    GBps: v[2 * j]!,
    sd: v[2 * j + 1]!,
    heldOut: false,
  })),
);

/** Every published cell for zen3-epyc-ptdma, fitted and held out. */
export const zen3Published: readonly Measurement[] = [
  ...baseline,
  ...mtcopy,
  ...dcbm,
  ...folioCount,
  ...placement,
];

/** 7.4 copy share of move_pages() time (RFC V3 cover), vanilla kernel; `printed` is the cover's text. */
export const zen3CopyShare: readonly {
  folios: number;
  folioBytes: number;
  share: number;
  printed: string;
}[] = [
  { folios: 1, folioBytes: 4 * KiB, share: 0.01, printed: '<1%' },
  { folios: 512, folioBytes: 4 * KiB, share: 0.35, printed: '~35%' },
  { folios: 1, folioBytes: THP, share: 0.66, printed: '~66%' },
  { folios: 512, folioBytes: THP, share: 0.97, printed: '~97%' },
];

/** Published measurements by profile name (only the series' machine has any). */
export const publishedData: Readonly<
  Record<string, { tables: readonly PublishedTable[]; measurements: readonly Measurement[] }>
> = {
  'zen3-epyc-ptdma': { tables: zen3Tables, measurements: zen3Published },
};
