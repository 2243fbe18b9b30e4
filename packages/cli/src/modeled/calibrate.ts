import { readFileSync, writeFileSync } from 'node:fs';
import {
  calibrate,
  compareToMeasurements,
  type Measurement,
  parseMeasurementsJson,
  publishedData,
} from '@pagemig/core/timing';
import { usageError } from '../exit_codes.js';
import { checkWritable } from '../output_paths.js';
import { renderTable } from '../table.js';
import { defaultIo, emit, type ModeledIo, runModeled, share } from './output.js';
import { profileOption } from './predict.js';

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
    const start = profileOption(opts.profile);
    if (opts.out) checkWritable('--out', opts.out, process.cwd());
    let cells: readonly Measurement[];
    if (opts.data) {
      let text: string;
      try {
        text = readFileSync(opts.data, 'utf8');
      } catch (e) {
        throw usageError(`--data ${opts.data}: cannot read the file: ${(e as Error).message}`);
      }
      cells = parseMeasurementsJson(text, opts.data);
    } else {
      const pub = publishedData[start.name];
      if (!pub) throw usageError(`no published measurements for ${start.name}; pass --data <file>`);
      cells = pub.measurements;
    }
    const free = opts.free ? opts.free.split(',').map((s) => s.trim()) : (start.calibration?.free ?? []);
    if (!free.length)
      throw usageError(`nothing to fit: give --free (profile ${start.name} lists no free parameters)`);
    for (const q of free) {
      let v: unknown = start;
      for (const k of q.split('.')) v = (v as Record<string, unknown> | undefined)?.[k];
      if (typeof v !== 'number')
        throw usageError(
          `--free: profile ${start.name} has no numeric parameter ${JSON.stringify(q)}` +
            (start.calibration?.free?.length
              ? ` (its own free parameters: ${start.calibration.free.join(', ')})`
              : ''),
        );
    }
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
