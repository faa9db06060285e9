import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Request, Response } from 'express';
import { DashboardFeed, MAX_BACKLOG } from '../../src/server/dashboard.js';
import { Inventory } from '../../src/inventory/store.js';
import { labPaths } from '../../src/project/paths.js';
import { acceptCallback } from '../../src/inventory/boots.js';

/**
 * The dashboard's event feed without a server: clients as objects that keep
 * what they are sent, and read it (or not). No sockets, so no kernel buffer
 * hides a client that stopped reading.
 */

class FakeClient extends EventEmitter {
  readonly req = new EventEmitter();
  received = '';
  writableLength = 0;
  destroyed = false;
  constructor(readonly reading: boolean) {
    super();
  }
  writeHead(): this {
    return this;
  }
  write(chunk: string): boolean {
    this.received += chunk;
    if (!this.reading) this.writableLength += Buffer.byteLength(chunk);
    return !this.reading;
  }
  destroy(): void {
    this.destroyed = true;
  }
  connect(feed: DashboardFeed): void {
    feed.handler(this.req as unknown as Request, this as unknown as Response);
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test('one watcher feeds every client; a client that hangs up is forgotten at once; one that stops reading is dropped past the bound', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'lab-feed-'));
  const inv = new Inventory(labPaths(dir));
  const call = (i: number) =>
    inv.update((d, log) => acceptCallback(d, log, { host: `h-${i % 400}`, ip: '10.0.2.15', mac: `52:54:00:00:${((i % 400) >> 8).toString(16).padStart(2, '0')}:${(i % 256).toString(16).padStart(2, '0')}` }, { bridged: false, peer: '127.0.0.1', undeclared: Infinity }));
  for (let i = 0; i < 400; i++) await call(i); // about 100 KB of hosts: a few updates pass the bound
  const feed = new DashboardFeed(inv, labPaths(dir).bootLog, () => 'lab', 100);
  try {
    const reader = new FakeClient(true);
    const stuck = new FakeClient(false);
    reader.connect(feed);
    stuck.connect(feed);
    // Gone before its first update: forgotten at once, nothing left for it.
    const early = new FakeClient(true);
    early.connect(feed);
    early.req.emit('close');
    assert.equal(feed.size, 2);
    await sleep(150);
    assert.match(reader.received, /^event: lab\ndata: \{"name":"lab"\}\n\n/);
    assert.match(stuck.received, /event: hosts\ndata: \[/);
    assert.equal(early.received, '');

    // The inventory keeps changing: the reader gets every change, the stuck one is dropped once its backlog passes the bound.
    for (let round = 0; round < 8 && !stuck.destroyed; round++) {
      await call(round);
      await sleep(120);
    }
    assert.equal(stuck.destroyed, true, `still there with ${stuck.writableLength} bytes queued`);
    // What it holds is the bound and the one update that crossed it, not every update since it stopped.
    const sent = stuck.received.split('event: hosts').length - 1;
    assert.ok(stuck.writableLength <= MAX_BACKLOG + (2 * stuck.writableLength) / sent, `${stuck.writableLength} bytes in ${sent} updates`);
    assert.equal(reader.destroyed, false);
    assert.equal(feed.size, 1);
    const updates = reader.received.split('event: hosts').length - 1;
    assert.ok(updates >= 3, `${updates} host updates`);

    // The last client gone: nothing is looked at any more.
    reader.req.emit('close');
    assert.equal(feed.size, 0);
    const before = reader.received.length;
    await call(1);
    await sleep(300);
    assert.equal(reader.received.length, before);
  } finally {
    feed.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test("the dashboard page's own script parses (it lives in a template string, where tsc does not look)", async () => {
  const { Script } = await import('node:vm');
  const { DASHBOARD_HTML } = await import('../../src/server/dashboard.js');
  const script = DASHBOARD_HTML.slice(DASHBOARD_HTML.indexOf('<script>') + 8, DASHBOARD_HTML.indexOf('</script>'));
  assert.ok(script.length > 1000);
  assert.doesNotThrow(() => new Script(script, { filename: 'dashboard.js' }));
});
