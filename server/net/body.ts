/**
 * Reads a request body once, bounded by limits.bodyBytesMax, and parses it as JSON whatever the
 * content type says: curl's `-d` sends form encoding by default and Xenon users rely on JSON
 * being accepted anyway. Oversized bodies are refused from Content-Length before reading when
 * possible (413); malformed JSON, JSON nested past limits.bodyDepthMax, or a string with a lone
 * surrogate is a 400. An empty body is `undefined`. A body read once is kept with its request, so
 * a middleware that looks at a body first (server/auth/authz.ts) leaves it for the route, and may
 * hand the route a rewritten one (a password replaced by its hash).
 */

import type { IncomingMessage } from 'node:http';
import { KryptonError } from '../../lib/errors.js';
import { limits } from '../../lib/limits.js';

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

function readFresh(req: IncomingMessage, maxBytes: number): Promise<Buffer | undefined> {
  const declared = Number(req.headers['content-length'] ?? NaN);
  if (declared > maxBytes) {
    req.resume(); // drain so the connection can answer
    return Promise.reject(new KryptonError('BODY_TOO_LARGE', `body is ${declared} bytes; the limit is ${maxBytes}`));
  }
  // Stream events rather than `for await`: the async iterator costs several microseconds and
  // promises per request, on every document write.
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let done = false;
    const finish = (err: Error | undefined, body?: Buffer) => {
      if (done) return;
      done = true;
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
      req.off('close', onClose);
      if (err) reject(err);
      else resolve(body);
    };
    const onData = (b: Buffer) => {
      size += b.length;
      if (size > maxBytes) {
        finish(new KryptonError('BODY_TOO_LARGE', `body is over the limit of ${maxBytes} bytes`));
        req.resume(); // no listener left: the rest is drained and dropped
        return;
      }
      chunks.push(b);
    };
    const onEnd = () => finish(undefined, size === 0 ? undefined : chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size));
    const onError = (e: Error) => finish(e);
    // 'close' before 'end': the client went away mid-body.
    const onClose = () => finish(new KryptonError('INVALID_BODY', 'the request was closed before its body was complete'));
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onError);
    req.on('close', onClose);
  });
}

export async function readJsonBody(req: IncomingMessage, maxBytes: number = limits.bodyBytesMax): Promise<unknown> {
  const raw = await readRawBody(req, maxBytes);
  if (raw === undefined) return undefined;
  const text = raw.toString('utf8');
  if (text.trim() === '') return undefined;
  return parseJsonText(text);
}

/**
 * JSON text parsed, with readJsonBody's checks: malformed, too deep, or holding a lone surrogate
 * is a 400. Text decoded from UTF-8 (a request body, a msgpack string) holds no lone surrogate
 * but through a \u escape.
 */
export function parseJsonText(text: string): unknown {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text) as unknown;
  } catch (e) {
    throw new KryptonError('INVALID_BODY', `malformed JSON body: ${(e as Error).message}`);
  }
  if (nestedDeeperThan(text, limits.bodyDepthMax)) {
    throw new KryptonError('INVALID_BODY', `JSON body nested more than ${limits.bodyDepthMax} levels deep`);
  }
  // Most bodies have no \u escape, and then no string to walk.
  if (text.includes('\\u') && holdsLoneSurrogate(parsed)) {
    throw new KryptonError('INVALID_BODY', 'malformed JSON body: a string holds a lone UTF-16 surrogate');
  }
  return parsed;
}

const LONE_SURROGATE = /\p{Cs}/u;

/**
 * Whether a string (or key) in `v` holds half a surrogate pair. Such a string cannot be written
 * as UTF-8: the log and log shipping would store U+FFFD where the owner's memory keeps the half,
 * and the owner and its replicas would disagree about the document.
 */
function holdsLoneSurrogate(v: unknown): boolean {
  if (typeof v === 'string') return LONE_SURROGATE.test(v);
  if (v === null || typeof v !== 'object') return false;
  if (Array.isArray(v)) return v.some(holdsLoneSurrogate);
  for (const [k, x] of Object.entries(v)) if (LONE_SURROGATE.test(k) || holdsLoneSurrogate(x)) return true;
  return false;
}

/** Whether valid JSON `text` nests arrays and objects deeper than `max`; a text this short cannot. */
export function nestedDeeperThan(text: string, max: number): boolean {
  if (text.length <= max) return false;
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c)
        i++; // a backslash: the next character is escaped
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x5b || c === 0x7b) {
      if (++depth > max) return true;
    } else if (c === 0x5d || c === 0x7d) depth--;
  }
  return false;
}
