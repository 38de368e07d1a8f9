/**
 * Reads a request body once, bounded by limits.bodyBytesMax, and parses it as JSON whatever the
 * content type says: curl's `-d` sends form encoding by default and Xenon users rely on JSON
 * being accepted anyway. Oversized bodies are refused from Content-Length before reading when
 * possible (413); malformed JSON is a 400. An empty body is `undefined`.
 */

import type { IncomingMessage } from 'node:http';
import { KryptonError } from '../lib/errors.js';
import { limits } from '../lib/limits.js';

/** The raw body, bounded; undefined when empty. */
export async function readRawBody(req: IncomingMessage, maxBytes: number = limits.bodyBytesMax): Promise<Buffer | undefined> {
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
