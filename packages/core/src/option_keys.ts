import { EINVAL, kernelError } from './errno.js';
import { unknownOption } from './migrator_options.js';

/**
 * EINVAL naming `what` for a key (an option, or the `noun` given) of `opts` that is not one of `known`, with the closest known key
 * when there is one: a misspelt option (`{ shard: true }` for `shared`) would otherwise be
 * ignored silently and the call would do something else than asked.
 */
export function checkOptionKeys(what: string, opts: object, known: readonly string[], noun = 'option'): void {
  const unknown = unknownOption(opts, known, noun);
  if (unknown) throw kernelError(EINVAL, `${what}: ${unknown}`);
}
