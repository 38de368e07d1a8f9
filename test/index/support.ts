/**
 * Shared builders for the index tests: documents and log records with the common fields filled,
 * and a one-line way to run a querySpec against an index.
 */

import type { JsonValue, LogRecord, ServiceDocument, UpdateAction } from '../../lib/document.js';
import { parseQuerySpec } from '../../lib/query/spec.js';
import type { DocumentIndex, QueryHit } from '../../index/views.js';

export const KIND = 'com:vmware:xenon:services:common:ExampleService:ExampleServiceState';

export interface DocOpts {
  action?: UpdateAction;
  expiration?: number;
  time?: number;
  kind?: string;
}

export function doc(link: string, version: number, fields: Record<string, JsonValue> = {}, o: DocOpts = {}): ServiceDocument {
  return {
    ...fields,
    documentSelfLink: link,
    documentKind: o.kind ?? KIND,
    documentVersion: version,
    documentUpdateTimeMicros: o.time ?? 1000 + version,
    documentUpdateAction: o.action ?? (version === 0 ? 'POST' : 'PATCH'),
    documentExpirationTimeMicros: o.expiration ?? 0,
  };
}

let seq = 0;

export function rec(state: ServiceDocument, extra: Partial<LogRecord> = {}): LogRecord {
  return {
    seq: ++seq,
    link: state.documentSelfLink,
    action: state.documentUpdateAction,
    version: state.documentVersion,
    epoch: 0,
    timeMicros: state.documentUpdateTimeMicros,
    state,
    ...extra,
  };
}

/** Applies `doc(link, version, fields, o)`. */
export function put(
  idx: DocumentIndex,
  link: string,
  version: number,
  fields: Record<string, JsonValue> = {},
  o: DocOpts = {},
): ServiceDocument {
  const d = doc(link, version, fields, o);
  idx.apply(rec(d));
  return d;
}

export function run(idx: DocumentIndex, spec: unknown, now = 10_000): QueryHit[] {
  return idx.query(parseQuerySpec(spec), now);
}

/** Result links as a query task lists them. */
export function links(hits: QueryHit[], withVersion = false): string[] {
  return hits.map((h) => (withVersion ? `${h.link}?documentVersion=${h.version}` : h.link));
}

export function term(propertyName: string, matchValue: string, matchType?: string, occurance?: string): Record<string, unknown> {
  return { ...(occurance ? { occurance } : {}), term: { propertyName, matchValue, ...(matchType ? { matchType } : {}) } };
}
