import { LabError } from '../errors.js';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import type { Duplex } from 'node:stream';
import path from 'node:path';
import type { Lab } from '../config/load.js';
import { renderTemplate } from '../kickstart/render.js';
import { within } from '../project/paths.js';
import type { Session } from './session.js';
import type { Service } from './services.js';
import type { ClusterFacts, HostFacts, HttpResult, OpContext } from './types.js';

/** Thrown by ctx.fail() and by a failing ctx.run(): the operation failed on this host, for a reason people can read. */
export class OperationFailed extends LabError {
  constructor(message: string) {
    super(message, { kind: 'operation' });
    this.name = 'OperationFailed';
  }
}

export interface ContextOptions {
  lab: Lab;
  service: Service;
  operation: string;
  host: HostFacts;
  version: string;
  cluster: ClusterFacts;
  session: Session;
  /** How HTTP reaches a host of the cluster (this one or another, by name). */
  routeTo: (host: string) => Promise<HttpRoute>;
  /** The host named by --via, when given. */
  via?: HostFacts;
  commandTimeoutMs: number;
  /** Where the host's output lines go. */
  output: string[];
}

/**
 * Straight to the address on a bridged lab; through the host's SSH connection
 * (forward) when it sits behind NAT with only SSH forwarded.
 */
export interface HttpRoute {
  name: string;
  address: string;
  forward?: (port: number) => Promise<Duplex>;
}

const lastLines = (s: string, n: number) => s.trimEnd().split('\n').slice(-n).join(' | ');

export function operationContext(o: ContextOptions): OpContext {
  const { session, output } = o;
  const inService = (file: string) => {
    const p = path.resolve(o.service.dir, file);
    if (within(o.service.dir, p) === undefined) throw new OperationFailed(`${file}: not inside the service folder ${o.service.dir}`);
    return p;
  };
  const write = async (remote: string, content: string | Buffer, mode = 0o644) => {
    await session.write(remote, typeof content === 'string' ? Buffer.from(content) : content, mode, o.commandTimeoutMs);
    output.push(`put ${remote} (${mode.toString(8).padStart(4, '0')})`);
  };

  const ctx: OpContext = {
    service: o.service.name,
    operation: o.operation,
    host: o.host,
    version: o.version,
    cluster: o.cluster,
    via: o.via,
    peers: (role) => o.cluster.hosts.filter((h) => h.env === o.host.env && (role === undefined || h.role === role)),

    async run(command, opts = {}) {
      output.push(`$ ${command}`);
      const r = await session.exec(command, (opts.timeout ?? o.commandTimeoutMs / 1000) * 1000, opts.stdin);
      for (const line of `${r.stdout}${r.stderr}`.split('\n')) if (line.trim()) output.push(`  ${line}`);
      if (r.code !== 0 && !opts.allowFail) {
        throw new OperationFailed(`exit ${r.code}: ${command}${r.stderr.trim() ? `: ${lastLines(r.stderr, 2)}` : ''}`);
      }
      return r;
    },

    async put(file, remote, opts = {}) {
      await write(remote, readFileSync(inService(file)), opts.mode);
    },

    async write(remote, content, opts = {}) {
      await write(remote, content, opts.mode);
    },

    async render(template, remote, opts = {}) {
      const rel = path.relative(o.lab.paths.dir, inService(template));
      const text = renderTemplate(o.lab, rel, { host: o.host, version: o.version, cluster: o.cluster, service: o.service.name, ...opts.vars });
      await write(remote, text, opts.mode);
      return text;
    },

    async http(urlPath, opts = {}) {
      const port = opts.port ?? 80;
      const route = await o.routeTo(opts.host ?? o.host.name);
      const r = await request(route, urlPath, port, opts.method ?? 'GET', (opts.timeout ?? 10) * 1000);
      output.push(`http ${opts.method ?? 'GET'} ${opts.host ? opts.host : ''}:${port}${urlPath} -> ${r.status} (${r.ms} ms)`);
      return r;
    },

    log(message) {
      output.push(message);
    },

    fail(message): never {
      throw new OperationFailed(message);
    },
  };
  return ctx;
}

const NET_ERRORS: Record<string, string> = {
  ECONNREFUSED: 'connection refused',
  ECONNRESET: 'connection reset',
  EHOSTUNREACH: 'host unreachable',
  ENETUNREACH: 'network unreachable',
  ETIMEDOUT: 'timed out',
};

async function request(route: HttpRoute, urlPath: string, port: number, method: string, timeoutMs: number): Promise<HttpResult> {
  const started = Date.now();
  const what = `HTTP ${method} ${route.name}:${port}${urlPath}`;
  const tunnel = route.forward
    ? await route.forward(port).catch((e: unknown) => {
        throw new OperationFailed(`${what}: ${e instanceof Error ? e.message : String(e)}`);
      })
    : undefined;
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: route.address,
        port,
        path: urlPath,
        method,
        headers: { host: `${route.name}:${port}`, 'user-agent': 'lab' },
        timeout: timeoutMs,
        // Node uses createConnection only when no agent is given; agent: false would make one and dial the address itself.
        ...(tunnel ? { createConnection: () => tunnel as never } : { agent: false }),
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (d: Buffer) => chunks.push(d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString(), ms: Date.now() - started }));
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new OperationFailed(`${what}: no answer within ${timeoutMs / 1000} s`)));
    req.on('error', (e) => {
      const code = (e as NodeJS.ErrnoException).code ?? '';
      reject(e instanceof OperationFailed ? e : new OperationFailed(`${what}: ${NET_ERRORS[code] ?? (code || e.message)}`));
    });
    req.end();
  });
}
