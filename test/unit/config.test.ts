import { test } from 'node:test';
import assert from 'node:assert/strict';
import { lab, tempLab } from '../helpers.js';

test('the scaffold is a valid lab', async () => {
  const { dir, cleanup } = await tempLab();
  try {
    const r = await lab(['check', '--lab', dir, '--images', 'mini', '--json']);
    assert.equal(r.exitCode, 0, r.stderr);
    const out = JSON.parse(r.stdout) as { hosts: { name: string; env: string; role: string }[]; config: { network: { serverPort: number } } };
    // demo: 1 lb + max 4 workers; prod: 2 lb + max 8 workers
    assert.equal(out.hosts.length, 13);
    assert.deepEqual(
      out.hosts.filter((h) => h.env === 'demo').map((h) => h.name),
      ['demo-lb-1', 'demo-worker-1', 'demo-worker-2'],
    );
    assert.equal(out.config.network.serverPort, 8077);
  } finally {
    cleanup();
  }
});

const bad: { name: string; edit: (s: string) => string; expect: RegExp }[] = [
  {
    name: 'a field of the wrong type',
    edit: (s) => s.replace('cpus: 2,', "cpus: 'two',"),
    expect: /^lab: environments\.ts: images\.centos9\.cpus: .*expected number/,
  },
  {
    name: 'a group naming an image that does not exist',
    edit: (s) => s.replace("{ role: 'lb', image: 'mini', count: 1,", "{ role: 'lb', image: 'tiny', count: 1,"),
    expect: /^lab: environments\.ts: environments\.demo\.groups\[0\]\.image: no image "tiny"; images are: centos9, mini$/,
  },
  {
    name: 'min above max',
    edit: (s) => s.replace('min: 1, max: 2', 'min: 5, max: 2'),
    expect: /^lab: environments\.ts: environments\.demo\.groups\[1\]\.min: min 5 is above max 2$/,
  },
  {
    name: 'a misspelt field',
    edit: (s) => s.replace('memory: 256,', 'memroy: 256,'),
    expect: /^lab: environments\.ts: images\.mini: .*"memroy"/,
  },
  {
    name: 'a role given twice in one environment',
    edit: (s) => s.replace("{ role: 'lb', image: 'mini', count: 1, service: 'lb', version: '1' }", "{ role: 'worker', image: 'mini', count: 1 }"),
    expect: /^lab: environments\.ts: environments\.demo\.groups\[1\]\.role: role "worker" appears twice in environment demo$/,
  },
  {
    name: 'a gateway outside the network',
    edit: (s) => s.replace("gateway: '10.77.0.1'", "gateway: '10.78.0.1'"),
    expect: /^lab: environments\.ts: network\.gateway: 10\.78\.0\.1 is not a host address of 10\.77\.0\.0\/24$/,
  },
  {
    name: 'a service with no folder',
    edit: (s) => s.replace("service: 'hello', version: '1.0.0' },\n      ],\n    },\n    prod", "service: 'nginx', version: '1.0.0' },\n      ],\n    },\n    prod"),
    expect: /^lab: environments\.ts: environments\.demo\.groups\[1\]\.service: no service "nginx": expected a folder services\/nginx$/,
  },
  {
    name: 'a TypeScript syntax error',
    edit: (s) => s.replace('export default defineLab({', 'export default defineLab({{'),
    expect: /^lab: environments\.ts: cannot be loaded: /,
  },
];

for (const c of bad) {
  test(`config error: ${c.name} gets one line naming the field, exit 2`, async () => {
    const { dir, cleanup } = await tempLab(c.edit);
    try {
      const r = await lab(['kickstart', 'demo-lb-1', '--lab', dir]);
      assert.equal(r.exitCode, 2, r.stderr);
      assert.equal(r.stdout, '');
      assert.equal(r.stderr.trim().split('\n').length, 1, `one line expected:\n${r.stderr}`);
      assert.match(r.stderr.trim(), c.expect);
      assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
    } finally {
      cleanup();
    }
  });
}

test('an ISO that does not exist is refused by check, with the field and exit 2', async () => {
  const { dir, cleanup } = await tempLab();
  try {
    const r = await lab(['check', '--lab', dir]);
    assert.equal(r.exitCode, 2);
    assert.match(r.stderr.trim(), /^lab: environments\.ts: images\.centos9\.iso: iso\/CentOS-Stream-9-latest-x86_64-dvd1\.iso does not exist or cannot be read/);
  } finally {
    cleanup();
  }
});

test('a folder without environments.ts is named, with what to do', async () => {
  const r = await lab(['hosts', 'list', '--lab', '/nonexistent-lab']);
  assert.equal(r.exitCode, 2);
  assert.match(r.stderr, /^lab: \/nonexistent-lab\/environments\.ts: no such file.*lab init/);
});

test('bad arguments exit 2 without a stack trace', async () => {
  for (const args of [['hosts', 'filter', '--timeout', 'soon'], ['no-such-command'], ['kickstart']]) {
    const r = await lab([...args, '--lab', '/nonexistent-lab']);
    assert.equal(r.exitCode, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.doesNotMatch(r.stderr, /\n\s+at /);
  }
});
