import { setTimeout as sleep } from 'node:timers/promises';

/**
 * Ask `probe` every `everyMs` until it answers (anything but undefined) or
 * `deadlineMs` from now passes: its answer, or undefined at the deadline. The
 * probe is always asked once more at the deadline, so a state reached just
 * then is not taken for a timeout. A probe that throws ends the wait with its
 * error; so does an aborted signal.
 */
export async function waitUntil<T>(deadlineMs: number, probe: () => Promise<T | undefined> | T | undefined, opts: { everyMs?: number; firstMs?: number; signal?: AbortSignal } = {}): Promise<T | undefined> {
  const end = Date.now() + deadlineMs;
  const every = opts.everyMs ?? 500;
  // firstMs: the first waits are that short, doubling up to everyMs, for an end expected any moment.
  let wait = Math.min(opts.firstMs ?? every, every);
  for (;;) {
    opts.signal?.throwIfAborted();
    const answer = await probe();
    if (answer !== undefined) return answer;
    if (Date.now() >= end) return undefined;
    await sleep(Math.min(wait, Math.max(0, end - Date.now())));
    wait = Math.min(wait * 2, every);
  }
}

/**
 * Ctrl-C and SIGTERM as an abort of the command's work: long waits end
 * cleanly (steps undone, a rerun does the rest) instead of the process dying
 * mid-change. The reason is the signal's name.
 */
export function interruptSignal(): AbortSignal {
  const ac = new AbortController();
  onInterrupt((sig) => ac.abort(sig));
  return ac.signal;
}

/**
 * fn at the first SIGINT or SIGTERM; a second one ends the process as the
 * signal would. The listener stays registered rather than `once`:
 * proper-lockfile's signal-exit (loaded with the inventory's first change)
 * re-raises a signal that no other listener holds, which killed a process
 * in the middle of stopping cleanly.
 */
export function onInterrupt(fn: (sig: 'SIGINT' | 'SIGTERM') => void): void {
  let seen = false;
  const handle = (sig: 'SIGINT' | 'SIGTERM') => {
    if (!seen) {
      seen = true;
      fn(sig);
      return;
    }
    process.off('SIGINT', handle);
    process.off('SIGTERM', handle);
    process.kill(process.pid, sig);
  };
  process.on('SIGINT', handle);
  process.on('SIGTERM', handle);
}
