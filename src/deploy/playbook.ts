import { existsSync, mkdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import type { Lab } from '../config/load.js';
import { EnvironmentError, UsageError } from '../errors.js';
import { ansibleInventory } from '../hosts/ansible.js';
import { writeSshFiles } from '../hosts/sshconfig.js';
import { cachedValue, keepValue } from '../project/checked-cache.js';
import { shown } from '../project/paths.js';
import { packageRoot } from '../project/root.js';
import { privateDir, writeFileAtomicSync } from '../util/files.js';
import { loadExeca } from '../util/exec.js';
import { declaredBy, digestOf, filesUnder } from './stages.js';
import type { FleetOperation, FleetResult, FleetRun, ServiceSpec } from './types.js';

/**
 * A service made of an Ansible playbook, as users already have them:
 * services/<name>/playbook.yml, with its roles and files beside it. Each
 * operation is one ansible-playbook run over all its hosts together (not
 * once per host), through lab's inventory: groups by role and by env, each
 * host pinned through lab's SSH config and known_hosts, its version as the
 * host variable lab_version. `deploy` runs the whole playbook; every other
 * operation is a tag of it (`--tags test`), so tasks tagged `never` as well
 * run only when asked for by name. lab reads the run through its own stdout
 * callback (ansible/callback_plugins/lab_events.py), one JSON line per host
 * event, to keep each host's output and result apart.
 */

const PLAYBOOK = 'playbook.yml';
const CALLBACKS = path.join(packageRoot, 'ansible', 'callback_plugins');
/** Tags that are Ansible's own, not operations. */
const SPECIAL_TAGS = new Set(['always', 'never', 'all', 'tagged', 'untagged']);
const TAG = /^[a-z][a-z0-9_-]*$/;

export function isPlaybookService(dir: string): boolean {
  return !existsSync(path.join(dir, 'service.ts')) && !existsSync(path.join(dir, 'stages')) && existsSync(path.join(dir, PLAYBOOK));
}

/** The first line of ansible's that says what is wrong ("ERROR! ..."), without its colour or the lines of context after it. */
function ansibleError(stderr: string, stdout = ''): string {
  const lines = `${stderr}\n${stdout}`.split('\n').map((l) => l.trim()).filter(Boolean);
  return lines.find((l) => l.startsWith('ERROR!')) ?? lines.at(-1) ?? 'no message';
}

async function ansiblePlaybook(args: string[], cwd: string, env: Record<string, string> = {}) {
  const execa = await loadExeca();
  const r = await execa('ansible-playbook', args, { cwd, reject: false, stdin: 'ignore', env: { ANSIBLE_NOCOLOR: '1', ANSIBLE_RETRY_FILES_ENABLED: 'False', ...env } });
  if ((r as { code?: string }).code === 'ENOENT') {
    throw new EnvironmentError('ansible-playbook is not installed: a playbook service needs it on this machine', 'install ansible-core (Debian: apt-get install ansible-core)');
  }
  return { code: r.exitCode ?? 1, stdout: String(r.stdout), stderr: String(r.stderr) };
}

/** The playbook's tags (its operations besides deploy), asked of ansible-playbook once per content of the folder. */
async function tagsOf(lab: Lab, name: string, dir: string, digest: string): Promise<string[]> {
  const source = `playbook ${digest}`;
  const kept = cachedValue<string[]>(lab.paths, `playbook-${name}`, source);
  if (kept) return kept;
  // `never` is asked for too: a task tagged [test, never] is one `lab <svc> deploy` leaves out.
  const r = await ansiblePlaybook(['--list-tags', '--tags', 'all,never', '-i', 'localhost,', PLAYBOOK], dir);
  if (r.code !== 0) throw new UsageError(`${shown(lab.paths, path.join(dir, PLAYBOOK))}: ansible-playbook cannot read it: ${ansibleError(r.stderr, r.stdout)}`);
  const tags = new Set<string>();
  for (const m of r.stdout.matchAll(/TAGS: \[([^\]]*)\]/g)) {
    for (const t of m[1]!.split(',').map((x) => x.trim())) if (TAG.test(t) && !SPECIAL_TAGS.has(t) && t !== 'deploy') tags.add(t);
  }
  const sorted = [...tags].sort();
  keepValue(lab.paths, `playbook-${name}`, source, sorted);
  return sorted;
}

/** A playbook service as the deploy module runs every service: deploy and one operation per tag. */
export async function playbookService(lab: Lab, name: string, dir: string): Promise<ServiceSpec> {
  const digest = digestOf(dir, filesUnder(dir));
  const tags = await tagsOf(lab, name, dir, digest);
  const operations: Record<string, FleetOperation> = { deploy: { fleet: (run) => runPlaybook(name, dir, run) } };
  for (const t of tags) operations[t] = { fleet: (run) => runPlaybook(name, dir, run, t) };
  return { description: `Ansible playbook${tags.length ? ` (tags: ${tags.join(', ')})` : ''}`, ...declaredBy(lab, name, digest), operations };
}

/** One line of lab_events.py's output. */
interface AnsibleEvent {
  event: string;
  host?: string;
  task?: string;
  changed?: boolean;
  msg?: unknown;
  stdout?: string;
  stderr?: string;
  rc?: number;
  items?: unknown[];
  timedout?: boolean;
  counts?: { ok: number; failures: number; unreachable: number; changed: number; skipped: number; rescued: number; ignored: number };
}

function eventsOf(stdout: string): AnsibleEvent[] {
  return stdout.split('\n').flatMap((line) => {
    if (!line.startsWith('{')) return [];
    try {
      const e = JSON.parse(line) as unknown;
      return e !== null && typeof e === 'object' && typeof (e as AnsibleEvent).event === 'string' ? [e as AnsibleEvent] : [];
    } catch {
      return [];
    }
  });
}

const text = (v: unknown) => (typeof v === 'string' ? v : JSON.stringify(v));
const said = (e: AnsibleEvent) => [e.msg, ...(e.items ?? [])].filter((v) => v !== undefined && v !== '').map(text).join('; ');

/** Each host's result from the events: its counts say how it ended, its task lines are its output. */
export function playbookResults(hosts: string[], events: AnsibleEvent[], failure?: string): FleetResult[] {
  return hosts.map((host) => {
    const mine = events.filter((e) => e.host === host);
    const output: string[] = [];
    for (const e of mine) {
      if (e.event === 'stats' || !e.task) continue;
      output.push(`TASK [${e.task}] ${e.event === 'ok' && e.changed ? 'changed' : e.event}`);
      for (const part of [e.stdout, e.stderr, e.event === 'ok' ? undefined : said(e)]) {
        if (part) output.push(...part.trimEnd().split('\n').map((l) => `  ${l}`));
      }
    }
    const counts = mine.find((e) => e.event === 'stats')?.counts;
    if (!counts) {
      return { host, outcome: 'failed', output, detail: failure ?? `no play of ${PLAYBOOK} ran on it (no play's hosts: matches it or a group of it)` };
    }
    const last = (kind: string) => mine.filter((e) => e.event === kind).at(-1);
    if (counts.unreachable > 0) return { host, outcome: 'unreachable', output, detail: said(last('unreachable') ?? { event: '' }) || 'unreachable' };
    if (counts.failures > 0) {
      const f = last('failed');
      return { host, outcome: f?.timedout ? 'timeout' : 'failed', output, detail: f ? `task "${f.task}" failed${said(f) ? `: ${said(f)}` : ''}` : 'a task failed' };
    }
    return { host, outcome: 'ok', output, changed: counts.changed > 0, detail: `${counts.ok} ok, ${counts.changed} changed${counts.skipped ? `, ${counts.skipped} skipped` : ''}` };
  });
}

/** One ansible-playbook run: lab's inventory of the live hosts, limited to the run's hosts; deploy whole, another operation by its tag. */
async function runPlaybook(name: string, dir: string, run: FleetRun, tag?: string): Promise<FleetResult[]> {
  const work = path.join(run.paths.inventory, 'ansible');
  privateDir(work);
  const inventory = path.join(work, `${name}-${process.pid}.ini`);
  const sshConfig = writeSshFiles(run.paths, run.live);
  const versions = Object.fromEntries(run.hosts.map((h) => [h.name, { lab_version: h.version }]));
  writeFileAtomicSync(inventory, ansibleInventory(run.live, sshConfig, run.paths.dir, versions));
  const extra = JSON.stringify({ lab_service: name, lab_operation: run.operation });
  const args = ['-i', inventory, '--limit', run.hosts.map((h) => h.name).join(','), ...(tag ? ['--tags', tag] : []), '-e', extra, PLAYBOOK];
  mkdirSync(path.join(work, 'tmp'), { recursive: true, mode: 0o700 });
  try {
    const r = await ansiblePlaybook(args, dir, {
      ANSIBLE_STDOUT_CALLBACK: 'lab_events',
      ANSIBLE_CALLBACK_PLUGINS: CALLBACKS,
      ANSIBLE_HOST_KEY_CHECKING: 'True',
      ANSIBLE_PYTHON_INTERPRETER: 'auto_silent',
      ANSIBLE_FORKS: String(run.parallel),
      ANSIBLE_TIMEOUT: String(Math.ceil(run.connectTimeoutMs / 1000)),
      ANSIBLE_TASK_TIMEOUT: String(Math.ceil(run.commandTimeoutMs / 1000)),
      ANSIBLE_LOCAL_TEMP: path.join(work, 'tmp'),
    });
    const events = eventsOf(r.stdout);
    // No counts at all: ansible-playbook stopped before any host ran (a playbook it cannot parse, a missing role).
    const failure = r.code !== 0 && !events.some((e) => e.event === 'stats') ? `ansible-playbook (exit ${r.code}): ${ansibleError(r.stderr, r.stdout)}` : undefined;
    return playbookResults(run.hosts.map((h) => h.name), events, failure);
  } finally {
    rmSync(inventory, { force: true });
  }
}
