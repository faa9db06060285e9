import type { Distro } from '../config/schema.js';
import { DISTROS } from '../distros/index.js';
import { error, parseKickstart, type Finding } from '../distros/lint.js';

/**
 * Is a rendered kickstart complete for an unattended install? pykickstart's
 * validator checks syntax only: a file without a timezone passes and then
 * stops the installer at a prompt. Each distro names the gaps that hang or
 * lose its install; every kickstart must call lab back.
 */
export function lintKickstart(text: string, distro: Distro, callbackUrl: string, target?: string): Finding[] {
  const k = parseKickstart(text);
  const problems = DISTROS[distro].lint(k, target);
  // The callback must carry lab's URL and the host's token; the base is what identifies it.
  const base = callbackUrl.split('&')[0]!;
  if (!k.post.includes(base)) problems.push(error(`no callback in %post (expected a request to ${base}&...): lab would never learn the install finished`));
  return problems;
}

/** The releases a distro's kickstarts can be checked against (its first is the default). */
export function lintTargets(distro: Distro): readonly string[] {
  return DISTROS[distro].lintTargets ?? [];
}
