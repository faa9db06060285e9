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
export { defineService } from './deploy/define.js';
export type {
  ServiceDefinition,
  Operation,
  OpContext,
  HostFacts,
  ClusterFacts,
  ClusterHost,
  RunOptions,
  RunResult,
  FileOptions,
  HttpOptions,
  HttpResult,
} from './deploy/types.js';
