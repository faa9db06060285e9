import path from 'node:path';
import nunjucks from 'nunjucks';
import type { Lab } from '../config/load.js';
import { UsageError, messageOf } from '../errors.js';
import { shown, within } from '../project/paths.js';

const envs = new Map<string, nunjucks.Environment>();

function environment(labDir: string): nunjucks.Environment {
  let env = envs.get(labDir);
  if (!env) {
    // throwOnUndefined: a template that prints a variable lab does not provide fails loudly
    // instead of sending an installer an empty value.
    env = new nunjucks.Environment(new nunjucks.FileSystemLoader(labDir, { noCache: true }), {
      autoescape: false,
      throwOnUndefined: true,
      trimBlocks: true,
      lstripBlocks: true,
    });
    envs.set(labDir, env);
  }
  return env;
}

/** Render a template of the lab folder (path relative to it) with ctx; errors name the file and line. */
export function renderTemplate(lab: Lab, template: string, ctx: object): string {
  const rel = within(lab.paths.dir, path.resolve(lab.paths.dir, template));
  if (rel === undefined) {
    throw new UsageError(`${template}: templates must be inside the lab folder ${lab.paths.dir}`);
  }
  try {
    // The template's leading comment block leaves blank lines behind.
    return environment(lab.paths.dir).render(rel, ctx).replace(/^\s*\n/, '');
  } catch (e) {
    // nunjucks puts "(file) [Line N, Column M]\n  message" in one error; fold it to one line.
    const msg = messageOf(e).replace(/\s*\n\s*/g, ' ').replace(/^\(unknown path\)\s*/, '');
    throw new UsageError(`${shown(lab.paths, path.join(lab.paths.dir, rel))}: cannot render: ${msg}`);
  }
}
