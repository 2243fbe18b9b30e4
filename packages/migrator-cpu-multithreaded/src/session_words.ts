// The words of a run session's control block (an Int32Array over a SharedArrayBuffer), shared by
// the engine's thread and the workers it keeps awake for a migration run. Imports nothing: every
// worker thread loads it.

/** Bumped once per batch posted to the session; sleeping workers wait on it. */
export const SEQ = 0;
/** 1 while the session lasts; 0 sends every worker back to the pool (no run for a while, or dispose). */
export const RUN = 1;
/** Workers sleeping on SEQ: the engine notifies only when there is one. */
export const SLEEPERS = 2;
/** Shares of the batch posted last, the next one to claim, and those finished. */
export const NSHARES = 3;
export const NEXT = 4;
export const DONE = 5;
/** Nonzero: the batch is aborted; copying threads stop before their next 1 MiB. */
export const STOP = 6;
/** How long a worker polls SEQ after a batch before it sleeps, in nanoseconds. */
export const SPIN_NS = 7;
/** Times a worker went to sleep during the session (each costs the next batch a wake-up). */
export const SLEEPS = 8;
/** Workers in the session's loop. */
export const SERVING = 9;
/** The batch's number on the machine's timeline (0: not recording). */
export const BATCH_ID = 10;
/** 1 while a migration run goes: workers poll between batches; 0: they sleep once idle. */
export const ACTIVE = 11;
/**
 * Workers awake now (polling, or copying what they found), and how many may be: the host's cores
 * but one (the engine's thread needs it).
 */
export const POLLERS = 12;
export const MAX_POLLERS = 13;
/** Share k: words SHARES + k * SHARE_WORDS + SH_*. */
export const SHARES = 16;
export const SHARE_WORDS = 8;
export const SH_START_ROW = 0;
export const SH_START_PAGE = 1;
export const SH_PAGES = 2;
/** Pages copied (a prefix of the share), rows and pages it marked; -1 in SH_DONE: it failed. */
export const SH_DONE = 3;
export const SH_MARKED_ROWS = 4;
export const SH_MARKED_PAGES = 5;
/** The threadId of the worker that copied it. */
export const SH_THREAD = 6;
/** Shares one batch may have in a session. */
export const MAX_SHARES = 64;
export const CTL_WORDS = SHARES + MAX_SHARES * SHARE_WORDS;

/**
 * Off the CPU this long between two looks at the clock: the scheduler gave the core to another
 * thread that needed it (a kernel spinner's need_resched()), so the poll gives up and sleeps.
 */
export const PREEMPTED_NS = 1_000_000;
