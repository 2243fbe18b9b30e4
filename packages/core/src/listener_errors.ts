/**
 * What a listener that throws leaves behind. A listener cannot fail the code that calls it (a
 * tracepoint, a daemon's run report): its error is kept among the newest `LISTENER_ERRORS_KEPT`,
 * and the first error of each `key` becomes one process warning, so a listener that always throws
 * does not flood stderr.
 */
const LISTENER_ERRORS_KEPT = 100;

/** Records `error` of a listener as `entry`, warning once per `key`. */
export function listenerThrew<E, K>(
  errors: E[],
  entry: E,
  warned: { has(key: K): boolean; add(key: K): unknown },
  key: K,
  warning: { code: string; text: (why: string) => string },
  error: unknown,
): void {
  if (errors.push(entry) > LISTENER_ERRORS_KEPT) errors.shift();
  if (warned.has(key)) return;
  warned.add(key);
  let why = 'a non-Error value';
  try {
    why = error instanceof Error ? error.message : String(error);
  } catch {
    // An object that cannot even be printed.
  }
  process.emitWarning(warning.text(why), { code: warning.code });
}
