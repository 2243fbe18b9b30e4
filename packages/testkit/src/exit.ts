import { spawn } from 'node:child_process';

export interface ExitResult {
  /** The child's exit code (-1 if a signal ended it), or 'timeout' if it had to be killed. */
  code: number | 'timeout';
  out: string;
  err: string;
}

/**
 * Runs a Node script in a child process and waits for the process to exit on its own: the check
 * that a migrator's threads and handles never hold a process open. After `timeoutMs` the child is
 * killed and the result is 'timeout'.
 */
export function runUntilExit(
  script: string,
  args: readonly string[],
  opts: { cwd: string; timeoutMs: number },
): Promise<ExitResult> {
  return new Promise((resolve) => {
    const c = spawn(process.execPath, [script, ...args], { cwd: opts.cwd });
    let out = '';
    let err = '';
    c.stdout.on('data', (d) => {
      out += d;
    });
    c.stderr.on('data', (d) => {
      err += d;
    });
    const timer = setTimeout(() => {
      c.kill('SIGKILL');
      resolve({ code: 'timeout', out, err });
    }, opts.timeoutMs);
    c.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? -1, out, err });
    });
  });
}
