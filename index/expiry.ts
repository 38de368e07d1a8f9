/**
 * Expiration rules (docs/xenon-compatibility.md, Expiration) in one place. A version is expired once
 * `0 < documentExpirationTimeMicros <= now`: from that instant queries and factory listings stop
 * showing it. The periodic purge removes links whose latest version has
 * `0 < documentExpirationTimeMicros < now`, as Xenon's index maintenance does; the one-microsecond
 * difference only means a document can be invisible for an instant before it is purged.
 */

import type { ServiceDocument } from '../lib/document.js';
import type { Micros } from '../lib/ids.js';

/** The expiration time of `doc`, 0 when it has none (or a malformed one: never expire by accident). */
export function expirationOf(doc: ServiceDocument): Micros {
  const exp = doc.documentExpirationTimeMicros;
  return typeof exp === 'number' && exp > 0 ? exp : 0;
}

/** Hidden from queries and listings. */
export function isExpiredAt(doc: ServiceDocument, nowMicros: Micros): boolean {
  const exp = expirationOf(doc);
  return exp > 0 && exp <= nowMicros;
}

/** Due for the purge. */
export function isPurgeableAt(expirationMicros: Micros, nowMicros: Micros): boolean {
  return expirationMicros > 0 && expirationMicros < nowMicros;
}
