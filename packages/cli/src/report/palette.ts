/**
 * The report's colours. One colour means one thing on every chart of both reports: a colour is a
 * copier (a migrator, or the series' copier it corresponds to), black is a number the series
 * published, grey is this machine's raw copy, and the migration phases have purples and a brown of their own.
 * How a number was obtained is the line style: solid for measured (here or by the series), dashed
 * with hollow triangles for modeled.
 */

/** Okabe-Ito colours, readable by colour-blind readers. */
const COPIER: Record<string, string> = {
  none: '#0072b2', // the kernel's own CPU copy (the series' baseline)
  'cpu-serial': '#56b4e9',
  'cpu-multithreaded': '#009e73', // the series' mtcopy
  ptdma: '#d55e00', // the series' dcbm on PTDMA
  sdxi: '#e69f00',
};
/** Third-party migrators, by a stable hash of their id. */
const EXTRA = ['#cc79a7', '#882255', '#44aa99', '#999933'];

export const RAW_COLOUR = '#9a9a9a';
export const PUBLISHED_COLOUR = '#000000';

export const PHASE_COLOURS = {
  unmap: '#3f007d',
  flush: '#e7d4e8',
  batchCopy: '#807dba',
  fallbackCopy: '#c2a5cf',
  move: '#8c510a',
} as const;

/** The colour of a migrator id ('none' is the kernel's copy). */
export function copierColour(migrator: string): string {
  const known = COPIER[migrator];
  if (known) return known;
  let h = 0;
  for (const ch of migrator) h = (h * 31 + ch.charCodeAt(0)) >>> 0;
  return EXTRA[h % EXTRA.length]!;
}

/** `#rrggbb` at `alpha` opacity. */
export function translucent(hex: string, alpha: number): string {
  const n = Number.parseInt(hex.slice(1), 16);
  return `rgba(${(n >> 16) & 255}, ${(n >> 8) & 255}, ${n & 255}, ${alpha})`;
}

/** Line styles: how the number was obtained. */
export const measuredLine = (colour: string) => ({
  borderColor: colour,
  backgroundColor: colour,
  borderWidth: 2,
  pointStyle: 'circle',
  pointRadius: 4,
});
export const modeledLine = (colour: string) => ({
  borderColor: colour,
  backgroundColor: '#ffffff',
  borderWidth: 2,
  borderDash: [7, 4],
  pointStyle: 'triangle',
  pointRadius: 5,
});
export const rawLine = () => ({
  borderColor: RAW_COLOUR,
  backgroundColor: RAW_COLOUR,
  borderWidth: 2,
  borderDash: [2, 3],
  pointRadius: 0,
});
/** Bars: measured filled, modeled a light fill with an outline of the same colour. */
export const measuredBar = (colour: string) => ({
  backgroundColor: colour,
  borderColor: colour,
  borderWidth: 1,
});
export const modeledBar = (colour: string) => ({
  backgroundColor: translucent(colour, 0.25),
  borderColor: colour,
  borderWidth: 2,
});

/** The key printed above the charts. */
export function colourKeyHtml(migrators: readonly { id: string; label: string }[], extra = ''): string {
  const swatch = (c: string, label: string) =>
    `<span class="key"><span class="swatch" style="background:${c}"></span>${label}</span>`;
  return `<p class="legend">${migrators.map((m) => swatch(copierColour(m.id), m.label)).join(' ')} ${swatch(PUBLISHED_COLOUR, 'published by the series')} ${swatch(RAW_COLOUR, 'raw copy on this machine')}${extra}</p>`;
}
