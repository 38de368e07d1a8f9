/**
 * The requests every factory and child document answers (POST to a factory, GET/PUT/PATCH/DELETE
 * of a child, a factory GET), as one function from a plain request to a status and body. The koa
 * app calls it for requests from clients; the batched forwarding endpoint (peer-endpoints.ts)
 * calls it for requests other hosts forwarded here, so a forwarded request is answered by exactly
 * the code that would have answered it over its own HTTP request. Owner-selected requests that
 * enter a host other than their owner come back as `relayed`: the owner's answer, unchanged.
 */

import { KryptonError } from '../../lib/errors.js';
import { limits } from '../../lib/limits.js';
import type { ServiceRegistry } from '../../lib/service.js';
import type { DocumentStore } from '../documents/documents.js';
import { notAllowed } from '../net/http-errors.js';
import type { PeerReply } from '../net/peers.js';
import { OwnerRouting } from '../routing/routing.js';
import { TaskDriver } from '../tasks/tasks.js';

export interface DocumentRequest {
  method: string;
  /** The path without its query, a trailing slash removed. */
  path: string;
  /** Path and query exactly as the client sent them (what a forward sends on). */
  url: string;
  /** The query string without `?`. */
  querystring: string;
  /** Request header by lower-case name; '' when absent. */
  header(name: string): string;
  /** `x-xenon-*` headers, forwarded with the request so the owner honours them too. */
  xenonHeaders(): Record<string, string>;
  /** Reads and parses the body once (JSON, bounded); undefined when empty. */
  readBody(): Promise<unknown>;
  arrivalMicros: number;
  /** With authorization on: which documents the caller may read, for factory lists. */
  mayRead?: (link: string) => boolean;
}

export type DocumentAnswer = { status: number; body: unknown } | { relayed: PeerReply };

export interface DocumentRequestDeps {
  registry: ServiceRegistry;
  store: DocumentStore;
  routing: OwnerRouting;
  tasks: TaskDriver;
}

export function pragmasOf(raw: string): Set<string> {
  return new Set(raw ? raw.split(/[;,\s]+/).filter(Boolean) : []);
}

/** `x-xenon-rpl-quorum`: a number of successes, or `x-xenon-all` for every replica. */
function requestedQuorum(req: DocumentRequest): number | 'all' | undefined {
  const raw = req.header('x-xenon-rpl-quorum');
  if (!raw) return undefined;
  if (raw === 'x-xenon-all') return 'all';
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1)
    throw new KryptonError('INVALID_ARGUMENT', `x-xenon-rpl-quorum must be a positive integer or x-xenon-all, not '${raw}'`);
  return n;
}

/**
 * Answers a factory or child request; undefined when `req.path` is neither (the caller tries its
 * other routes). Failures are thrown as KryptonErrors for the caller's error mapping.
 */
export async function handleDocumentRequest(d: DocumentRequestDeps, req: DocumentRequest): Promise<DocumentAnswer | undefined> {
  const { path, method } = req;
  const factory = d.registry.factory(path);
  if (factory) {
    switch (method) {
      case 'GET':
        return { status: 200, body: d.store.list(path, req.querystring.includes('expand'), req.mayRead) };
      case 'POST': {
        const prag = pragmasOf(req.header('pragma'));
        const routed = factory.has('OWNER_SELECTION') && !OwnerRouting.isLocalOnly(prag);
        // The entry host validates the body and fixes the link (one it owns, when it generates
        // the id); the owner of that link runs the create.
        const prepared = d.store.prepareCreate(
          factory,
          await req.readBody(),
          routed ? (link) => d.routing.ownedHere(factory.def.nodeSelector, link) : undefined,
        );
        const task = TaskDriver.isTask(factory);
        const direct = task && (prepared.body.taskInfo as { isDirect?: unknown } | undefined)?.isDirect === true;
        if (routed) {
          const body = { ...prepared.body, documentSelfLink: prepared.link };
          const decision = await d.routing.route(
            {
              method: 'POST',
              url: req.url,
              body,
              pragmas: prag,
              arrivalMicros: req.arrivalMicros,
              xenonHeaders: req.xenonHeaders(),
              // The owner holds a direct task's POST until the task ends: the hop waits as long.
              ...(direct ? { hopTimeoutMs: limits.directTaskHoldMaxMicros / 1000 + 5_000 } : {}),
            },
            factory.def.nodeSelector,
            prepared.link,
          );
          if (!decision.local) return { relayed: decision.reply };
        }
        const state = await d.store.create(factory, prepared, {
          forceIndexUpdate: prag.has('xn-force-index-update'),
          quorum: requestedQuorum(req),
        });
        if (direct) return { status: 200, body: await d.tasks.awaitTerminal(prepared.link) };
        // A task's create only starts the work: Xenon answers 202 Accepted.
        return { status: task && state.documentUpdateAction === 'POST' ? 202 : 200, body: state };
      }
      default:
        notAllowed(method);
    }
  }
  const child = d.registry.forChild(path);
  if (!child) return undefined;
  if (!['GET', 'PUT', 'PATCH', 'DELETE'].includes(method)) notAllowed(method);
  const body = method === 'GET' ? undefined : await req.readBody();
  const prag = pragmasOf(req.header('pragma'));
  const ownerPath = child.has('OWNER_SELECTION') && !prag.has('xn-no-fwd');
  if (child.has('OWNER_SELECTION')) {
    const decision = await d.routing.route(
      { method, url: req.url, body, pragmas: prag, arrivalMicros: req.arrivalMicros, xenonHeaders: req.xenonHeaders() },
      child.def.nodeSelector,
      path,
    );
    if (!decision.local) return { relayed: decision.reply };
  }
  switch (method) {
    case 'GET': {
      const v = new URLSearchParams(req.querystring).getAll('documentVersion');
      let version: number | undefined;
      if (v.length > 0) {
        if (v.length > 1 || !/^\d+$/.test(v[0]!))
          throw new KryptonError('INVALID_ARGUMENT', 'documentVersion must be a non-negative integer');
        version = Number(v[0]);
      }
      return { status: 200, body: ownerPath ? await d.store.read(child, path, version) : d.store.get(path, version) };
    }
    default: {
      const state = await d.store.update(child, method as 'PUT' | 'PATCH' | 'DELETE', path, body, { quorum: requestedQuorum(req) });
      return { status: 200, body: state ?? {} };
    }
  }
}
