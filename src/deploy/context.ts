import { readFileSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import type { Lab } from '../config/load.js';
import { renderTemplate } from '../kickstart/render.js';
import type { Session } from './session.js';
import type { Service } from './services.js';
import type { ClusterFacts, HostFacts, HttpResult, OpContext } from './types.js';

/** Thrown by ctx.fail() and by a failing ctx.run(): the operation failed on this host, for a reason people can read. */
export class OperationFailed extends Error {
  constructor(message: string) {
    super(message);
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
  /** Reach HTTP ports through the SSH connection (the host sits behind NAT with only SSH forwarded). */
  httpThroughSsh: boolean;
  commandTimeoutMs: number;
  /** Where the host's output lines go. */
  output: string[];
}

const lastLines = (s: string, n: number) => s.trimEnd().split('\n').slice(-n).join(' | ');

export function operationContext(o: ContextOptions): OpContext {
  const { session, output } = o;
  const inService = (file: string) => {
    const p = path.resolve(o.service.dir, file);
    const rel = path.relative(o.service.dir, p);
    if (rel.startsWith('..') || path.isAbsolute(rel)) throw new OperationFailed(`${file}: not inside the service folder ${o.service.dir}`);
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
      const r = await request(o, urlPath, port, opts.method ?? 'GET', (opts.timeout ?? 10) * 1000);
      output.push(`http ${opts.method ?? 'GET'} :${port}${urlPath} -> ${r.status} (${r.ms} ms)`);
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

async function request(o: ContextOptions, urlPath: string, port: number, method: string, timeoutMs: number): Promise<HttpResult> {
  const started = Date.now();
  const what = `HTTP ${method} ${o.host.name}:${port}${urlPath}`;
  const tunnel = o.httpThroughSsh
    ? await o.session.forward(port).catch((e: unknown) => {
        throw new OperationFailed(`${what}: ${e instanceof Error ? e.message : String(e)}`);
      })
    : undefined;
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: o.host.address,
        port,
        path: urlPath,
        method,
        headers: { host: `${o.host.name}:${port}`, 'user-agent': 'lab' },
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
