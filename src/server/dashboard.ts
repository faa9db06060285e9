import { existsSync, readFileSync, statSync } from 'node:fs';
import { consoleText, lastLines, printable } from '../providers/console.js';
import { providerFor } from '../providers/index.js';
import { bytesFrom } from '../util/files.js';
import { createHash } from 'node:crypto';
import type { Request, Response } from 'express';
import type { Inventory } from '../inventory/store.js';
import type { HostRecord, InventoryData } from '../inventory/types.js';
import type { Lab } from '../config/load.js';
import { environmentsOf, monitorOf, tailOf, type DashboardMonitor } from './overview.js';
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
  /** The installer's console, its last lines: live while it installs, as kept when it failed or stalled. */
  console?: string[];
}

const CONSOLE_LINES = 12;

function imagesOf(data: InventoryData, consoles: Map<string, string>): DashboardImage[] {
  const names = [...new Set([...Object.keys(data.images), ...Object.keys(data.imageVms)])].sort();
  return names.map((n) => {
    const text = consoles.get(n);
    return { name: n, state: data.images[n]?.state, address: data.imageVms[n]?.ip, stages: data.imageVms[n]?.stages, reason: data.images[n]?.reason, ...(text ? { console: lastLines(text, CONSOLE_LINES).split('\n').map(printable) } : {}) };
  });
}

const LOG_LINES = 200;
/** How often an installing image's console is read again. */
const CONSOLE_EVERY_MS = 3000;
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
  const text = bytesFrom(file, start).toString('utf8');
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
  private envs = '[]';
  private monitors = '[]';
  /** The installers' consoles last read, by image: an installing one's every CONSOLE_EVERY_MS, a failed one's once. */
  private readonly consoles = new Map<string, string>();
  private consolesRead = 0;
  /** Where each came from: 'live', or the file a failed build kept. */
  private readonly consoleFrom = new Map<string, string>();
  /** Each monitor log's figures, kept while the file is unchanged. */
  private readonly monitorLogs = new Map<string, { id: string; monitor: DashboardMonitor }>();
  private alerts = '[]';
  private offset = 0;
  private recent: string[] = [];

  constructor(
    private readonly inventory: Inventory,
    private readonly bootLog: string,
    private readonly labName: () => string,
    /** How often the inventory and the log are looked at while a client listens. */
    private readonly everyMs = 1000,
    /** The lab as now configured: environments by group, and their monitors' logs. */
    private readonly lab?: () => Lab,
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
        `event: envs\ndata: ${this.envs}\n\n` +
        `event: monitors\ndata: ${this.monitors}\n\n` +
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

  /**
   * Installers' consoles: an image installing, through its provider (a
   * remote hypervisor's costs a download, so not at every look); one that
   * failed or stalled, from the copy its build kept.
   */
  private async readConsoles(data: InventoryData): Promise<void> {
    for (const [name, rec] of Object.entries(data.images)) {
      if (rec.state === 'installed') this.consoles.delete(name);
      else if (rec.state !== 'installing' && rec.consoleLog && this.consoleFrom.get(name) !== rec.consoleLog && existsSync(rec.consoleLog)) {
        this.consoles.set(name, consoleText(readFileSync(rec.consoleLog, 'utf8')));
        this.consoleFrom.set(name, rec.consoleLog);
      }
    }
    const installing = Object.values(data.images).filter((r) => r.state === 'installing');
    const lab = this.lab?.();
    if (!lab || installing.length === 0 || Date.now() - this.consolesRead < CONSOLE_EVERY_MS) return;
    this.consolesRead = Date.now();
    const provider = await providerFor(lab);
    try {
      for (const r of installing) {
        this.consoles.set(r.name, await provider.console(r.name).catch(() => ''));
        this.consoleFrom.set(r.name, 'live');
      }
    } finally {
      await provider.close?.();
    }
  }

  /** What an environment's monitor logged, read again only when its log changed; none without a log. */
  private monitorFigures(env: string, file: string): DashboardMonitor | undefined {
    let id: string;
    try {
      const st = statSync(file);
      id = `${st.ino}:${st.size}:${st.mtimeMs}`;
    } catch {
      this.monitorLogs.delete(env);
      return undefined;
    }
    const kept = this.monitorLogs.get(env);
    if (kept?.id === id) return kept.monitor;
    const monitor = monitorOf(env, tailOf(file));
    this.monitorLogs.set(env, { id, monitor });
    return monitor;
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
    await this.readConsoles(data);
    const images = JSON.stringify(imagesOf(data, this.consoles));
    if (images !== this.images) {
      this.images = images;
      changes += `event: images\ndata: ${images}\n\n`;
    }
    const lab = this.lab?.();
    if (lab) {
      const envs = JSON.stringify(environmentsOf(lab, data));
      if (envs !== this.envs) {
        this.envs = envs;
        changes += `event: envs\ndata: ${envs}\n\n`;
      }
      const monitors = JSON.stringify(Object.keys(lab.config.environments).flatMap((env) => this.monitorFigures(env, lab.paths.monitorLog(env)) ?? []));
      if (monitors !== this.monitors) {
        this.monitors = monitors;
        changes += `event: monitors\ndata: ${monitors}\n\n`;
      }
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
<meta name="color-scheme" content="light dark">
<title>lab</title>
<style>
  :root { --fg: #1d232a; --muted: #66717d; --bg: #f7f8fa; --card: #fff; --line: #e6e9ed; --head: #eef1f4; --up: #1a7f37; --down: #b42318; --wait: #9a6700; --accent: #2f6fde; --logbg: #101418; --logfg: #d6dde4; }
  @media (prefers-color-scheme: dark) {
    :root { --fg: #dfe4ea; --muted: #98a2ad; --bg: #12161b; --card: #1b2128; --line: #2b333c; --head: #232a32; --up: #4ac26b; --down: #f47067; --wait: #d4a72c; --accent: #6ea8fe; --logbg: #0b0e11; --logfg: #c9d1d9; }
  }
  body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5rem; color: var(--fg); background: var(--bg); }
  h1 { font-size: 1.3rem; margin: 0 0 1rem; } h1 small { color: var(--muted); font-weight: normal; }
  h2 { font-size: 1rem; margin: 1.5rem 0 .5rem; }
  .scroll { overflow-x: auto; }
  table { border-collapse: collapse; width: 100%; background: var(--card); box-shadow: 0 1px 2px #0001; }
  th, td { text-align: left; padding: .35rem .6rem; border-bottom: 1px solid var(--line); white-space: nowrap; }
  th { background: var(--head); font-weight: 600; }
  .state { font-weight: 600; } .up { color: var(--up); } .down { color: var(--down); } .installing, .stalled { color: var(--wait); } .off { color: var(--muted); }
  #log { background: var(--logbg); color: var(--logfg); padding: .8rem; height: 16rem; overflow: auto; font: 12px/1.5 ui-monospace, monospace; white-space: pre; }
  #status { color: var(--muted); font-size: .85rem; margin-left: .5rem; }
  .alert { color: var(--down); } #alerts { font: 12px/1.5 ui-monospace, monospace; padding-left: 1.2rem; overflow-wrap: anywhere; }
  #envs { display: grid; grid-template-columns: repeat(auto-fit, minmax(22rem, 1fr)); gap: 1rem; }
  .env { background: var(--card); box-shadow: 0 1px 2px #0001; padding: .8rem 1rem; min-width: 0; }
  .env h2 { margin: 0 0 .5rem; }
  .group { border-top: 1px solid var(--line); padding: .5rem 0; }
  .ghead { font-weight: 600; } .ghead span { color: var(--muted); font-weight: normal; }
  .slots { display: flex; flex-wrap: wrap; gap: .3rem; margin: .4rem 0; }
  .slot { border: 1px solid var(--line); border-radius: 3px; padding: .1rem .4rem; font-size: .85rem; }
  .slot.up { border-color: var(--up); } .slot.down { border-color: var(--down); } .slot.installing, .slot.stalled { border-color: var(--wait); }
  .chart { width: 100%; height: 56px; display: block; }
  .chart .mean { stroke: var(--accent); } .chart .mark { stroke: var(--muted); stroke-dasharray: 3 3; }
  .spark { display: grid; grid-template-columns: minmax(7rem, 1fr) 5rem 5rem; gap: .4rem; align-items: center; font-size: .8rem; color: var(--muted); }
  .spark svg { width: 5rem; height: 18px; } .spark polyline { stroke: var(--accent); fill: none; }
  td.console { background: var(--logbg); color: var(--logfg); font: 12px/1.4 ui-monospace, monospace; white-space: pre-wrap; overflow-wrap: anywhere; }
  .decided, .caption { font-size: .8rem; color: var(--muted); margin-top: .3rem; overflow-wrap: anywhere; }
  .timeline { font: 12px/1.5 ui-monospace, monospace; padding-left: 1.2rem; margin: .3rem 0 0; overflow-wrap: anywhere; }
  @media (max-width: 600px) { body { margin: .6rem; } #envs { grid-template-columns: 1fr; } th, td { padding: .3rem .4rem; } }
</style>
</head>
<body>
<h1>lab <small id="name"></small><span id="status">connecting…</span></h1>
<section id="envs"></section>
<h2>Hosts</h2>
<div class="scroll"><table>
  <thead><tr><th>Host</th><th>Env</th><th>Role</th><th>State</th><th>Address</th><th>Last callback</th><th>Boots</th><th>Service version</th><th id="hvcol" hidden>Hypervisor</th></tr></thead>
  <tbody id="hosts"><tr><td colspan="8">no hosts yet</td></tr></tbody>
</table></div>
<h2>Images</h2>
<div class="scroll"><table>
  <thead><tr><th>Image</th><th>State</th><th>Install</th><th>Address</th><th>Reason</th></tr></thead>
  <tbody id="images"><tr><td colspan="5">no images built yet</td></tr></tbody>
</table></div>
<h2>Alerts</h2>
<ul id="alerts"><li>none</li></ul>
<h2>Boot log</h2>
<div id="log"></div>
<script>
  const $ = (id) => document.getElementById(id);
  const el = (tag, cls, text) => { const e = document.createElement(tag); if (cls) e.className = cls; if (text !== undefined) e.textContent = text; return e; };
  const cell = (text, cls) => el('td', cls, text ?? '-');
  const SVG = 'http://www.w3.org/2000/svg';
  const svg = (tag, attrs) => { const e = document.createElementNS(SVG, tag); for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v)); return e; };
  let hosts = [], images = [], envs = [], monitors = [], alerts = [];
  const ago = (iso) => { if (!iso) return '-'; const s = Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000)); return s < 60 ? s + 's ago' : s < 3600 ? Math.floor(s / 60) + 'm ago' : Math.floor(s / 3600) + 'h ago'; };
  // How far an install got, from its stage callbacks; one still at "started" counts on.
  const stageText = (st) => {
    if (!st) return undefined;
    const from = Date.parse(st.started ?? st.installed ?? st.up);
    const secs = (iso) => Math.max(0, Math.round((Date.parse(iso) - from) / 1000));
    if (st.up) return 'up ' + secs(st.up) + ' s after it started';
    if (st.installed) return 'installed in ' + secs(st.installed) + ' s';
    if (st.started) return 'started, ' + secs(new Date().toISOString()) + ' s so far';
  };
  // A line chart of values in [0, top] over the series' own time span; marks are dashed horizontal lines.
  function chart(cls, points, top, marks) {
    const w = 300, h = 50;
    const s = svg('svg', { class: cls, viewBox: '0 0 ' + w + ' ' + h, preserveAspectRatio: 'none', role: 'img' });
    const y = (v) => (h - 2 - (Math.min(v, top) / top) * (h - 4)).toFixed(1);
    for (const m of marks) s.append(svg('line', { class: 'mark', x1: 0, x2: w, y1: y(m), y2: y(m) }));
    const xs = points.map((p) => Date.parse(p.t));
    const t0 = Math.min(...xs), span = Math.max(1, Math.max(...xs) - t0);
    if (points.length) s.append(svg('polyline', { class: 'mean', fill: 'none', 'stroke-width': 1.5, points: points.map((p, i) => ((xs[i] - t0) / span * w).toFixed(1) + ',' + y(p.v)).join(' ') }));
    return s;
  }
  function spark(points) {
    const s = svg('svg', { viewBox: '0 0 100 18', preserveAspectRatio: 'none' });
    const vs = points.filter((p) => p.v !== undefined);
    const top = Math.max(1e-9, ...vs.map((p) => p.v));
    if (vs.length) s.append(svg('polyline', { 'stroke-width': 1.2, points: vs.map((p, i) => (vs.length === 1 ? 50 : i / (vs.length - 1) * 100).toFixed(1) + ',' + (17 - p.v / top * 16).toFixed(1)).join(' ') }));
    return s;
  }
  function renderEnvs() {
    $('envs').replaceChildren(...envs.map((e) => {
      const card = el('div', 'env');
      card.dataset.env = e.name;
      card.append(el('h2', undefined, e.name));
      const mon = monitors.find((m) => m.env === e.name);
      for (const g of e.groups) {
        const key = e.name + '/' + g.role;
        const box = el('div', 'group');
        box.dataset.group = key;
        const head = el('div', 'ghead', g.role + ' ');
        head.append(el('span', 'bounds', (g.service ? g.service + ' ' + (g.version ?? '') + ' · ' : '') + g.live + ' live of ' + (g.min === g.max ? g.max : g.min + '..' + g.max) + (g.booting ? ' · ' + g.booting + ' booting' : '')));
        box.append(head);
        const slots = el('div', 'slots');
        for (const s of g.slots) {
          const chip = el('span', 'slot ' + s.state, s.name + (s.version ? ' ' + s.version : '') + (s.hypervisor ? ' @' + s.hypervisor : '') + (s.state === 'up' ? '' : ' (' + s.state + ')'));
          chip.dataset.slot = s.name;
          slots.append(chip);
        }
        box.append(slots);
        if (mon && mon.means[key]) {
          const c = chart('chart', mon.means[key], Math.max(1, mon.high ?? 1, ...mon.means[key].map((p) => p.v)), [mon.high, mon.low].filter((v) => v !== undefined));
          c.dataset.chart = key;
          box.append(el('div', 'caption', 'mean load per cycle, last hour' + (mon.high !== undefined ? ' (dashed: high ' + mon.high + ', low ' + mon.low + ')' : '')), c);
          for (const s of g.slots) {
            const series = mon.hosts[s.name];
            if (!series) continue;
            const row = el('div', 'spark');
            row.dataset.spark = s.name;
            const last = series[series.length - 1];
            row.append(el('span', undefined, s.name + ' load ' + (last.load ?? '-') + ' · ' + (last.latencyMs ?? '-') + ' ms'), spark(series.map((p) => ({ v: p.load }))), spark(series.map((p) => ({ v: p.latencyMs }))));
            box.append(row);
          }
        }
        const latest = mon && mon.latest[key];
        if (latest) box.append(el('div', 'decided', 'monitor ' + ago(latest.time) + ': ' + latest.action + (latest.host ? ' ' + latest.host : '') + ' (' + latest.reason + ')'));
        const acts = mon ? mon.decisions.filter((d) => d.group === key).slice(-8).reverse() : [];
        if (acts.length) {
          const ol = el('ol', 'timeline');
          ol.dataset.timeline = key;
          for (const d of acts) ol.append(el('li', undefined, d.time.slice(11, 19) + ' ' + d.action + (d.host ? ' ' + d.host : '') + ': ' + d.reason));
          box.append(ol);
        }
        card.append(box);
      }
      return card;
    }));
  }
  // Several events arrive together (hosts, images, envs ... of one look): drawn once, at the next frame.
  let queued = false;
  function render() {
    if (queued) return;
    queued = true;
    requestAnimationFrame(() => { queued = false; draw(); });
  }
  function draw() {
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
      if (!i.console) return [tr];
      // The installer's console: live while it installs, its tail once it failed or stalled.
      const con = document.createElement('tr');
      const td = el('td', 'console', i.console.join('\\n'));
      td.colSpan = 5;
      td.dataset.console = i.name;
      con.append(td);
      return [tr, con];
    }).flat() : [Object.assign(document.createElement('tr'), { innerHTML: '<td colspan="5">no images built yet</td>' })]));
    // Alerts: what the inventory raised, and hosts down now.
    const down = hosts.filter((h) => h.state === 'down').map((h) => ({ time: h.lastCallback ?? '', host: h.name, kind: 'host-down', detail: 'does not answer' }));
    const list = [...down, ...alerts];
    $('alerts').replaceChildren(...(list.length ? list.map((a) => el('li', 'alert', (a.time ? a.time + ' ' : '') + a.host + ' ' + a.kind + ': ' + a.detail)) : [el('li', undefined, 'none')]));
    renderEnvs();
  }
  const events = new EventSource('/api/events');
  events.addEventListener('open', () => { $('status').textContent = 'live'; });
  events.addEventListener('error', () => { $('status').textContent = 'reconnecting…'; });
  // Every connection starts with the whole picture: a reconnect must not repeat the log.
  events.addEventListener('lab', (e) => { $('name').textContent = JSON.parse(e.data).name; $('log').textContent = ''; });
  events.addEventListener('hosts', (e) => { hosts = JSON.parse(e.data); render(); });
  events.addEventListener('images', (e) => { images = JSON.parse(e.data); render(); });
  events.addEventListener('envs', (e) => { envs = JSON.parse(e.data); render(); });
  events.addEventListener('monitors', (e) => { monitors = JSON.parse(e.data); render(); });
  events.addEventListener('alerts', (e) => { alerts = JSON.parse(e.data).reverse(); render(); });
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
