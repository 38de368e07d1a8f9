/**
 * HTTP routes of the node groups and node selectors: `/core/node-groups` (list, create a custom
 * group), each group's GET/POST (join, NodeState insert)/PATCH (gossip, config, quorum) and
 * `/available`, `/core/node-selectors/<sel>` (state, owner selection) and its `/forwarding`
 * helper with targets KEY_HASH, PEER_ID and ALL (docs/xenon-compatibility.md).
 */

import type Router from '@koa/router';
import type Koa from 'koa';
import { AUTH_TOKEN_HEADER } from '../../lib/authz.js';
import { KINDS, linkList } from '../../lib/document.js';
import { KryptonError } from '../../lib/errors.js';
import { isEligibleOwner } from '../../lib/group/rules.js';
import { NODE_GROUPS_FACTORY_LINK } from '../../lib/group/types.js';
import { selectNodes } from '../../lib/hash.js';
import { msFromMicros } from '../../lib/limits.js';
import { readJsonBody } from '../net/body.js';
import type { DocumentStore } from '../documents/documents.js';
import type { Synchronizer } from '../synch/synchronizer.js';
import type { Groups } from '../membership/group-set.js';
import type { GroupRuntime } from '../membership/groups.js';
import { notAllowed, toErrorResponse } from '../net/http-errors.js';
import type { PeerClient, PeerReply } from '../net/peers.js';
import { HOP_HEADERS, originOf, withPragma } from '../routing/routing.js';
import type { Selectors } from '../membership/selectors.js';

export interface ClusterDeps {
  groups: Groups;
  store: DocumentStore;
  synchronizer: Synchronizer;
  selectors: Selectors;
  peers: PeerClient;
  hostId: string;
  operationTimeoutMicros: number;
  nowMicros(): number;
  pragmas(ctx: Koa.Context): Set<string>;
}

export function relay(ctx: Koa.Context, reply: PeerReply): void {
  ctx.status = reply.status;
  for (const [k, v] of Object.entries(reply.headers)) {
    if (v !== undefined && !HOP_HEADERS.has(k.toLowerCase())) ctx.set(k, v as string | string[]);
  }
  ctx.body = reply.body;
}

export function clusterRoutes(router: Router, d: ClusterDeps): void {
  groupRoutes(router, d);
  selectorRoutes(router, d);
  router.all('/core/node-selectors/:sel/forwarding', (ctx) => forwarding(ctx, d));
}

function groupRoutes(router: Router, d: ClusterDeps): void {
  const group = (name: string | undefined): GroupRuntime => {
    const g = d.groups.get(`${NODE_GROUPS_FACTORY_LINK}/${name}`);
    if (!g) throw new KryptonError('NOT_FOUND', `Service not found: ${NODE_GROUPS_FACTORY_LINK}/${name}`);
    return g;
  };

  router.get(NODE_GROUPS_FACTORY_LINK, (ctx) => {
    const links = d.groups.links();
    ctx.body = linkList(links, d.hostId);
  });
  router.post(NODE_GROUPS_FACTORY_LINK, async (ctx) => {
    ctx.body = await d.groups.create(await readJsonBody(ctx.req));
  });
  router.all(NODE_GROUPS_FACTORY_LINK, (ctx) => notAllowed(ctx.method));

  router.get(`${NODE_GROUPS_FACTORY_LINK}/:name`, (ctx) => {
    ctx.body = group(ctx.params.name).group;
  });
  router.post(`${NODE_GROUPS_FACTORY_LINK}/:name`, async (ctx) => {
    ctx.body = await group(ctx.params.name).handlePost(await readJsonBody(ctx.req));
  });
  router.patch(`${NODE_GROUPS_FACTORY_LINK}/:name`, async (ctx) => {
    const g = group(ctx.params.name);
    const body = await readJsonBody(ctx.req);
    const before = g.group.nodes[d.hostId]?.membershipQuorum;
    ctx.body = await g.handlePatch(body);
    const after = g.group.nodes[d.hostId]?.membershipQuorum;
    if (g === d.groups.default && after !== undefined && after !== before) d.selectors.quorumNotified(after);
  });
  router.all(`${NODE_GROUPS_FACTORY_LINK}/:name`, (ctx) => notAllowed(ctx.method));
  router.get(`${NODE_GROUPS_FACTORY_LINK}/:name/available`, (ctx) => {
    if (!group(ctx.params.name).isAvailable()) throw new KryptonError('QUORUM_UNAVAILABLE', 'node group is not available');
    ctx.body = {};
  });
}

function selectorRoutes(router: Router, d: ClusterDeps): void {
  router.get('/core/node-selectors', (ctx) => {
    const links = ['/core/node-selectors/default', '/core/node-selectors/default-1x', '/core/node-selectors/default-3x'];
    ctx.body = linkList(links, d.hostId);
  });
  router.get('/core/node-selectors/:sel', (ctx) => {
    ctx.body = d.selectors.state(`/core/node-selectors/${ctx.params.sel}`);
  });
  router.post('/core/node-selectors/:sel', async (ctx) => {
    const link = `/core/node-selectors/${ctx.params.sel}`;
    d.selectors.state(link); // 404 for an unknown selector before reading the body
    const body = (await readJsonBody(ctx.req)) as Record<string, unknown> | undefined;
    const key = body && typeof body === 'object' ? (body.key ?? body.targetPath) : undefined;
    if (typeof key !== 'string' || !key) throw new KryptonError('INVALID_BODY', 'key or targetPath is required');
    await d.selectors.whenAvailable(d.nowMicros() + d.operationTimeoutMicros);
    ctx.body = d.selectors.select(link, key);
  });
  router.all('/core/node-selectors/:sel', (ctx) => notAllowed(ctx.method));

  // POST of log shipping, of forwarded batches and of a host's part of a query is served before koa (peer-endpoints.ts).
  for (const endpoint of ['replication', 'forwarded', 'query']) {
    router.all(`/core/node-selectors/:sel/${endpoint}`, (ctx) => {
      d.selectors.state(`/core/node-selectors/${ctx.params.sel}`); // 404 for an unknown selector
      notAllowed(ctx.method);
    });
  }
  // Synchronization requests from peers.
  router.post('/core/node-selectors/:sel/synch', async (ctx) => {
    d.selectors.state(`/core/node-selectors/${ctx.params.sel}`);
    ctx.body = await d.synchronizer.serve(await readJsonBody(ctx.req));
  });
  router.get('/core/node-selectors/:sel/synch', (ctx) => {
    ctx.body = { ...d.synchronizer.stats, documentSelfLink: `/core/node-selectors/${ctx.params.sel}/synch` };
  });
  router.all('/core/node-selectors/:sel/synch', (ctx) => notAllowed(ctx.method));
}

/** A `/forwarding` call, checked and read: where to send what, with the caller's pragmas. */
interface Forward {
  selLink: string;
  replicationFactor: number | undefined;
  target: string;
  /** The path the caller named, the default hash key. */
  path: string;
  key: string | undefined;
  peer: string | undefined;
  /** Path and query string to call on the chosen host(s). */
  url: string;
  raw: string | undefined;
  pragmas: Set<string>;
  timeoutMs: number;
}

const nonEmpty = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);

async function readForward(ctx: Koa.Context, d: ClusterDeps): Promise<Forward> {
  const selLink = `/core/node-selectors/${ctx.params.sel}`;
  const spec = d.selectors.spec(selLink);
  if (!spec) throw new KryptonError('NOT_FOUND', `Service not found: ${selLink}`);
  const q = ctx.query;
  const path = nonEmpty(q.path);
  const target = nonEmpty(q.target);
  if (!path) throw new KryptonError('INVALID_ARGUMENT', 'link uri parameter is required');
  if (!target) throw new KryptonError('INVALID_ARGUMENT', 'destination uri parameter is required');
  if (!path.startsWith('/')) throw new KryptonError('INVALID_ARGUMENT', 'path must start with /');
  if (path.startsWith(`${selLink}/forwarding`)) throw new KryptonError('INVALID_ARGUMENT', 'path can not be the forwarding service');
  const url = path + (nonEmpty(q.query) ? `?${nonEmpty(q.query)}` : '');
  const body = await readJsonBody(ctx.req);
  return {
    selLink,
    replicationFactor: spec.replicationFactor,
    target,
    path,
    key: nonEmpty(q.key),
    peer: nonEmpty(q.peer),
    url,
    raw: body === undefined ? undefined : JSON.stringify(body),
    pragmas: d.pragmas(ctx),
    timeoutMs: msFromMicros(d.operationTimeoutMicros),
  };
}

async function forwarding(ctx: Koa.Context, d: ClusterDeps): Promise<void> {
  const f = await readForward(ctx, d);
  await d.selectors.whenAvailable(d.nowMicros() + d.operationTimeoutMicros);
  if (f.target === 'ALL') {
    ctx.body = await broadcast(ctx, d, f);
    return;
  }
  relay(
    ctx,
    await d.peers.request(forwardOrigin(d, f) + f.url, {
      method: ctx.method,
      body: f.raw,
      headers: { ...callerToken(ctx), pragma: withPragma(f.pragmas, 'xn-fwd') },
      timeoutMs: f.timeoutMs,
    }),
  );
}

/** The origin of the one host a PEER_ID (or PEER) or KEY_HASH forward goes to. */
function forwardOrigin(d: ClusterDeps, f: Forward): string {
  if (f.target !== 'PEER_ID' && f.target !== 'PEER') {
    return originOf(d.selectors.select(f.selLink, f.key ?? f.path).ownerNodeGroupReference);
  }
  const g = d.groups.default.group;
  const peer = f.peer;
  if (!peer) throw new KryptonError('INVALID_ARGUMENT', 'peer uri parameter is required');
  const n = g.nodes[peer];
  // Better than Xenon: an unknown peer is an error, not whichever host hashes nearest.
  if (!n) throw new KryptonError('NOT_FOUND', `Service not found: peer ${peer} is not a member of ${g.documentSelfLink}`);
  return originOf(n.groupReference);
}

/** Target ALL: the call to every eligible host (or the key's replicas), answered as Xenon's NodeGroupBroadcastResponse. */
async function broadcast(ctx: Koa.Context, d: ClusterDeps, f: Forward): Promise<Record<string, unknown>> {
  const g = d.groups.default.group;
  const nodes = Object.values(g.nodes).filter(isEligibleOwner);
  const ids = f.replicationFactor
    ? selectNodes(
        f.key ?? f.path,
        nodes.map((n) => ({ id: n.id, eligible: true })),
        f.replicationFactor,
      )
    : nodes.map((n) => n.id);
  const receivers: string[] = [];
  const selectedNodes: Record<string, string> = {};
  const jsonResponses: Record<string, string> = {};
  const failures: Record<string, unknown> = {};
  await Promise.all(
    ids.map(async (id) => {
      const n = g.nodes[id]!;
      const uri = originOf(n.groupReference) + f.url;
      receivers.push(uri);
      selectedNodes[id] = n.groupReference;
      try {
        const r = await d.peers.request(uri, {
          method: ctx.method,
          body: f.raw,
          headers: { ...callerToken(ctx), pragma: withPragma(f.pragmas, 'xn-no-fwd') },
          timeoutMs: f.timeoutMs,
        });
        if (r.status >= 400)
          failures[uri] = safeJson(r.body) ?? toErrorResponse(new KryptonError('INVALID_ARGUMENT', `status ${r.status}`)).body;
        else jsonResponses[uri] = r.body.toString('utf8');
      } catch (e) {
        failures[uri] = { message: (e as Error).message, statusCode: 500, documentKind: KINDS.serviceErrorResponse, errorCode: 0 };
      }
    }),
  );
  return {
    receivers,
    selectedNodes,
    jsonResponses,
    failures,
    availableNodeCount: nodes.length,
    nodeCount: Object.keys(g.nodes).length,
    membershipQuorum: g.nodes[d.hostId]?.membershipQuorum ?? 1,
    documentKind: 'com:vmware:xenon:services:common:NodeGroupBroadcastResponse',
  };
}

/** The caller's login token, so the target host checks the same user (server/auth/authz.ts). */
function callerToken(ctx: Koa.Context): Record<string, string> {
  const token = ctx.get(AUTH_TOKEN_HEADER);
  return token ? { [AUTH_TOKEN_HEADER]: token } : {};
}

function safeJson(b: Buffer): unknown {
  try {
    return JSON.parse(b.toString('utf8'));
  } catch {
    return undefined;
  }
}
