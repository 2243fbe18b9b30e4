import { createHook } from 'node:async_hooks';

/** Async resources that hold the process open or a thread alive (promises and ticks are not). */
const HANDLE_TYPES = new Set([
  'WORKER',
  'MESSAGEPORT',
  'Timeout',
  'Immediate',
  'FILEHANDLE',
  'FSREQCALLBACK',
  'TCPWRAP',
  'TCPSERVERWRAP',
  'PIPEWRAP',
  'PROCESSWRAP',
  'SIGNALWRAP',
  'UDPWRAP',
  'TTYWRAP',
  'STATWATCHER',
  'FSEVENTWRAP',
]);

/**
 * Tracks handles (workers, message ports, timers, sockets, ...) created from now on. `leaked()`
 * lists those not destroyed yet, by type and with the stack that created them.
 */
export function trackHandles(): { leaked(): string[]; settle(ms: number): Promise<void>; stop(): void } {
  const live = new Map<number, { type: string; stack: string }>();
  let ignoring = false;
  const hook = createHook({
    init(id, type) {
      if (ignoring || !HANDLE_TYPES.has(type)) return;
      const stack = (new Error().stack ?? '').split('\n').slice(3, 9).join('\n');
      live.set(id, { type, stack });
    },
    destroy(id) {
      live.delete(id);
    },
  }).enable();
  return {
    leaked: () => [...live.values()].map((h) => `${h.type}\n${h.stack}`),
    /** Waits (with a timer of its own that is not tracked) so destroy hooks can run. */
    settle(ms: number) {
      ignoring = true;
      try {
        return new Promise<void>((r) => setTimeout(r, ms));
      } finally {
        ignoring = false;
      }
    },
    stop: () => hook.disable(),
  };
}
