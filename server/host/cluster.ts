/**
 * The wiring of one host's parts, once and at construction, in dependency order: membership
 * (groups, selectors) and owner routing first, then the document store, then the parts built on
 * the store (replication, tasks, owner hooks, the synchronizer, watches). The store's cluster
 * ports (documents/ports.ts) are a handle made with the store and bound here as soon as the
 * parts that implement them exist, before any request is let in. Last comes the request handler:
 * the two peer endpoints and the document endpoint ahead of the koa app.
 */

import type { IncomingMessage, ServerResponse } from 'node:http';
import type { JsonObject } from '../../lib/document.js';
import type { Clock } from '../base/clock.js';
import type { Config } from '../base/config.js';
import { PeerClient } from '../net/peers.js';
import { ChangeFeed } from '../documents/changes.js';
import { DocumentStore } from '../documents/documents.js';
import { ClusterPortsHandle } from '../documents/ports.js';
import { Groups } from '../membership/group-set.js';
import { Selectors } from '../membership/selectors.js';
import { Forwarder } from '../routing/forwarder.js';
import { OwnerRouting } from '../routing/routing.js';
import { Replicator } from '../replication/replicator.js';
import { Synchronizer } from '../synch/synchronizer.js';
import { OwnerHooks } from '../tasks/owner-hooks.js';
import { ContinuousQueries } from '../tasks/continuous.js';
import { QueryGather } from '../tasks/query-gather.js';
import { QueryTasks } from '../tasks/query-tasks.js';
import { TaskDriver } from '../tasks/tasks.js';
import { EffectRunner } from '../tasks/effects.js';
import { Watches } from '../watches/watches.js';
import { AccessControl } from '../auth/authz.js';
import { AdminBootstrap } from '../auth/authz-bootstrap.js';
import { createApp } from '../http/app.js';
import { statelessRoutes } from '../http/stateless.js';
import { DocumentEndpoint } from '../http/document-endpoint.js';
import { PeerEndpoints } from '../http/peer-endpoints.js';
import { ServiceCounters, type UtilityDeps } from '../http/utility.js';
import type { Metrics } from '../base/metrics.js';
import type { Health } from '../http/health.js';
import { countRequest, registerScraped, serveMetrics } from '../http/metrics.js';
import { Dashboard } from '../http/ui.js';
import type { LocalState } from './local.js';

/** Everything a host runs besides its local state and its listeners. */
export interface HostParts {
  store: DocumentStore;
  queries: QueryTasks;
  routing: OwnerRouting;
  peers: PeerClient;
  groups: Groups;
  selectors: Selectors;
  synchronizer: Synchronizer;
  hooks: OwnerHooks;
  tasks: TaskDriver;
  changes: ChangeFeed;
  watches: Watches;
  forwarder: Forwarder;
  replicator: Replicator;
  promises: LocalState['promises'];
  unconfirmed: LocalState['unconfirmed'];
  access: AccessControl;
  effects: EffectRunner;
}

/** What the request handler asks of the host it serves. */
export interface HostControl {
  hostState(): JsonObject;
  stop(): void;
  /** This host's public URI. */
  uri(): string;
}

/** What the host gives its parts to be operated: the metrics they update and its health. */
export interface OpsParts {
  metrics: Metrics;
  health: Health;
}

/** Membership and owner routing: who is in the group, who owns a link, and the way to it. */
async function buildRouting(config: Config, local: LocalState, clock: Clock, uri: string, metrics: Metrics) {
  const { id, logger } = local;
  const peers = new PeerClient({ tls: local.tls?.client, memberHeaders: local.peerAuth.outgoingHeaders() });
  local.peerAuth.warnIfOpen(logger, config.peerNodes.length > 0);
  const onMemberChanges = (n: number) => metrics.membershipChanges.inc(n);
  const services = local.serviceProperties;
  const groups = new Groups({ selfId: id, publicUri: uri, dir: local.dir, peers, clock, logger, services, onMemberChanges });
  await groups.start({ membershipQuorum: config.membershipQuorum, peerNodes: config.peerNodes });
  const selectors = new Selectors(groups.default, clock);
  const forwarder = new Forwarder(peers);
  // With authorization on, each forwarded request travels on its own through the owner's koa
  // app, where the caller's token is checked again; batches would skip that check.
  const routing = new OwnerRouting({
    selectors,
    peers,
    forwarder: config.isAuthorizationEnabled ? undefined : forwarder,
    clock,
    hostId: id,
    operationTimeoutMicros: config.operationTimeoutMicros,
  });
  return { peers, groups, selectors, forwarder, routing };
}

/**
 * The store and what acts on its links as owner or replica: the replicator, query tasks, the
 * task driver, the owner hooks and the synchronizer. The store's cluster ports are bound here,
 * once, as soon as the parts that implement them exist.
 */
function buildOwnerParts(
  config: Config,
  local: LocalState,
  clock: Clock,
  selfUri: () => string,
  onLogFailure: (e: unknown) => void,
  net: Pick<HostParts, 'peers' | 'groups' | 'selectors'>,
  metrics: Metrics,
) {
  const { id, logger, registry, index, promises } = local;
  const { peers, groups, selectors } = net;
  const operationTimeoutMicros = config.operationTimeoutMicros;
  const ports = new ClusterPortsHandle();
  const changes = new ChangeFeed();
  const store = new DocumentStore({
    wal: local.wal,
    index,
    registry,
    clock,
    hostId: id,
    changes,
    promises,
    dedup: local.dedup,
    unconfirmed: local.unconfirmed,
    cluster: ports,
    onLogFailure,
    checkDisk: () => local.checkpoints.checkDisk(),
  });
  const replicator = new Replicator({
    selectors,
    peers,
    hostId: id,
    logger,
    operationTimeoutMicros,
    fencing: ports.fencing,
    observer: metrics,
  });
  const gather = new QueryGather({ index, store, clock, hostId: id, registry, selectors, peers });
  const continuous = new ContinuousQueries({ changes, peers, logger, hostId: id });
  const queries = new QueryTasks({ index, clock, hostId: id, gather, continuous });
  const tasks = new TaskDriver({
    registry,
    index,
    store,
    selectors,
    changes,
    queries,
    peers,
    selfUri,
    hostId: id,
    clock,
    logger,
    operationTimeoutMicros,
  });
  const effects = new EffectRunner({
    store,
    index,
    selectors,
    peers,
    selfUri,
    hostId: id,
    clock,
    logger,
    operationTimeoutMicros,
    maintain: (svc, link) => hooks.maintainOne(svc, link),
  });
  const hooks = new OwnerHooks({ registry, index, store, selectors, hostId: id, clock, logger, tasks, effects });
  const synchronizer = new Synchronizer({
    hostId: id,
    registry,
    index,
    store,
    group: groups.default,
    selectors,
    replicator,
    peers,
    promises,
    clock,
    logger,
    operationTimeoutMicros,
    enabled: config.isPeerSynchronizationEnabled,
    hooks,
  });
  ports.bind({ replication: replicator, fencing: synchronizer, synch: synchronizer, hooks, lease: synchronizer.lease });

  return { store, changes, replicator, queries, tasks, hooks, synchronizer, effects };
}

/** Membership, routing, the store and the parts built on it; `uri` is this host's address, known once it listens. */
export async function buildParts(
  config: Config,
  local: LocalState,
  clock: Clock,
  uri: string,
  onLogFailure: (e: unknown) => void,
  ops: OpsParts,
): Promise<HostParts> {
  const { logger, registry, index, promises } = local;
  const operationTimeoutMicros = config.operationTimeoutMicros;
  const selfUri = () => uri;
  const { peers, groups, selectors, forwarder, routing } = await buildRouting(config, local, clock, uri, ops.metrics);

  const { store, changes, replicator, queries, tasks, hooks, synchronizer, effects } = buildOwnerParts(
    config,
    local,
    clock,
    selfUri,
    onLogFailure,
    { peers, groups, selectors },
    ops.metrics,
  );
  const watches = new Watches({ index, changes, peers, selfUri, logger, operationTimeoutMicros });
  const access = new AccessControl({
    enabled: config.isAuthorizationEnabled,
    peerAuth: local.peerAuth,
    registry,
    index,
    changes,
    clock,
    peers,
    selfUri,
    selectors,
    logger,
    operationTimeoutMicros,
  });
  return {
    store,
    queries,
    routing,
    peers,
    groups,
    selectors,
    synchronizer,
    hooks,
    tasks,
    changes,
    watches,
    forwarder,
    replicator,
    promises,
    unconfirmed: local.unconfirmed,
    access,
    effects,
  };
}

/** The handler every listener serves: the peer endpoints and the document endpoint skip koa, the rest is koa's. */
export function requestHandler(
  config: Config,
  local: LocalState,
  parts: HostParts,
  clock: Clock,
  host: HostControl,
  ops: OpsParts,
): (req: IncomingMessage, res: ServerResponse) => void {
  const { registry, logger, id, peerAuth } = local;
  const { store, routing, tasks, selectors, peers } = parts;
  const { metrics, health } = ops;
  registerScraped(metrics, { ...parts, wal: local.wal, index: local.index, checkpoints: local.checkpoints });
  const dashboard = new Dashboard();
  const selfOrigin = new URL(host.uri()).origin;
  health.serving({ groups: parts.groups, selectors, peerCount: config.peerNodes.filter((p) => new URL(p).origin !== selfOrigin).length });
  const nowMicros = () => clock.nowMicros();
  const counters = new ServiceCounters(nowMicros);
  const utility: UtilityDeps = {
    registry,
    store,
    index: local.index,
    selectors,
    synchronizer: parts.synchronizer,
    counters,
    hostId: id,
    nowMicros,
  };
  const app = createApp({
    registry,
    store,
    queries: parts.queries,
    logger,
    ring: local.ring,
    hostId: id,
    hostState: () => host.hostState(),
    requestStop: () => host.stop(),
    cluster: {
      groups: parts.groups,
      store,
      synchronizer: parts.synchronizer,
      selectors,
      peers,
      hostId: id,
      operationTimeoutMicros: config.operationTimeoutMicros,
      nowMicros,
    },
    routing,
    tasks,
    watches: parts.watches,
    access: parts.access,
    utility,
    counters,
    stateless: statelessRoutes({
      services: local.stateless,
      peers,
      selfUri: () => host.uri(),
      hostId: id,
      nowMicros,
      operationTimeoutMicros: config.operationTimeoutMicros,
    }),
  });
  const koa = app.callback();
  const queries = parts.queries;
  const peerEndpoints = new PeerEndpoints({
    registry,
    store,
    routing,
    tasks,
    selectors,
    logger,
    queries,
    hostId: id,
    counters,
    lease: parts.synchronizer.lease,
  });
  // Document requests skip koa only while authorization is off: koa's access middleware checks
  // each one's token when it is on.
  const documentEndpoint = config.isAuthorizationEnabled
    ? undefined
    : new DocumentEndpoint({ registry, store, routing, tasks, logger, nowMicros, queries, hostId: id, counters });
  // The two busiest peer endpoints skip koa, so they check membership here; a non-member's
  // request goes on to koa, whose access middleware answers it 403.
  return (req, res) => {
    countRequest(metrics, registry, req, res);
    // Probes, scrapes and the dashboard's static files need no token: answered before the access middleware.
    if (health.handle(req, res) || serveMetrics(metrics, logger, req, res) || dashboard.handle(req, res)) return;
    if ((!peerAuth.enforced || peerAuth.isMember(req)) && peerEndpoints.handle(req, res)) return;
    if (documentEndpoint?.handle(req, res)) return;
    void koa(req, res);
  };
}

/** With authorization on and an admin password given: the bootstrap that creates the admin user. */
export function adminBootstrap(config: Config, local: LocalState, parts: HostParts, uri: string): AdminBootstrap | undefined {
  if (!config.isAuthorizationEnabled) return undefined;
  if (config.adminPassword === undefined) {
    local.logger.warn(
      'authorization is on and no --adminPassword was given: only members of the group (the peer secret) can create users and roles',
    );
    return undefined;
  }
  return new AdminBootstrap({
    email: config.adminUser ?? 'admin@localhost',
    password: config.adminPassword,
    index: local.index,
    peers: parts.peers,
    selfUri: () => uri,
    logger: local.logger,
    operationTimeoutMicros: config.operationTimeoutMicros,
  });
}
