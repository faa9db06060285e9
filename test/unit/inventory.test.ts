import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, existsSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { execa } from 'execa';
import { repo, tempLab, eventually } from '../helpers.js';
import { Inventory } from '../../src/inventory/store.js';
import { labPaths } from '../../src/project/paths.js';
import type { InventoryData } from '../../src/inventory/types.js';

const writer = path.join(repo, 'test', 'fixtures', 'writer.mjs');

function readDb(dir: string): InventoryData {
  return JSON.parse(readFileSync(path.join(dir, 'inventory', 'db.json'), 'utf8')) as InventoryData;
}

test('two processes writing the inventory at once lose no update', async () => {
  const { dir, cleanup } = await tempLab();
  try {
    await Promise.all([
      execa(process.execPath, [writer, dir, 'a', '300', 'seq']),
      execa(process.execPath, [writer, dir, 'b', '300', 'burst']),
      execa(process.execPath, [writer, dir, 'c', '300', 'seq']),
    ]);
    const hosts = Object.keys(readDb(dir).hosts);
    assert.equal(hosts.length, 900);
    for (const p of ['a', 'b', 'c']) for (let i = 0; i < 300; i++) assert.ok(hosts.includes(`${p}-${i}`), `${p}-${i} lost`);
    const log = readFileSync(path.join(dir, 'inventory', 'booted.log'), 'utf8').trim().split('\n');
    assert.equal(log.length, 900);
  } finally {
    cleanup();
  }
});

test('a writer killed mid-write leaves a readable, whole database, and its lock is taken over', async () => {
  const { dir, cleanup } = await tempLab();
  const db = path.join(dir, 'inventory', 'db.json');
  try {
    for (let round = 0; round < 5; round++) {
      const child = execa(process.execPath, [writer, dir, 'big', '3000', 'forever'], { reject: false });
      await eventually(() => existsSync(db), 10_000, 'first write');
      await new Promise((r) => setTimeout(r, 150 + round * 97));
      child.kill('SIGKILL');
      await child;
      const data = readDb(dir); // throws if the file were torn
      const gens = new Set(Object.values(data.hosts).map((h) => h.bootCount));
      assert.equal(Object.keys(data.hosts).length, 3000, `round ${round}: a whole generation`);
      assert.equal(gens.size, 1, `round ${round}: one generation, not a mix`);
    }
    // The killed writer may have held the lock: a new writer still gets through.
    const inv = new Inventory(labPaths(dir));
    await inv.update((d) => {
      d.hosts = {};
    });
    assert.equal(Object.keys(readDb(dir).hosts).length, 0);
  } finally {
    cleanup();
  }
});

test('a change that throws is refused alone; the rest of its batch is written', async () => {
  const { dir, cleanup } = await tempLab();
  try {
    const inv = new Inventory(labPaths(dir));
    const now = new Date().toISOString();
    const add = (name: string) =>
      inv.update((d) => {
        d.hosts[name] = { name, state: 'up', firstSeen: now, lastSeen: now, bootCount: 1 };
      });
    const results = await Promise.allSettled([
      add('one'),
      inv.update((d) => {
        d.hosts.half = { name: 'half', state: 'up', firstSeen: now, lastSeen: now, bootCount: 1 };
        throw new Error('refused');
      }),
      add('two'),
    ]);
    assert.deepEqual(results.map((r) => r.status), ['fulfilled', 'rejected', 'fulfilled']);
    assert.deepEqual(Object.keys(readDb(dir).hosts).sort(), ['one', 'two']);
  } finally {
    cleanup();
  }
});

test("the server's storm on a large db.json goes to db.journal, and db.json is whole again once it settles; a reader elsewhere sees every change as it lands; a torn last line is dropped, a bad one refused, lines db.json holds are not applied twice", async () => {
  const { dir, cleanup } = await tempLab();
  const paths = labPaths(dir);
  try {
    const now = new Date().toISOString();
    // Over 256 KB, as a lab of some thousand hosts has it: the server journals every change then. (A plain
    // writer journals only what came while a commit was under way, which no test can time for sure.)
    await new Inventory(paths).update((d) => {
      for (let i = 0; i < 3000; i++) d.hosts[`old-${i}`] = { name: `old-${i}`, state: 'up', firstSeen: now, lastSeen: now, bootCount: 1 };
    });
    assert.ok(readFileSync(paths.db).length > 256 * 1024);
    // As the server writes it; its fold when quiet is left to settle() here.
    const server = new Inventory(paths, { foldWhenQuiet: 60_000 });
    const other = new Inventory(paths); // as another process reads it: its own instance, nothing kept
    const seen: number[] = [];
    let journaled = false;
    // In waves, as callbacks come, the reader looking between them: each wave's commits are journal lines it must replay.
    const updates: Promise<void>[] = [];
    const sent = (async () => {
      for (let i = 0; i < 400; i++) {
        updates.push(
          server.update((d, log) => {
            d.hosts[`s-${i}`] = { name: `s-${i}`, state: 'up', firstSeen: now, lastSeen: now, bootCount: 1 };
            d.events.push({ time: now, kind: 'callback', host: `s-${i}`, ip: '10.0.2.15', mac: '52:54:00:00:00:01' });
            log(`${now} s-${i} 10.0.2.15 52:54:00:00:00:01`);
          }),
        );
        if (i % 20 === 19) await new Promise((r) => setTimeout(r, 2));
      }
    })();
    const done = sent.then(() => Promise.all(updates));
    let finished = false;
    void done.then(() => (finished = true));
    while (!finished) {
      journaled ||= existsSync(paths.journal);
      seen.push(Object.keys((await other.read()).hosts).length);
      await new Promise((r) => setImmediate(r));
    }
    await done;
    assert.ok(journaled, "the storm's commits went to the journal");
    assert.ok(seen.every((n, i) => i === 0 || n >= seen[i - 1]!), `a reader never saw a change go away: ${seen.join(' ')}`);
    assert.equal(Object.keys((await other.read()).hosts).length, 3400, 'a reader sees all of the storm before the fold');
    await server.settle();
    assert.ok(!existsSync(paths.journal), 'settled: db.json written whole, the journal removed');
    const whole = readDb(dir);
    assert.equal(Object.keys(whole.hosts).length, 3400);
    assert.equal(whole.events.length, 400);
    assert.equal(readFileSync(paths.bootLog, 'utf8').trim().split('\n').length, 400);

    // A writer killed mid-append: its line is cut short. Lines db.json holds (a rewrite stopped before removing the journal) are skipped.
    const seq = whole.journalSeq ?? 0;
    const line = (n: number, host: string) => JSON.stringify({ seq: n, set: { hosts: { [host]: { name: host, state: 'up', firstSeen: now, lastSeen: now, bootCount: 1 } } }, events: [{ time: now, kind: 'callback', host, ip: '10.0.2.15' }] });
    writeFileSync(paths.journal, `${line(seq, 'old')}\n${line(seq + 1, 'j-1')}\n${line(seq + 2, 'torn').slice(0, 40)}`);
    const read = await other.read();
    assert.ok(read.hosts['j-1'] && !read.hosts.old && !read.hosts.torn, Object.keys(read.hosts).filter((h) => !/^(s|old)-/.test(h)).join(' '));
    assert.equal(read.events.length, 401, 'the skipped line\'s event is not added twice');
    await other.update((d) => {
      d.hosts['after'] = { name: 'after', state: 'up', firstSeen: now, lastSeen: now, bootCount: 1 };
    });
    assert.ok(!existsSync(paths.journal), 'a torn journal is folded into db.json at the next commit');
    assert.deepEqual(['after', 'j-1'].map((h) => Boolean(readDb(dir).hosts[h])), [true, true]);

    // A line that is not JSON, not at the end: refused in one line naming the file and line, nothing rewritten.
    const before = readFileSync(paths.db, 'utf8');
    writeFileSync(paths.journal, `{"seq": ${seq + 10}, "set": {}\n${line(seq + 11, 'x')}\n`);
    await assert.rejects(other.read(), (e: Error) => /db\.journal: line 1 is not JSON/.test(e.message) && !e.message.includes('\n'));
    await assert.rejects(other.update(() => undefined));
    assert.equal(readFileSync(paths.db, 'utf8'), before);
  } finally {
    cleanup();
  }
});

test('an inventory of version 1 (image VMs as hosts of env "images") is read as version 2 and written so at its first change, every record kept', async () => {
  const { dir, cleanup } = await tempLab();
  try {
    const file = path.join(dir, 'inventory', 'db.json');
    const t = '2026-11-01T10:00:00.000Z';
    const mini = { name: 'mini', env: 'images', role: 'image', image: 'mini', mac: '52:54:00:aa:00:01', ip: '10.0.2.15', hostKey: 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl', state: 'up', firstSeen: t, lastSeen: t, lastCallback: t, bootCount: 3, reach: { address: '127.0.0.1', port: 40022 } };
    const worker = { name: 'demo-worker-1', env: 'demo', role: 'worker', image: 'mini', mac: '52:54:00:aa:00:02', ip: '10.0.2.15', state: 'down', firstSeen: t, lastSeen: t, lastCallback: t, bootCount: 1, serviceVersion: '1.0.0' };
    const v1 = {
      version: 1,
      hosts: { mini, 'demo-worker-1': worker },
      leases: { mini: { mac: mini.mac }, 'demo-worker-1': { mac: worker.mac } },
      images: { mini: { name: 'mini', state: 'installed', install: 'kernel', started: t, finished: t } },
      events: [{ time: t, kind: 'callback', host: 'mini' }],
      alerts: [],
      somethingLabDoesNotKnow: { kept: true },
    };
    writeFileSync(file, JSON.stringify(v1));
    const inv = new Inventory(labPaths(dir));
    const read = await inv.read();
    assert.equal(read.version, 2);
    assert.deepEqual(Object.keys(read.hosts), ['demo-worker-1']);
    const { env: _e, role: _r, ...vm } = mini;
    assert.deepEqual({ ...read.imageVms.mini }, vm);
    // A read changes nothing on disk; the first change writes version 2 whatever it changed.
    assert.equal(readDb(dir).version, 1);
    await inv.update(() => undefined);
    const after = readDb(dir) as InventoryData & { somethingLabDoesNotKnow?: unknown };
    assert.equal(after.version, 2);
    assert.deepEqual(after.imageVms.mini, vm);
    assert.deepEqual(after.hosts['demo-worker-1'], worker);
    assert.deepEqual([after.leases, after.images, after.events, after.somethingLabDoesNotKnow], [v1.leases, v1.images, v1.events, v1.somethingLabDoesNotKnow]);
    // An image VM is no host: the host manager lists only the environment's.
    const logged = await execa('node', [path.join(repo, 'dist', 'cli.js'), '--lab', dir, 'hosts', 'logged', '--json']);
    assert.deepEqual((JSON.parse(logged.stdout) as { name: string }[]).map((h) => h.name), ['demo-worker-1']);
  } finally {
    cleanup();
  }
});

test("the server's inventory (foldWhenQuiet): a change goes to the journal while db.json is large, even after a pause, and db.json is whole again once commits pause or at settle(); a small db.json is always written whole", async () => {
  const { dir, cleanup } = await tempLab();
  const paths = labPaths(dir);
  try {
    const now = new Date().toISOString();
    const add = (inv: Inventory, from: number, n: number) =>
      inv.update((d) => {
        for (let i = from; i < from + n; i++) d.hosts[`h-${i}`] = { name: `h-${i}`, state: 'up', firstSeen: now, lastSeen: now, bootCount: 1 };
      });
    const inv = new Inventory(paths, { foldWhenQuiet: 300 });
    await add(inv, 0, 1);
    await add(inv, 1, 1);
    assert.ok(!existsSync(paths.journal), 'a small db.json: written whole');
    await add(inv, 2, 3000);
    assert.ok(readFileSync(paths.db).length > 256 * 1024);
    await add(inv, 3002, 1);
    assert.ok(existsSync(paths.journal), 'a commit just after another, db.json large: journaled');
    assert.equal(Object.keys(readDb(dir).hosts).length, 3002);
    assert.equal(Object.keys((await new Inventory(paths).read()).hosts).length, 3003, 'a reader sees it');
    await eventually(() => !existsSync(paths.journal), 5_000, 'the fold once commits pause');
    assert.equal(Object.keys(readDb(dir).hosts).length, 3003);
    // The first change after the pause: journaled too (no callback waits for a rewrite of a large db.json).
    await add(inv, 3003, 1);
    assert.ok(existsSync(paths.journal), 'a change after a pause, db.json large: journaled');
    assert.equal(Object.keys(readDb(dir).hosts).length, 3003);
    await add(inv, 3004, 1);
    assert.ok(existsSync(paths.journal));
    await inv.settle();
    assert.ok(!existsSync(paths.journal), 'settle() folds at once');
    assert.equal(Object.keys(readDb(dir).hosts).length, 3005);
  } finally {
    cleanup();
  }
});
