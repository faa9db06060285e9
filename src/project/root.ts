import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * lab's own package folder (its environments.ts, kickstart/, services/ are
 * the scaffold; guest/ builds the mini guest; dist/index.js is what a lab's
 * TypeScript imports as 'lab'). Found by walking up to lab's package.json, so
 * the answer is the same from src/ under tsx, from tsc's dist/ tree and from
 * the bundled dist/chunks/.
 */
export const packageRoot: string = (() => {
  for (let dir = path.dirname(fileURLToPath(import.meta.url)); ; dir = path.dirname(dir)) {
    const manifest = path.join(dir, 'package.json');
    if (existsSync(manifest) && (JSON.parse(readFileSync(manifest, 'utf8')) as { name?: string }).name === 'lab') return dir;
    if (path.dirname(dir) === dir) throw new Error(`lab's package.json not found above ${fileURLToPath(import.meta.url)}`);
  }
})();
