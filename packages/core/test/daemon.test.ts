import { describe, expect, it } from 'vitest';
import { MachineDaemon } from '../src/daemon.js';
import { EBUSY, EINVAL } from '../src/errno.js';
import type { Machine } from '../src/machine.js';
import { expectErrno, machinesCheckedAfterEach } from './helpers.js';

const machine = machinesCheckedAfterEach();

/** A daemon with one loop that sleeps until woken; `hooked` counts what it installed and undid. */
class TestDaemon extends MachineDaemon {
  hooked = 0;
  shutdowns = 0;
  private wakeLoop: (() => void) | null = null;
  readonly done: Promise<void>;

  constructor(machine: Machine, failAfterHook = false) {
    super(machine, 'testd');
    this.checkAttachable('attachTestd');
    this.hooked++;
    this.undo.push(() => this.hooked--);
    if (failAfterHook) {
      for (const u of this.undo) u();
      throw new Error('hook failed');
    }
    this.attached();
    this.done = (async () => {
      while (!this.stopping) await new Promise<void>((r) => (this.wakeLoop = r));
    })();
  }

  /** Work outside the loop, as a manual compaction is. */
  run<T>(p: Promise<T>): Promise<T> {
    return this.track(p);
  }

  settled(): Promise<void> {
    return this.untilIdle(() => this.tracked.size === 0);
  }

  protected async shutdown(): Promise<void> {
    this.shutdowns++;
    this.wakeLoop?.();
    await this.done;
  }
}

describe('MachineDaemon: what the daemon packages share', () => {
  it('one per machine: EBUSY naming the caller until the first stops; stop() is idempotent and undoes', async () => {
    const m = await machine();
    const d = new TestDaemon(m);
    expect(d.hooked).toBe(1);
    const e = expectErrno(() => new TestDaemon(m), EBUSY, 'EBUSY');
    expect(e.message).toBe('EBUSY: attachTestd: this machine already has testd attached; stop() it first');
    const stopped = d.stop();
    expect(d.stop()).toBe(stopped);
    expect(d.stopping).toBe(true);
    await stopped;
    expect(d.hooked).toBe(0);
    expect(d.shutdowns).toBe(1);
    // Another machine, or this one once stopped, takes a new one.
    const again = new TestDaemon(m);
    const other = new TestDaemon(await machine());
    await Promise.all([again.stop(), other[Symbol.asyncDispose]()]);
    expect([again.shutdowns, other.shutdowns]).toEqual([1, 1]);
  });

  it('a constructor that throws after the check leaves the machine free for the next attach', async () => {
    const m = await machine();
    expect(() => new TestDaemon(m, true)).toThrow('hook failed');
    const d = new TestDaemon(m);
    await d.stop();
  });

  it('close() stops it first; a closed machine refuses a new one with ERR_MACHINE_CLOSED', async () => {
    const m = await machine();
    const d = new TestDaemon(m);
    await m.close();
    expect(d.stopping).toBe(true);
    expect(d.hooked).toBe(0);
    expect(d.shutdowns).toBe(1);
    const e = expectErrno(() => new TestDaemon(m), EINVAL, 'ERR_MACHINE_CLOSED');
    expect(e.message).toMatch(/attachTestd/);
  });

  it('tracked work: untilIdle waits for it, and stop() waits for it after shutdown', async () => {
    const m = await machine();
    const d = new TestDaemon(m);
    let finish!: () => void;
    const work = d.run(new Promise<void>((r) => (finish = r)));
    let idle = false;
    let stopped = false;
    const settling = d.settled().then(() => (idle = true));
    const stopping = d.stop().then(() => (stopped = true));
    await new Promise((r) => setTimeout(r, 20));
    // The loop has exited (shutdown ran); the tracked work holds both.
    expect(d.shutdowns).toBe(1);
    expect([idle, stopped]).toEqual([false, false]);
    finish();
    await Promise.all([work, settling, stopping]);
    expect([idle, stopped]).toEqual([true, true]);
    // A rejected piece of work counts as ended too.
    const failing = d.run(Promise.reject(new Error('x')));
    await expect(failing).rejects.toThrow('x');
    await d.settled();
  });
});
