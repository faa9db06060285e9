import { linkSync, unlinkSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';

/**
 * Create file with content unless it exists: written whole beside it, then
 * linked into place, so a reader never sees it part-written and of two
 * processes racing exactly one creates it. True when this call created it.
 */
export function createOnce(file: string, content: string, mode: number): boolean {
  const tmp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}`;
  writeFileSync(tmp, content, { mode });
  try {
    linkSync(tmp, file);
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    return false;
  } finally {
    unlinkSync(tmp);
  }
}
