import { MAX_ALERTS, MAX_EVENTS, type Alert, type BootEvent, type InventoryData } from './types.js';

/**
 * inventory/db.journal: the changes of commits made while more were
 * waiting (a boot storm), one JSON line per commit, so a callback in a storm
 * does not cost a rewrite of the whole of db.json. The first commit that
 * finds nothing waiting writes db.json whole again (noting the last line it
 * holds in journalSeq) and removes the journal: when the server is idle,
 * db.json is the whole inventory, as people and scripts read it. Every read
 * through lab replays the journal.
 */

/** The keyed maps of the inventory: what a line sets entries of. */
export const MAPS = ['hosts', 'imageVms', 'leases', 'images', 'monitors', 'windows'] as const;
export type MapName = (typeof MAPS)[number];

export interface JournalLine {
  seq: number;
  /** Entries that changed: the new value, or null when removed. */
  set: Partial<Record<MapName, Record<string, unknown>>>;
  events?: BootEvent[];
  alerts?: Alert[];
}

export interface Replayed {
  /** The last line applied (or db.json's journalSeq when none was). */
  seq: number;
  /** A last line cut short (a writer killed mid-append): ignored, and the next writer rewrites the file whole. */
  torn: boolean;
}

/** Apply the journal's lines newer than what db.json holds onto db.json as parsed, before it is validated. */
export function replay(raw: Record<string, unknown>, text: string, file: string): Replayed {
  let seq = typeof raw.journalSeq === 'number' ? raw.journalSeq : 0;
  const lines = text.split('\n');
  const torn = lines.at(-1) !== '';
  if (torn) lines.pop();
  else lines.pop(); // the empty string after the final newline
  lines.forEach((l, i) => {
    let line: JournalLine;
    try {
      line = JSON.parse(l) as JournalLine;
    } catch (e) {
      throw new Error(`${file}: line ${i + 1} is not JSON (${(e as Error).message}); it was left as it is`);
    }
    if (line.seq <= seq) return; // in db.json already (a rewrite stopped before it removed the journal)
    seq = line.seq;
    for (const [map, entries] of Object.entries(line.set) as [MapName, Record<string, unknown>][]) {
      const into = (raw[map] ??= {}) as Record<string, unknown>;
      for (const [k, v] of Object.entries(entries)) {
        if (v === null) delete into[k];
        else into[k] = v;
      }
    }
    if (line.events?.length) raw.events = capped([...((raw.events as unknown[]) ?? []), ...line.events], MAX_EVENTS);
    if (line.alerts?.length) raw.alerts = capped([...((raw.alerts as unknown[]) ?? []), ...line.alerts], MAX_ALERTS);
  });
  return { seq, torn };
}

const capped = <T>(xs: T[], max: number) => (xs.length > max ? xs.slice(xs.length - max) : xs);

/**
 * What one commit changed, found by watching it: the entries of the maps it
 * looked up (with their text before it changed them), and the events and
 * alerts it appended. Anything it did beyond that (a map or a field
 * replaced, an array cut in the middle) makes the commit a whole rewrite.
 */
export class ChangeWatch {
  private readonly before = new Map<MapName, Map<string, string | undefined>>();
  private whole = false;
  private readonly lastEvent: BootEvent | undefined;
  private readonly lastAlert: Alert | undefined;

  private constructor(private readonly data: InventoryData) {
    this.lastEvent = data.events.at(-1);
    this.lastAlert = data.alerts?.at(-1);
  }

  /** Run fn on a view of data that records what fn touches. */
  static run<T>(data: InventoryData, fn: (view: InventoryData) => T): { result: T; watch: ChangeWatch } {
    const watch = new ChangeWatch(data);
    const outer = watching;
    watching = watch;
    try {
      return { result: fn(viewOf(data)), watch };
    } finally {
      watching = outer;
    }
  }

  note(map: MapName, target: Record<string, unknown>, k: string | symbol): void {
    if (typeof k !== 'string') return;
    let seen = this.before.get(map);
    if (!seen) this.before.set(map, (seen = new Map()));
    if (!seen.has(k)) seen.set(k, k in target ? JSON.stringify(target[k]) : undefined);
  }

  markWhole(): void {
    this.whole = true;
  }

  /** The commit's line (without its seq), 'none' when it changed nothing, 'whole' when only a rewrite says what it did. */
  changes(): Omit<JournalLine, 'seq'> | 'none' | 'whole' {
    if (this.whole) return 'whole';
    const events = appended(this.data.events, this.lastEvent);
    const alerts = appended(this.data.alerts ?? [], this.lastAlert);
    if (events === undefined || alerts === undefined) return 'whole';
    const set: JournalLine['set'] = {};
    let n = 0;
    for (const [map, seen] of this.before) {
      const target = this.data[map] as Record<string, unknown> | undefined;
      for (const [k, was] of seen) {
        const has = target !== undefined && k in target;
        if ((has ? JSON.stringify(target[k]) : undefined) === was) continue;
        (set[map] ??= {})[k] = has ? target[k] : null;
        n++;
      }
    }
    if (n === 0 && events.length === 0 && alerts.length === 0) return 'none';
    return { set, ...(events.length ? { events } : {}), ...(alerts.length ? { alerts } : {}) };
  }
}

// The watch of the commit running now (commits apply their changes synchronously, one at a time).
let watching: ChangeWatch | undefined;

// One view per object, kept: code that keys its own caches by a map (a count of its entries) finds the same one each commit.
const views = new WeakMap<object, object>();
// Each view's object: for a pass that only reads (unwatched()).
const targets = new WeakMap<object, object>();

/**
 * A map of a commit's view as it is, for a pass that only reads all of it:
 * read through the view, every entry is noted (its JSON kept, then compared
 * at the commit's end), which for a count over 5,000 hosts cost a storm's
 * first commit 20-30 ms. What such a pass reads it must not change.
 */
export function unwatched<T extends object>(map: T): T {
  return (targets.get(map) as T | undefined) ?? map;
}

function viewOf(data: InventoryData): InventoryData {
  let v = views.get(data) as InventoryData | undefined;
  if (v) return v;
  v = new Proxy(data, {
    get: (t, k) => {
      const value = Reflect.get(t, k) as unknown;
      if (typeof k !== 'string' || !(MAPS as readonly string[]).includes(k) || value === null || typeof value !== 'object') return value;
      return mapViewOf(k as MapName, value as Record<string, unknown>);
    },
    set: (t, k, value) => (watching?.markWhole(), Reflect.set(t, k, value)),
    deleteProperty: (t, k) => (watching?.markWhole(), Reflect.deleteProperty(t, k)),
    defineProperty: (t, k, d) => (watching?.markWhole(), Reflect.defineProperty(t, k, d)),
  });
  views.set(data, v);
  return v;
}

function mapViewOf(map: MapName, target: Record<string, unknown>): Record<string, unknown> {
  let v = views.get(target) as Record<string, unknown> | undefined;
  if (v) return v;
  // Object.values, entries and for..in with a lookup read each entry through get: noted one by one.
  v = new Proxy(target, {
    get: (t, k) => (watching?.note(map, t, k), Reflect.get(t, k)),
    set: (t, k, value) => (watching?.note(map, t, k), Reflect.set(t, k, value)),
    deleteProperty: (t, k) => (watching?.note(map, t, k), Reflect.deleteProperty(t, k)),
    defineProperty: (t, k, d) => (watching?.note(map, t, k), Reflect.defineProperty(t, k, d)),
  });
  views.set(target, v);
  targets.set(v, target);
  return v;
}

/** What was pushed after `last` (cut from the front to its cap is fine: a replay cuts the same); undefined when the array changed otherwise. */
function appended<T>(xs: T[], last: T | undefined): T[] | undefined {
  if (last === undefined) return xs.slice();
  const i = xs.lastIndexOf(last);
  return i === -1 ? undefined : xs.slice(i + 1);
}
