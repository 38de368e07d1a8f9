/**
 * Reads a request body once, bounded by limits.bodyBytesMax, and parses it as JSON whatever the
 * content type says: curl's `-d` sends form encoding by default and Xenon users rely on JSON
 * being accepted anyway. Oversized bodies are refused from Content-Length before reading when
 * possible (413); malformed JSON is a 400. An empty body is `undefined`. A body read once is kept
 * with its request, so a middleware that looks at a body first (server/authz.ts) leaves it for
 * the route, and may hand the route a rewritten one (a password replaced by its hash).
 */

import type { IncomingMessage } from 'node:http';
import { KryptonError } from '../lib/errors.js';
import { limits } from '../lib/limits.js';

const readBodies = new WeakMap<IncomingMessage, Buffer | undefined>();

/** Replaces what later readers of `req`'s body get. */
export function replaceBody(req: IncomingMessage, body: Buffer | undefined): void {
  readBodies.set(req, body);
}

/** The raw body, bounded; undefined when empty. */
export async function readRawBody(req: IncomingMessage, maxBytes: number = limits.bodyBytesMax): Promise<Buffer | undefined> {
  if (readBodies.has(req)) return readBodies.get(req);
  const body = await readFresh(req, maxBytes);
  readBodies.set(req, body);
  return body;
}

async function readFresh(req: IncomingMessage, maxBytes: number): Promise<Buffer | undefined> {
  const declared = Number(req.headers['content-length'] ?? NaN);
  if (declared > maxBytes) {
    req.resume(); // drain so the connection can answer
    throw new KryptonError('BODY_TOO_LARGE', `body is ${declared} bytes; the limit is ${maxBytes}`);
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    const b = chunk as Buffer;
    size += b.length;
    if (size > maxBytes) {
      req.resume();
      throw new KryptonError('BODY_TOO_LARGE', `body is over the limit of ${maxBytes} bytes`);
    }
    chunks.push(b);
  }
  if (size === 0) return undefined;
  return chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size);
}

export async function readJsonBody(req: IncomingMessage, maxBytes: number = limits.bodyBytesMax): Promise<unknown> {
  const raw = await readRawBody(req, maxBytes);
  if (raw === undefined) return undefined;
  const text = raw.toString('utf8');
  if (text.trim() === '') return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch (e) {
    throw new KryptonError('INVALID_BODY', `malformed JSON body: ${(e as Error).message}`);
  }
}
