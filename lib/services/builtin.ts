/**
 * The services every host runs, in registration order. One list, so the host (server/host/host.ts)
 * and the log tools (tools/log/retention.ts, which may not import server/) agree on factories
 * and version retention.
 */

import type { JsonObject } from '../document.js';
import type { ServiceDefinition } from '../service.js';
import { example3xService, exampleService } from './example.js';
import { exampleTaskService } from './example-task.js';
import { slowTaskService } from './slow-task.js';
import { credentialsService } from './authz-credentials.js';
import { roleService } from './authz-roles.js';
import { tokenService } from './authz-tokens.js';
import { userService } from './authz-users.js';

export const BUILTIN_SERVICES: readonly ServiceDefinition<JsonObject>[] = [
  exampleService,
  example3xService,
  exampleTaskService,
  slowTaskService,
  userService,
  credentialsService,
  roleService,
  tokenService,
] as unknown as ServiceDefinition<JsonObject>[];
