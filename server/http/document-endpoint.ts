/**
 * Client requests for documents (a factory POST or GET, a child GET/PUT/PATCH/DELETE) served
 * straight from node's 'request' event, before koa: they are nearly all of a busy host's
 * requests, and koa's context, delegation and response machinery cost about as much again as
 * node's own HTTP handling. They run through handleDocumentRequest, the function the koa app
 * uses for the same paths, and are answered as koa would answer them (status, JSON body and its
 * content type, Xenon's error body for any failure, an owner's answer relayed unchanged).
 * Everything else (watch streams and subscriptions, HEAD and other verbs, every other path) goes
 * on to the koa app, and so does any request the access middleware must see: one with a pragma
 * (the peer-only ones are checked there) or for the authentication and authorization services
 * (passwords are hashed and redacted there). The host uses this endpoint only while
 * authorization is off, since with it on every request's token is checked in koa.
 */

import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import type { ServiceRegistry } from '../../lib/service.js';
import { readJsonBody } from '../net/body.js';
import { handleDocumentRequest, type DocumentAnswer, type DocumentRequestDeps } from './document-requests.js';
import { invariantError } from '../../lib/errors.js';
import { toErrorResponse } from '../net/http-errors.js';
import { logFailure } from '../net/failures.js';
import { HOP_HEADERS } from '../routing/routing.js';
import { STREAM_SUFFIX, SUBSCRIPTIONS_SUFFIX } from '../watches/watches.js';
import { utilityTarget } from './utility.js';

const METHODS = new Set(['GET', 'POST', 'PUT', 'PATCH', 'DELETE']);
const JSON_TYPE = 'application/json; charset=utf-8';

export interface DocumentEndpointDeps extends DocumentRequestDeps {
  registry: ServiceRegistry;
  logger: Logger;
  nowMicros(): number;
}

export class DocumentEndpoint {
  constructor(private readonly d: DocumentEndpointDeps) {}

  /** Takes the request when it is for a factory or a child document; false leaves it to koa. */
  handle(req: IncomingMessage, res: ServerResponse): boolean {
    const url = req.url ?? '';
    if (!METHODS.has(req.method ?? '') || url.charCodeAt(0) !== 47 /* '/' */) return false;
    const q = url.indexOf('?');
    const raw = q < 0 ? url : url.slice(0, q);
    const path = raw.length > 1 && raw.endsWith('/') ? raw.slice(0, -1) : raw;
    if (path.endsWith(SUBSCRIPTIONS_SUFFIX) || path.endsWith(STREAM_SUFFIX)) return false;
    if (utilityTarget(this.d.registry, path) !== undefined) return false;
    if (req.headers.pragma !== undefined || path.startsWith('/core/auth')) return false;
    if (!this.d.registry.factory(path) && !this.d.registry.forChild(path)) return false;
    const arrivalMicros = this.d.nowMicros();
    handleDocumentRequest(this.d, {
      method: req.method!,
      path,
      url,
      querystring: q < 0 ? '' : url.slice(q + 1),
      header: (name) => {
        const v = req.headers[name];
        return typeof v === 'string' ? v : Array.isArray(v) ? v.join(',') : '';
      },
      xenonHeaders: () => {
        const out: Record<string, string> = {};
        for (const [k, v] of Object.entries(req.headers)) if (k.startsWith('x-xenon-') && typeof v === 'string') out[k] = v;
        return out;
      },
      readBody: () => readJsonBody(req),
      arrivalMicros,
    })
      .then(
        (answer) => this.answer(res, answer),
        (e: unknown) => {
          const { status, body, internal } = toErrorResponse(e);
          logFailure(this.d.logger, e, { status, internal }, req);
          this.json(res, status, body);
        },
      )
      .catch((e: unknown) => {
        // Writing the answer failed (a body JSON cannot hold): a bug, answered 500 if still possible.
        this.d.logger.error({ err: e, method: req.method, url }, 'answering a request failed');
        if (!res.headersSent) this.json(res, 500, toErrorResponse(e).body);
        else res.destroy();
      });
    return true;
  }

  private answer(res: ServerResponse, answer: DocumentAnswer | undefined): void {
    if (answer === undefined) {
      // Unreachable: the registry said this path is a factory or a child.
      this.json(res, 500, toErrorResponse(invariantError('no route for a path the registry knows')).body);
      return;
    }
    if (!('relayed' in answer)) {
      this.json(res, answer.status, answer.body);
      return;
    }
    const reply = answer.relayed;
    if (res.destroyed) return;
    for (const [k, v] of Object.entries(reply.headers)) if (v !== undefined && !HOP_HEADERS.has(k.toLowerCase())) res.setHeader(k, v);
    res.statusCode = reply.status;
    res.setHeader('content-length', reply.body.length);
    res.end(reply.body);
  }

  private json(res: ServerResponse, status: number, body: unknown): void {
    if (res.destroyed) return;
    const text = JSON.stringify(body);
    res.writeHead(status, { 'content-type': JSON_TYPE, 'content-length': Buffer.byteLength(text) });
    res.end(text);
  }
}
