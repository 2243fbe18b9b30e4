import { type HardwareProfile, loadProfile, parseProfile } from './profile.js';
import type { Copier, ModeledTime } from './run_time.js';

/** 'real' (default): wall time only. 'modeled': the run also carries the timing model's phases. */
export type ClockKind = 'real' | 'modeled';

/** A profile by shipped name, or a profile object (validated). */
export type ProfileRef = string | HardwareProfile;

export interface ClockOptions {
  clock?: ClockKind;
  profile?: ProfileRef;
}

/** What a run result carries under the modeled clock. */
export interface ModeledRun extends ModeledTime {
  clock: 'modeled';
  copier: Copier;
}

export function resolveProfile(ref: ProfileRef): HardwareProfile {
  return typeof ref === 'string' ? loadProfile(ref) : parseProfile(ref, `profile ${ref.name ?? '(object)'}`);
}
