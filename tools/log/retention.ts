/**
 * How many versions a host keeps per link, so a replay holds what the host's index would: the
 * service's versionRetention (100 for the example and example-task factories), never below
 * Xenon's floor, and the default where no built-in service owns the link. This restates the
 * registry server/host.ts builds, which the tools may not import; test/tools/log-host.test.ts
 * fails when a host serves a factory this list lacks. A host started with extra services
 * (HostOptions.services) keeps what those name, which a tool reading only the log cannot know.
 */

import type { Link } from '../../lib/ids.js';
import { limits } from '../../lib/limits.js';
import { ServiceRegistry } from '../../lib/service.js';
import { example3xService, exampleService } from '../../lib/services/example.js';
import { exampleTaskService } from '../../lib/services/example-task.js';
import { slowTaskService } from '../../lib/services/slow-task.js';

const builtIn = new ServiceRegistry();
builtIn.add(exampleService);
builtIn.add(example3xService);
builtIn.add(exampleTaskService);
builtIn.add(slowTaskService);

export function hostRetentionFor(link: Link): number {
  return Math.max(limits.versionRetentionFloor, builtIn.retentionFor(link) ?? limits.versionRetentionDefault);
}

/** The factories whose retention the tools know. */
export function knownFactories(): Link[] {
  return builtIn.factoryLinks();
}
