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
import { linkList } from '../../lib/document.js';
import { KryptonError } from '../../lib/errors.js';
import { limits } from '../../lib/limits.js';
import type { JsonObject } from '../../lib/document.js';
import type { ServiceRegistry } from '../../lib/service.js';
import { readJsonBody } from '../net/body.js';
import type { DocumentStore } from '../documents/documents.js';
import { notAllowed, toErrorResponse } from '../net/http-errors.js';
import { logFailure } from '../net/failures.js';
import type { LogRing } from '../base/process-log.js';
import { PAGE_FORWARDING_PATH, PAGE_PATH, type QueryTasks } from '../tasks/query-tasks.js';
import { queryTaskJson } from '../tasks/query-json.js';
import { clusterRoutes, relay, type ClusterDeps } from './cluster-routes.js';
import { backupRoutes } from './backup-routes.js';
import { handleDocumentRequest, pragmasOf } from './document-requests.js';
import { odataRoutes } from './odata.js';
import {
  indexRoutes,
  MANAGEMENT_SYNCH_PATH,
  patchManagement,
  patchManagementSynch,
  utilityMiddleware,
  type ServiceCounters,
  type UtilityDeps,
} from './utility.js';
import type { OwnerRouting } from '../routing/routing.js';
import type { TaskDriver } from '../tasks/tasks.js';
import { STREAM_SUFFIX, SUBSCRIPTIONS_SUFFIX, type Watches } from '../watches/watches.js';
import type { AccessControl } from '../auth/authz.js';
import type { ReadScope } from '../../lib/authz.js';

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
  /** Peer endpoints, logins, roles (server/auth/authz.ts); absent, every request is let through. */
  access?: AccessControl;
  /** Utility paths, the document index and management requests (utility.ts). */
  utility: UtilityDeps;
  counters: ServiceCounters;
  /** The user's stateless services (stateless.ts), after access control and before every route. */
  stateless?: Koa.Middleware;
}

const QUERY_FACTORIES = ['/core/query-tasks', '/core/local-query-tasks'];

/** The `x-xenon-*` headers of a request, forwarded with it so the owner honours them too. */
function xenonHeaders(ctx: Koa.Context): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(ctx.headers)) if (k.startsWith('x-xenon-') && typeof v === 'string') out[k] = v;
  return out;
}

function pragmas(ctx: Koa.Context): Set<string> {
  return pragmasOf(ctx.get('pragma'));
}

/** The first middleware: stamps the arrival, answers every failure as Xenon's ServiceErrorResponse; and what koa can no longer answer is logged. */
function handleErrors(app: Koa, d: AppDeps): void {
  // What koa cannot answer any more (the client's socket failed mid-response: a pipelined request
  // that does not parse, say) it would print to stderr, past the logger and its level.
  app.on('error', (err: Error) => d.logger.debug({ err }, 'connection failed during a response'));

  app.use(async (ctx, next) => {
    ctx.state.arrivalMicros = d.cluster.nowMicros();
    try {
      await next();
      if (ctx.status === 404 && ctx.body === undefined) {
        // Xenon names the full URI. koa's ctx.origin is the Origin request header (null without
        // one), not this host's address: the Host header and the scheme are.
        const where = ctx.host ? `${ctx.protocol}://${ctx.host}${ctx.url}` : ctx.url;
        throw new KryptonError('NOT_FOUND', `Service not found: ${where}`);
      }
    } catch (e) {
      const { status, body, internal } = toErrorResponse(e);
      logFailure(d.logger, e, { status, internal }, ctx);
      ctx.status = status;
      ctx.body = body;
    }
  });
}

export function createApp(d: AppDeps): Koa {
  const app = new Koa();
  app.proxy = false;
  handleErrors(app, d);

  if (d.access) app.use(d.access.middleware());
  if (d.stateless) app.use(d.stateless);

  const router = new Router();

  router.get('/', (ctx) => {
    const links = [...d.registry.factoryLinks(), ...QUERY_FACTORIES, '/core/management'];
    ctx.body = linkList(links, d.hostId);
  });

  managementRoutes(router, d);
  queryRoutes(router, d);
  odataRoutes(router, d, (ctx) => d.access?.scope(ctx) ?? {});
  indexRoutes(router, d.utility, (ctx) => d.access?.scope(ctx) ?? {});

  clusterRoutes(router, { ...d.cluster, pragmas });

  // Services first: one map lookup decides, where the router would try every route's pattern.
  app.use(utilityMiddleware(d.utility));
  app.use(serviceRoutes(d));
  app.use(router.routes());
  return app;
}

/** `/core/management`: the host's state, a graceful stop (DELETE), and its process log. */
function managementRoutes(router: Router, d: AppDeps): void {
  router.get('/core/management', (ctx) => {
    ctx.body = d.hostState();
  });
  router.delete('/core/management', async (ctx) => {
    // The peers know this host is gone before the client hears 202: what the client sends them
    // next is routed around it (seed 000 posts a task to a peer right after this DELETE).
    await d.cluster.groups.leave();
    ctx.status = 202;
    ctx.body = {};
    ctx.res.once('finish', () => d.requestStop());
  });
  router.patch('/core/management', async (ctx) => {
    ctx.body = await patchManagement(d.utility, await readJsonBody(ctx.req));
  });
  router.all('/core/management', (ctx) => notAllowed(ctx.method));

  router.patch(MANAGEMENT_SYNCH_PATH, async (ctx) => {
    ctx.body = patchManagementSynch(d.utility, await readJsonBody(ctx.req));
  });
  router.all(MANAGEMENT_SYNCH_PATH, (ctx) => notAllowed(ctx.method));

  router.get('/core/management/process-log', (ctx) => {
    const raw = ctx.query.lineCount;
    const n = raw === undefined ? limits.processLogLinesMax : Number(raw);
    if (!Number.isInteger(n) || n < 0) throw new KryptonError('INVALID_ARGUMENT', 'lineCount must be a non-negative integer');
    ctx.body = {
      items: d.ring.tail(n),
      documentSelfLink: '/core/management/process-log',
      documentKind: 'com:vmware:xenon:services:common:LogService:LogServiceState',
    };
  });
  router.all('/core/management/process-log', (ctx) => notAllowed(ctx.method));
  backupRoutes(router, d.utility);
}

/** Query tasks (direct and local), their pages, and the page forwarding path. */
function queryRoutes(router: Router, d: AppDeps): void {
  for (const factory of QUERY_FACTORIES) {
    router.post(factory, async (ctx) => {
      const { status, task } = await d.queries.create(factory, await readJsonBody(ctx.req), d.access?.scope(ctx));
      ctx.status = status;
      jsonText(ctx, queryTaskJson(task));
    });
    router.get(factory, (ctx) => {
      const links = d.queries.taskLinks(factory, d.access?.caller(ctx));
      ctx.body = linkList(links, d.hostId);
    });
    router.all(factory, (ctx) => notAllowed(ctx.method));
    continuousRoutes(router, d, factory);
    router.get(`${factory}/:id`, (ctx) => {
      jsonText(ctx, queryTaskJson(d.queries.get(`${factory}/${ctx.params.id}`, d.access?.caller(ctx))));
    });
    router.delete(`${factory}/:id`, (ctx) => {
      d.queries.delete(`${factory}/${ctx.params.id}`, d.access?.caller(ctx));
      ctx.body = {};
    });
    router.all(`${factory}/:id`, (ctx) => notAllowed(ctx.method));
  }

  router.get(`${PAGE_PATH}/:id`, async (ctx) => {
    jsonText(ctx, queryTaskJson(await d.queries.page(ctx.params.id!, d.access?.caller(ctx), d.access?.scope(ctx))));
  });
  // Any host answers a page, whichever `peer` made it: the link carries what the page needs.
  router.get(PAGE_FORWARDING_PATH, async (ctx) => {
    const { path } = ctx.query;
    if (typeof path !== 'string' || !path) throw new KryptonError('INVALID_ARGUMENT', 'link uri parameter is required');
    jsonText(ctx, queryTaskJson(await d.queries.page(path.replace(/^.*\//, ''), d.access?.caller(ctx), d.access?.scope(ctx))));
  });
}

function readScope(scope: ReadScope): { mayRead?: (link: string) => boolean; scope: ReadScope } {
  return scope.mayRead ? { mayRead: scope.mayRead, scope } : { scope };
}

/**
 * A continuous query task's subscriptions: `<task>/subscriptions` (GET lists, POST subscribes a
 * callback, DELETE unsubscribes) and `<task>/subscriptions/stream` (server-sent events, resumed
 * from `Last-Event-ID`), served by the host that runs the task.
 */
function continuousRoutes(router: Router, d: AppDeps, factory: string): void {
  const link = (ctx: Koa.Context) => `${factory}/${ctx.params.id}`;
  router.get(`${factory}/:id${STREAM_SUFFIX}`, (ctx) => {
    const live = d.queries.live(link(ctx), d.access?.caller(ctx));
    const raw = ctx.get('last-event-id') || (typeof ctx.query.since === 'string' ? ctx.query.since : '');
    if (raw && !/^\d+$/.test(raw)) throw new KryptonError('INVALID_ARGUMENT', 'Last-Event-ID and since must be a non-negative integer');
    live.stream(link(ctx), raw ? Number(raw) : undefined, ctx.req, ctx.res);
    ctx.respond = false;
  });
  router.all(`${factory}/:id${STREAM_SUFFIX}`, (ctx) => notAllowed(ctx.method));
  router.get(`${factory}/:id${SUBSCRIPTIONS_SUFFIX}`, (ctx) => {
    ctx.body = d.queries.live(link(ctx), d.access?.caller(ctx)).subscriptions(link(ctx));
  });
  router.post(`${factory}/:id${SUBSCRIPTIONS_SUFFIX}`, async (ctx) => {
    const live = d.queries.live(link(ctx), d.access?.caller(ctx));
    ctx.body = live.subscribe(link(ctx), await readJsonBody(ctx.req));
  });
  router.delete(`${factory}/:id${SUBSCRIPTIONS_SUFFIX}`, async (ctx) => {
    const live = d.queries.live(link(ctx), d.access?.caller(ctx));
    live.unsubscribe(link(ctx), await readJsonBody(ctx.req));
    ctx.body = {};
  });
  router.all(`${factory}/:id${SUBSCRIPTIONS_SUFFIX}`, (ctx) => notAllowed(ctx.method));
}

/** A body already serialized (query tasks: query-json.ts), sent as JSON. */
function jsonText(ctx: Koa.Context, text: Buffer): void {
  ctx.type = 'application/json; charset=utf-8';
  ctx.body = text;
}

/** Factories and their children, looked up in the registry rather than one route per service. */
function serviceRoutes(d: AppDeps): Koa.Middleware {
  return async (ctx, next) => {
    const path = ctx.path.length > 1 && ctx.path.endsWith('/') ? ctx.path.slice(0, -1) : ctx.path;
    if (path.endsWith(SUBSCRIPTIONS_SUFFIX) || path.endsWith(STREAM_SUFFIX)) return watchRoutes(d, ctx, path, next);
    const answer = await handleDocumentRequest(d, {
      method: ctx.method,
      path,
      url: ctx.url,
      querystring: ctx.querystring,
      header: (name) => ctx.get(name),
      xenonHeaders: () => xenonHeaders(ctx),
      readBody: () => readJsonBody(ctx.req),
      arrivalMicros: ctx.state.arrivalMicros as number,
      ...(d.access?.enabled ? readScope(d.access.scope(ctx)) : {}),
    });
    if (answer === undefined) return next();
    if ('relayed' in answer) return relay(ctx, answer.relayed);
    ctx.status = answer.status;
    ctx.body = answer.body;
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
      if (!d.watches.unsubscribe(link, await readJsonBody(ctx.req)))
        throw new KryptonError('NOT_FOUND', `no subscription with that reference on ${link}`);
      ctx.body = {};
      return;
    default:
      notAllowed(ctx.method);
  }
}
