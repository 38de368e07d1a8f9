/**
 * Stateless user services (lib/service.ts, StatelessServiceDefinition) as a koa middleware:
 * GET and POST at a service's link or below it run its handler on the host the request entered
 * (no owner, no documents), after the access middleware, so roles apply as to any path. A
 * handler that asks for a request gets it sent through this host as the caller (the caller's
 * token travels, the peer secret does not), and continues on the answer, up to
 * limits.statelessRequestsMax requests per call.
 */

import type Koa from 'koa';
import type { JsonObject } from '../../lib/document.js';
import { KryptonError } from '../../lib/errors.js';
import { limits, msFromMicros } from '../../lib/limits.js';
import type { EffectAnswer, StatelessRequest, StatelessResult, StatelessServiceDefinition } from '../../lib/service.js';
import { readJsonBody } from '../net/body.js';
import { notAllowed } from '../net/http-errors.js';
import type { PeerClient } from '../net/peers.js';

export interface StatelessDeps {
  services: readonly StatelessServiceDefinition[];
  peers: PeerClient;
  selfUri: () => string;
  hostId: string;
  nowMicros: () => number;
  operationTimeoutMicros: number;
}

function isObject(v: unknown): v is JsonObject {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

export function statelessRoutes(d: StatelessDeps): Koa.Middleware | undefined {
  if (d.services.length === 0) return undefined;
  return async (ctx, next) => {
    const svc = d.services.find((s) => ctx.path === s.link || ctx.path.startsWith(`${s.link}/`));
    if (!svc) return next();
    const method = ctx.method;
    const handler = method === 'GET' ? svc.get : method === 'POST' ? svc.post : undefined;
    if (!handler) return notAllowed(method);
    const raw = method === 'POST' ? await readJsonBody(ctx.req) : undefined;
    if (raw !== undefined && !isObject(raw)) throw new KryptonError('INVALID_BODY', 'body must be a JSON object');
    const query: Record<string, string> = {};
    for (const [k, v] of Object.entries(ctx.query)) if (typeof v === 'string') query[k] = v;
    const req: StatelessRequest = { method: method as 'GET' | 'POST', subPath: ctx.path.slice(svc.link.length), query, body: raw };
    const token = ctx.get('x-xenon-auth-token');
    const headers: Record<string, string> = token ? { 'x-xenon-auth-token': token } : {};
    const deadline = d.nowMicros() + d.operationTimeoutMicros;
    let result: StatelessResult = handler.call(svc, req, { nowMicros: d.nowMicros(), hostId: d.hostId });
    for (let asked = 0; 'request' in result; asked++) {
      if (asked >= limits.statelessRequestsMax)
        throw new KryptonError('LIMIT_EXCEEDED', `${svc.link} asked for more than ${limits.statelessRequestsMax} requests in one call`);
      const r = result.request;
      const reply = await d.peers.request(`${d.selfUri()}${r.link}`, {
        method: r.method,
        body: r.body === undefined ? undefined : JSON.stringify(r.body),
        headers,
        external: true,
        timeoutMs: Math.max(1, msFromMicros(deadline - d.nowMicros())),
      });
      let body: unknown;
      try {
        body = reply.body.length > 0 ? JSON.parse(reply.body.toString('utf8')) : undefined;
      } catch {
        body = undefined;
      }
      const answer: EffectAnswer = { status: reply.status, body: isObject(body) ? body : undefined };
      result = result.onAnswer(answer, { nowMicros: d.nowMicros(), hostId: d.hostId });
    }
    ctx.status = result.status ?? 200;
    ctx.body = result.body;
  };
}
