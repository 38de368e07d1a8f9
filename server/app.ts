/**
 * The HTTP surface of one host, as a koa app: management and query-task routes on @koa/router,
 * then every registered factory and its children. Each route parses its input once, calls the
 * document store or query tasks, and answers Xenon's shapes; every failure passes through one
 * error middleware that answers Xenon's ServiceErrorResponse. Unknown paths are 404 and known
 * paths with a verb they do not support are 405, both with the error body.
 */

import Koa from 'koa';
import Router from '@koa/router';
import type { Logger } from 'pino';
import { linkList } from '../lib/document.js';
import { KryptonError } from '../lib/errors.js';
import type { JsonObject } from '../lib/document.js';
import type { ServiceRegistry } from '../lib/service.js';
import { readJsonBody } from './body.js';
import type { DocumentStore } from './documents.js';
import { notAllowed, toErrorResponse } from './http-errors.js';
import type { LogRing } from './process-log.js';
import { PAGE_FORWARDING_PATH, PAGE_PATH, type QueryTasks } from './query-tasks.js';
import { clusterRoutes, relay, type ClusterDeps } from './routes/cluster.js';
import { OwnerRouting } from './routing.js';
import { TaskDriver } from './tasks.js';
import { STREAM_SUFFIX, SUBSCRIPTIONS_SUFFIX, type Watches } from './watches.js';
import { limits } from '../lib/limits.js';
import type { AccessControl } from './authz.js';

export interface AppDeps {
  registry: ServiceRegistry;
  store: DocumentStore;
  queries: QueryTasks;
  logger: Logger;
  ring: LogRing;
  hostId: string;
  /** ServiceHostState for GET /core/management. */
  hostState(): JsonObject;
  /** Begins a graceful stop after the current response is sent. */
  requestStop(): void;
  cluster: Omit<ClusterDeps, 'pragmas'>;
  routing: OwnerRouting;
  tasks: TaskDriver;
  watches: Watches;
  /** Peer endpoints, logins, roles (server/authz.ts); absent, every request is let through. */
  access?: AccessControl;
}

const QUERY_FACTORIES = ['/core/query-tasks', '/core/local-query-tasks'];

/** `x-xenon-rpl-quorum`: a number of successes, or `x-xenon-all` for every replica. */
function requestedQuorum(ctx: Koa.Context): number | 'all' | undefined {
  const raw = ctx.get('x-xenon-rpl-quorum');
  if (!raw) return undefined;
  if (raw === 'x-xenon-all') return 'all';
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1) throw new KryptonError('INVALID_ARGUMENT', `x-xenon-rpl-quorum must be a positive integer or x-xenon-all, not '${raw}'`);
  return n;
}

/** The `x-xenon-*` headers of a request, forwarded with it so the owner honours them too. */
function xenonHeaders(ctx: Koa.Context): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(ctx.headers)) if (k.startsWith('x-xenon-') && typeof v === 'string') out[k] = v;
  return out;
}

function pragmas(ctx: Koa.Context): Set<string> {
  const raw = ctx.get('pragma');
  return new Set(raw ? raw.split(/[;,\s]+/).filter(Boolean) : []);
}

export function createApp(d: AppDeps): Koa {
  const app = new Koa();
  app.proxy = false;

  app.use(async (ctx, next) => {
    ctx.state.arrivalMicros = d.cluster.nowMicros();
    try {
      await next();
      if (ctx.status === 404 && ctx.body === undefined) {
        throw new KryptonError('NOT_FOUND', `Service not found: ${ctx.origin}${ctx.url}`);
      }
    } catch (e) {
      const { status, body, internal } = toErrorResponse(e);
      if (internal) d.logger.error({ err: e, method: ctx.method, url: ctx.url }, 'request failed with an internal error');
      ctx.status = status;
      ctx.body = body;
    }
  });

  if (d.access) app.use(d.access.middleware());

  const router = new Router();

  router.get('/', (ctx) => {
    const links = [...d.registry.factoryLinks(), ...QUERY_FACTORIES, '/core/management'];
    ctx.body = linkList(links, d.hostId);
  });

  router.get('/core/management', (ctx) => {
    ctx.body = d.hostState();
  });
  router.delete('/core/management', (ctx) => {
    ctx.status = 202;
    ctx.body = {};
    ctx.res.once('finish', () => d.requestStop());
  });
  router.patch('/core/management', async (ctx) => {
    const body = await readJsonBody(ctx.req);
    const kind = body && typeof body === 'object' ? (body as JsonObject).kind : undefined;
    throw new KryptonError('INVALID_BODY', kind ? 'unknown request' : 'kind is required');
  });
  router.all('/core/management', (ctx) => notAllowed(ctx.method));

  router.get('/core/management/process-log', (ctx) => {
    const raw = ctx.query.lineCount;
    const n = raw === undefined ? 1000 : Number(raw);
    if (!Number.isInteger(n) || n < 0) throw new KryptonError('INVALID_ARGUMENT', 'lineCount must be a non-negative integer');
    ctx.body = { items: d.ring.tail(n), documentSelfLink: '/core/management/process-log', documentKind: 'com:vmware:xenon:services:common:LogService:LogServiceState' };
  });
  router.all('/core/management/process-log', (ctx) => notAllowed(ctx.method));

  for (const factory of QUERY_FACTORIES) {
    router.post(factory, async (ctx) => {
      const { status, task } = d.queries.create(factory, await readJsonBody(ctx.req), d.access?.scope(ctx));
      ctx.status = status;
      ctx.body = task;
    });
    router.get(factory, (ctx) => {
      const links = d.queries.taskLinks(factory, d.access?.caller(ctx));
      ctx.body = linkList(links, d.hostId);
    });
    router.all(factory, (ctx) => notAllowed(ctx.method));
    router.get(`${factory}/:id`, (ctx) => {
      ctx.body = d.queries.get(`${factory}/${ctx.params.id}`, d.access?.caller(ctx));
    });
    router.delete(`${factory}/:id`, (ctx) => {
      d.queries.delete(`${factory}/${ctx.params.id}`, d.access?.caller(ctx));
      ctx.body = {};
    });
    router.all(`${factory}/:id`, (ctx) => notAllowed(ctx.method));
  }

  router.get(`${PAGE_PATH}/:id`, (ctx) => {
    ctx.body = d.queries.page(ctx.params.id!, d.access?.caller(ctx));
  });
  router.get(PAGE_FORWARDING_PATH, (ctx) => {
    const { peer, path } = ctx.query;
    if (typeof path !== 'string' || !path) throw new KryptonError('INVALID_ARGUMENT', 'link uri parameter is required');
    if (typeof peer === 'string' && peer !== d.hostId) {
      throw new KryptonError('NOT_FOUND', `Service not found: unknown peer ${peer}`);
    }
    ctx.body = d.queries.page(path.replace(/^.*\//, ''), d.access?.caller(ctx));
  });

  clusterRoutes(router, { ...d.cluster, pragmas });

  // Services first: one map lookup decides, where the router would try every route's pattern.
  app.use(serviceRoutes(d));
  app.use(router.routes());
  return app;
}

/** Factories and their children, looked up in the registry rather than one route per service. */
function serviceRoutes(d: AppDeps): Koa.Middleware {
  return async (ctx, next) => {
    const path = ctx.path.length > 1 && ctx.path.endsWith('/') ? ctx.path.slice(0, -1) : ctx.path;
    if (path.endsWith(SUBSCRIPTIONS_SUFFIX) || path.endsWith(STREAM_SUFFIX)) return watchRoutes(d, ctx, path, next);
    const factory = d.registry.factory(path);
    if (factory) {
      switch (ctx.method) {
        case 'GET':
          ctx.body = d.store.list(path, ctx.querystring.includes('expand'), d.access?.scope(ctx).mayRead);
          return;
        case 'POST': {
          const prag = pragmas(ctx);
          // The entry host validates the body and fixes the link; the owner of that link runs the create.
          const prepared = d.store.prepareCreate(factory, await readJsonBody(ctx.req));
          const task = TaskDriver.isTask(factory);
          const direct = task && (prepared.body.taskInfo as { isDirect?: unknown } | undefined)?.isDirect === true;
          if (factory.has('OWNER_SELECTION') && !OwnerRouting.isLocalOnly(prag)) {
            const body = { ...prepared.body, documentSelfLink: prepared.link };
            const decision = await d.routing.route(
              {
                method: 'POST',
                url: ctx.url,
                body,
                pragmas: prag,
                arrivalMicros: ctx.state.arrivalMicros as number,
                xenonHeaders: xenonHeaders(ctx),
                // The owner holds a direct task's POST until the task ends: the hop waits as long.
                ...(direct ? { hopTimeoutMs: limits.directTaskHoldMaxMicros / 1000 + 5_000 } : {}),
              },
              factory.def.nodeSelector,
              prepared.link,
            );
            if (!decision.local) return relay(ctx, decision.reply);
          }
          const state = await d.store.create(factory, prepared, { forceIndexUpdate: prag.has('xn-force-index-update'), quorum: requestedQuorum(ctx) });
          if (direct) {
            ctx.body = await d.tasks.awaitTerminal(prepared.link);
            return;
          }
          // A task's create only starts the work: Xenon answers 202 Accepted.
          if (task && state.documentUpdateAction === 'POST') ctx.status = 202;
          ctx.body = state;
          return;
        }
        default:
          notAllowed(ctx.method);
      }
    }
    const child = d.registry.forChild(path);
    if (!child) return next();
    if (!['GET', 'PUT', 'PATCH', 'DELETE'].includes(ctx.method)) notAllowed(ctx.method);
    const body = ctx.method === 'GET' ? undefined : await readJsonBody(ctx.req);
    const prag = pragmas(ctx);
    const ownerPath = child.has('OWNER_SELECTION') && !prag.has('xn-no-fwd');
    if (child.has('OWNER_SELECTION')) {
      const decision = await d.routing.route({ method: ctx.method, url: ctx.url, body, pragmas: prag, arrivalMicros: ctx.state.arrivalMicros as number, xenonHeaders: xenonHeaders(ctx) }, child.def.nodeSelector, path);
      if (!decision.local) return relay(ctx, decision.reply);
    }
    switch (ctx.method) {
      case 'GET': {
        const v = ctx.query.documentVersion;
        let version: number | undefined;
        if (v !== undefined) {
          version = Number(v);
          if (typeof v !== 'string' || !/^\d+$/.test(v)) throw new KryptonError('INVALID_ARGUMENT', 'documentVersion must be a non-negative integer');
        }
        ctx.body = ownerPath ? await d.store.read(child, path, version) : d.store.get(path, version);
        return;
      }
      case 'PUT':
      case 'PATCH':
      case 'DELETE': {
        const state = await d.store.update(child, ctx.method, path, body, { quorum: requestedQuorum(ctx) });
        ctx.body = state ?? {};
        return;
      }
      default:
        notAllowed(ctx.method);
    }
  };
}


/**
 * `<link>/subscriptions` (GET lists, POST subscribes a callback, DELETE unsubscribes) and
 * `<link>/subscriptions/stream` (server-sent events), for a document or a factory. Served by
 * the host the client calls, never forwarded: every replica sees every update.
 */
async function watchRoutes(d: AppDeps, ctx: Koa.Context, path: string, next: Koa.Next): Promise<void> {
  const stream = path.endsWith(STREAM_SUFFIX);
  const link = path.slice(0, -(stream ? STREAM_SUFFIX : SUBSCRIPTIONS_SUFFIX).length);
  const factory = d.registry.factory(link) !== undefined;
  if (!factory && !d.registry.forChild(link)) return next();
  const target = { link, factory };
  if (stream) {
    if (ctx.method !== 'GET') notAllowed(ctx.method);
    const raw = ctx.get('last-event-id') || (typeof ctx.query.since === 'string' ? ctx.query.since : '');
    if (raw && !/^\d+$/.test(raw)) throw new KryptonError('INVALID_ARGUMENT', 'Last-Event-ID and since must be a non-negative integer');
    ctx.respond = false;
    await d.watches.stream(target, raw ? Number(raw) : undefined, ctx.req, ctx.res, d.access?.watchFilter(ctx));
    return;
  }
  switch (ctx.method) {
    case 'GET':
      ctx.body = d.watches.subscriptions(link);
      return;
    case 'POST':
      ctx.body = d.watches.subscribe(target, await readJsonBody(ctx.req), d.access?.watchFilter(ctx));
      return;
    case 'DELETE':
      if (!d.watches.unsubscribe(link, await readJsonBody(ctx.req))) throw new KryptonError('NOT_FOUND', `no subscription with that reference on ${link}`);
      ctx.body = {};
      return;
    default:
      notAllowed(ctx.method);
  }
}
