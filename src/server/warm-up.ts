import { randomBytes } from 'node:crypto';
import { lstatSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { Agent, createServer, request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Lab } from '../config/load.js';
import { Inventory } from '../inventory/store.js';
import { macFrom } from '../inventory/leases.js';
import { hostToken } from '../project/secrets.js';
import { isRunning } from '../util/process.js';
import { bootedHandler } from './booted.js';
import type { AppContext } from './app.js';

/** Callbacks sent, and how many at once: enough for V8 to have optimized the path (see below). */
const CALLBACKS = 3000;
const CLIENTS = 50;

/**
 * Run the callback path, whole, once the server listens (guests call back
 * tens of seconds later), so that a boot storm's first wave does not meet
 * code that has never run. A storm of
 * 1,000 callbacks on a fresh server ran at half the rate of the same storm
 * on one that had just taken a storm (bench:storm, 2026-12-03: 2,300/s, p99
 * 90 ms, against 5,100/s, p99 62 ms): node's HTTP server, the token, the
 * checks, the inventory's commit and journal were still being compiled and
 * optimized by V8 while the first hundreds of hosts waited. Refused
 * callbacks (the warm-up before this one) ran only the first checks.
 *
 * The callbacks are accepted, for hosts warm-up-N, by the server's own
 * callback handler with a context of its own: a scratch inventory in a
 * private temporary folder (scratchFolder), a secret of its own (the lab's
 * tokens are not used), no log. The lab's inventory is not touched but for
 * one commit that changes nothing (its lock's code). Where loopback does not
 * work (a namespace whose lo is down), the callbacks fail at once and the
 * server starts all the same.
 */
export async function warmUp(ctx: Pick<AppContext, 'lab' | 'inventory' | 'serving' | 'names'>, signal: AbortSignal, callbacks = CALLBACKS, clients = CLIENTS): Promise<number> {
  await ctx.inventory.update(() => undefined);
  const dir = scratchFolder();
  try {
    const lab = ctx.lab();
    const paths = { ...lab.paths, inventory: dir, db: path.join(dir, 'db.json'), journal: path.join(dir, 'db.journal'), bootLog: path.join(dir, 'booted.log') };
    const scratchLab: Lab = { ...lab, paths };
    const secret = randomBytes(32).toString('base64url');
    const handler = bootedHandler({
      lab: () => scratchLab,
      inventory: new Inventory(paths),
      serving: { ...ctx.serving, secret },
      log: () => undefined,
      undeclared: Infinity,
      names: ctx.names,
    });
    return await sendCallbacks(handler, callbacks, clients, signal, (i) => {
      const host = `warm-up-${i}`;
      const mac = macFrom([0x52, 0x54, 0x00], 0xff0000 + (i & 0xffff));
      return `/booted?host=${host}&mac=${mac}&ip=127.0.0.2&token=${hostToken(secret, host)}`;
    }, `hostkey=${encodeURIComponent(ctx.serving.publicKey)}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * A private temporary folder, lab-warm-up-<pid>-XXXXXX, removed by the
 * warm-up when done. Not in the lab's inventory: that may be a small or
 * nearly full disk, and 3,000 callbacks' scratch inventory must not take
 * the room real callbacks need. Those left by servers killed mid-way
 * (SIGKILL, a crash) are this user's folders whose process no longer runs:
 * removed here, where before they were kept for good.
 */
function scratchFolder(): string {
  const tmp = tmpdir();
  for (const name of readdirSync(tmp)) {
    const pid = Number(/^lab-warm-up-(\d+)-/.exec(name)?.[1]);
    if (!pid || isRunning(pid)) continue;
    const dir = path.join(tmp, name);
    if (lstatSync(dir, { throwIfNoEntry: false })?.uid === process.getuid?.()) rmSync(dir, { recursive: true, force: true });
  }
  return mkdtempSync(path.join(tmp, `lab-warm-up-${process.pid}-`));
}

/** POST each path once, `clients` at a time, to handler on a loopback listener of its own (closed after), until signal; how many were answered. */
async function sendCallbacks(handler: ReturnType<typeof bootedHandler>, count: number, clients: number, signal: AbortSignal, pathOf: (i: number) => string, body: string): Promise<number> {
  const scratch = createServer(handler);
  const listening = await new Promise<boolean>((resolve) => {
    scratch.once('error', () => resolve(false));
    scratch.listen(0, '127.0.0.1', () => resolve(true));
  });
  if (!listening) return 0;
  const { port } = scratch.address() as AddressInfo;
  const agent = new Agent({ keepAlive: true, maxSockets: clients });
  const one = (i: number) =>
    new Promise<boolean>((resolve) => {
      const req = request({ host: '127.0.0.1', port, path: pathOf(i), method: 'POST', agent, headers: { 'content-type': 'application/x-www-form-urlencoded' } }, (res) => {
        res.resume();
        res.on('end', () => resolve(true));
      });
      req.on('error', () => resolve(false));
      req.setTimeout(1000, () => req.destroy());
      req.end(body);
    });
  let next = 0;
  let answered = 0;
  const client = async () => {
    // A failed request (no loopback): this client stops.
    while (next < count && !signal.aborted) {
      if (!(await one(next++))) return;
      answered++;
    }
  };
  try {
    await Promise.all(Array.from({ length: clients }, client));
    return answered;
  } finally {
    agent.destroy();
    await new Promise<void>((resolve) => {
      scratch.close(() => resolve());
      scratch.closeAllConnections();
    });
  }
}
