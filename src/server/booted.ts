import type { IncomingMessage, ServerResponse } from 'node:http';
import { parse as parseQuery } from 'node:querystring';
import { allHosts } from '../config/load.js';
import { acceptCallback } from '../inventory/boots.js';
import { hostToken, tokenMatches } from '../project/secrets.js';
import { messageOf } from '../errors.js';
import { claimedHost, parseCallback, peerAddress, tokenOf } from './callback.js';
import { hostAllowed, OTHER_NAME } from './hosts.js';
import { serverFailure } from './failure.js';
import type { AppContext } from './app.js';

/**
 * The one route a boot storm hits, on node's own request and response: the
 * rest of the server is express, but its router, three body parsers and
 * ETag hashing were half of a callback's CPU. What it answers is what the
 * express routes answer (JSON with a final newline, the same statuses and
 * errors, the Host check first).
 */

/** The largest callback body taken (a host key and a few fields fit many times over). */
const LIMIT = 16 * 1024;

interface Answer {
  status: number;
  body: unknown;
  headers?: Record<string, string>;
}

const refused = (status: number, error: string, headers?: Record<string, string>): Answer => ({ status, body: { error }, headers });

/** Whether a request is for this route (any method: a GET is told to POST). */
export function isBootedRequest(req: IncomingMessage): boolean {
  const url = req.url ?? '';
  const end = url.indexOf('?');
  const p = end === -1 ? url : url.slice(0, end);
  return p === '/booted' || p === '/booted/';
}

export function bootedHandler(ctx: AppContext): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    void answer(ctx, req).then(
      (a) => send(res, a),
      (e: unknown) => serverFailure(ctx, e, (status, error) => send(res, refused(status, error))),
    );
  };
}

function send(res: ServerResponse, a: Answer): void {
  const text = `${JSON.stringify(a.body)}\n`;
  res.writeHead(a.status, {
    'x-content-type-options': 'nosniff',
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
    ...a.headers,
  });
  res.end(text);
}

async function answer(ctx: AppContext, req: IncomingMessage): Promise<Answer> {
  // Before anything else: a request for another name (a page elsewhere, DNS rebinding) gets nothing.
  if (!hostAllowed(req.headers.host, ctx.names ?? [])) return refused(421, OTHER_NAME);
  if (req.method !== 'POST') {
    req.resume();
    return refused(405, 'a boot callback is a POST', { allow: 'POST' });
  }
  const text = await readBody(req);
  if (text === undefined) return refused(413, 'request entity too large');
  const body = parseBody(req.headers['content-type'], text);
  if (body instanceof Error) return refused(400, body.message);
  const url = req.url ?? '';
  const query = parseQuery(url.includes('?') ? url.slice(url.indexOf('?') + 1) : '') as Record<string, unknown>;
  const peer = peerAddress(req.socket.remoteAddress);

  // The token is checked before anything else: a caller without this host's token learns nothing.
  const claimed = claimedHost(query, body);
  const given = tokenOf(query, body, req.headers.authorization);
  if (!claimed || !tokenMatches(hostToken(ctx.serving.secret, claimed), given)) {
    // A host installed by a lab that gave every host its one secret: the caller knows the secret, so it learns nothing new.
    if (claimed && tokenMatches(ctx.serving.secret, given)) {
      const why = `${claimed} calls back with the lab-wide token of an older lab, which every host shared; it is not accepted any more: rebuild the host (lab image del ${claimed}, then lab env start-all or lab image build)`;
      ctx.log(`refused callback of ${claimed}: ${why}`);
      return refused(403, why);
    }
    return refused(403, 'bad or missing token');
  }
  const parsed = parseCallback(query, body, peer);
  if (!parsed.ok) return refused(parsed.status, parsed.error);
  const cb = parsed.callback;
  const lab = ctx.lab();
  const declared = allHosts(lab).find((h) => h.name === cb.host);
  const r = await ctx.inventory.update((data, log) =>
    acceptCallback(data, log, cb, { declared, bridged: lab.config.network.mode === 'bridge', peer, undeclared: ctx.undeclared ?? 0 }),
  );
  if (!r.ok) {
    ctx.log(`refused callback of ${cb.host} from ${peer}: ${r.error}`);
    return refused(r.status, r.error);
  }
  ctx.log(`${cb.stage === 'started' ? 'installing' : cb.stage === 'installed' ? 'installed' : 'booted'} ${cb.host} ${r.host.ip ?? cb.ip} ${cb.mac}${declared ? '' : ' (not declared in environments.ts)'}`);
  return { status: 200, body: { ok: true, host: r.host.name, bootCount: r.host.bootCount, declared: Boolean(declared) } };
}

/** The body as UTF-8 text; undefined past the limit (the rest is read and dropped, so the connection stays usable). */
function readBody(req: IncomingMessage): Promise<string | undefined> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size <= LIMIT) chunks.push(c);
    });
    req.on('end', () => resolve(size > LIMIT ? undefined : Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

/** A form, JSON (an object or an array, as express's strict parser takes) or plain text; anything else is no body. */
function parseBody(contentType: string | undefined, text: string): unknown {
  const type = (contentType ?? '').split(';')[0]!.trim().toLowerCase();
  if (type === 'application/x-www-form-urlencoded') return parseQuery(text);
  if (type === 'application/json') {
    if (text.trim() === '') return {};
    try {
      const v: unknown = JSON.parse(text);
      return v !== null && typeof v === 'object' ? v : new Error('JSON body: expected an object');
    } catch (e) {
      return new Error(`JSON body: ${messageOf(e)}`);
    }
  }
  if (type === 'text/plain') return text;
  return undefined;
}
