import { type Command, InvalidArgumentError, Option } from 'commander';
import { runModeledBench } from './bench.js';
import { runCalibrate } from './calibrate.js';
import { defaultIo, type ModeledIo } from './output.js';
import { type PredictOptions, runPredict, SCENARIOS } from './predict.js';

export { runModeledBench };

function int(name: string, min = 0) {
  return (v: string) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < min)
      throw new InvalidArgumentError(`${name} must be an integer >= ${min}`);
    return n;
  };
}

/** Where the commands write and how they report their exit code (pagemig's CommandContext fits). */
export interface ModeledContext {
  io?: ModeledIo;
  exit?(code: number): void;
}

/** Adds `pagemig calibrate` and `pagemig predict` (modeled clock). Default: process streams and exitCode. */
export function registerModeledCommands(program: Command, ctx: ModeledContext = {}): void {
  const io = ctx.io ?? defaultIo();
  const exit =
    ctx.exit ??
    ((code: number) => {
      process.exitCode = code;
    });
  program
    .command('calibrate')
    .description(
      'fit a hardware profile to measurements (published or --data) and print the fit; modeled clock',
    )
    .requiredOption('--profile <name|file.json>', 'profile to start from')
    .option(
      '--data <file.json>',
      'measurements (schemaVersion 1); default: the published tables of the machine',
    )
    .option('--free <paths>', "comma-separated parameters to fit, e.g. 'kernel.perFolioNs,cpu.ccdGBps'")
    .option('--out <file.json>', 'write the fitted profile')
    .option('--json', 'one JSON document', false)
    .action(async (o) => exit(await runCalibrate(o, io)));
  program
    .command('predict')
    .description('predict a migration nobody measured, with its assumptions; modeled clock')
    .addOption(new Option('--scenario <name>', 'a named prediction').choices(Object.keys(SCENARIOS)))
    .option('--profile <name|file.json>', 'hardware profile', 'zen3-epyc-ptdma')
    .option('--folio <size>', 'folio size', '2M')
    .option('--total <size>', 'bytes migrated', '1G')
    .addOption(
      new Option('--copier <kind>', 'who copies').choices(['kernel', 'threads', 'dma']).default('dma'),
    )
    .option('--threads <n>', 'copy threads', int('--threads', 1), 8)
    .addOption(
      new Option('--placement <how>', 'thread placement').choices(['spread', 'packed']).default('spread'),
    )
    .option('--engine <name>', 'DMA engine of the profile (default: its first)')
    .option('--channels <n>', 'DMA channels / contexts', int('--channels', 1), 8)
    .option('--batch-pages <n>', 'NR_MAX_BATCHED_MIGRATION in base pages', int('--batch-pages', 1), 512)
    .option('--from <node>', 'source node', int('--from'), 0)
    .option('--to <node>', 'target node', int('--to'), 1)
    .option('--json', 'one JSON document', false)
    .action(async (o: PredictOptions) => exit(await runPredict(o, io)));
}
