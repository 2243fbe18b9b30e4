// During a run, the awake workers or an inline copy: whichever the measurements say is faster. A
// batch's cost is measured from one copyBatch call to the next (its copy and the engine's own work
// until the next batch), so it includes what the workers cost the engine's thread: on a host whose
// other core is busy they wait for a core, or take the engine's, and then inline wins. The slower
// mode is still tried now and then, so a change of the host's load is noticed.
//
// Only warm batches are learned: the first awake batch after inline ones (or of a run) finds the
// workers asleep and pays their wake-up, which is the price of switching, not of the mode. So a
// look at the awake mode is a streak of AWAKE_PROBE_BATCHES (2), whose first is not counted.
import type { AdaptiveCopy } from './state.js';

/**
 * One look at the slower mode every this many batches; each look that confirms the choice doubles
 * the interval (up to MAX_PROBE_EVERY), so a host where one mode keeps winning pays for the other
 * almost never, and a flip starts over.
 */
const PROBE_EVERY = 64;
const MAX_PROBE_EVERY = 1024;
/** The first look at the awake workers: from the fourth batch of the migrator's runs. */
const FIRST_PROBE = 4;
/** A look at the awake mode: a wake-up batch, then batches that are measured. */
const AWAKE_PROBE_BATCHES = 2;
/** A gap longer than this between two batches is not a batch's cost (the run ended, or waited). */
const MAX_CYCLE_MS = 50;

export const INLINE = 1;
export const AWAKE = 2;

/** A migrator's state before its first batch: nothing measured, inline chosen. */
export function newAdaptiveCopy(): AdaptiveCopy {
  return {
    inlineNsPerByte: 0,
    awakeNsPerByte: 0,
    lastMode: 0,
    lastAt: 0,
    lastBytes: 1,
    lastFresh: false,
    streak: 0,
    probing: false,
    probeMode: 0,
    probeLeft: 0,
    sinceProbe: 0,
    probeEvery: PROBE_EVERY,
    chosen: 0,
  };
}

/**
 * Adds a cost per byte to the mode's rate: an exponentially weighted mean over the batches that go
 * that way, but the first of a look (after the mode was not used for a while) replaces it.
 */
function learn(a: AdaptiveCopy, mode: number, nsPerByte: number, fresh: boolean): void {
  const old = mode === INLINE ? a.inlineNsPerByte : a.awakeNsPerByte;
  const x = old && !fresh ? 0.75 * old + 0.25 * nsPerByte : nsPerByte;
  if (mode === INLINE) a.inlineNsPerByte = x;
  else a.awakeNsPerByte = x;
}

/**
 * The mode the measurements chose: inline until the workers were measured and beat it by
 * SWITCH_MARGIN, so a host whose other core is busy pays for a look now and then, never for a run
 * of slow batches.
 */
export function preferredMode(a: AdaptiveCopy): number {
  return a.chosen === AWAKE ? AWAKE : INLINE;
}

/** Switches only to a mode that measured this much faster: one noisy look flips nothing. */
const SWITCH_MARGIN = 0.1;

/** The mode to keep or switch to, from both rates (unchanged while one is not measured). */
function decide(a: AdaptiveCopy): number {
  const cur = preferredMode(a);
  if (a.awakeNsPerByte === 0 || a.inlineNsPerByte === 0) return cur;
  const mine = cur === INLINE ? a.inlineNsPerByte : a.awakeNsPerByte;
  const other = cur === INLINE ? a.awakeNsPerByte : a.inlineNsPerByte;
  if (other >= mine * (1 - SWITCH_MARGIN)) return cur;
  return cur === INLINE ? AWAKE : INLINE;
}

/**
 * A batch of `bytes` is about to be copied at `now` (ms): charges the time since the previous
 * batch of the run to the mode that batch went (when it was warm), and returns the mode for this
 * one. `a.probing` is true while the mode returned is a look at the slower one.
 */
export function chooseMode(a: AdaptiveCopy, now: number, bytes: number): number {
  // The previous batch was warm: inline always; awake when the batch before it was awake too.
  if (a.lastMode !== 0 && now - a.lastAt < MAX_CYCLE_MS && (a.lastMode === INLINE || a.streak > 1))
    learn(a, a.lastMode, ((now - a.lastAt) * 1e6) / a.lastBytes, a.lastFresh);
  let mode: number;
  if (a.probeLeft > 0) {
    // Still in a look at the other mode.
    a.probeLeft--;
    mode = a.probeMode;
  } else {
    const before = preferredMode(a);
    a.chosen = decide(a);
    const faster = a.chosen;
    if (a.probing) {
      // A look ended: did it change the choice?
      a.probing = false;
      a.probeEvery = faster === before ? Math.min(MAX_PROBE_EVERY, a.probeEvery * 2) : PROBE_EVERY;
    }
    mode = faster;
    if (++a.sinceProbe >= (a.awakeNsPerByte === 0 ? FIRST_PROBE : a.probeEvery)) {
      a.sinceProbe = 0;
      a.probing = true;
      mode = faster === AWAKE ? INLINE : AWAKE;
      a.probeMode = mode;
      a.probeLeft = mode === AWAKE ? AWAKE_PROBE_BATCHES - 1 : 0;
    }
  }
  a.streak = mode === a.lastMode ? a.streak + 1 : 1;
  // The first measured batch of a look refreshes the mode's rate outright.
  a.lastFresh = a.probing && a.streak === (mode === AWAKE ? 2 : 1);
  a.lastMode = mode;
  a.lastAt = now;
  a.lastBytes = bytes;
  return mode;
}

/** The run ended: the time until the next run's first batch is no batch's cost. */
export function endCycle(a: AdaptiveCopy): void {
  a.lastMode = 0;
  a.streak = 0;
}
