import { existsSync } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { Low, type Adapter } from 'lowdb';
import lockfile from 'proper-lockfile';
import { LabError, messageOf } from '../errors.js';
import type { LabPaths } from '../project/paths.js';
import { appendWhole, isStorageFailure, privateDir, storageError, writeFileAtomic } from '../util/files.js';
import { emptyInventory, type InventoryData } from './types.js';
import { parseInventory, wasMigrated } from './schema.js';

/** Lines for inventory/booted.log, appended once the change that made them is on disk. */
export type LogSink = (line: string) => void;
export type Mutation<T> = (data: InventoryData, log: LogSink) => T;

interface Pending {
  fn: Mutation<unknown>;
  resolve: (v: unknown) => void;
  reject: (e: unknown) => void;
}

/**
 * db.json for lowdb: checked on every read (a file of the wrong shape is
 * refused, naming the field, and left alone), written whole and private
 * (mode 0600) or not at all.
 */
class InventoryFile implements Adapter<InventoryData> {
  constructor(private readonly file: string) {}

  async read(): Promise<InventoryData | null> {
    let text: string;
    try {
      text = await readFile(this.file, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw new LabError(`${this.file}: cannot be read: ${messageOf(e)}; it was left as it is`);
    }
    let raw: unknown;
    try {
      raw = JSON.parse(text);
    } catch (e) {
      throw new LabError(`${this.file}: not JSON (${messageOf(e)}); it was left as it is`, { hint: 'restore it from a copy, or move it away to start an empty inventory' });
    }
    return parseInventory(raw, this.file);
  }

  async write(data: InventoryData | string): Promise<void> {
    await writeFileAtomic(this.file, typeof data === 'string' ? data : serialize(data));
  }
}

/** db.json's text: indented, for people who read it. */
const serialize = (data: InventoryData) => JSON.stringify(data, null, 2);

/** The file as this process last saw it; '' when there is none. */
async function identity(file: string): Promise<string> {
  try {
    const st = await stat(file, { bigint: true });
    return `${st.ino}:${st.size}:${st.mtimeNs}`;
  } catch {
    return '';
  }
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
   * What this process last wrote: the file's identity then (inode, size,
   * mtime: every write is a new file renamed into place), its text and its
   * data. While the file is still that one, the next commit starts from
   * them instead of reading, parsing and validating it again (at 1,000
   * hosts that was half of a storm's commit time).
   */
  private last?: { id: string; text: string; data: InventoryData };

  constructor(private readonly paths: LabPaths) {
    this.file = new InventoryFile(paths.db);
  }

  /** A snapshot of the database as it is on disk now. */
  async read(): Promise<InventoryData> {
    if (!existsSync(this.paths.db)) return emptyInventory();
    return (await this.load()).data;
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

  /** A Low of its own per read or commit: a reader never swaps the data under a commit. */
  private async load(): Promise<Low<InventoryData>> {
    const db = new Low<InventoryData>(this.file, emptyInventory());
    await db.read();
    return db;
  }

  private async drain(): Promise<void> {
    this.draining = true;
    try {
      while (this.queue.length > 0) {
        const batch = this.queue.splice(0);
        try {
          await this.commit(batch);
        } catch (e) {
          for (const p of batch) p.reject(e);
        }
      }
    } finally {
      this.draining = false;
    }
  }

  private async commit(batch: Pending[]): Promise<void> {
    privateDir(this.paths.inventory);
    let release: () => Promise<void>;
    try {
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
    try {
      const kept = this.last && (await identity(this.paths.db)) === this.last.id ? this.last : undefined;
      // The kept data is changed in place below: it is only good again once written (or found unchanged).
      this.last = undefined;
      let data = kept?.data ?? (await this.load()).data;
      // A file of an older version is written as the current one at its first change, even one that changes nothing.
      const older = !kept && wasMigrated(data);
      const before = kept?.text ?? serialize(data);
      let ok = batch;
      let outcome = this.apply(data, ok);
      while (outcome.failed.length > 0) {
        for (const f of outcome.failed) f.p.reject(f.error);
        ok = ok.filter((p) => !outcome.failed.some((f) => f.p === p));
        data = parseInventory(JSON.parse(before), this.paths.db);
        outcome = this.apply(data, ok);
      }
      if (ok.length === 0) {
        this.last = { id: await identity(this.paths.db), text: before, data };
        return;
      }
      const text = serialize(data);
      // Nothing changed (a check that found nothing to do): the file stays as it is.
      if (!older && outcome.lines.length === 0 && text === before) {
        if (kept || existsSync(this.paths.db)) this.last = { id: await identity(this.paths.db), text, data };
        ok.forEach((p, i) => p.resolve(outcome.results[i]));
        return;
      }
      await this.file.write(text);
      this.last = { id: await identity(this.paths.db), text, data };
      if (outcome.lines.length > 0) await appendWhole(this.paths.bootLog, outcome.lines.join(''));
      ok.forEach((p, i) => p.resolve(outcome.results[i]));
    } finally {
      await release().catch(() => undefined);
    }
  }

  private apply(data: InventoryData, batch: Pending[]) {
    const results: unknown[] = [];
    const lines: string[] = [];
    const failed: { p: Pending; error: unknown }[] = [];
    for (const p of batch) {
      const mine: string[] = [];
      try {
        results.push(p.fn(data, (line) => mine.push(line.endsWith('\n') ? line : `${line}\n`)));
        lines.push(...mine);
      } catch (error) {
        failed.push({ p, error });
        break; // the data may be half-changed: replay without it
      }
    }
    return { results, lines, failed };
  }
}
