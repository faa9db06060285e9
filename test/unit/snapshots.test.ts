import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync, statSync, existsSync, readdirSync, openSync, closeSync, constants } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { spawnSync, execFileSync } from 'node:child_process';
import { execa } from 'execa';
import { eventually, repo } from '../helpers.js';
import { labPaths } from '../../src/project/paths.js';
import { checkSnapshotName, listSnapshots, readSnapshot, writeSnapshot, type EnvSnapshot } from '../../src/env/snapshots/store.js';
import { heldBy, withHold } from '../../src/env/snapshots/hold.js';

const snap = (name: string, taken: string): EnvSnapshot => ({
  version: 1,
  env: 'demo',
  name,
  tag: `lab-${name}`,
  taken,
  provider: 'qemu',
  hosts: { 'demo-lb-1': { vm: 'running', lease: { mac: '52:54:00:00:00:01', ip: '10.77.0.2' } }, 'demo-worker-2': { vm: 'stopped' } },
  absent: [],
});

test('environment snapshots on disk: private files, listed oldest first, a damaged one named with its field, a missing one names the others', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'lab-snap-'));
  try {
    const paths = labPaths(dir);
    writeSnapshot(paths, snap('later', '2026-12-02T10:00:00.000Z'));
    writeSnapshot(paths, snap('first', '2026-12-01T10:00:00.000Z'));
    assert.equal(statSync(path.join(paths.snapshots('demo'), 'first.json')).mode & 0o777, 0o600);
    assert.equal(statSync(paths.snapshots('demo')).mode & 0o777, 0o700);
    assert.deepEqual(listSnapshots(paths, 'demo').map((s) => s.name), ['first', 'later']);
    assert.deepEqual(readSnapshot(paths, 'demo', 'first').hosts['demo-worker-2'], { vm: 'stopped' });
    assert.throws(() => readSnapshot(paths, 'demo', 'nope'), /no snapshot "nope" of environment demo; its snapshots: first, later/);
    writeFileSync(path.join(paths.snapshots('demo'), 'bad.json'), JSON.stringify({ ...snap('bad', 'x'), hosts: { a: { vm: 'asleep' } } }));
    assert.throws(() => readSnapshot(paths, 'demo', 'bad'), /bad\.json: hosts\.a\.vm is missing or of the wrong type/);
    assert.match(String((listSnapshots(paths, 'demo').find((s) => s.name === 'bad') as { error: string }).error), /hosts\.a\.vm/);
    for (const name of ['', '-x', 'a/b', '../x', 'a b', 'x'.repeat(64)]) assert.throws(() => checkSnapshotName(name), /letters, digits/, name);
    checkSnapshotName('v1.0_before-upgrade');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("a hold: a second snapshot or restore of the environment is refused while one runs; a killed one's hold is no hold", async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'lab-hold-'));
  try {
    const paths = labPaths(dir);
    await withHold(paths, 'demo', 'restore', 's1', async () => {
      assert.equal(heldBy(paths, 'demo')?.what, 'restore');
    });
    assert.equal(heldBy(paths, 'demo'), undefined);
    // Left by a process that is gone (killed mid-restore).
    const dead = spawnSync('true').pid!;
    mkdirSync(paths.snapshots('demo'), { recursive: true });
    writeFileSync(path.join(paths.snapshots('demo'), '.busy'), JSON.stringify({ pid: dead, what: 'restore', name: 's1', since: 'then' }));
    assert.equal(heldBy(paths, 'demo'), undefined);
    // Held by another live process: refused, naming it.
    writeFileSync(path.join(paths.snapshots('demo'), '.busy'), JSON.stringify({ pid: process.ppid, what: 'snapshot', name: 's2', since: 'now' }));
    await assert.rejects(withHold(paths, 'demo', 'restore', 's1', async () => undefined), /environment demo: taking snapshot "s2" \(pid \d+/);
    assert.ok(existsSync(path.join(paths.snapshots('demo'), '.busy')), 'the other hold is left alone');
    // A killed one's hold is taken over, and released after.
    writeFileSync(path.join(paths.snapshots('demo'), '.busy'), JSON.stringify({ pid: dead, what: 'restore', name: 's1', since: 'then' }));
    assert.equal(await withHold(paths, 'demo', 'snapshot', 's3', async () => heldBy(paths, 'demo')?.name), 's3');
    // The holder taking it again (a restore that snapshots first) keeps it until its outer hold ends.
    await withHold(paths, 'demo', 'restore', 's1', async () => {
      await withHold(paths, 'demo', 'snapshot', 'before-s1', async () => undefined);
      assert.equal(heldBy(paths, 'demo')?.what, 'restore');
    });
    assert.deepEqual(readdirSync(paths.snapshots('demo')), []);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a hold taken by 8 processes at the same instant goes to exactly one of them; the others are refused, naming it', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'lab-hold-race-'));
  try {
    const fifo = path.join(dir, 'go');
    execFileSync('mkfifo', [fifo]);
    // Each child says it is ready, then blocks opening the FIFO; all wake when this process opens it for writing.
    const code = `
      const { readFileSync } = await import('node:fs');
      const { withHold } = await import(${JSON.stringify(path.join(repo, 'src/env/snapshots/hold.ts'))});
      const { labPaths } = await import(${JSON.stringify(path.join(repo, 'src/project/paths.ts'))});
      console.log('ready');
      readFileSync(${JSON.stringify(fifo)});
      try {
        await withHold(labPaths(${JSON.stringify(dir)}), 'demo', 'snapshot', 'race-' + process.pid, () => new Promise((r) => setTimeout(r, 1000)));
        console.log('held');
      } catch (e) {
        console.log(/taking snapshot "race-\\d+"/.test(e.message) ? 'refused' : 'error: ' + e.message);
      }`;
    const children = Array.from({ length: 8 }, () => execa(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], { reject: false }));
    const out = children.map((c) => {
      const o = { text: '' };
      c.stdout!.on('data', (d: Buffer) => (o.text += d.toString()));
      return o;
    });
    let ready = false;
    try {
      await eventually(() => out.every((o) => o.text.includes('ready')), 60_000, 'the children to be ready');
      ready = true;
      // The last child's open of the FIFO comes just after its line.
      await new Promise((r) => setTimeout(r, 200));
    } finally {
      // Not blocking, and none left waiting: a child that died or never got ready must not hang the test.
      if (!ready) for (const c of children) c.kill();
      try {
        closeSync(openSync(fifo, constants.O_WRONLY | constants.O_NONBLOCK));
      } catch {
        for (const c of children) c.kill(); // ENXIO: no one reads
      }
    }
    const said = (await Promise.all(children)).map((r) => r.stdout.trim().split('\n').pop());
    assert.deepEqual(said.filter((s) => s !== 'refused'), ['held'], said.join(', '));
    assert.equal(existsSync(path.join(labPaths(dir).snapshots('demo'), '.busy')), false, 'released by its holder');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
