import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import type { Lab } from '../config/load.js';
import { UsageError, messageOf } from '../errors.js';
import { shown } from '../project/paths.js';
import type { OpContext, Operation, ServiceSpec } from './types.js';
import { shellWord as q } from '../util/shell.js';

/**
 * A service made of shell scripts instead of a service.ts, as users already
 * have them (the seed project's staged bootstrap tarballs): services/<name>/
 * holds stages/<n>-<name>/bootstrap.sh with the files it uses beside it,
 * and optionally start.sh, stop.sh, status.sh and test.sh. `deploy` uploads
 * each stage and runs its bootstrap.sh as root, in order, with
 * /etc/lab/cluster.json written first; a stage that succeeded at this
 * version, with these files, is not run again. The other operations run
 * the script of their name. Its role and versions come from environments.ts:
 * the groups that name it (versions: theirs, else the stages' digest).
 */

const STAGE = /^(\d+)-([a-z0-9][a-z0-9._-]*)$/;
const OPERATIONS = ['start', 'stop', 'status', 'test'] as const;
/** Where a shell service's files go on its hosts, and its stages' done-markers. */
const REMOTE = '/var/lib/lab/services';
const MARKERS = '/etc/lab/stages';


export interface Stage {
  /** The folder's name, such as 0-base. */
  name: string;
  order: number;
  /** Files of the stage folder, relative to it, sorted. */
  files: string[];
  /** A digest of those files' names, modes and contents: an edited stage runs again. */
  digest: string;
}

/** Whether a service folder is one of shell stages (and holds no service.ts). */
export function isShellService(dir: string): boolean {
  return !existsSync(path.join(dir, 'service.ts')) && existsSync(path.join(dir, 'stages'));
}

/** The files of a folder, relative to it, links followed (what they point at is uploaded). */
export function filesUnder(dir: string, rel = ''): string[] {
  return readdirSync(path.join(dir, rel))
    .flatMap((name) => {
      const st = statSync(path.join(dir, rel, name));
      return st.isDirectory() ? filesUnder(dir, path.join(rel, name)) : st.isFile() ? [path.join(rel, name)] : [];
    })
    .sort();
}

export function digestOf(dir: string, files: string[]): string {
  const h = createHash('sha256');
  for (const f of files) h.update(`${f}\0${statSync(path.join(dir, f)).mode & 0o777}\0`).update(readFileSync(path.join(dir, f))).update('\0');
  return h.digest('hex').slice(0, 12);
}

/** The stages of a shell service folder, in order; a misnamed folder or a stage without bootstrap.sh is refused, naming it. */
export function stagesOf(lab: Lab, dir: string): Stage[] {
  const root = path.join(dir, 'stages');
  const stages = readdirSync(root).map((name) => {
    const where = shown(lab.paths, path.join(root, name));
    const m = STAGE.exec(name);
    if (!m || !statSync(path.join(root, name)).isDirectory()) throw new UsageError(`${where}: expected a folder named <n>-<name>, such as 0-base, holding a bootstrap.sh`);
    let files: string[];
    let digest: string;
    try {
      files = filesUnder(path.join(root, name));
      digest = digestOf(path.join(root, name), files);
    } catch (e) {
      // A link to nothing, a file it may not read.
      throw new UsageError(`${where}: cannot be read: ${messageOf(e)}`);
    }
    if (!files.includes('bootstrap.sh')) throw new UsageError(`${where}: no bootstrap.sh`);
    return { name, order: Number(m[1]), files, digest };
  });
  stages.sort((a, b) => a.order - b.order || a.name.localeCompare(b.name));
  for (let i = 1; i < stages.length; i++) {
    if (stages[i]!.order === stages[i - 1]!.order) {
      throw new UsageError(`${shown(lab.paths, root)}: stages ${stages[i - 1]!.name} and ${stages[i]!.name} share the number ${stages[i]!.order}; their order would be a guess`);
    }
  }
  if (stages.length === 0) throw new UsageError(`${shown(lab.paths, root)}: no stages (folders such as 0-base with a bootstrap.sh)`);
  return stages;
}

/** What a script is run with: the service's facts in its environment, its folder as the working directory, as root. */
function scriptCommand(ctx: OpContext, remoteDir: string, script: string): string {
  const env = { LAB_SERVICE: ctx.service, LAB_OPERATION: ctx.operation, LAB_VERSION: ctx.version, LAB_HOST: ctx.host.name, LAB_ENV: ctx.host.env, LAB_ROLE: ctx.host.role, LAB_CLUSTER: '/etc/lab/cluster.json' };
  const vars = Object.entries(env).map(([k, v]) => `${k}=${q(v)}`).join(' ');
  return `cd ${q(remoteDir)} && ${vars} sh ./${script} 2>&1`;
}

/** Run a script (its output, stdout and stderr in order, is the host's as any command's); a non-zero exit fails the operation, naming what failed. */
async function runScript(ctx: OpContext, remoteDir: string, script: string, what: string): Promise<void> {
  ctx.log(`-- ${what}`);
  const r = await ctx.run(scriptCommand(ctx, remoteDir, script), { allowFail: true });
  const last = r.stdout.split('\n').filter((l) => l.trim() !== '').at(-1);
  if (r.code !== 0) ctx.fail(`${what} failed (exit ${r.code})${last ? `: ${last}` : ''}`);
}

/** Upload files of the service folder (relative to `from`) into remoteDir, modes kept. */
async function upload(ctx: OpContext, serviceDir: string, from: string, files: string[], remoteDir: string): Promise<void> {
  await ctx.run(`rm -rf ${q(remoteDir)} && mkdir -p ${q(remoteDir)}`);
  for (const f of files) {
    const local = path.join(from, f);
    await ctx.put(path.relative(serviceDir, local), path.posix.join(remoteDir, f.split(path.sep).join('/')), { mode: statSync(local).mode & 0o777 });
  }
}

function deploy(dir: string, stages: Stage[]): Operation {
  return async (ctx) => {
    const ran: string[] = [];
    const skipped: string[] = [];
    for (const stage of stages) {
      const marker = `${MARKERS}/${ctx.service}/${stage.name}`;
      const done = `${ctx.version} ${stage.digest}`;
      const before = (await ctx.run(`cat ${q(marker)} 2>/dev/null || true`)).stdout.trim();
      if (before === done) {
        ctx.log(`-- stage ${stage.name}: done before at version ${ctx.version}, skipped`);
        skipped.push(stage.name);
        continue;
      }
      const remoteDir = `${REMOTE}/${ctx.service}/stages/${stage.name}`;
      await upload(ctx, dir, path.join(dir, 'stages', stage.name), stage.files, remoteDir);
      // A stage that fails leaves no marker: the next deploy runs it again.
      await ctx.run(`rm -f ${q(marker)}`);
      await runScript(ctx, remoteDir, 'bootstrap.sh', `stage ${stage.name}`);
      // What the stage wrote reaches the disk before its marker does: a crash may make it run again, never skip it undone.
      await ctx.run(`sync && mkdir -p ${q(path.posix.dirname(marker))} && printf '%s\\n' ${q(done)} > ${q(`${marker}.new`)} && mv -f ${q(`${marker}.new`)} ${q(marker)} && sync`);
      ran.push(stage.name);
    }
    return { note: `stages run: ${ran.join(', ') || 'none'}${skipped.length ? `; done before: ${skipped.join(', ')}` : ''}`, changed: ran.length > 0 };
  };
}

function script(dir: string, file: string, op: string): Operation {
  return async (ctx) => {
    const remoteDir = `${REMOTE}/${ctx.service}/${op}`;
    await upload(ctx, dir, dir, [file], remoteDir);
    await runScript(ctx, remoteDir, file, op);
  };
}

/** The scripts of a shell service's operations besides deploy: <op>.sh at the folder's top. */
function operationScripts(dir: string): [string, string][] {
  return OPERATIONS.filter((op) => existsSync(path.join(dir, `${op}.sh`))).map((op) => [op, `${op}.sh`]);
}

/**
 * A folder service's role and versions, from environments.ts: the groups
 * that name it (the first one's role; their versions), else its own name
 * and the digest of its files.
 */
export function declaredBy(lab: Lab, name: string, digest: string): { role: string; versions: string[] } {
  const groups = Object.values(lab.config.environments).flatMap((e) => e.groups.filter((g) => g.service === name));
  const declared = [...new Set(groups.flatMap((g) => (g.version === undefined ? [] : [g.version])))];
  return { role: groups[0]?.role ?? name, versions: declared.length ? declared : [digest] };
}

/** A shell service as the deploy module runs every service: its definition, made from the folder and environments.ts. */
export function shellService(lab: Lab, name: string, dir: string): ServiceSpec {
  const stages = stagesOf(lab, dir);
  const all = createHash('sha256').update(stages.map((s) => `${s.name}:${s.digest}`).join('\n')).digest('hex').slice(0, 12);
  const operations: Record<string, Operation> = { deploy: deploy(dir, stages) };
  for (const [op, file] of operationScripts(dir)) operations[op] = script(dir, file, op);
  return { description: `shell stages: ${stages.map((s) => s.name).join(', ')}`, ...declaredBy(lab, name, all), operations };
}
