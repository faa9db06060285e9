// What environments.ts (and services/*/service.ts) import as 'lab'.
export { defineLab } from './config/define.js';
export type {
  LabConfigInput,
  LabConfig,
  ImageConfig,
  GroupConfig,
  EnvironmentConfig,
  NetworkConfig,
} from './config/schema.js';
