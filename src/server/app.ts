import type { IncomingMessage, ServerResponse } from 'node:http';
import express, { type Request, type Response, type NextFunction } from 'express';
import { allHosts, type Lab } from '../config/load.js';
import type { Inventory } from '../inventory/store.js';
import { recordKickstartFetch } from '../inventory/boots.js';
import { leaseFor } from '../inventory/leases.js';
import { windowOf } from '../inventory/windows.js';
import { renderKickstartWith, leasesFor } from '../kickstart/hosts.js';
import { pxeTree } from '../kickstart/pxe.js';
import type { Serving } from '../kickstart/context.js';
import { peerAddress } from './callback.js';
import { bootedHandler, isBootedRequest } from './booted.js';
import { parseHostName } from '../inventory/values.js';
import { messageOf } from '../errors.js';
import { DASHBOARD_CSP, DASHBOARD_HTML, DashboardFeed } from './dashboard.js';
import { byName } from '../hosts/manager.js';
import { hostAllowed, OTHER_NAME } from './hosts.js';
import { serverFailure } from './failure.js';

export interface AppContext {
  /** The current config: the server follows edits of environments.ts. */
  lab: () => Lab;
  inventory: Inventory;
  serving: Serving;
  log: (line: string) => void;
  /** How many hosts not declared in environments.ts callbacks may add (0: none). */
  undeclared?: number;
  /** Host names (besides IP literals and localhost) the server answers to: its public URL's. */
  names?: string[];
  /** The inventory cannot be written: the server must stop rather than pretend. */
  onStorageFailure?: (e: unknown) => void;
}

/** JSON with a final newline, so a reply printed by curl in a script ends its line. */
function reply(res: Response, status: number, body: unknown): void {
  res.status(status).type('application/json').send(`${JSON.stringify(body)}\n`);
}

function fail(res: Response, status: number, error: string): void {
  reply(res, status, { error });
}

export interface App {
  app: express.Express;
  feed: DashboardFeed;
  /** What the HTTP server runs: boot callbacks on their own path (booted.ts), the rest through express. */
  handler: (req: IncomingMessage, res: ServerResponse) => void;
}

export function createApp(ctx: AppContext): App {
  const app = express();
  const feed = new DashboardFeed(ctx.inventory, ctx.lab().paths.bootLog, () => ctx.lab().config.name, undefined, ctx.lab);
  app.disable('x-powered-by');
  app.set('query parser', 'simple');

  // Before anything else: a request for another name (a page elsewhere, DNS rebinding) gets nothing.
  app.use((req, res, next) => {
    res.set('x-content-type-options', 'nosniff');
    if (!hostAllowed(req.get('host'), ctx.names ?? [])) return fail(res, 421, OTHER_NAME);
    next();
  });
  app.use(express.urlencoded({ extended: false, limit: '16kb' }));
  app.use(express.json({ limit: '16kb' }));
  app.use(express.text({ type: 'text/plain', limit: '16kb' }));

  app.get('/', (_req, res) => {
    res.set({ 'content-security-policy': DASHBOARD_CSP, 'x-frame-options': 'DENY', 'referrer-policy': 'no-referrer' });
    res.type('html').send(DASHBOARD_HTML);
  });
  app.get('/api/events', feed.handler);

  app.get('/healthz', (_req, res) => {
    res.json({ ok: true, lab: ctx.lab().config.name });
  });

  app.get('/ks/:host', (req, res) => kickstartRoute(ctx, req, res));

  app.get('/pxe/*file', async (req, res) => {
    const lab = ctx.lab();
    const file = (req.params as { file: string[] }).file.join('/');
    const leases = await leasesFor(lab, ctx.inventory, allHosts(lab));
    const found = pxeTree(lab, leases, ctx.serving).find((f) => f.path === file);
    if (!found) return fail(res, 404, `no PXE file "${file}"`);
    res.type('text/plain').send(found.content);
  });

  app.get('/api/hosts', async (_req, res) => {
    const data = await ctx.inventory.read();
    res.json(Object.values(data.hosts).sort(byName));
  });

  app.use((_req: Request, res: Response) => fail(res, 404, 'not found'));
  // Express 5 hands rejected promises of async handlers to this. What reaches a client says
  // what went wrong in general terms: the details (paths among them) go to the server's log.
  app.use((err: unknown, _req: Request, res: Response, _next: NextFunction) => {
    const status = (err as { status?: number }).status;
    if (status && status >= 400 && status < 500) return fail(res, status, (err as { expose?: boolean }).expose ? messageOf(err) : 'bad request');
    serverFailure(ctx, err, (s, error) => fail(res, s, error));
  });
  // A callback changes the inventory: POST only (a GET or HEAD, from a crawler or a prefetch, records nothing).
  const booted = bootedHandler(ctx);
  return { app, feed, handler: (req, res) => (isBootedRequest(req) ? booted(req, res) : app(req, res)) };
}

/**
 * GET /ks/<host>: a host's rendered kickstart, served only inside its install
 * window (it carries the host's callback token). A fetch outside the window,
 * anyone's, is refused on a read: it costs no lock and no write.
 */
async function kickstartRoute(ctx: AppContext, req: Request, res: Response): Promise<void> {
  const lab = ctx.lab();
  const name = parseHostName(req.params.host);
  const host = name ? allHosts(lab).find((h) => h.name === name) : undefined;
  if (!host) return fail(res, 404, `no host "${req.params.host}" is declared in environments.ts`);
  // Served only while lab expects the host to install: a kickstart carries the host's callback token.
  // A HEAD is answered like a GET by express, but changes nothing.
  const ip = peerAddress(req.socket.remoteAddress);
  // Refused on a read: a fetch outside the window (anyone's) costs no lock and no write.
  const open = windowOf(await ctx.inventory.read(), host.name);
  const lease = open
    ? await ctx.inventory.update((data) => {
        // Looked at again under the lock: the window may have closed since.
        if (!windowOf(data, host.name)) return undefined;
        if (req.method === 'GET') recordKickstartFetch(data, host, { ip });
        return leaseFor(data, lab, host.name);
      })
    : undefined;
  if (!lease) {
    ctx.log(`kickstart ${host.name} refused to ${ip}: no install window`);
    return fail(res, 403, `${host.name} is not expected to install now: lab opens its kickstart during lab image build, lab image clone and lab env start; open it by hand with \`lab kickstart --allow ${host.name}\``);
  }
  const text = renderKickstartWith(lab, host, lease, ctx.serving);
  ctx.log(`kickstart ${host.name} -> ${ip}`);
  res.type('text/plain').send(text);
}
