// dcbm's module parameters (/sys/module/dcbm/parameters): their values, and get/set with the
// kernel's parsing of the text written to them.
import { EINVAL, formatReasonMask, kernelError, parseReasonMask, REASON_MASK_ALL } from '@pagemig/core';

/** MAX_DMA_CHANNELS of the series' dcbm. */
export const MAX_DMA_CHANNELS = 16;

/** dcbm's module parameters, as options. */
export interface DcbmKnobs {
  /** Offer batches to the DMA engines (1) or decline every batch (0). Default 1. */
  offloading?: boolean | 0 | 1;
  /** Most channels one batch is sliced across, 1..16. Default: every channel the provider offers. */
  nr_dma_chan?: number;
  /** Reasons offloaded: names ('compaction,demotion'), 'all', 'none' or a number. Default 'all'. */
  reason_mask?: string | number | readonly string[];
  /** Segments per MEMCPY_SG descriptor on channels that offer it. Default 32 (the later tree's sg_elems). */
  sg_elems?: number;
}

export const dcbmKnobKeys = ['offloading', 'nr_dma_chan', 'reason_mask', 'sg_elems'] as const;

/** The parameters' variables (a dcbm instance's state holds them). */
export interface DcbmParamValues {
  offloading: boolean;
  nrDmaChan: number;
  reasonMask: number;
  sgElems: number;
  foliosMigrated: number;
  foliosFailures: number;
}

type ParamName =
  | 'offloading'
  | 'nr_dma_chan'
  | 'reason_mask'
  | 'sg_elems'
  | 'folios_migrated'
  | 'folios_failures';
const paramNames: readonly ParamName[] = [
  'offloading',
  'nr_dma_chan',
  'reason_mask',
  'sg_elems',
  'folios_migrated',
  'folios_failures',
];

function parseBool(v: unknown): boolean | undefined {
  if (v === true || v === 1 || v === '1' || v === 'y' || v === 'Y') return true;
  if (v === false || v === 0 || v === '0' || v === 'n' || v === 'N') return false;
  return undefined;
}

function parseIntIn(v: unknown, lo: number, hi: number): number | undefined {
  const n = typeof v === 'string' && /^\s*\d+\s*$/.test(v) ? Number(v) : v;
  return typeof n === 'number' && Number.isInteger(n) && n >= lo && n <= hi ? n : undefined;
}

/** dcbm's parameters with the kernel's text in and out (param_set_bool, param_set_uint, ...). */
export class DcbmParams {
  /** @internal */
  constructor(private readonly s: DcbmParamValues) {}

  get(name: ParamName): string {
    const s = this.s;
    switch (name) {
      case 'offloading':
        return s.offloading ? '1' : '0';
      case 'nr_dma_chan':
        return String(s.nrDmaChan);
      case 'reason_mask':
        return s.reasonMask === REASON_MASK_ALL ? 'all' : formatReasonMask(s.reasonMask);
      case 'sg_elems':
        return String(s.sgElems);
      case 'folios_migrated':
        return String(s.foliosMigrated);
      case 'folios_failures':
        return String(s.foliosFailures);
      default:
        throw kernelError(
          EINVAL,
          `dcbm: unknown parameter ${JSON.stringify(name)}; known: ${paramNames.join(', ')}`,
        );
    }
  }

  /** Writes a parameter; a bad value throws EINVAL and changes nothing. */
  set(name: ParamName, value: string | number | boolean | readonly string[]): void {
    const s = this.s;
    switch (name) {
      case 'offloading': {
        const b = parseBool(typeof value === 'string' ? value.trim() : value);
        if (b === undefined)
          throw kernelError(EINVAL, `dcbm: offloading must be 0 or 1, got ${JSON.stringify(value)}`);
        s.offloading = b;
        return;
      }
      case 'nr_dma_chan': {
        const n = parseIntIn(value, 1, MAX_DMA_CHANNELS);
        if (n === undefined)
          throw kernelError(
            EINVAL,
            `dcbm: nr_dma_chan must be 1..${MAX_DMA_CHANNELS}, got ${JSON.stringify(value)}`,
          );
        s.nrDmaChan = n;
        return;
      }
      case 'reason_mask':
        s.reasonMask = parseReasonMask(value as string | number | readonly string[]);
        return;
      case 'sg_elems': {
        const n = parseIntIn(value, 1, 1024);
        if (n === undefined)
          throw kernelError(EINVAL, `dcbm: sg_elems must be 1..1024, got ${JSON.stringify(value)}`);
        s.sgElems = n;
        return;
      }
      case 'folios_migrated':
        s.foliosMigrated = 0;
        return;
      case 'folios_failures':
        s.foliosFailures = 0;
        return;
      default:
        throw kernelError(
          EINVAL,
          `dcbm: unknown parameter ${JSON.stringify(name)}; known: ${paramNames.join(', ')}`,
        );
    }
  }

  /** Every parameter as the kernel prints it. */
  list(): Record<ParamName, string> {
    return Object.fromEntries(paramNames.map((n) => [n, this.get(n)])) as Record<ParamName, string>;
  }
}
