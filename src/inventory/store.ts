import { existsSync, statSync, type BigIntStats } from 'node:fs';
import { readFile, rm, stat } from 'node:fs/promises';
import { Low, type Adapter } from 'lowdb';
import { LabError, messageOf } from '../errors.js';
import type { LabPaths } from '../project/paths.js';
import { appendWholeSync, isStorageFailure, privateDir, storageError, writeFileAtomic } from '../util/files.js';
import { emptyInventory, type InventoryData } from './types.js';
import { parseInventory, wasMigrated } from './schema.js';
import { ChangeWatch, replay, type Replayed } from './journal.js';

/** Lines for inventory/booted.log, appended once the change that made them is on disk. */
export type LogSink = (line: string) => void;
export type Mutation<T> = (data: InventoryData, log: LogSink) => T;

interface Pending {
  fn: Mutation<unknown>;
  resolve: (v: unknown) => void;
  reject: (e: unknown) => void;
}

/** The inventory as on disk: db.json with the journal's newer lines applied. */
interface OnDisk {
  data: InventoryData;
  /** The newest journal line in it. */
  seq: number;
  /** The journal ends in a line cut short: the next commit rewrites db.json whole. */
  torn: boolean;
  /** db.json's and the journal's identity when read. */
  id: string;
}

/**
 * db.json for lowdb, with inventory/db.journal (journal.ts) applied: checked
 * on every read (a file of the wrong shape is refused, naming the field, and
 * left alone), written whole and private (mode 0600) or not at all.
 */
class InventoryFile implements Adapter<InventoryData> {
  constructor(
    private readonly file: string,
    private readonly journal: string,
  ) {}

  async read(): Promise<InventoryData | null> {
    return (await this.state())?.data ?? null;
  }

  /** The inventory and where its journal stands; null when there is no db.json. */
  async state(): Promise<OnDisk | null> {
    // A rewrite between reading db.json and reading the journal (it removes the journal after): read both again.
    for (let attempt = 0; ; attempt++) {
      const id = await identity(this.file, this.journal);
      const text = await this.readText(this.file);
      const journal = await this.readText(this.journal);
      if (text === undefined && journal === undefined) return null;
      if ((await identity(this.file, this.journal)).split('|')[0] !== id.split('|')[0] && attempt < 5) continue;
      let raw: unknown;
      try {
        // Only a journal yet: the storm began on a lab without a database.
        raw = text === undefined ? emptyInventory() : JSON.parse(text);
      } catch (e) {
        throw new LabError(`${this.file}: not JSON (${messageOf(e)}); it was left as it is`, { hint: 'restore it from a copy, or move it away to start an empty inventory' });
      }
      let replayed: Replayed = { seq: 0, torn: false };
      if (raw !== null && typeof raw === 'object' && !Array.isArray(raw)) {
        try {
          replayed = replay(raw as Record<string, unknown>, journal ?? '', this.journal);
        } catch (e) {
          throw new LabError(messageOf(e), { hint: 'move the journal away to keep db.json as it is (its newest changes are then lost)' });
        }
      }
      return { data: parseInventory(raw, this.file), ...replayed, id };
    }
  }

  private async readText(file: string): Promise<string | undefined> {
    try {
      return await readFile(file, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw new LabError(`${file}: cannot be read: ${messageOf(e)}; it was left as it is`);
    }
  }

  async write(data: InventoryData | string): Promise<void> {
    await writeFileAtomic(this.file, typeof data === 'string' ? data : serialize(data));
  }
}

/** db.json's text: indented, for people who read it. */
const serialize = (data: InventoryData) => JSON.stringify(data, null, 2);

/** db.json and the journal as they are now ('' for a file that is not there): every write of db.json is a new file renamed into place. */
async function identity(db: string, journal: string): Promise<string> {
  const one = async (file: string) => {
    try {
      return fileId(await stat(file, { bigint: true }));
    } catch {
      return '';
    }
  };
  const [a, b] = await Promise.all([one(db), one(journal)]);
  return `${a}|${b}`;
}

const fileId = (st: BigIntStats) => `${st.ino}:${st.size}:${st.mtimeNs}`;

type FilesNow = { id: string; dbSize: number; journalSize: number };

const filesOf = (a: BigIntStats | undefined, b: BigIntStats | undefined): FilesNow => ({
  id: `${a ? fileId(a) : ''}|${b ? fileId(b) : ''}`,
  dbSize: Number(a?.size ?? 0),
  journalSize: Number(b?.size ?? 0),
});

/** The files as they are now, under the lock: their identity and sizes (0 for a file that is not there). */
function filesNow(db: string, journal: string): FilesNow {
  const one = (file: string) => statSync(file, { bigint: true, throwIfNoEntry: false });
  return filesOf(one(db), one(journal));
}

/**
 * The same, asynchronously, both at once: one round trip to the thread
 * pool, during which the changes that arrive meanwhile join the queue, and
 * a commit that sees them waiting knows another follows it (a storm).
 */
async function filesNowWhileOthersArrive(db: string, journal: string): Promise<FilesNow> {
  const one = (file: string) => stat(file, { bigint: true }).catch(() => undefined);
  const [a, b] = await Promise.all([one(db), one(journal)]);
  return filesOf(a, b);
}

/**
 * The inventory database. Several processes (the server, CLI commands, the
 * monitor) write it, so every change is a read-modify-write under a lock file
 * (proper-lockfile: a mkdir lock with staleness detection, safe across
 * processes), and lowdb's writer replaces the file atomically (temp file and
 * rename), so a killed writer leaves the previous version.
 *
 * Changes queued while a write is under way are applied together in the next
 * one (group commit): a boot storm costs one write per batch, not per host.
 */
export class Inventory {
  private readonly file: InventoryFile;
  private queue: Pending[] = [];
  private draining = false;
  /**
   * The inventory as this process last left it on disk, with the files'
   * identity then (every write of db.json is a new file renamed into place;
   * the journal only grows). While both are still those, the next commit
   * starts from it instead of reading, parsing and validating them again (at
   * 1,000 hosts that was half of a storm's commit time).
   */
  private last?: OnDisk;

  /** The timer of the fold that waits for a quiet moment (opts.foldWhenQuiet). */
  private foldTimer?: NodeJS.Timeout;

  /**
   * opts.foldWhenQuiet (ms), for a long-lived writer (the server): a large
   * db.json is not rewritten whole by a change (at 5,000 hosts, 30 ms of
   * JSON that every request of the batch, and all behind it, would wait
   * for); the change goes to the journal, which is folded into db.json once
   * this long has passed without a commit, and by settle().
   */
  constructor(
    private readonly paths: LabPaths,
    private readonly opts: { foldWhenQuiet?: number } = {},
  ) {
    this.file = new InventoryFile(paths.db, paths.journal);
  }

  /** The journal folded into db.json now, if one is left: a server that stops leaves db.json whole. */
  async settle(): Promise<void> {
    clearTimeout(this.foldTimer);
    if ((await sizeOf(this.paths.journal)) > 0) await this.update(() => undefined);
  }

  /** Changes whenever the database on disk does (two stats): a waiter asks this often and reads only when it changed. */
  version(): Promise<string> {
    return identity(this.paths.db, this.paths.journal);
  }

  /** A snapshot of the database as it is on disk now. */
  async read(): Promise<InventoryData> {
    if (!existsSync(this.paths.db) && !existsSync(this.paths.journal)) return emptyInventory();
    const db = new Low<InventoryData>(this.file, emptyInventory());
    await db.read();
    return db.data;
  }

  /**
   * Apply fn to the current data and write the result. fn runs under the lock
   * and may run twice when a change in its batch throws (the batch is replayed
   * without it), so it must only change `data` and return a value.
   */
  update<T>(fn: Mutation<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.queue.push({ fn, resolve: resolve as (v: unknown) => void, reject });
      if (!this.draining) void this.drain();
    });
  }

  /**
   * Read and check the database now, so that the first change does not pay
   * for it: a server does this before it listens, and a storm's first
   * callbacks then wait for no parse of thousands of hosts. Not under the
   * lock: a commit uses it only while the files are still the ones read.
   */
  async preload(): Promise<void> {
    const disk = await this.load();
    // A file of an older version is rewritten at its first change: that commit must read it itself.
    if (!wasMigrated(disk.data)) this.last ??= disk;
  }

  /** The inventory on disk, as a commit starts from it (under the lock). */
  private async load(): Promise<OnDisk> {
    return (await this.file.state()) ?? { data: emptyInventory(), seq: 0, torn: false, id: await identity(this.paths.db, this.paths.journal) };
  }

  private async drain(): Promise<void> {
    this.draining = true;
    try {
      while (this.queue.length > 0) {
        let batch: Pending[] | undefined;
        try {
          // The batch is what waits once the lock is held: the changes that came while it was being taken go with it.
          await this.commit(() => (batch = this.queue.splice(0)));
        } catch (e) {
          for (const p of batch ?? this.queue.splice(0)) p.reject(e);
        }
      }
    } finally {
      this.draining = false;
    }
  }

  private async commit(take: () => Pending[]): Promise<void> {
    privateDir(this.paths.inventory);
    let release: () => Promise<void>;
    try {
      // Loaded by the first change only: a command that only reads (most) does not pay for it and graceful-fs (about 50 KB).
      const { default: lockfile } = await import('proper-lockfile');
      release = await lockfile.lock(this.paths.db, {
        realpath: false,
        stale: 5_000, // a killed writer's lock is taken over after this
        retries: { retries: 400, factor: 1.2, minTimeout: 5, maxTimeout: 50 },
        onCompromised: (err) => process.emitWarning(`inventory lock lost: ${err.message}`),
      });
    } catch (e) {
      if (isStorageFailure(e)) throw storageError(`${this.paths.db}.lock`, e);
      throw new LabError(`${this.paths.db}: could not take the inventory lock: ${messageOf(e)}`);
    }
    const batch = take();
    try {
      // Under the lock the file work is one round trip, then synchronous: each
      // async fs call is a thread-pool round trip, and a storm's clients all
      // wait on the chain while the process idles (profiled: about a quarter
      // of the storm). Batches still form while the lock is being taken.
      const now = await filesNowWhileOthersArrive(this.paths.db, this.paths.journal);
      const kept = this.last && now.id === this.last.id ? this.last : undefined;
      // The kept data is changed in place below: it is only good again once on disk.
      this.last = undefined;
      let disk = kept ?? (await this.load());
      // A file of an older version is written as the current one at its first change, even one that changes nothing.
      const older = !kept && wasMigrated(disk.data);
      let ok = batch;
      let outcome = this.apply(disk.data, ok);
      while (outcome.failed.length > 0) {
        for (const f of outcome.failed) f.p.reject(f.error);
        ok = ok.filter((p) => !outcome.failed.some((f) => f.p === p));
        // What is on disk is what the batch started from: the others run again on it.
        disk = await this.load();
        outcome = this.apply(disk.data, ok);
      }
      const changes = outcome.changes;
      const nothing = ok.length === 0 || (!older && changes === 'none' && outcome.lines.length === 0);
      // Nothing changed (a check that found nothing to do): the files stay as they are, unless a storm's journal is left to fold.
      if (nothing && (this.queue.length > 0 || now.journalSize === 0)) {
        this.last = disk;
        ok.forEach((p, i) => p.resolve(outcome.results[i]));
        return;
      }
      // More changes waiting (a storm): this one goes to the journal. The first commit with none waiting writes db.json whole,
      // unless the writer folds when quiet and db.json is large: then no callback waits for a rewrite of it, not even a
      // storm's first (its whole first wave, at 5,000 hosts: 20-50 ms), and the fold comes once commits pause.
      const storming = this.queue.length > 0 || (this.opts.foldWhenQuiet !== undefined && now.dbSize > FOLD_SIZE);
      const journaled = storming && changes !== 'whole' && changes !== 'none' && !older && !disk.torn && now.journalSize < JOURNAL_MAX;
      clearTimeout(this.foldTimer);
      if (journaled && this.opts.foldWhenQuiet !== undefined) {
        // A commit that changes nothing folds the journal (below): db.json is whole again once the storm has passed.
        this.foldTimer = setTimeout(() => void this.update(() => undefined).catch(() => undefined), this.opts.foldWhenQuiet);
        this.foldTimer.unref();
      }
      let seq = disk.seq;
      if (journaled) {
        seq += 1;
        appendWholeSync(this.paths.journal, `${JSON.stringify({ seq, ...changes })}\n`, now.journalSize);
      } else {
        disk.data.journalSeq = seq;
        await this.file.write(disk.data);
        await rm(this.paths.journal, { force: true });
      }
      this.last = { data: disk.data, seq, torn: false, id: filesNow(this.paths.db, this.paths.journal).id };
      if (outcome.lines.length > 0) appendWholeSync(this.paths.bootLog, outcome.lines.join(''));
      ok.forEach((p, i) => p.resolve(outcome.results[i]));
    } finally {
      await release().catch(() => undefined);
    }
  }

  private apply(data: InventoryData, batch: Pending[]) {
    const results: unknown[] = [];
    const lines: string[] = [];
    const failed: { p: Pending; error: unknown }[] = [];
    const { watch } = ChangeWatch.run(data, (view) => {
      for (const p of batch) {
        const mine: string[] = [];
        try {
          results.push(p.fn(view, (line) => mine.push(line.endsWith('\n') ? line : `${line}\n`)));
          lines.push(...mine);
        } catch (error) {
          failed.push({ p, error });
          break; // the data may be half-changed: replay without it
        }
      }
    });
    return { results, lines, failed, changes: watch.changes() };
  }
}

/** A db.json smaller than this is rewritten whole by a commit with none waiting, even in the server: that costs about what an append does. */
const FOLD_SIZE = 256 * 1024;

/** The journal is folded into db.json past this size, storm or not: a read replays it all. */
const JOURNAL_MAX = 4 * 1024 * 1024;

async function sizeOf(file: string): Promise<number> {
  try {
    return (await stat(file)).size;
  } catch {
    return 0;
  }
}
