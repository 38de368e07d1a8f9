/**
 * Query page ids: a page token (lib/query/pages.ts) as the link-safe id a `nextPageLink` or
 * `prevPageLink` carries, its JSON deflated in base64url and bounded by
 * limits.queryPageTokenCharsMax, and back. Anything that does not decode is not a page (404).
 */

import { deflateRawSync, inflateRawSync } from 'node:zlib';
import { KryptonError } from '../../lib/errors.js';
import { limits } from '../../lib/limits.js';
import { pageTokenJson, parsePageToken, type PageToken } from '../../lib/query/pages.js';

/** A page token as a link-safe id: its JSON, deflated, in base64url. */
export function encodePageId(token: PageToken): string {
  const id = deflateRawSync(Buffer.from(pageTokenJson(token), 'utf8')).toString('base64url');
  if (id.length > limits.queryPageTokenCharsMax) {
    throw new KryptonError(
      'INVALID_QUERY',
      `the query is too large to page (${id.length} characters in a page link, limit ${limits.queryPageTokenCharsMax}): use TOP_RESULTS or a smaller query`,
    );
  }
  return id;
}

export function decodePageId(id: string): PageToken | undefined {
  if (id.length > limits.queryPageTokenCharsMax || !/^[A-Za-z0-9_-]+$/.test(id)) return undefined;
  try {
    return parsePageToken(
      inflateRawSync(Buffer.from(id, 'base64url'), { maxOutputLength: 16 * limits.queryPageTokenCharsMax }).toString('utf8'),
    );
  } catch {
    return undefined;
  }
}
