import { readFileSync, writeFileSync } from 'node:fs';
import {
  calibrate,
  compareToMeasurements,
  loadProfile,
  type Measurement,
  parseMeasurementsJson,
  parseProfileJson,
  publishedData,
} from '@pagemig/core';
import { usageError } from '../exit_codes.js';
import { renderTable } from '../table.js';
import { defaultIo, emit, type ModeledIo, runModeled, share } from './output.js';

export interface CalibrateOptions {
  profile: string;
  /** A measurements file (schemaVersion 1); default: the published tables of the profile's machine. */
  data?: string;
  /** Comma-separated parameter paths; default: the profile's `calibration.free`. */
  free?: string;
  out?: string;
  json: boolean;
}

/** `pagemig calibrate`: fits a profile's free parameters and prints the fit. */
export async function runCalibrate(opts: CalibrateOptions, io: ModeledIo = defaultIo()): Promise<number> {
  return runModeled(io, 'calibrate', opts.json, () => {
    const start = opts.profile.endsWith('.json')
      ? parseProfileJson(readFileSync(opts.profile, 'utf8'), opts.profile)
      : loadProfile(opts.profile);
    let cells: readonly Measurement[];
    if (opts.data) cells = parseMeasurementsJson(readFileSync(opts.data, 'utf8'), opts.data);
    else {
      const pub = publishedData[start.name];
      if (!pub) throw usageError(`no published measurements for ${start.name}; pass --data <file>`);
      cells = pub.measurements;
    }
    const free = opts.free ? opts.free.split(',').map((s) => s.trim()) : (start.calibration?.free ?? []);
    if (!free.length)
      throw usageError(`nothing to fit: give --free (profile ${start.name} lists no free parameters)`);
    const fit = calibrate(start, cells, { free });
    const cmp = compareToMeasurements(fit.profile, cells);
    if (opts.out) writeFileSync(opts.out, `${JSON.stringify(fit.profile, null, 2)}\n`);
    if (opts.json) {
      emit(io, 'calibrate', {
        ok: true,
        profile: fit.profile.name,
        parameters: fit.parameters,
        cellsUsed: fit.cellsUsed,
        cellsHeldOut: cells.length - fit.cellsUsed,
        rmsLogErrorBefore: fit.rmsLogErrorBefore,
        rmsLogError: fit.rmsLogError,
        sweeps: fit.sweeps,
        modeledHeldOutMedianAbsError: cmp.heldOutMedianAbsError,
        fitted: fit.profile,
      });
      return 0;
    }
    const rows = fit.parameters.map((q) => [
      q.path,
      Number(q.initial.toPrecision(4)),
      Number(q.fitted.toPrecision(4)),
    ]);
    io.stdout.write(
      `pagemig calibrate: profile ${fit.profile.name}, ${fit.cellsUsed} cells fitted, ${cells.length - fit.cellsUsed} held out (never used)\n` +
        renderTable(['parameter', 'start', 'fitted'], rows) +
        `weighted rms ln(modeled/measured): ${fit.rmsLogErrorBefore.toFixed(3)} -> ${fit.rmsLogError.toFixed(3)} after ${fit.sweeps} sweeps\n` +
        `median |error| of modeled values: fitted cells ${share(cmp.fittedMedianAbsError ?? 0)}` +
        (cmp.heldOutMedianAbsError === null
          ? '\n'
          : `, held-out cells ${share(cmp.heldOutMedianAbsError)}\n`) +
        (opts.out ? `fitted profile written to ${opts.out}\n` : ''),
    );
    return 0;
  });
}
