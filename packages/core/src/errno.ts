/** Linux errno values (asm-generic/errno-base.h, errno.h), exported by name. */
export const EPERM = 1;
export const ENOENT = 2;
export const ESRCH = 3;
export const EINTR = 4;
export const EIO = 5;
export const E2BIG = 7;
export const EAGAIN = 11;
export const ENOMEM = 12;
export const EACCES = 13;
export const EFAULT = 14;
export const EBUSY = 16;
export const EEXIST = 17;
export const ENODEV = 19;
export const EINVAL = 22;
export const ENOSPC = 28;
export const ERANGE = 34;
export const ENOSYS = 38;
export const EOPNOTSUPP = 95;
export const ETIMEDOUT = 110;

export const errnoNames: Readonly<Record<number, string>> = {
  [EPERM]: 'EPERM',
  [ENOENT]: 'ENOENT',
  [ESRCH]: 'ESRCH',
  [EINTR]: 'EINTR',
  [EIO]: 'EIO',
  [E2BIG]: 'E2BIG',
  [EAGAIN]: 'EAGAIN',
  [ENOMEM]: 'ENOMEM',
  [EACCES]: 'EACCES',
  [EFAULT]: 'EFAULT',
  [EBUSY]: 'EBUSY',
  [EEXIST]: 'EEXIST',
  [ENODEV]: 'ENODEV',
  [EINVAL]: 'EINVAL',
  [ENOSPC]: 'ENOSPC',
  [ERANGE]: 'ERANGE',
  [ENOSYS]: 'ENOSYS',
  [EOPNOTSUPP]: 'EOPNOTSUPP',
  [ETIMEDOUT]: 'ETIMEDOUT',
};

/** What a syscall returns: `ret` -1 with `errno` on error, else 0 or a count. */
export interface SyscallResult {
  /** The syscall's return value: -1 on error (see errno), else 0 or the count not migrated. */
  ret: number;
  errno?: number;
}

const marker = Symbol.for('pagemig.error');

/**
 * Every error pagemig throws. `code` is stable and greppable; `errno` is the Linux value where the
 * kernel has one. Recognise it with `PagemigError.isInstance(e)` (works across duplicate copies of
 * the package, unlike `instanceof`).
 */
export class PagemigError extends Error {
  readonly [marker] = true;
  readonly code: string;
  readonly errno: number | undefined;

  constructor(code: string, message: string, options: { errno?: number; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'PagemigError';
    this.code = code;
    this.errno = options.errno;
  }

  static isInstance(e: unknown): e is PagemigError {
    return typeof e === 'object' && e !== null && (e as Record<symbol, unknown>)[marker] === true;
  }
}

/** An error that carries a kernel errno; `code` is the errno's name. */
export function kernelError(errno: number, message: string): PagemigError {
  const name = errnoNames[errno] ?? `E${errno}`;
  return new PagemigError(name, `${name}: ${message}`, { errno });
}

/**
 * A host allocation that failed (V8 throws a RangeError when it cannot give an ArrayBuffer) as
 * ENOMEM naming what was being allocated; any other error comes back unchanged.
 */
export function hostNoMem(e: unknown, what: string): unknown {
  if (!(e instanceof RangeError)) return e;
  return new PagemigError('ENOMEM', `ENOMEM: ${what}: the host cannot allocate it (${e.message})`, {
    errno: ENOMEM,
    cause: e,
  });
}
