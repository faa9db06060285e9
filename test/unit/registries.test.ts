import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { repo, lab, tempLab } from '../helpers.js';
import { DISTROS, DISTRO_NAMES } from '../../src/distros/index.js';
import { PROVIDERS, PROVIDER_NAMES } from '../../src/providers/index.js';
import { parseKickstart } from '../../src/distros/lint.js';

/** Every .ts file under dir. */
function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = path.join(dir, f);
    return statSync(p).isDirectory() ? sources(p) : p.endsWith('.ts') ? [p] : [];
  });
}

test('no distro or provider name is compared outside its own folder', () => {
  const names = [...DISTRO_NAMES, ...PROVIDER_NAMES].join('|');
  const compared = new RegExp(`(===|!==|==|!=|case)\\s*['"\`](${names})['"\`]|['"\`](${names})['"\`]\\s*(===|!==|==|!=)`);
  const own = [...DISTRO_NAMES.map((n) => path.join('src', 'distros', n)), ...PROVIDER_NAMES.map((n) => path.join('src', 'providers', n))];
  const found: string[] = [];
  for (const file of sources(path.join(repo, 'src'))) {
    const rel = path.relative(repo, file);
    if (own.some((o) => rel.startsWith(o + path.sep))) continue;
    readFileSync(file, 'utf8')
      .split('\n')
      .forEach((line, i) => {
        if (compared.test(line)) found.push(`${rel}:${i + 1}: ${line.trim()}`);
      });
  }
  assert.deepEqual(found, [], 'decide through the registries (src/distros, src/providers), not by name');
});

test('the registries: each distro and provider is one folder with the whole interface, and environments.ts takes exactly their names', async () => {
  for (const [name, d] of Object.entries(DISTROS)) {
    assert.equal(d.name, name);
    assert.ok(statSync(path.join(repo, 'src', 'distros', name)).isDirectory());
    assert.ok(['clones', 'installs'].includes(d.hostsAre));
    assert.match(d.bootSpec('img', 'http://x/ks/h').args, /inst\.ks=http:\/\/x\/ks\/h/);
    // An empty kickstart is incomplete for every installer.
    assert.ok(d.lint(parseKickstart('')).length > 0, name);
  }
  for (const [name, p] of Object.entries(PROVIDERS)) {
    assert.equal(p.name, name);
    assert.ok(statSync(path.join(repo, 'src', 'providers', name)).isDirectory());
    assert.equal(p.macPrefix.length, 3);
    assert.equal(p.macPrefix[0]! & 0b10, ['qemu', 'libvirt'].includes(p.name) ? 0b10 : 0, "QEMU's (and libvirt's, which runs QEMU) is a locally administered prefix");
  }
  const { dir, cleanup } = await tempLab((s) => s.replace("provider: 'qemu'", "provider: 'xen'"));
  try {
    const r = await lab(['check', '--lab', dir]);
    assert.equal(r.exitCode, 2);
    assert.match(r.stderr, new RegExp(`^lab: environments\\.ts: provider: .*${PROVIDER_NAMES.map((n) => `"${n}"`).join('\\|')}`));
  } finally {
    cleanup();
  }
});

test('the folders under src/ import each other one way: no two import each other', () => {
  const src = path.join(repo, 'src');
  const edges = new Map<string, Set<string>>();
  for (const file of sources(src)) {
    const from = path.relative(src, file).split(path.sep)[0]!;
    // Runtime imports only: a type import costs nothing at run time and makes no cycle.
    for (const m of readFileSync(file, 'utf8').matchAll(/^import (?!type )[^;]*? from '(\.[^']+)'/gm)) {
      const to = path.relative(src, path.resolve(path.dirname(file), m[1]!)).split(path.sep)[0]!;
      if (to !== from && !to.endsWith('.js')) edges.set(from, (edges.get(from) ?? new Set()).add(to));
    }
  }
  const both = [...edges].flatMap(([a, tos]) => [...tos].filter((b) => a < b && edges.get(b)?.has(a)).map((b) => `${a} <-> ${b}`));
  assert.deepEqual(both, []);
});
