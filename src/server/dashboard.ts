import { existsSync, openSync, readSync, closeSync, statSync } from 'node:fs';
import { createHash } from 'node:crypto';
import type { Request, Response } from 'express';
import type { Inventory } from '../inventory/store.js';
import type { HostRecord, InventoryData } from '../inventory/types.js';
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
  /** The hypervisor its VM was placed on (provider libvirt). */
  hypervisor?: string;
  /** A host key offered and refused since the last accepted one. */
  keyRefused?: string;
  /** Its newest install's stages (a host that installs itself). */
  stages?: HostRecord['stages'];
}

/** An image as the page shows it: its build's state and its VM's install stages. */
export interface DashboardImage {
  name: string;
  state?: string;
  address?: string;
  stages?: HostRecord['stages'];
  /** Why its build failed or stalled. */
  reason?: string;
}

function imagesOf(data: InventoryData): DashboardImage[] {
  const names = [...new Set([...Object.keys(data.images), ...Object.keys(data.imageVms)])].sort();
  return names.map((n) => ({ name: n, state: data.images[n]?.state, address: data.imageVms[n]?.ip, stages: data.imageVms[n]?.stages, reason: data.images[n]?.reason }));
}

const LOG_LINES = 200;
const ALERTS = 50;

function hostsOf(records: Record<string, HostRecord>): DashboardHost[] {
  return Object.values(records)
    .sort(byName)
    .map((h) => ({ name: h.name, env: h.env, role: h.role, state: h.state, address: h.ip, lastCallback: h.lastCallback, bootCount: h.bootCount, serviceVersion: h.serviceVersion, hypervisor: h.hypervisor, keyRefused: h.refusedKey?.time, stages: h.stages }));
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

/** Bytes still queued for one event client when the next update comes: past this it is taken for stuck and dropped. */
export const MAX_BACKLOG = 256 * 1024;

interface Client {
  res: Response;
  /** Sent the whole picture: from then on it gets the changes. */
  welcomed: boolean;
}

/**
 * What /api/events clients see, shared: one watcher looks at the inventory
 * and the boot log once a second while at least one client listens (none:
 * nothing is read), and sends each change to all of them. A client that
 * hangs up is forgotten at once; one that stops reading is dropped once its
 * backlog passes MAX_BACKLOG, so it cannot make the server hold its updates.
 */
export class DashboardFeed {
  private readonly clients = new Set<Client>();
  private timer?: NodeJS.Timeout;
  private ticking?: Promise<void>;
  private lastTick = 0;
  private hosts = '[]';
  private images = '[]';
  private alerts = '[]';
  private offset = 0;
  private recent: string[] = [];

  constructor(
    private readonly inventory: Inventory,
    private readonly bootLog: string,
    private readonly labName: () => string,
    /** How often the inventory and the log are looked at while a client listens. */
    private readonly everyMs = 1000,
  ) {}

  readonly handler = (req: Request, res: Response): void => {
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive' });
    const client: Client = { res, welcomed: false };
    this.clients.add(client);
    // Registered before anything is awaited: a client gone before its first update leaves nothing behind.
    req.on('close', () => this.drop(client));
    res.on('error', () => this.drop(client));
    this.timer ??= setInterval(() => void this.tick(), this.everyMs);
    void this.welcome(client);
  };

  /** Clients listening now. */
  get size(): number {
    return this.clients.size;
  }

  close(): void {
    for (const c of [...this.clients]) this.drop(c);
  }

  private async welcome(c: Client): Promise<void> {
    if (Date.now() - this.lastTick > this.everyMs) await this.tick();
    if (!this.clients.has(c)) return;
    c.welcomed = true;
    // The whole picture in one write, whatever its size; the backlog bound applies to the updates after it.
    c.res.write(
      `event: lab\ndata: ${JSON.stringify({ name: this.labName() })}\n\n` +
        `event: log\ndata: ${JSON.stringify(this.recent)}\n\n` +
        `event: hosts\ndata: ${this.hosts}\n\n` +
        `event: images\ndata: ${this.images}\n\n` +
        `event: alerts\ndata: ${this.alerts}\n\n`,
    );
  }

  private drop(c: Client): void {
    if (!this.clients.delete(c)) return;
    c.res.destroy();
    if (this.clients.size === 0 && this.timer) {
      clearInterval(this.timer);
      this.timer = undefined;
    }
  }

  private send(c: Client, chunk: string): void {
    if (c.res.writableLength > MAX_BACKLOG) return this.drop(c);
    c.res.write(chunk);
  }

  private broadcast(chunk: string): void {
    for (const c of [...this.clients]) if (c.welcomed) this.send(c, chunk);
  }

  /** One look at the inventory and the log; concurrent callers share it. */
  private tick(): Promise<void> {
    this.ticking ??= this.look().finally(() => {
      this.ticking = undefined;
      this.lastTick = Date.now();
    });
    return this.ticking;
  }

  private async look(): Promise<void> {
    let data;
    try {
      data = await this.inventory.read();
    } catch {
      return; // a broken inventory is reported by the commands; the page keeps what it showed
    }
    // One write per client per look: the backlog is checked once, before it.
    let changes = '';
    const hosts = JSON.stringify(hostsOf(data.hosts));
    if (hosts !== this.hosts) {
      this.hosts = hosts;
      changes += `event: hosts\ndata: ${hosts}\n\n`;
    }
    const images = JSON.stringify(imagesOf(data));
    if (images !== this.images) {
      this.images = images;
      changes += `event: images\ndata: ${images}\n\n`;
    }
    const alerts = JSON.stringify((data.alerts ?? []).slice(-ALERTS));
    if (alerts !== this.alerts) {
      this.alerts = alerts;
      changes += `event: alerts\ndata: ${alerts}\n\n`;
    }
    const more = readLog(this.bootLog, this.offset);
    if (more.next < this.offset) this.recent = [];
    this.offset = more.next;
    if (more.lines.length) {
      this.recent = [...this.recent, ...more.lines].slice(-LOG_LINES);
      changes += `event: log\ndata: ${JSON.stringify(more.lines)}\n\n`;
    }
    if (changes) this.broadcast(changes);
  }
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
  .alert { color: #b42318; } #alerts { font: 12px/1.5 ui-monospace, monospace; padding-left: 1.2rem; }
</style>
</head>
<body>
<h1>lab <small id="name"></small><span id="status">connecting…</span></h1>
<table>
  <thead><tr><th>Host</th><th>Env</th><th>Role</th><th>State</th><th>Address</th><th>Last callback</th><th>Boots</th><th>Service version</th><th id="hvcol" hidden>Hypervisor</th></tr></thead>
  <tbody id="hosts"><tr><td colspan="8">no hosts yet</td></tr></tbody>
</table>
<h2>Images</h2>
<table>
  <thead><tr><th>Image</th><th>State</th><th>Install</th><th>Address</th><th>Reason</th></tr></thead>
  <tbody id="images"><tr><td colspan="5">no images built yet</td></tr></tbody>
</table>
<h2>Alerts</h2>
<ul id="alerts"><li>none</li></ul>
<h2>Boot log</h2>
<div id="log"></div>
<script>
  const $ = (id) => document.getElementById(id);
  const cell = (text, cls) => { const td = document.createElement('td'); td.textContent = text ?? '-'; if (cls) td.className = cls; return td; };
  let hosts = [];
  let images = [];
  // How far an install got, from its stage callbacks; one still at "started" counts on.
  const stageText = (st) => {
    if (!st) return undefined;
    const from = Date.parse(st.started ?? st.installed ?? st.up);
    const secs = (iso) => Math.max(0, Math.round((Date.parse(iso) - from) / 1000));
    if (st.up) return 'up ' + secs(st.up) + ' s after it started';
    if (st.installed) return 'installed in ' + secs(st.installed) + ' s';
    if (st.started) return 'started, ' + secs(new Date().toISOString()) + ' s so far';
  };
  const ago = (iso) => { if (!iso) return '-'; const s = Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000)); return s < 60 ? s + 's ago' : s < 3600 ? Math.floor(s / 60) + 'm ago' : Math.floor(s / 3600) + 'h ago'; };
  function render() {
    const body = $('hosts');
    // The hypervisor column only where VMs have one (provider libvirt).
    const hv = hosts.some((h) => h.hypervisor);
    $('hvcol').hidden = !hv;
    body.replaceChildren(...(hosts.length ? hosts.map((h) => {
      const tr = document.createElement('tr');
      tr.dataset.host = h.name;
      tr.append(cell(h.name), cell(h.env), cell(h.role), cell(h.keyRefused ? h.state + ' · key refused' : h.state === 'installing' && h.stages ? h.state + ' · ' + stageText(h.stages) : h.state, 'state ' + h.state + (h.keyRefused ? ' alert' : '')), cell(h.address), cell(ago(h.lastCallback)), cell(String(h.bootCount)), cell(h.serviceVersion));
      if (hv) tr.append(cell(h.hypervisor));
      return tr;
    }) : [Object.assign(document.createElement('tr'), { innerHTML: '<td colspan="8">no hosts yet</td>' })]));
    $('images').replaceChildren(...(images.length ? images.map((i) => {
      const tr = document.createElement('tr');
      tr.dataset.image = i.name;
      tr.append(cell(i.name), cell(i.state ?? 'not built', 'state ' + (i.state === 'installed' ? 'up' : i.state === 'failed' ? 'down' : 'installing')), cell(stageText(i.stages)), cell(i.address), cell(i.reason));
      return tr;
    }) : [Object.assign(document.createElement('tr'), { innerHTML: '<td colspan="5">no images built yet</td>' })]));
  }
  const events = new EventSource('/api/events');
  events.addEventListener('open', () => { $('status').textContent = 'live'; });
  events.addEventListener('error', () => { $('status').textContent = 'reconnecting…'; });
  // Every connection starts with the whole picture: a reconnect must not repeat the log.
  events.addEventListener('lab', (e) => { $('name').textContent = JSON.parse(e.data).name; $('log').textContent = ''; });
  events.addEventListener('hosts', (e) => { hosts = JSON.parse(e.data); render(); });
  events.addEventListener('images', (e) => { images = JSON.parse(e.data); render(); });
  events.addEventListener('alerts', (e) => {
    const list = JSON.parse(e.data).reverse();
    $('alerts').replaceChildren(...(list.length ? list.map((a) => {
      const li = document.createElement('li');
      li.className = 'alert';
      li.textContent = a.time + ' ' + a.host + ' ' + a.kind + ': ' + a.detail;
      return li;
    }) : [Object.assign(document.createElement('li'), { textContent: 'none' })]));
  });
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

const sha256 = (text: string) => `'sha256-${createHash('sha256').update(text).digest('base64')}'`;
const inline = (tag: string) => DASHBOARD_HTML.slice(DASHBOARD_HTML.indexOf(`<${tag}>`) + tag.length + 2, DASHBOARD_HTML.indexOf(`</${tag}>`));

/**
 * The page runs only its own script and style (by hash), talks only to this
 * server, and cannot be framed: a value that slipped past escaping could not
 * run, and another site cannot dress the page up.
 */
export const DASHBOARD_CSP = [
  "default-src 'none'",
  `script-src ${sha256(inline('script'))}`,
  `style-src ${sha256(inline('style'))}`,
  "connect-src 'self'",
  "img-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');
