import express, { type Request, type Response, type NextFunction } from 'express';
import { allHosts, type Lab } from '../config/load.js';
import type { Inventory } from '../inventory/store.js';
import { recordCallback, recordKickstartFetch } from '../inventory/boots.js';
import { leaseFor } from '../inventory/leases.js';
import { tokenMatches } from '../project/secrets.js';
import { renderKickstartWith, leasesFor } from '../kickstart/hosts.js';
import { pxeTree } from '../kickstart/pxe.js';
import type { Serving } from '../kickstart/context.js';
import { parseCallback, parseHostName, parseMac, peerAddress, tokenOf } from './callback.js';
import { isLabError, messageOf } from '../errors.js';
import { DASHBOARD_HTML, dashboardEvents } from './dashboard.js';
import { byName } from '../hosts/manager.js';

export interface AppContext {
  /** The current config: the server follows edits of environments.ts. */
  lab: () => Lab;
  inventory: Inventory;
  serving: Serving;
  log: (line: string) => void;
}

/** JSON with a final newline, so a reply printed by curl in a script ends its line. */
function reply(res: Response, status: number, body: unknown): void {
  res.status(status).type('application/json').send(`${JSON.stringify(body)}\n`);
}

function fail(res: Response, status: number, error: string): void {
  reply(res, status, { error });
}

export function createApp(ctx: AppContext): express.Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('query parser', 'simple');
  app.use(express.urlencoded({ extended: false, limit: '16kb' }));
  app.use(express.json({ limit: '16kb' }));
  app.use(express.text({ type: 'text/plain', limit: '16kb' }));

  app.get('/', (_req, res) => {
    res.type('html').send(DASHBOARD_HTML);
  });
  app.get('/api/events', dashboardEvents(ctx.inventory, ctx.lab().paths.bootLog, () => ctx.lab().config.name));

  app.get('/healthz', (_req, res) => {
    res.json({ ok: true, lab: ctx.lab().config.name });
  });

  app.get('/ks/:host', async (req, res) => {
    const lab = ctx.lab();
    const name = parseHostName(req.params.host);
    const host = name ? allHosts(lab).find((h) => h.name === name) : undefined;
    if (!host) return fail(res, 404, `no host "${req.params.host}" is declared in environments.ts`);
    // Anaconda with inst.ks.sendmac sends "X-RHN-Provisioning-MAC-0: eth0 52:54:00:..".
    const mac = parseMac(req.get('x-rhn-provisioning-mac-0')?.trim().split(/\s+/).pop());
    const ip = peerAddress(req.socket.remoteAddress);
    const lease = await ctx.inventory.update((data) => {
      recordKickstartFetch(data, host, { ip, mac });
      return leaseFor(data, lab, host.name);
    });
    const text = renderKickstartWith(lab, host, lease, ctx.serving);
    ctx.log(`kickstart ${host.name} -> ${ip}`);
    res.type('text/plain').send(text);
  });

  app.get('/pxe/*file', async (req, res) => {
    const lab = ctx.lab();
    const file = (req.params as { file: string[] }).file.join('/');
    const leases = await leasesFor(lab, ctx.inventory, allHosts(lab));
    const found = pxeTree(lab, leases, ctx.serving).find((f) => f.path === file);
    if (!found) return fail(res, 404, `no PXE file "${file}"`);
    res.type('text/plain').send(found.content);
  });

  const booted = async (req: Request, res: Response) => {
    const query = req.query as Record<string, unknown>;
    // The token is checked before anything else is looked at: a caller without it learns nothing.
    if (!tokenMatches(ctx.serving.token, tokenOf(query, req.body, req.get('authorization')))) {
      return fail(res, 403, 'bad or missing token');
    }
    const parsed = parseCallback(query, req.body, peerAddress(req.socket.remoteAddress));
    if (!parsed.ok) return fail(res, parsed.status, parsed.error);
    const cb = parsed.callback;
    const declared = allHosts(ctx.lab()).find((h) => h.name === cb.host);
    const host = await ctx.inventory.update((data, log) => recordCallback(data, log, cb, declared));
    ctx.log(`booted ${cb.host} ${cb.ip} ${cb.mac}${declared ? '' : ' (not declared in environments.ts)'}`);
    reply(res, 200, { ok: true, host: host.name, bootCount: host.bootCount, declared: Boolean(declared) });
  };
  app.get('/booted', booted);
  app.post('/booted', booted);

  app.get('/api/hosts', async (_req, res) => {
    const data = await ctx.inventory.read();
    res.json(Object.values(data.hosts).sort(byName));
  });

  app.use((_req: Request, res: Response) => fail(res, 404, 'not found'));
  // Express 5 hands rejected promises of async handlers to this.
  app.use((err: unknown, _req: Request, res: Response, _next: NextFunction) => {
    const status = (err as { status?: number }).status;
    if (status && status >= 400 && status < 500) return fail(res, status, messageOf(err));
    ctx.log(`error: ${messageOf(err)}`);
    fail(res, 500, isLabError(err) ? err.message : 'internal error; see the server log');
  });
  return app;
}
