/** What `pagemig` exits with; documented in the README and in `pagemig --help`. */
export const ExitCode = {
  /** Done, every byte and invariant verified. */
  OK: 0,
  /** A run failed: verification error, migration error, a broken driver. */
  FAILURE: 1,
  /** Bad command line: unknown command or option, a value out of range. */
  USAGE: 2,
  /** A migrator the command needs is not installed. */
  DRIVER_MISSING: 3,
  /** The config file is missing, unreadable or invalid. */
  CONFIG: 4,
} as const;
export type ExitCodeValue = (typeof ExitCode)[keyof typeof ExitCode];

/** An error that ends the command with a specific exit code and a one-line message. */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode: ExitCodeValue,
    readonly code = 'ERR_PAGEMIG_CLI',
  ) {
    super(message);
    this.name = 'CliError';
  }
}

export const usageError = (message: string) => new CliError(message, ExitCode.USAGE, 'ERR_USAGE');

export const EXIT_CODES_HELP = `Exit codes:
  0  success (bytes and invariants verified)
  1  failure: verification error, migration error, driver error
  2  usage error: unknown command or option, invalid value
  3  a migrator is not installed (the message names the package to install)
  4  config file not found, unreadable or invalid`;
