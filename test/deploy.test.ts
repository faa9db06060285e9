import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { execa } from 'execa';
import { lab, tempLab, eventually, readJson } from './helpers.js';
import { makeLabBridge, serveInNs } from './netns.js';
import { Inventory } from '../src/inventory/store.js';
import { labPaths } from '../src/project/paths.js';
import type { InventoryData } from '../src/inventory/types.js';
import type { HostResult } from '../src/deploy/run.js';
import type { ClusterFacts } from '../src/deploy/types.js';

/**
 * Deploy on real mini guests on a bridge inside a namespace the test makes
 * (the scaffold's network: 10.77.0.0/24): SSH with pinned host keys, SFTP,
 * and HTTP from the lab host straight to the guests' addresses.
 */

interface OpJson {
  ok: boolean;
  hosts: HostResult[];
}

const workers = ['demo-worker-1', 'demo-worker-2', 'demo-worker-3'];

// A service of the test's own, for what hello does not exercise: timeouts and file modes.
const probeService = `import { defineService } from 'lab';
export default defineService({
  role: 'worker',
  versions: ['1'],
  files: ['payload.txt'],
  operations: {
    async nap(ctx) { await ctx.run('sleep 30'); },
    async files(ctx) {
      await ctx.put('payload.txt', '/tmp/probe/payload.txt', { mode: 0o600 });
      await ctx.write('/tmp/probe/written', 'from ' + ctx.host.name + '\\n', { mode: 0o751 });
      const r = await ctx.run('stat -c %a /tmp/probe/payload.txt /tmp/probe/written; cat /tmp/probe/payload.txt /tmp/probe/written');
      return r.stdout.trim().split('\\n').join(' ');
    },
    async exits(ctx) { await ctx.run('echo to-stderr >&2; exit 7'); },
    async throws() { throw new TypeError('a bug in the service'); },
  },
});
`;

test('deploy on real guests: hello deploy/start/test/stop over pinned SSH, cluster.json, wrong version, a service of shell stages, a down host, a changed host key, timeouts', { timeout: 900_000 }, async () => {
  const ns = `labtd${process.pid % 100000}`;
  const { dir, cleanup } = await tempLab((s) =>
    s
      .replace("{ role: 'worker', image: 'mini', min: 1, max: 2,", "{ role: 'worker', image: 'mini', min: 1, max: 3,")
      .replace('    demo: {\n      groups: [', '    demo: {\n      trust: true,\n      groups: [')
      .replace('    prod: {', "    other: { groups: [{ role: 'db', image: 'mini', count: 1 }] },\n    prod: {"),
  );
  mkdirSync(path.join(dir, 'services', 'probe'));
  writeFileSync(path.join(dir, 'services', 'probe', 'service.ts'), probeService);
  writeFileSync(path.join(dir, 'services', 'probe', 'payload.txt'), 'payload\n');
  const inNs = (args: string[]) => lab(['--lab', dir, ...args], { netns: ns });
  const op = async (args: string[]) => {
    const r = await inNs([...args, '--json']);
    assert.ok(r.stdout.startsWith('{'), `lab ${args.join(' ')}: ${r.stderr}`);
    const j = JSON.parse(r.stdout) as OpJson;
    return { ...r, json: j, by: (h: string) => j.hosts.find((x) => x.host === h)! };
  };
  const db = () => readJson<InventoryData>(path.join(dir, 'inventory', 'db.json'));
  const curl = (ip: string) => execa('ip', ['netns', 'exec', ns, 'curl', '-sS', '--max-time', '5', `http://${ip}:8080/`], { reject: false });
  let server: { stop: () => Promise<void> } | undefined;
  try {
    await makeLabBridge(ns);
    const build = await inNs(['image', 'build', 'mini']);
    assert.equal(build.exitCode, 0, build.stderr);
    server = await serveInNs(ns, dir);
    for (const w of workers) {
      const clone = await inNs(['image', 'clone', 'mini', w]);
      assert.equal(clone.exitCode, 0, clone.stderr);
    }
    await Promise.all(workers.map((w) => inNs(['image', 'start', w])));
    await eventually(() => workers.every((w) => (db().hosts[w]?.bootCount ?? 0) >= 1), 180_000, 'the workers to call back');

    // Nothing deployed yet: test fails on every host, and says why.
    const before = await op(['hello', 'test']);
    assert.equal(before.exitCode, 1);
    assert.deepEqual(before.json.hosts.map((h) => h.outcome), ['failed', 'failed', 'failed']);

    // deploy: every worker, in parallel; the version recorded; peers written to /etc/lab/cluster.json.
    const deploy = await inNs(['hello', 'deploy']);
    assert.equal(deploy.exitCode, 0, deploy.stdout + deploy.stderr);
    for (const w of workers) assert.match(deploy.stdout, new RegExp(`^== ${w} OK \\(`, 'm'));
    assert.match(deploy.stdout, /^HOST +ENV +ROLE +VERSION +RESULT +TIME +DETAIL$/m);
    assert.match(deploy.stdout, /^3 ok, 0 failed, 0 skipped, 3 hosts in [\d.]+ s$/m);
    for (const w of workers) assert.equal(db().hosts[w]!.serviceVersion, '1.0.0');
    const cluster = JSON.parse((await inNs(['ssh', 'demo-worker-2', 'cat', '/etc/lab/cluster.json'])).stdout) as ClusterFacts;
    assert.equal(cluster.self, 'demo-worker-2');
    assert.equal(cluster.env, 'demo');
    assert.deepEqual(
      cluster.hosts.map((h) => [h.name, h.role, h.env, h.address]),
      workers.map((w) => [w, 'worker', 'demo', db().hosts[w]!.ip]),
    );

    // start, then test from the lab host: HTTP 200 with each host's name and version.
    const start = await op(['hello', 'start']);
    assert.equal(start.exitCode, 0, JSON.stringify(start.json));
    const ok = await op(['hello', 'test']);
    assert.equal(ok.exitCode, 0, JSON.stringify(ok.json));
    for (const w of workers) assert.match(ok.by(w).detail!, new RegExp(`^200 in \\d+ ms: hello from ${w} version 1\\.0\\.0$`));
    const direct = await curl(db().hosts['demo-worker-3']!.ip!);
    assert.equal(String(direct.stdout).trim(), 'hello from demo-worker-3 version 1.0.0');

    // A version other than the one deployed fails test.
    const wrong = await op(['hello', 'test', '--version', '2.0.0']);
    assert.equal(wrong.exitCode, 1);
    assert.match(wrong.by('demo-worker-1').detail!, /expected "hello from demo-worker-1 version 2\.0\.0", got "hello from demo-worker-1 version 1\.0\.0"/);

    // A new version on one host: the running service is restarted onto it; test then expects what each host has.
    const upgrade = await op(['hello', 'deploy', '--hosts', 'demo-worker-1', '--version', '1.1.0']);
    assert.equal(upgrade.exitCode, 0, JSON.stringify(upgrade.json));
    assert.equal(upgrade.by('demo-worker-1').detail, 'version 1.1.0, restarted');
    const mixed = await op(['hello', 'test']);
    assert.equal(mixed.exitCode, 0, JSON.stringify(mixed.json));
    assert.deepEqual(mixed.json.hosts.map((h) => h.version), ['1.1.0', '1.0.0', '1.0.0']);

    // The service comes back after a reboot (start linked it into /etc/lab/start.d on the disk).
    assert.equal((await inNs(['image', 'stop', 'demo-worker-2', '--deadline', '60'])).exitCode, 0);
    const boots = db().hosts['demo-worker-2']!.bootCount;
    assert.equal((await inNs(['image', 'start', 'demo-worker-2'])).exitCode, 0);
    await eventually(() => db().hosts['demo-worker-2']!.bootCount > boots, 120_000, 'demo-worker-2 to boot again');
    const rebooted = await op(['hello', 'test', '--hosts', 'demo-worker-2']);
    assert.equal(rebooted.exitCode, 0, JSON.stringify(rebooted.json));

    // SFTP uploads keep their modes; a failing command and a throwing operation are reported per host.
    const files = await op(['probe', 'files', '--hosts', 'demo-worker-1']);
    assert.equal(files.by('demo-worker-1').detail, '600 751 payload from demo-worker-1');
    const exits = await op(['probe', 'exits', '--hosts', 'demo-worker-1']);
    assert.equal(exits.exitCode, 1);
    assert.equal(exits.by('demo-worker-1').detail, 'exit 7: echo to-stderr >&2; exit 7: to-stderr');
    const throws = await op(['probe', 'throws', '--hosts', 'demo-worker-1']);
    assert.match(throws.by('demo-worker-1').detail!, /^probe\/service\.ts throws threw: a bug in the service/);
    // A command over its time is cut off.
    const nap = await op(['probe', 'nap', '--hosts', 'demo-worker-1', '--timeout', '2']);
    assert.equal(nap.by('demo-worker-1').outcome, 'timeout');
    assert.ok(nap.by('demo-worker-1').ms < 10_000);

    // A service of shell stages, no service.ts: deployed to the workers by role; one stage fails on one host.
    const setup = path.join(dir, 'services', 'setup');
    const stage = (name: string, script: string, extra: Record<string, string> = {}) => {
      mkdirSync(path.join(setup, 'stages', name), { recursive: true });
      writeFileSync(path.join(setup, 'stages', name, 'bootstrap.sh'), script);
      for (const [f, text] of Object.entries(extra)) writeFileSync(path.join(setup, 'stages', name, f), text);
    };
    stage('0-base', 'set -e\necho "base on $LAB_HOST as $(id -u)"\ncp motd.txt /etc/setup-motd\necho "$LAB_VERSION $(grep -c \'"name"\' "$LAB_CLUSTER") hosts" > /etc/setup-base\n', { 'motd.txt': 'hello from stage 0\n' });
    stage('1-app', 'echo "app on $LAB_HOST"\nif [ "$LAB_HOST" = demo-worker-3 ]; then echo "no app here" >&2; exit 7; fi\ntouch /etc/setup-app\n');
    writeFileSync(path.join(setup, 'test.sh'), 'test -f /etc/setup-app && cat /etc/setup-base\n');
    const services = JSON.parse((await inNs(['services', '--json'])).stdout) as { name: string; operations: string[] }[];
    assert.deepEqual(services.find((x) => x.name === 'setup')?.operations, ['deploy', 'test']);
    const staged = await op(['setup', 'deploy', '--role', 'worker']);
    assert.equal(staged.exitCode, 1, JSON.stringify(staged.json));
    for (const w of ['demo-worker-1', 'demo-worker-2']) {
      assert.equal(staged.by(w).outcome, 'ok', JSON.stringify(staged.by(w)));
      assert.equal(staged.by(w).detail, 'stages run: 0-base, 1-app');
      assert.ok(staged.by(w).output.includes(`  base on ${w} as 0`), staged.by(w).output.join('\n'));
    }
    assert.equal(staged.by('demo-worker-3').outcome, 'failed');
    assert.equal(staged.by('demo-worker-3').detail, 'stage 1-app failed (exit 7): no app here');
    const version = staged.by('demo-worker-1').version;
    assert.match(version, /^[0-9a-f]{12}$/, 'no group gives setup a version: the stages\' digest is its version');
    assert.equal((await inNs(['ssh', 'demo-worker-1', 'cat', '/etc/setup-base', '/etc/setup-motd'])).stdout, `${version} 3 hosts\nhello from stage 0`);
    // The worker's own service keeps its recorded version: setup is not what its group runs.
    assert.equal(db().hosts['demo-worker-1']!.serviceVersion, '1.1.0');
    // Again: what succeeded at this version is not run again; the failed stage is, and fails again.
    const rerun = await op(['setup', 'deploy', '--role', 'worker']);
    assert.equal(rerun.by('demo-worker-1').detail, 'stages run: none; done before: 0-base, 1-app');
    assert.ok(rerun.by('demo-worker-1').output.includes(`-- stage 0-base: done before at version ${version}, skipped`));
    assert.equal(rerun.by('demo-worker-3').detail, 'stage 1-app failed (exit 7): no app here');
    assert.ok(rerun.by('demo-worker-3').output.includes(`-- stage 0-base: done before at version ${version}, skipped`));
    // An edited stage is a new version: every stage runs again.
    writeFileSync(path.join(setup, 'stages', '1-app', 'bootstrap.sh'), 'echo "app v2 on $LAB_HOST"\ntouch /etc/setup-app\n');
    const edited = await op(['setup', 'deploy', '--hosts', 'demo-worker-3']);
    assert.equal(edited.exitCode, 0, JSON.stringify(edited.json));
    assert.equal(edited.by('demo-worker-3').detail, 'stages run: 0-base, 1-app');
    assert.notEqual(edited.by('demo-worker-3').version, version);
    const tested = await op(['setup', 'test', '--role', 'worker']);
    assert.equal(tested.exitCode, 0, JSON.stringify(tested.json));
    assert.ok(tested.by('demo-worker-3').output.includes(`  ${edited.by('demo-worker-3').version} 3 hosts`), tested.by('demo-worker-3').output.join('\n'));

    // A host of another environment boots meanwhile, for the trust case below.
    assert.equal((await inNs(['image', 'clone', 'mini', 'other-db-1'])).exitCode, 0);
    assert.equal((await inNs(['image', 'start', 'other-db-1'])).exitCode, 0);

    // A service of an Ansible playbook: one ansible-playbook run over the three workers through lab's inventory
    // (its groups, pinned keys), modules that need the guest's Python; a task failing on one host is that host's result.
    const stack = path.join(dir, 'services', 'stack');
    mkdirSync(stack);
    writeFileSync(
      path.join(stack, 'playbook.yml'),
      [
        '- hosts: worker',
        '  gather_facts: false',
        '  tasks:',
        '    - name: facts',
        '      ansible.builtin.setup: { filter: ansible_hostname }',
        '    - name: peers',
        '      ansible.builtin.copy:',
        '        dest: /etc/stack-peers',
        `        content: "{{ lab_version }} {{ ansible_facts['hostname'] }}: {{ groups['worker'] | sort | join(' ') }}\\n"`,
        '        mode: "0640"',
        '    - name: once for all',
        '      ansible.builtin.copy: { dest: /etc/stack-once, content: "{{ ansible_play_hosts_all | sort | join(\' \') }}\\n" }',
        '      run_once: true',
        '    - name: app',
        '      ansible.builtin.command: test ! -e /etc/no-stack',
        '    - name: check',
        '      ansible.builtin.command: cat /etc/stack-peers',
        '      tags: [test, never]',
        '',
      ].join('\n'),
    );
    assert.equal((await inNs(['ssh', 'demo-worker-3', 'touch', '/etc/no-stack'])).exitCode, 0);
    const played = await op(['stack', 'deploy', '--role', 'worker']);
    assert.equal(played.exitCode, 1, JSON.stringify(played.json));
    const stackVersion = played.by('demo-worker-1').version;
    for (const w of ['demo-worker-1', 'demo-worker-2']) {
      assert.equal(played.by(w).outcome, 'ok', JSON.stringify(played.by(w)));
      assert.match(played.by(w).detail!, /^\d+ ok, [1-9]\d* changed$/);
      assert.ok(played.by(w).output.includes('TASK [peers] changed'), played.by(w).output.join('\n'));
      assert.equal((await inNs(['ssh', w, 'stat -c %a /etc/stack-peers; cat /etc/stack-peers'])).stdout, `640\n${stackVersion} ${w}: demo-worker-1 demo-worker-2 demo-worker-3`);
    }
    assert.equal(played.by('demo-worker-3').outcome, 'failed');
    assert.match(played.by('demo-worker-3').detail!, /^task "app" failed: non-zero return code$/);
    assert.ok(played.by('demo-worker-3').output.includes('TASK [app] failed'), played.by('demo-worker-3').output.join('\n'));
    assert.equal((await inNs(['ssh', 'demo-worker-1', 'cat', '/etc/stack-once'])).stdout, 'demo-worker-1 demo-worker-2 demo-worker-3', 'one run over all three hosts');
    assert.equal((await inNs(['ssh', 'demo-worker-2', 'test -e /etc/stack-once'])).exitCode, 1, 'run_once ran on one host');
    // Fixed, deployed again to that host alone; then the test tag on all three.
    // A deploy is marked on the hosts it succeeded on (what lab env reads back), not on the one it failed on.
    const marker = async (w: string) => (await inNs(['ssh', w, 'cat /etc/lab/deployed/stack 2>/dev/null || echo none'])).stdout.trim();
    assert.deepEqual([await marker('demo-worker-1'), await marker('demo-worker-3')], [stackVersion, 'none']);
    assert.equal((await inNs(['ssh', 'demo-worker-3', 'rm', '/etc/no-stack'])).exitCode, 0);
    const fixed = await op(['stack', 'deploy', '--hosts', 'demo-worker-3']);
    assert.equal(fixed.exitCode, 0, JSON.stringify(fixed.json));
    assert.equal(await marker('demo-worker-3'), stackVersion);
    const checked = await op(['stack', 'test', '--role', 'worker']);
    assert.equal(checked.exitCode, 0, JSON.stringify(checked.json));
    for (const w of workers) assert.ok(checked.by(w).output.includes(`  ${stackVersion} ${w}: demo-worker-1 demo-worker-2 demo-worker-3`), checked.by(w).output.join('\n'));
    assert.ok(!checked.by('demo-worker-1').output.some((l) => l.startsWith('TASK [peers]')), 'test runs the tagged tasks only');

    // Hosts that trust each other (demo has trust: true): each holds demo's key and knows its peers; another environment's host is refused.
    await eventually(() => (db().hosts['other-db-1']?.bootCount ?? 0) >= 1, 180_000, 'other-db-1 to call back');
    const granted = await inNs(['env', 'trust', 'demo', '--json']);
    assert.equal(granted.exitCode, 0, granted.stderr);
    assert.deepEqual((JSON.parse(granted.stdout) as { host: string; ok: boolean }[]).map((r) => [r.host, r.ok]), workers.map((w) => [w, true]));
    assert.equal(statSync(path.join(dir, 'inventory', 'env-keys', 'demo_ed25519')).mode & 0o777, 0o600);
    const hop = await inNs(['ssh', 'demo-worker-1', 'ssh demo-worker-3 hostname </dev/null']);
    assert.equal(hop.stdout.trim(), 'demo-worker-3', hop.stderr);
    const otherIp = db().hosts['other-db-1']!.ip!;
    // Not pinned for demo: refused without a question (no terminal to ask on).
    const unpinned = await inNs(['ssh', 'demo-worker-1', `ssh ${otherIp} hostname </dev/null`]);
    assert.notEqual(unpinned.exitCode, 0);
    assert.match(unpinned.stdout + unpinned.stderr, /not in the trusted hosts file/);
    // Its key accepted blindly (-y), the host still refuses demo's key: it trusts the lab's key only.
    const across = await inNs(['ssh', 'demo-worker-1', `ssh -y ${otherIp} hostname </dev/null`]);
    assert.notEqual(across.exitCode, 0);
    assert.match(across.stdout + across.stderr, /No auth methods could be used|Permission denied/);
    assert.doesNotMatch(across.stdout, /other-db-1/);
    const refusedEnv = await inNs(['env', 'trust', 'other']);
    assert.equal(refusedEnv.exitCode, 2);
    assert.equal(refusedEnv.stderr.trim(), 'lab: environment other does not trust itself: set trust: true on it in environments.ts');
    assert.equal((await inNs(['image', 'del', 'other-db-1', '--force'])).exitCode, 0);

    // A host that died (its VM killed, the inventory still saying up) is reported; the others succeed.
    const vm = path.join(dir, 'inventory', 'vms', 'demo-worker-3');
    await execa('pkill', ['-KILL', '-f', `qemu-system-x86_64 -name demo-worker-3 .*${vm}/`], { reject: false });
    const down = await op(['hello', 'test', '--connect-timeout', '3']);
    assert.equal(down.exitCode, 1);
    assert.deepEqual(down.json.hosts.map((h) => h.outcome), ['ok', 'ok', 'unreachable']);
    assert.match(down.by('demo-worker-3').detail!, /10\.77\.0\.\d+:22/);
    // Once a sweep marked it down it is skipped, not failed.
    await inNs(['hosts', 'filter']);
    const swept = await op(['hello', 'test']);
    assert.equal(swept.exitCode, 0, JSON.stringify(swept.json));
    assert.equal(swept.by('demo-worker-3').outcome, 'skipped');

    // A host key other than the one recorded at the callback is refused, never accepted.
    const inv = new Inventory(labPaths(dir));
    const realKey = db().hosts['demo-worker-2']!.hostKey!;
    const otherKey = readFileSync(path.join(dir, 'inventory', 'lab_ed25519.pub'), 'utf8').split(' ').slice(0, 2).join(' ');
    await inv.update((d) => {
      d.hosts['demo-worker-2']!.hostKey = otherKey;
    });
    const changed = await op(['hello', 'test']);
    assert.equal(changed.exitCode, 1);
    assert.equal(changed.by('demo-worker-2').outcome, 'refused');
    assert.match(changed.by('demo-worker-2').detail!, /^host key mismatch: demo-worker-2 \(10\.77\.0\.\d+:22\) offered SHA256:\S+, its boot callback recorded SHA256:\S+; refused/);
    assert.equal(changed.by('demo-worker-1').outcome, 'ok');
    await inv.update((d) => {
      d.hosts['demo-worker-2']!.hostKey = realKey;
    });

    // stop: the service is down, test fails with the reason.
    const stop = await op(['hello', 'stop']);
    assert.equal(stop.exitCode, 0, JSON.stringify(stop.json));
    const after = await op(['hello', 'test', '--hosts', 'demo-worker-1']);
    assert.equal(after.exitCode, 1);
    assert.match(after.by('demo-worker-1').detail!, /^HTTP GET demo-worker-1:8080\/: connection refused$/);
  } finally {
    await server?.stop();
    for (const vm of [...workers, 'other-db-1', 'mini']) await inNs(['image', 'del', vm, '--force']);
    await execa('ip', ['netns', 'del', ns], { reject: false });
    cleanup();
  }
});
