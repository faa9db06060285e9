import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, existsSync } from 'node:fs';
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
