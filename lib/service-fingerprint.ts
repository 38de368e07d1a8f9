/**
 * Whether two hosts run the same user services. Each host puts a fingerprint of every service
 * it was given besides the built-in ones into its own membership entry (NodeState
 * customProperties, one `krypton.service:<factory or link>` key each), and refuses a group in
 * which a member's set differs from its own: the same document would otherwise be validated and
 * updated by different rules depending on which host owns it. A fingerprint is the FNV64 of the
 * definition's shape (links, kind, options, selector, retention, body schema, singleton) and the
 * source text of its handlers, so a changed handler is a different service.
 */

import { KryptonError } from './errors.js';
import { fnv64, hex64 } from './hash.js';
import type { NodeId } from './ids.js';
import type { ServiceDefinition, StatelessServiceDefinition } from './service.js';

export const SERVICE_PROPERTY_PREFIX = 'krypton.service:';

type AnyDefinition = ServiceDefinition | StatelessServiceDefinition;

function canonical(v: unknown): unknown {
  if (typeof v === 'function') return `fn:${v.toString()}`;
  if (Array.isArray(v)) return v.map(canonical);
  if (v !== null && typeof v === 'object') {
    const out: Record<string, unknown> = {};
    for (const k of Object.keys(v).sort()) out[k] = canonical((v as Record<string, unknown>)[k]);
    return out;
  }
  return v;
}

export function serviceLinkOf(def: AnyDefinition): string {
  return 'stateless' in def ? def.link : def.factoryLink;
}

export function serviceFingerprint(def: AnyDefinition): string {
  return hex64(fnv64(JSON.stringify(canonical(def))));
}

/** The customProperties a host announces for its user services. */
export function serviceProperties(defs: readonly AnyDefinition[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const d of defs) out[SERVICE_PROPERTY_PREFIX + serviceLinkOf(d)] = serviceFingerprint(d);
  return out;
}

function servicesOf(props: Readonly<Record<string, string>> | undefined): Map<string, string> {
  const m = new Map<string, string>();
  for (const [k, v] of Object.entries(props ?? {}))
    if (k.startsWith(SERVICE_PROPERTY_PREFIX)) m.set(k.slice(SERVICE_PROPERTY_PREFIX.length), v);
  return m;
}

/**
 * Why a member with `theirs` cannot be in a group with this host (`mine`), or undefined when
 * both run the same user services.
 */
export function serviceMismatch(
  mine: Readonly<Record<string, string>> | undefined,
  peer: { id: NodeId; customProperties?: Record<string, string> },
): string | undefined {
  const here = servicesOf(mine);
  const there = servicesOf(peer.customProperties);
  for (const [link, fp] of here) {
    const other = there.get(link);
    if (other === undefined) return `host ${peer.id} does not run the service ${link}, which this host runs (--services)`;
    if (other !== fp) return `host ${peer.id} defines the service ${link} differently (fingerprint ${other} there, ${fp} here)`;
  }
  for (const link of there.keys()) {
    if (!here.has(link)) return `host ${peer.id} runs the service ${link}, which this host does not (--services)`;
  }
  return undefined;
}

/** The first member of `nodes` (other than `selfId`) whose user services differ from `mine`, and why. */
export function groupServiceMismatch(
  mine: Readonly<Record<string, string>> | undefined,
  selfId: NodeId,
  nodes: readonly { id: NodeId; customProperties?: Record<string, string> }[],
): string | undefined {
  for (const n of nodes) {
    if (n.id === selfId) continue;
    const why = serviceMismatch(mine, n);
    if (why) return why;
  }
  return undefined;
}

/** Throws SERVICES_DIFFER (409) when there is a reason, so a peer's gossip or insert is refused with it. */
export function refuseServiceMismatch(why: string | undefined): void {
  if (why) throw new KryptonError('SERVICES_DIFFER', `this host refuses to be in one group with a host whose services differ: ${why}`);
}
