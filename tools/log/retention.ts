/**
 * How many versions a host keeps per link, so a replay holds what the host's index would: the
 * service's versionRetention (100 for the example factories), never below Xenon's floor, and
 * the default where no built-in service owns the link. This restates server/host.ts, which the
 * tools may not import; a host started with extra services (HostOptions.services) keeps what
 * those services name, which a tool reading only the log cannot know.
 */

import type { Link } from '../../lib/ids.js';
import { limits } from '../../lib/limits.js';
import { ServiceRegistry } from '../../lib/service.js';
import { example3xService, exampleService } from '../../lib/services/example.js';

const builtIn = new ServiceRegistry();
builtIn.add(exampleService);
builtIn.add(example3xService);

export function hostRetentionFor(link: Link): number {
  return Math.max(limits.versionRetentionFloor, builtIn.retentionFor(link) ?? limits.versionRetentionDefault);
}
