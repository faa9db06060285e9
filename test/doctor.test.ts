import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execa } from 'execa';
import { lab, tempLab } from './helpers.js';
import { makeLabBridge } from './netns.js';
import type { Check } from '../src/doctor/checks.js';

/** lab doctor inside namespaces the test makes: taps, the bridge and the port are checked for real there. */
test('lab doctor names what is missing with its fix (no bridge, port unbindable), and passes once the lab network exists', { timeout: 120_000 }, async () => {
  const bare = `labtdb${process.pid % 10000}`;
  const ready = `labtdr${process.pid % 10000}`;
  const { dir, cleanup } = await tempLab();
  const doctor = async (ns: string) => {
    const r = await lab(['--lab', dir, 'doctor', '--json'], { netns: ns });
    const checks = JSON.parse(r.stdout) as Check[];
    return { exitCode: r.exitCode, by: (name: string) => checks.find((c) => c.name === name)! };
  };
  try {
    await execa('ip', ['netns', 'add', bare]);
    await execa('ip', ['-n', bare, 'link', 'set', 'lo', 'up']);
    const before = await doctor(bare);
    assert.equal(before.exitCode, 3);
    assert.equal(before.by('qemu-system').status, 'ok');
    assert.equal(before.by('ping').status, 'ok');
    assert.equal(before.by('taps').status, 'ok');
    assert.equal(before.by('bridge').status, 'fail');
    assert.equal(before.by('bridge').fix, 'ip link add labnet type bridge && ip addr add 10.77.0.1/24 dev labnet && ip link set labnet up');
    assert.match(before.by('server port').detail, /^cannot listen on 10\.77\.0\.1:8077: no such address here$/);
    assert.equal(before.by('iso centos9').status, 'warn');
    assert.match(before.by('iso centos9').detail, /image centos9 \(environment prod\) cannot be built/);
    const text = await lab(['--lab', dir, 'doctor'], { netns: bare });
    assert.match(text.stdout, /^FAIL  bridge +no interface holds the gateway 10\.77\.0\.1: guests cannot reach lab serve\n +fix: ip link add labnet/m);
    assert.match(text.stdout, /^2 check\(s\) failed$/m);

    await makeLabBridge(ready);
    const after = await doctor(ready);
    assert.equal(after.exitCode, 0);
    assert.equal(after.by('bridge').detail, '10.77.0.1 is on labnet');
    assert.equal(after.by('server port').detail, '10.77.0.1:8077 is free');
  } finally {
    for (const ns of [bare, ready]) await execa('ip', ['netns', 'del', ns], { reject: false });
    cleanup();
  }
});
