import path from 'node:path';
import { createRequire } from 'node:module';
import type nunjucksModule from 'nunjucks';
import type { Lab } from '../config/load.js';
import { UsageError, messageOf } from '../errors.js';
import { shown, within } from '../project/paths.js';

// nunjucks (CommonJS) is required when a template is first rendered: commands that render none do not load it.
const require = createRequire(import.meta.url);
const envs = new Map<string, nunjucksModule.Environment>();

function environment(labDir: string): nunjucksModule.Environment {
  let env = envs.get(labDir);
  if (!env) {
    const nunjucks = require('nunjucks') as typeof nunjucksModule;
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

/**
 * Load nunjucks for the lab's templates now: a server does this once it
 * listens, so that the first install's kickstart (which its guest waits for)
 * does not also wait for nunjucks to load (15 of its 25 ms).
 */
export function prepareTemplates(lab: Lab): void {
  environment(lab.paths.dir);
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
