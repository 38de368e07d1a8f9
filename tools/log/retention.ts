/**
 * How many versions a host keeps per link, so a replay holds what the host's index would: the
 * service's versionRetention (100 for the example and example-task factories), never below
 * Xenon's floor, and the default where no built-in service owns the link. The built-in list is
 * the one server/host/host.ts registers (lib/services/builtin.ts); test/tools/log-host.test.ts
 * checks a host serves exactly those factories. A host started with extra services
 * (HostOptions.services) keeps what those name, which a tool reading only the log cannot know.
 */

import type { Link } from '../../lib/ids.js';
import { limits } from '../../lib/limits.js';
import { ServiceRegistry } from '../../lib/service.js';
import { BUILTIN_SERVICES } from '../../lib/services/builtin.js';

const builtIn = new ServiceRegistry();
for (const s of BUILTIN_SERVICES) builtIn.add(s);

export function hostRetentionFor(link: Link): number {
  return Math.max(limits.versionRetentionFloor, builtIn.retentionFor(link) ?? limits.versionRetentionDefault);
}

/** The factories whose retention the tools know. */
export function knownFactories(): Link[] {
  return builtIn.factoryLinks();
}
