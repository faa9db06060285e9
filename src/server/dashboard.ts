import { existsSync, openSync, readSync, closeSync, statSync } from 'node:fs';
import type { Request, Response } from 'express';
import type { Inventory } from '../inventory/store.js';
import type { HostRecord } from '../inventory/types.js';
import { byName } from '../hosts/manager.js';

/**
 * The dashboard at /: the hosts and the boot log, live. The page is one file
 * with no outside assets; it listens to /api/events (server-sent events),
 * which sends everything at once and then what changed. Changes are looked
 * for every second in the inventory and the boot log, so what other lab
 * processes do (a deploy, a sweep, the monitor) shows too, not only callbacks
 * to this server.
 */

export interface DashboardHost {
  name: string;
  env?: string;
  role?: string;
  state: HostRecord['state'];
  address?: string;
  lastCallback?: string;
  bootCount: number;
  serviceVersion?: string;
}

const LOG_LINES = 200;

function hostsOf(records: Record<string, HostRecord>): DashboardHost[] {
  return Object.values(records)
    .sort(byName)
    .map((h) => ({ name: h.name, env: h.env, role: h.role, state: h.state, address: h.ip, lastCallback: h.lastCallback, bootCount: h.bootCount, serviceVersion: h.serviceVersion }));
}

/** The boot log from byte offset `from`: its complete lines, and where the next read starts. */
function readLog(file: string, from: number): { lines: string[]; next: number } {
  if (!existsSync(file)) return { lines: [], next: 0 };
  const size = statSync(file).size;
  const start = size < from ? 0 : from; // rotated or cleared: start over
  if (size === start) return { lines: [], next: start };
  const buf = Buffer.alloc(size - start);
  const fd = openSync(file, 'r');
  try {
    readSync(fd, buf, 0, buf.length, start);
  } finally {
    closeSync(fd);
  }
  const text = buf.toString('utf8');
  const end = text.lastIndexOf('\n') + 1; // a line still being written waits for the next read
  return { lines: text.slice(0, end).split('\n').filter(Boolean), next: start + Buffer.byteLength(text.slice(0, end)) };
}

export function dashboardEvents(inventory: Inventory, bootLog: string, labName: () => string) {
  return async (req: Request, res: Response) => {
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive' });
    const send = (event: string, data: unknown) => res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
    let lastHosts = '';
    const first = readLog(bootLog, 0);
    let offset = first.next;
    send('lab', { name: labName() });
    send('log', first.lines.slice(-LOG_LINES));
    const tick = async () => {
      const hosts = JSON.stringify(hostsOf((await inventory.read()).hosts));
      if (hosts !== lastHosts) {
        lastHosts = hosts;
        res.write(`event: hosts\ndata: ${hosts}\n\n`);
      }
      const more = readLog(bootLog, offset);
      offset = more.next;
      if (more.lines.length) send('log', more.lines);
    };
    await tick();
    const timer = setInterval(() => void tick().catch(() => undefined), 1000);
    req.on('close', () => clearInterval(timer));
  };
}

export const DASHBOARD_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>lab</title>
<style>
  body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5rem; color: #1d232a; background: #f7f8fa; }
  h1 { font-size: 1.3rem; margin: 0 0 1rem; } h1 small { color: #66717d; font-weight: normal; }
  table { border-collapse: collapse; width: 100%; background: #fff; box-shadow: 0 1px 2px #0001; }
  th, td { text-align: left; padding: .35rem .6rem; border-bottom: 1px solid #e6e9ed; white-space: nowrap; }
  th { background: #eef1f4; font-weight: 600; }
  .state { font-weight: 600; } .up { color: #1a7f37; } .down { color: #b42318; } .installing, .stalled { color: #9a6700; }
  #log { background: #101418; color: #d6dde4; padding: .8rem; height: 16rem; overflow: auto; font: 12px/1.5 ui-monospace, monospace; white-space: pre; }
  #status { color: #66717d; font-size: .85rem; margin-left: .5rem; }
  h2 { font-size: 1rem; margin: 1.5rem 0 .5rem; }
</style>
</head>
<body>
<h1>lab <small id="name"></small><span id="status">connecting…</span></h1>
<table>
  <thead><tr><th>Host</th><th>Env</th><th>Role</th><th>State</th><th>Address</th><th>Last callback</th><th>Boots</th><th>Service version</th></tr></thead>
  <tbody id="hosts"><tr><td colspan="8">no hosts yet</td></tr></tbody>
</table>
<h2>Boot log</h2>
<div id="log"></div>
<script>
  const $ = (id) => document.getElementById(id);
  const cell = (text, cls) => { const td = document.createElement('td'); td.textContent = text ?? '-'; if (cls) td.className = cls; return td; };
  let hosts = [];
  const ago = (iso) => { if (!iso) return '-'; const s = Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000)); return s < 60 ? s + 's ago' : s < 3600 ? Math.floor(s / 60) + 'm ago' : Math.floor(s / 3600) + 'h ago'; };
  function render() {
    const body = $('hosts');
    body.replaceChildren(...(hosts.length ? hosts.map((h) => {
      const tr = document.createElement('tr');
      tr.dataset.host = h.name;
      tr.append(cell(h.name), cell(h.env), cell(h.role), cell(h.state, 'state ' + h.state), cell(h.address), cell(ago(h.lastCallback)), cell(String(h.bootCount)), cell(h.serviceVersion));
      return tr;
    }) : [Object.assign(document.createElement('tr'), { innerHTML: '<td colspan="8">no hosts yet</td>' })]));
  }
  const events = new EventSource('/api/events');
  events.addEventListener('open', () => { $('status').textContent = 'live'; });
  events.addEventListener('error', () => { $('status').textContent = 'reconnecting…'; });
  // Every connection starts with the whole picture: a reconnect must not repeat the log.
  events.addEventListener('lab', (e) => { $('name').textContent = JSON.parse(e.data).name; $('log').textContent = ''; });
  events.addEventListener('hosts', (e) => { hosts = JSON.parse(e.data); render(); });
  events.addEventListener('log', (e) => {
    const log = $('log');
    const atEnd = log.scrollTop + log.clientHeight >= log.scrollHeight - 4;
    for (const line of JSON.parse(e.data)) log.append(line + '\\n');
    if (atEnd) log.scrollTop = log.scrollHeight;
  });
  setInterval(render, 5000); // keeps "Ns ago" current
</script>
</body>
</html>
`;
