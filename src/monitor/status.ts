import type { MonitorRecord } from '../inventory/types.js';
import { REPLACE_FREE } from './policy.js';

export interface Backoff {
  group: string;
  host: string;
  /** Replacements in a row that did not bring it back healthy. */
  replaced: number;
  /** ISO time of the earliest next replacement. */
  nextTry: string;
}

/** Hosts the monitor has stopped replacing for now: replacing them again and again did not help. */
export function backoffs(rec: MonitorRecord): Backoff[] {
  return Object.entries(rec.groups).flatMap(([group, g]) =>
    Object.entries(g.replaced ?? {})
      .filter(([, r]) => r.count >= REPLACE_FREE)
      .map(([host, r]) => ({ group, host, replaced: r.count, nextTry: new Date(r.next).toISOString() })),
  );
}
