import { EINVAL, kernelError } from './errno.js';
import { describeKnownKeys, suggestKey } from './migrator_options.js';

/**
 * EINVAL naming `what` for a key of `opts` that is not one of `known`, with the closest known key
 * when there is one: a misspelt option (`{ shard: true }` for `shared`) would otherwise be
 * ignored silently and the call would do something else than asked.
 */
export function checkOptionKeys(what: string, opts: object, known: readonly string[]): void {
  for (const key of Object.keys(opts)) {
    if (known.includes(key)) continue;
    const hint = suggestKey(key, known);
    throw kernelError(
      EINVAL,
      `${what}: unknown option ${JSON.stringify(key)}; ${hint ? `did you mean ${JSON.stringify(hint)}? (${describeKnownKeys(known)})` : describeKnownKeys(known)}`,
    );
  }
}
