import type { LabConfigInput } from './schema.js';

/**
 * Identity at run time; in the editor it gives environments.ts its types,
 * the way Vite's defineConfig does.
 */
export function defineLab(config: LabConfigInput): LabConfigInput {
  return config;
}
