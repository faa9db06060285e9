import { appendFileSync, chmodSync, closeSync, linkSync, mkdirSync, openSync, readSync, renameSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { chmod, rename, rm, writeFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { LabError, StorageError, messageOf } from '../errors.js';

/**
 * Create file with content unless it exists: written whole beside it, then
 * linked into place, so a reader never sees it part-written and of two
 * processes racing exactly one creates it. True when this call created it.
 */
export function createOnce(file: string, content: string, mode: number): boolean {
  const tmp = tmpName(file);
  try {
    writeFileSync(tmp, content, { mode });
    chmodSync(tmp, mode);
    linkSync(tmp, file);
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw storageError(file, e);
    return false;
  } finally {
    rmSync(tmp, { force: true });
  }
}

const STORAGE: Record<string, string> = {
  ENOSPC: 'no space left on the device',
  EDQUOT: 'disk quota exceeded',
  EROFS: 'the file system is read-only',
  EACCES: 'permission denied',
  EPERM: 'permission denied',
  EIO: 'an I/O error',
};

/** A failed write of one of lab's files, as people read it (one line, the file and why). */
export function storageError(file: string, e: unknown): LabError {
  if (e instanceof LabError) return e;
  const code = (e as NodeJS.ErrnoException).code ?? '';
  const why = STORAGE[code] ?? messageOf(e);
  return new StorageError(`cannot write ${file}: ${why}`, code === 'ENOSPC' || code === 'EDQUOT' ? 'free some space; nothing already recorded was changed' : 'nothing already recorded was changed', e);
}

/** True for the errors that mean lab's files cannot be written at all (as opposed to a bug). */
export function isStorageFailure(e: unknown): boolean {
  if (e instanceof StorageError) return true;
  const code = typeof e === 'object' && e !== null ? (e as NodeJS.ErrnoException).code : undefined;
  return code !== undefined && Object.hasOwn(STORAGE, code);
}

const tmpName = (file: string) => path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);

/**
 * Replace file with content, whole or not at all: written beside it (mode
 * `mode` whatever the umask, since a new file only loses bits to it), then
 * renamed over it. A failed write leaves the old file as it was and no
 * temp file behind.
 */
export function writeFileAtomicSync(file: string, content: string | Buffer, mode = 0o600): void {
  const tmp = tmpName(file);
  try {
    writeFileSync(tmp, content, { mode });
    chmodSync(tmp, mode);
    renameSync(tmp, file);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw storageError(file, e);
  }
}

export async function writeFileAtomic(file: string, content: string | Buffer, mode = 0o600): Promise<void> {
  const tmp = tmpName(file);
  try {
    await writeFile(tmp, content, { mode });
    await chmod(tmp, mode);
    await rename(tmp, file);
  } catch (e) {
    await rm(tmp, { force: true }).catch(() => undefined);
    throw storageError(file, e);
  }
}

/**
 * Append lines whole: on a failed append the file is cut back to where it
 * was (size, when the caller knows it), never left mid-line.
 */
export function appendWholeSync(file: string, text: string, size = statSync(file, { throwIfNoEntry: false })?.size ?? 0, mode = 0o600): void {
  try {
    appendFileSync(file, text, { mode });
  } catch (e) {
    try {
      truncateSync(file, size);
    } catch {
      // nothing to cut back: the file could not be opened
    }
    throw storageError(file, e);
  }
}

/** A folder only its owner can read (lab's inventory: keys, tokens, host keys), made or tightened. */
export function privateDir(dir: string): void {
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    if ((statSync(dir).mode & 0o077) !== 0) chmodSync(dir, 0o700);
  } catch (e) {
    throw storageError(dir, e);
  }
}

/** A file's bytes from offset start to its end as it is now (a log another process appends to). */
export function bytesFrom(file: string, start: number): Buffer {
  const size = statSync(file).size;
  const buf = Buffer.alloc(Math.max(0, size - start));
  if (buf.length === 0) return buf;
  const fd = openSync(file, 'r');
  try {
    readSync(fd, buf, 0, buf.length, start);
  } finally {
    closeSync(fd);
  }
  return buf;
}
