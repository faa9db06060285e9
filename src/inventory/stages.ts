import { INSTALL_STAGES, type HostRecord, type InstallStage } from './types.js';

/** How far a machine's newest install got, from its stage callbacks. */
export interface InstallProgress {
  stage: InstallStage;
  /** When it reached that stage. */
  at: string;
  /** Seconds from the install's start to that stage, or to now while it is still at "started". */
  seconds: number;
}

export function installProgress(h: HostRecord | undefined, now = Date.now()): InstallProgress | undefined {
  const stages = h?.stages;
  if (!stages) return undefined;
  const stage = [...INSTALL_STAGES].reverse().find((s) => stages[s]);
  if (!stage) return undefined;
  const at = stages[stage]!;
  const from = Date.parse(stages.started ?? at);
  const to = stage === 'started' ? now : Date.parse(at);
  return { stage, at, seconds: Math.max(0, Math.round((to - from) / 1000)) };
}

/** One phrase for people: "started, 40 s so far", "installed in 13 s", "up 25 s after it started". */
export function progressText(p: InstallProgress | undefined): string | undefined {
  if (!p) return undefined;
  if (p.stage === 'started') return `started, ${p.seconds} s so far`;
  if (p.stage === 'installed') return `installed in ${p.seconds} s`;
  return `up ${p.seconds} s after it started`;
}
