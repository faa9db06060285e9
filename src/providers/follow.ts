import type { Provider } from './types.js';
import { printable } from './console.js';
import { setTimeout as sleep } from 'node:timers/promises';

export interface Follower {
  /** Print what is left, then stop looking. */
  stop(): Promise<void>;
  /** Settles when the follower stops: stopped, or (untilStopped) the VM stopped running. */
  done: Promise<void>;
}

/**
 * A VM's serial console as it grows, a line at a time: what Packer's users
 * asked for (hashicorp/packer#534), for an install that runs headless. The
 * console is read every `everyMs` through the provider (a local file for
 * QEMU and VirtualBox, a volume download for libvirt); a console that
 * starts again (a rebuilt VM) is followed from its start. From `from`
 * characters in: a console kept across boots shows only this boot's.
 */
export function followConsole(
  provider: Provider,
  name: string,
  print: (line: string) => void,
  opts: { everyMs?: number; untilStopped?: boolean; from?: number } = {},
): Follower {
  let shown = opts.from ?? 0;
  let partial = '';
  let stopping = false;
  const look = async (final: boolean): Promise<void> => {
    const text = await provider.console(name);
    if (text.length < shown) {
      shown = 0;
      partial = '';
    }
    const lines = (partial + text.slice(shown)).split(/\r?\n/);
    shown = text.length;
    // The last piece is a line still being written: held back, unless this is the last look.
    partial = lines.pop()!;
    if (final && partial !== '') lines.push(partial);
    for (const l of lines) print(printable(l));
  };
  const done = (async () => {
    for (;;) {
      if (stopping) break;
      await look(false);
      if (opts.untilStopped && (await provider.info(name)).state !== 'running') break;
      await sleep(opts.everyMs ?? 500);
    }
    await look(true);
  })();
  return {
    done,
    stop: async () => {
      stopping = true;
      await done;
    },
  };
}
