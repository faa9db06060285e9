import { readFileSync, rmSync } from 'node:fs';
import { writeFileAtomicSync } from '../util/files.js';
import { isRunning } from '../util/process.js';
import type { AddressInfo } from 'node:net';
import { createServer, type Server } from 'node:http';
import { prepareTemplates } from '../kickstart/render.js';
import type { FSWatcher } from 'chokidar';
import { loadLab, type Lab } from '../config/load.js';
import { Inventory } from '../inventory/store.js';
import { ensureSecrets } from '../project/secrets.js';
import { EnvironmentError, messageOf } from '../errors.js';
import { guestServerUrl, defaultBindAddress } from '../kickstart/url.js';
import { providerKind } from '../providers/index.js';

export interface ServeOptions {
  bind?: string;
  port?: number;
  /** The base URL guests use, when neither the gateway nor 10.0.2.2 is right (NAT, a proxy). */
  publicUrl?: string;
  /** How many hosts not declared in environments.ts may call back (each with its own token, `lab hosts token`). */
  undeclared?: number;
  log?: (line: string) => void;
  /** The inventory can no longer be written: the caller stops the server (lab serve exits 3). */
  onStorageFailure?: (e: unknown) => void;
  /**
   * Run its callback path a few thousand times once it listens (warm-up.ts),
   * for a boot storm's first wave: `lab serve`'s, not the server a command
   * starts for its own few hosts, which would spend a second for nothing.
   */
  warmUp?: boolean;
}

export interface RunningServer {
  /** Where this machine reaches the server. */
  url: string;
  /** Where guests reach it: what kickstarts point at. */
  guestUrl: string;
  close(): Promise<void>;
}

/** What inventory/server.json says about a running server, so other commands find it. */
export interface ServerState {
  pid: number;
  url: string;
  guestUrl: string;
  startedAt: string;
}

/** The server running for this lab (inventory/server.json, a live pid that answers /healthz), if any. */
export async function findServer(lab: Lab): Promise<ServerState | undefined> {
  try {
    const s = JSON.parse(readFileSync(lab.paths.serverState, 'utf8')) as ServerState;
    // A server of another user (EPERM) counts: /healthz says whether it serves this lab's URL.
    if (!isRunning(s.pid)) return undefined;
    const res = await fetch(`${s.url}/healthz`, { signal: AbortSignal.timeout(2000) });
    return res.ok ? s : undefined;
  } catch {
    return undefined;
  }
}

/** Where guests call back while some work runs. */
export interface CallbackServer {
  url: string;
  guestUrl: string;
  /** A server started for the caller, who closes it when done; absent when `lab serve` runs. */
  started?: RunningServer;
}

/**
 * Where guests will call back, before a server is started for them: the
 * running `lab serve`'s URL, or the one a server started by callbackServer
 * will have. For a caller with work to do first (a build boots its VM, and
 * only then starts the server, 40 ms of CPU the guest's start need not wait
 * for: it asks for its kickstart seconds later). The lab network the
 * provider makes (VirtualBox's host-only interface) is made now, since the
 * caller's VMs need it.
 */
export async function callbackAddress(lab: Lab, opts: ServeOptions = {}): Promise<string> {
  const running = await findServer(lab);
  if (running) return running.guestUrl;
  if (!opts.bind) await prepareLabNetwork(lab);
  return guestUrlFor(lab, opts);
}

const guestUrlFor = (lab: Lab, opts: ServeOptions) => (opts.publicUrl ?? guestServerUrl(lab, opts.port ?? lab.config.network.serverPort)).replace(/\/+$/, '');

/** Labs whose network this process has made or found already. */
const preparedNetworks = new Set<string>();

/** The gateway must be on an interface before the server can listen on it: a provider that makes it (VirtualBox) does so now, once per process. */
async function prepareLabNetwork(lab: Lab): Promise<void> {
  if (preparedNetworks.has(lab.paths.dir)) return;
  await providerKind(lab).prepareNetwork?.(lab, (line) => process.stderr.write(`${line}\n`));
  preparedNetworks.add(lab.paths.dir);
}

/** The running `lab serve`, or else a server started for the length of the caller's work. */
export async function callbackServer(lab: Lab, opts: ServeOptions = {}): Promise<CallbackServer> {
  const running = await findServer(lab);
  if (running) return { url: running.url, guestUrl: running.guestUrl };
  try {
    const started = await startServer(lab, opts);
    return { url: started.url, guestUrl: started.guestUrl, started };
  } catch (e) {
    // The caller (image build, env start, the monitor) has no --bind or --port of its own: the way out is a lab serve.
    if (e instanceof EnvironmentError && e.kind === 'environment' && e.message.startsWith('cannot listen')) throw new EnvironmentError(`${e.message} (serving callbacks for this command, as no lab serve runs)`, 'bring up the lab network first, or run `lab serve` with --bind or --port where it can listen');
    throw e;
  }
}

function listen(server: Server, port: number, host: string): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
}

export async function startServer(initial: Lab, opts: ServeOptions = {}): Promise<RunningServer> {
  const log = opts.log ?? (() => undefined);
  let lab = initial;
  const secrets = ensureSecrets(lab.paths, lab.config.name);
  // A storm's journal is folded into db.json once callbacks pause for a tenth of a second (store.ts says why).
  const inventory = new Inventory(lab.paths, { foldWhenQuiet: 100 });
  const bind = opts.bind ?? defaultBindAddress(lab);
  const port = opts.port ?? lab.config.network.serverPort;
  const serving = { serverUrl: '', secret: secrets.secret, publicKey: secrets.publicKey };
  const names = opts.publicUrl ? [new URL(opts.publicUrl).hostname] : [];
  if (!opts.bind) await prepareLabNetwork(lab);
  // The app (express) and the watcher (chokidar) load when a server starts: commands that only look for one do not pay for them.
  const { createApp } = await import('./app.js');
  const { watch } = await import('chokidar');
  const ctx = { lab: () => lab, inventory, serving, log, names, undeclared: opts.undeclared, onStorageFailure: opts.onStorageFailure };
  const { handler, feed } = createApp(ctx);
  const server = createServer(handler);
  // A database that cannot be read stops the server here, in one line, rather than failing its first callbacks.
  await inventory.preload();
  try {
    await listen(server, port, bind);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EADDRNOTAVAIL') {
      throw new EnvironmentError(
        `cannot listen on ${bind}:${port}: no interface of this machine has the address ${bind}`,
        `bring up the lab network first, or listen elsewhere with --bind 127.0.0.1`,
      );
    }
    if (code === 'EADDRINUSE') {
      throw new EnvironmentError(`cannot listen on ${bind}:${port}: the port is in use`, 'stop what uses it, or pick another with --port');
    }
    throw new EnvironmentError(`cannot listen on ${bind}:${port}: ${messageOf(e)}`);
  }
  const actual = (server.address() as AddressInfo).port;
  const hostPart = bind.includes(':') ? `[${bind}]` : bind;
  const url = `http://${hostPart === '0.0.0.0' ? '127.0.0.1' : hostPart}:${actual}`;
  serving.serverUrl = guestUrlFor(lab, { ...opts, port: actual });

  // Edits of environments.ts apply at once; a broken edit is reported and the last good config kept.
  const watcher: FSWatcher = watch(lab.paths.config, { ignoreInitial: true, awaitWriteFinish: { stabilityThreshold: 100 } });
  watcher.on('change', () => {
    loadLab(lab.paths.dir).then(
      (next) => {
        lab = next;
        log(`reloaded ${lab.paths.config}`);
      },
      (e) => log(`kept the previous config: ${messageOf(e)}`),
    );
  });

  const state: ServerState = { pid: process.pid, url, guestUrl: serving.serverUrl, startedAt: new Date().toISOString() };
  try {
    // Also the proof that the inventory folder takes writes: a server that cannot record must not listen.
    writeFileAtomicSync(lab.paths.serverState, `${JSON.stringify(state, null, 2)}\n`);
  } catch (e) {
    await watcher.close();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    throw e;
  }

  // Once listening, not before: nothing waits for it yet, and the first kickstart's guest will.
  prepareTemplates(lab);
  // Also after it listens: the first guest calls back tens of seconds after it is started, the code it runs is ready by then.
  const stopWarmUp = new AbortController();
  const warming = opts.warmUp
    ? import('./warm-up.js').then(async ({ warmUp }) => {
        const t0 = performance.now();
        const n = await warmUp(ctx, stopWarmUp.signal);
        if (n > 0) log(`ready for a boot storm: the callback path ran ${n} times in ${Math.round(performance.now() - t0)} ms`);
      })
    : Promise.resolve();
  // A warm-up that fails (a full temporary folder) leaves a slower first storm, nothing else.
  warming.catch((e: unknown) => log(`warm-up: ${messageOf(e)}`));

  let closed: Promise<void> | undefined;
  return {
    url,
    guestUrl: serving.serverUrl,
    close() {
      closed ??= (async () => {
        stopWarmUp.abort();
        await warming.catch(() => undefined);
        await watcher.close();
        feed.close();
        await new Promise<void>((resolve) => {
          server.close(() => resolve());
          server.closeAllConnections();
        });
        // No callback comes any more: db.json is left whole.
        await inventory.settle().catch((e: unknown) => log(`the inventory's journal is left to fold: ${messageOf(e)}`));
        rmSync(lab.paths.serverState, { force: true });
      })();
      return closed;
    },
  };
}
