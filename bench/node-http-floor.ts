// The floor under `lab serve` in bench:storm: node's own HTTP server, the
// one lab serve runs on, answering each POST as lab answers a callback (the
// body read, a JSON answer with the same headers) and recording nothing.
// Warmed up as lab serve is (src/server/warm-up.ts): once it listens, its
// handler answers 3,000 requests from 50 keep-alive clients on a scratch
// listener of its own; then it prints its URL. Run by boot-storm.ts as a
// child process; it stops on SIGTERM.
import { Agent, createServer, request, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

const WARM_UP = 3000;
const CLIENTS = 50;

function handler(req: IncomingMessage, res: ServerResponse): void {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    const text = `${JSON.stringify({ ok: true, bytes: Buffer.concat(chunks).length })}\n`;
    res.writeHead(200, { 'x-content-type-options': 'nosniff', 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text) });
    res.end(text);
  });
}

async function listen(server: ReturnType<typeof createServer>): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as AddressInfo).port;
}

async function warmUp(): Promise<void> {
  const scratch = createServer(handler);
  const port = await listen(scratch);
  const agent = new Agent({ keepAlive: true, maxSockets: CLIENTS });
  let next = 0;
  const one = () =>
    new Promise<void>((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port, path: `/booted?host=warm-up-${next++}`, method: 'POST', agent, headers: { 'content-type': 'application/x-www-form-urlencoded' } }, (res) => {
        res.resume();
        res.on('end', resolve);
      });
      req.on('error', reject);
      req.end('hostkey=ssh-ed25519+AAAA');
    });
  await Promise.all(Array.from({ length: CLIENTS }, async () => {
    while (next < WARM_UP) await one();
  }));
  agent.destroy();
  scratch.closeAllConnections();
  await new Promise((resolve) => scratch.close(resolve));
}

const server = createServer(handler);
const port = await listen(server);
await warmUp();
console.log(`serving on http://127.0.0.1:${port}`);
process.on('SIGTERM', () => {
  server.closeAllConnections();
  server.close(() => process.exit(0));
});
