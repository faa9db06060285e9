import type { ServiceDefinition } from './types.js';

/** Identity at run time; gives services/<name>/service.ts its types, as defineLab does for environments.ts. */
export function defineService(service: ServiceDefinition): ServiceDefinition {
  return service;
}
