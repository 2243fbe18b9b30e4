import {
  EINVAL,
  HPAGE_PMD_ORDER,
  kernelError,
  type Machine,
  NR_PAGE_ORDERS,
  PAGEBLOCK_NR_PAGES,
  PagemigError,
  type ZoneName,
} from '@pagemig/core';
import { type Kernel, pageFlags, type Zone } from '@pagemig/core/internal';
import { fragmentationIndex, fragmentationScoreZone } from './fragmentation.js';

const { PG_buddy, PG_head, PG_tail, PG_lru, PG_anon, PG_unevictable } = pageFlags;

/** What a pageblock holds, from compaction's point of view. */
export const BlockState = {
  /** Every page is free. */
  FREE: 0,
  /** Every page in use can be moved by compaction (LRU, not pinned, mlocked only if allowed). */
  MOVABLE: 1,
  /** No page in use can be moved (kernel memory, pinned, large folios, mlocked when not allowed). */
  UNMOVABLE: 2,
  /** Both movable and unmovable pages. */
  MIXED: 3,
} as const;
export type BlockStateValue = (typeof BlockState)[keyof typeof BlockState];
export const blockStateNames = ['free', 'movable', 'unmovable', 'mixed'] as const;

/** A snapshot of one zone's pageblocks. */
export interface ZoneMap {
  nid: number;
  zone: ZoneName;
  startPfn: number;
  endPfn: number;
  /** BlockState of each pageblock, in pfn order. */
  states: Uint8Array;
  /** Pages in use (not free) of each pageblock, 0..512. */
  used: Uint16Array;
  /** Movable pages in use of each pageblock. */
  movable: Uint16Array;
  freePages: number;
  /** Free blocks of order ≥ 9 (what a THP or hugetlb allocation can take). */
  freeHugeBlocks: number;
  /** fragmentation_score_zone (extfrag for order 9), 0..100. */
  score: number;
  /** fragmentation_index for order 9. */
  fragindex: number;
}

function findZone(k: Kernel, nid: number, zone?: ZoneName): Zone {
  const node = k.nodes[nid];
  if (!node) throw kernelError(EINVAL, `node ${nid} does not exist (nodes 0..${k.nodes.length - 1})`);
  const z = zone ? node.zones.find((x) => x.type === zone) : node.zones[node.zones.length - 1];
  if (!z)
    throw kernelError(
      EINVAL,
      `node ${nid} has no ${zone} zone (it has ${node.zones.map((x) => x.type).join(', ')})`,
    );
  return z;
}

/** Classifies every pageblock of node `nid`'s zone (default: its highest zone). */
export function zoneMap(m: Machine | Kernel, nid: number, zone?: ZoneName): ZoneMap {
  const k = 'kernel' in m ? m.kernel : m;
  const z = findZone(k, nid, zone);
  const p = k.pages;
  const flags = p.flags;
  const nBlocks = Math.ceil(z.spanned / PAGEBLOCK_NR_PAGES);
  const used = new Uint16Array(nBlocks);
  const movable = new Uint16Array(nBlocks);
  const unevictableOk = k.vm.compact_unevictable_allowed !== 0;
  for (let pfn = z.startPfn; pfn < z.endPfn; ) {
    const f = flags[pfn]!;
    if (f & PG_buddy) {
      pfn += 1 << p.order[pfn]!;
      continue;
    }
    const head = f & PG_tail ? p.head(pfn) : pfn;
    const hf = flags[head]!;
    const order = hf & PG_head ? p.order[head]! : 0;
    const end = Math.min(head + (1 << order), z.endPfn);
    if (p.refcount[head]! <= 0 && !(hf & PG_head)) {
      // Isolated by a running compaction's free scanner: neither free nor in use yet.
      pfn++;
      continue;
    }
    let canMove = (hf & PG_lru) !== 0 && order < HPAGE_PMD_ORDER;
    if (canMove && hf & PG_anon && p.refcount[head]! > p.mapcount[head]!) canMove = false;
    if (canMove && !unevictableOk && hf & PG_unevictable) canMove = false;
    if (canMove) {
      const mapping = k.mappingOf(head);
      if (mapping && mapping.vmas.unmigratable > 0) canMove = false;
    }
    for (let q = pfn; q < end; ) {
      const b = (q - z.startPfn) >>> 9;
      const stop = Math.min(end, z.startPfn + (b + 1) * PAGEBLOCK_NR_PAGES);
      used[b]! += stop - q;
      if (canMove) movable[b]! += stop - q;
      q = stop;
    }
    pfn = end;
  }
  const states = new Uint8Array(nBlocks);
  for (let b = 0; b < nBlocks; b++) {
    const u = used[b]!;
    const mv = movable[b]!;
    states[b] =
      u === 0
        ? BlockState.FREE
        : mv === u
          ? BlockState.MOVABLE
          : mv === 0
            ? BlockState.UNMOVABLE
            : BlockState.MIXED;
  }
  let freeHugeBlocks = 0;
  for (let o = HPAGE_PMD_ORDER; o < NR_PAGE_ORDERS; o++)
    freeHugeBlocks += z.nrFree(o) << (o - HPAGE_PMD_ORDER);
  return {
    nid,
    zone: z.type,
    startPfn: z.startPfn,
    endPfn: z.endPfn,
    states,
    used,
    movable,
    freePages: z.freePages,
    freeHugeBlocks,
    score: fragmentationScoreZone(z),
    fragindex: fragmentationIndex(z, HPAGE_PMD_ORDER),
  };
}

/** How many pageblocks of each state a map has. */
export function zoneMapCounts(map: ZoneMap): Record<(typeof blockStateNames)[number], number> {
  const out = { free: 0, movable: 0, unmovable: 0, mixed: 0 };
  for (const s of map.states) out[blockStateNames[s]!]++;
  return out;
}

/** One character per pageblock ('.' free, 'm' movable, 'U' unmovable, 'x' mixed), `columns` a line. */
export function zoneMapText(map: ZoneMap, columns = 64): string {
  const ch = ['.', 'm', 'U', 'x'];
  let out = '';
  for (let i = 0; i < map.states.length; i++) {
    out += ch[map.states[i]!];
    if ((i + 1) % columns === 0 || i === map.states.length - 1) out += '\n';
  }
  return out;
}

/** Fill colours per state (colour-blind safe: blue / orange / vermillion / grey). */
export const zoneMapColors = {
  free: '#e8e8e8',
  movable: '#0072b2',
  unmovable: '#d55e00',
  mixed: '#e69f00',
} as const;

export interface ZoneMapSvgOptions {
  /** Pageblocks per row. Default: 32 (or fewer for small zones). */
  columns?: number;
  /** Cell size in px. Default 12. */
  cell?: number;
  /** Panel titles; default "Node N, zone Z". */
  titles?: string[];
}

const esc = (s: string) =>
  s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
const hex = (n: number) => `0x${n.toString(16)}`;

/**
 * Renders zone maps as one SVG (a panel per map, side by side, e.g. before and after
 * compaction): one cell per pageblock, coloured by state, filled from the bottom in proportion to
 * the pages in use, with a tooltip per cell, a summary line per panel and a legend.
 */
export function renderZoneMapsSvg(maps: ZoneMap | readonly ZoneMap[], opts: ZoneMapSvgOptions = {}): string {
  const list = Array.isArray(maps) ? (maps as readonly ZoneMap[]) : [maps as ZoneMap];
  if (!list.length) throw new PagemigError('ERR_INVALID_ARGUMENT', 'renderZoneMapsSvg: no zone map given');
  const cell = opts.cell ?? 12;
  const gap = 1;
  const maxBlocks = Math.max(...list.map((mp) => mp.states.length));
  const columns = Math.max(1, opts.columns ?? Math.min(32, maxBlocks));
  const rows = Math.ceil(maxBlocks / columns);
  const pad = 16;
  const headH = 44;
  const gridW = columns * (cell + gap) - gap;
  const panelW = Math.max(gridW, 340);
  const gridH = rows * (cell + gap) - gap;
  const legendH = 28;
  const width = pad + list.length * (panelW + pad);
  const height = pad + headH + gridH + pad + legendH;
  const out: string[] = [];
  const label = list
    .map((mp, i) => `${opts.titles?.[i] ?? `node ${mp.nid} zone ${mp.zone}`}: ${mp.states.length} pageblocks`)
    .join('; ');
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12" role="img" aria-label="${esc(`Pageblock map (${label})`)}">`,
  );
  out.push(`<title>${esc(`Pageblock map (${label})`)}</title>`);
  out.push(`<rect width="${width}" height="${height}" fill="#ffffff"/>`);
  list.forEach((mp, i) => {
    const x0 = pad + i * (panelW + pad);
    const y0 = pad;
    const title = opts.titles?.[i] ?? `Node ${mp.nid}, zone ${mp.zone}`;
    const c = zoneMapCounts(mp);
    out.push(`<g class="panel" data-nid="${mp.nid}" data-zone="${esc(mp.zone)}">`);
    out.push(`<text x="${x0}" y="${y0 + 12}" font-weight="bold">${esc(title)}</text>`);
    out.push(
      `<text x="${x0}" y="${y0 + 28}" fill="#444">${mp.states.length} pageblocks: ${c.free} free, ${c.movable} movable, ${c.unmovable} unmovable, ${c.mixed} mixed</text>`,
    );
    out.push(
      `<text x="${x0}" y="${y0 + 42}" fill="#444">${mp.freePages} free pages, ${mp.freeHugeBlocks} free order-9 blocks, score ${mp.score}</text>`,
    );
    for (let b = 0; b < mp.states.length; b++) {
      const x = x0 + (b % columns) * (cell + gap);
      const y = y0 + headH + Math.floor(b / columns) * (cell + gap);
      const state = blockStateNames[mp.states[b]!]!;
      const u = mp.used[b]!;
      const start = mp.startPfn + b * PAGEBLOCK_NR_PAGES;
      const tip = `pfn ${hex(start)}-${hex(start + PAGEBLOCK_NR_PAGES - 1)}: ${state}, ${u}/${PAGEBLOCK_NR_PAGES} pages in use, ${mp.movable[b]} movable`;
      out.push(`<g class="pb ${state}"><title>${esc(tip)}</title>`);
      // Blocks in use get an outline in their colour, so a block with a single page shows.
      const outline = u > 0 ? ` stroke="${zoneMapColors[state]}" stroke-width="1"` : '';
      out.push(
        `<rect x="${x + 0.5}" y="${y + 0.5}" width="${cell - 1}" height="${cell - 1}" fill="${zoneMapColors.free}"${outline}/>`,
      );
      if (u > 0) {
        const h = Math.max(1, Math.round((cell * u) / PAGEBLOCK_NR_PAGES));
        out.push(
          `<rect x="${x}" y="${y + cell - h}" width="${cell}" height="${h}" fill="${zoneMapColors[state]}"/>`,
        );
      }
      out.push('</g>');
    }
    out.push('</g>');
  });
  const ly = pad + headH + gridH + pad;
  let lx = pad;
  out.push('<g class="legend">');
  for (const name of blockStateNames) {
    out.push(
      `<rect x="${lx}" y="${ly}" width="${cell}" height="${cell}" fill="${zoneMapColors[name]}" stroke="#999"/>`,
    );
    out.push(`<text x="${lx + cell + 4}" y="${ly + cell - 1}">${name}</text>`);
    lx += cell + 4 + name.length * 7 + 16;
  }
  out.push(
    `<text x="${lx}" y="${ly + cell - 1}" fill="#444">cell = one pageblock (${PAGEBLOCK_NR_PAGES} pages); filled height = pages in use</text>`,
  );
  out.push('</g>');
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}

/** The SVG map of node `nid`'s zone (default its highest zone) right now. */
export function zoneMapSvg(
  m: Machine | Kernel,
  nid: number,
  zone?: ZoneName,
  opts: ZoneMapSvgOptions = {},
): string {
  return renderZoneMapsSvg(zoneMap(m, nid, zone), opts);
}
