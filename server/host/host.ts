/**
 * One Krypton host: wires the sandbox folder, the host id, the write-ahead log, the index, the
 * services and the HTTP server together, and owns the lifecycle. Start replays the log into the
 * index before the port opens; stop stops accepting requests, lets accepted writes finish,
 * flushes and closes the log, and releases the sandbox lock. Timers for expiry live here.
 */

import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import os from 'node:os';
import path from 'node:path';
import fs from 'fs-extra';
import type { Logger } from 'pino';
import { KINDS, type JsonObject } from '../../lib/document.js';
import { KryptonError } from '../../lib/errors.js';
import { limits } from '../../lib/limits.js';
import { ServiceRegistry, type ServiceDefinition } from '../../lib/service.js';
import { BUILTIN_SERVICES } from '../../lib/services/builtin.js';
import { DocumentIndex } from '../../index/views.js';
import { diskDirectory } from '../../wal/file.js';
import { WriteAheadLog } from '../../wal/log.js';
import { createApp } from '../http/app.js';
import { Listeners } from '../net/listeners.js';
import { loadTls } from '../net/tls.js';
import { Forwarder } from '../routing/forwarder.js';
import { Groups } from '../membership/groups.js';
import { PeerEndpoints } from '../http/peer-endpoints.js';
import { DocumentEndpoint } from '../http/document-endpoint.js';
import { PeerClient } from '../net/peers.js';
import { OwnerHooks } from '../tasks/owner-hooks.js';
import { ChangeFeed } from '../documents/changes.js';
import { TaskDriver } from '../tasks/tasks.js';
import { Watches } from '../watches/watches.js';
import { Replicator } from '../replication/replicator.js';
import { Selectors } from '../membership/selectors.js';
import { PromiseStore } from '../synch/promises.js';
import { Synchronizer } from '../synch/synchronizer.js';
import { OwnerRouting } from '../routing/routing.js';
import { systemClock, type Clock } from '../base/clock.js';
import { validateConfig, type Config } from '../base/config.js';
import { DocumentStore } from '../documents/documents.js';
import { createLogger, LogRing } from '../base/process-log.js';
import { QueryTasks } from '../tasks/query-tasks.js';
import { acquireLock, type Lock } from './sandbox-lock.js';
import { PeerAuth } from '../auth/peer-auth.js';
import { AccessControl } from '../auth/authz.js';
import { AdminBootstrap } from '../auth/authz-bootstrap.js';

export interface HostOptions {
  /** Services besides the built-in ones. */
  services?: ServiceDefinition<JsonObject>[];
  clock?: Clock;
}

const STATE_FILE = 'serviceHostState.json';
const MAINTENANCE_INTERVAL_MS = 1000;
/** How long a stopping host lets open connections finish before it closes them. */
const STOP_GRACE_MS = 2000;

export class Host {
  private stopping: Promise<void> | undefined;
  private resolveStopped!: () => void;
  /** Resolves once the host has stopped, whoever asked. */
  readonly stopped = new Promise<void>((r) => (this.resolveStopped = r));
  private timer: NodeJS.Timeout | undefined;
  private lastExpiryMicros = 0;

  private constructor(
    readonly id: string,
    readonly config: Config,
    readonly dir: string,
    readonly logger: Logger,
    readonly index: DocumentIndex,
    private readonly wal: WriteAheadLog,
    private readonly store: DocumentStore,
    private readonly queries: QueryTasks,
    private readonly listeners: Listeners,
    private readonly lock: Lock,
    private readonly clock: Clock,
    private readonly startedMicros: number,
    readonly cluster: {
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
      promises: PromiseStore;
      access: AccessControl;
      admin?: AdminBootstrap;
    },
  ) {}

  /** The plain HTTP port, or -1 when plain HTTP is off. */
  get port(): number {
    return this.listeners.http?.port ?? -1;
  }

  /** The HTTPS port, or -1 when the host has no HTTPS listener. */
  get securePort(): number {
    return this.listeners.https?.port ?? -1;
  }

  get uri(): string {
    return this.config.publicUri ?? defaultUri(this.config.bindAddress, this.listeners);
  }

  static async start(config: Config, opts: HostOptions = {}): Promise<Host> {
    validateConfig(config);
    // With plain HTTP off the sandbox is named after the HTTPS port, as an operator would look for it.
    const dir = path.join(config.sandbox, String(config.port >= 0 ? config.port : config.securePort));
    await fs.ensureDir(dir);
    const lock = await acquireLock(path.join(dir, 'LOCK'));
    const opened: { listeners?: Listeners } = {};
    try {
      return await Host.startLocked(config, opts, dir, lock, opened);
    } catch (e) {
      // Nothing may keep listening for a host that failed to start.
      opened.listeners?.closeAllConnections();
      await opened.listeners?.close();
      await lock.release();
      throw e;
    }
  }

  private static async startLocked(
    config: Config,
    opts: HostOptions,
    dir: string,
    lock: Lock,
    opened: { listeners?: Listeners },
  ): Promise<Host> {
    const clock = opts.clock ?? systemClock();
    // Before anything is replayed or opened: a bad key or certificate is a one-line start failure.
    const tls = await loadTls(config, clock.nowMicros() / 1000);
    const id = await loadOrCreateId(dir, config.id);
    const ring = new LogRing();
    const logger = createLogger(config.logLevel, ring, { host: id, port: config.port >= 0 ? config.port : config.securePort });
    for (const w of tls?.warnings ?? []) logger.warn(w);
    const peerAuth = await PeerAuth.fromConfig(config);

    const registry = new ServiceRegistry();
    for (const s of BUILTIN_SERVICES) registry.add(s);
    for (const s of opts.services ?? []) registry.add(s);

    const index = new DocumentIndex({
      retentionFor: (link) => Math.max(limits.versionRetentionFloor, registry.retentionFor(link) ?? limits.versionRetentionDefault),
    });
    const replayStarted = performance.now();
    const wal = await WriteAheadLog.open({
      dir: diskDirectory(path.join(dir, 'log')),
      repair: config.repairLog,
      logger,
      onRecord: (r) => {
        index.apply(r);
        clock.observe(r.timeMicros);
      },
    });
    const replayMs = performance.now() - replayStarted;
    // After the replay and before expired documents leave the index: a promise the log has since
    // overtaken (held epoch at or past it) is spent, and the expired copy may be what proves it.
    const promises = await PromiseStore.open({
      dir: diskDirectory(path.join(dir, 'promises')),
      heldEpoch: (link) => {
        const doc = index.latest(link);
        return doc ? (doc.documentEpoch ?? 0) : undefined;
      },
      logger,
      repair: config.repairLog,
    });
    index.expire(clock.nowMicros());
    logger.info({ records: wal.lastSeq, ms: Math.round(replayMs), ...index.stats() }, 'log replayed into the index');

    let host: Host | undefined;
    const changes = new ChangeFeed();
    const store = new DocumentStore({
      changes,
      wal,
      index,
      registry,
      clock,
      hostId: id,
      promises,
      onLogFailure: (e) => {
        logger.fatal({ err: e }, 'the write-ahead log failed; stopping the host');
        void host?.stop();
      },
    });
    const queries = new QueryTasks({ index, clock, hostId: id });
    const startedMicros = clock.nowMicros();

    // Listen first: with --port=0 the group references need the port the OS picked. Requests
    // that arrive before the app exists wait on `handler`.
    let handler: ((req: IncomingMessage, res: ServerResponse) => void) | undefined;
    const early: Array<() => void> = [];
    const listeners = await Listeners.open({
      port: config.port,
      securePort: config.securePort,
      bindAddress: config.bindAddress,
      tls: tls?.server,
      handler: (req, res) => (handler ? handler(req, res) : early.push(() => handler!(req, res))),
    });
    opened.listeners = listeners;
    const uri = config.publicUri ?? defaultUri(config.bindAddress, listeners);

    const peers = new PeerClient({ tls: tls?.client, memberHeaders: peerAuth.outgoingHeaders() });
    peerAuth.warnIfOpen(logger, config.peerNodes.length > 0);
    const groups = new Groups({ selfId: id, publicUri: uri, dir, peers, clock, logger });
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
    const replicator = new Replicator({ selectors, peers, hostId: id, logger, operationTimeoutMicros: config.operationTimeoutMicros });
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
      operationTimeoutMicros: config.operationTimeoutMicros,
      enabled: config.isPeerSynchronizationEnabled,
      hooks: { started: (svc, link) => hooks.started(svc, link) },
    });
    const tasks = new TaskDriver({
      registry,
      index,
      store,
      selectors,
      changes,
      queries,
      peers,
      selfUri: () => uri,
      hostId: id,
      clock,
      logger,
      operationTimeoutMicros: config.operationTimeoutMicros,
    });
    const watches = new Watches({
      index,
      changes,
      peers,
      selfUri: () => uri,
      logger,
      operationTimeoutMicros: config.operationTimeoutMicros,
    });
    const hooks = new OwnerHooks({ registry, index, store, selectors, hostId: id, clock, logger, tasks });
    replicator.onStaleEpoch = (link) => synchronizer.staleEpoch(link);
    store.attachCluster({ replicator, synch: synchronizer, hooks });
    const access = new AccessControl({
      enabled: config.isAuthorizationEnabled,
      peerAuth,
      registry,
      index,
      changes,
      clock,
      peers,
      selfUri: () => uri,
      selectors,
      logger,
      operationTimeoutMicros: config.operationTimeoutMicros,
    });
    const app = createApp({
      registry,
      store,
      queries,
      logger,
      ring,
      hostId: id,
      hostState: () => host!.hostState(),
      requestStop: () => void host?.stop(),
      cluster: {
        groups,
        store,
        synchronizer,
        selectors,
        peers,
        hostId: id,
        operationTimeoutMicros: config.operationTimeoutMicros,
        nowMicros: () => clock.nowMicros(),
      },
      routing,
      tasks,
      watches,
      access,
    });
    const koa = app.callback();
    const nowMicros = () => clock.nowMicros();
    const peerEndpoints = new PeerEndpoints({ registry, store, routing, tasks, selectors, logger, nowMicros });
    // Document requests skip koa only while authorization is off: koa's access middleware checks
    // each one's token when it is on.
    const documentEndpoint = config.isAuthorizationEnabled
      ? undefined
      : new DocumentEndpoint({ registry, store, routing, tasks, logger, nowMicros });
    // The two busiest peer endpoints skip koa, so they check membership here; a non-member's
    // request goes on to koa, whose access middleware answers it 403.
    handler = (req, res) => {
      if ((!peerAuth.enforced || peerAuth.isMember(req)) && peerEndpoints.handle(req, res)) return;
      if (documentEndpoint?.handle(req, res)) return;
      void koa(req, res);
    };
    for (const run of early.splice(0)) run();
    let admin: AdminBootstrap | undefined;
    if (config.isAuthorizationEnabled && config.adminPassword !== undefined) {
      admin = new AdminBootstrap({
        email: config.adminUser ?? 'admin@localhost',
        password: config.adminPassword,
        index,
        peers,
        selfUri: () => uri,
        logger,
        operationTimeoutMicros: config.operationTimeoutMicros,
      });
    } else if (config.isAuthorizationEnabled) {
      logger.warn(
        'authorization is on and no --adminPassword was given: only members of the group (the peer secret) can create users and roles',
      );
    }
    host = new Host(id, config, dir, logger, index, wal, store, queries, listeners, lock, clock, startedMicros, {
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
      access,
      admin,
    });
    admin?.start();
    host.timer = setInterval(() => host!.maintain(), MAINTENANCE_INTERVAL_MS);
    host.timer.unref();
    const on = listeners.all.map((l) => `${config.bindAddress}:${l.port}${l.scheme === 'https' ? ' (https)' : ''}`).join(' and ');
    if (tls)
      logger.info(
        {
          certificate: tls.summary.subject,
          validTo: tls.summary.validTo,
          caFileCertificates: tls.summary.caCount,
          sslClientAuthMode: config.sslClientAuthMode,
        },
        'HTTPS on',
      );
    logger.info({ uri: host.uri, sandbox: dir }, `ServiceHost/${id} listening on ${on}`);
    return host;
  }

  private maintain(): void {
    void this.cluster.hooks.maintain();
    this.cluster.tasks.sweep();
    const now = this.clock.nowMicros();
    this.queries.expire(now);
    if (now - this.lastExpiryMicros >= limits.expiryIntervalMicros) {
      this.lastExpiryMicros = now;
      const purged = this.index.expire(now);
      for (const link of purged) this.cluster.changes.expired(link);
      if (purged.length) this.logger.info({ count: purged.length }, 'expired documents purged from the index');
    }
  }

  /** GET /core/management: Xenon's ServiceHostState fields that mean something here. */
  hostState(): JsonObject {
    return {
      id: this.id,
      bindAddress: this.config.bindAddress,
      httpPort: this.port,
      httpsPort: this.securePort,
      publicUri: this.uri,
      maintenanceIntervalMicros: MAINTENANCE_INTERVAL_MS * 1000,
      operationTimeoutMicros: this.config.operationTimeoutMicros,
      storageSandboxFileReference: `file:${this.dir}/`,
      isPeerSynchronizationEnabled: this.config.isPeerSynchronizationEnabled,
      isAuthorizationEnabled: this.config.isAuthorizationEnabled,
      isProcessOwner: true,
      initialPeerNodes: this.config.peerNodes,
      systemInfo: {
        availableProcessorCount: os.availableParallelism(),
        freeMemoryByteCount: os.freemem(),
        totalMemoryByteCount: os.totalmem(),
        osName: os.type(),
        osFamily: os.platform(),
      },
      logStats: this.wal.stats() as unknown as JsonObject,
      indexStats: this.index.stats() as unknown as JsonObject,
      peerStats: { ...this.cluster.peers.stats },
      synchStats: { ...this.cluster.synchronizer.stats },
      forwardStats: { ...this.cluster.forwarder.stats },
      replicationStats: { ...this.cluster.replicator.stats },
      parkedRequests: this.cluster.selectors.parkedCount,
      startTimeMicros: this.startedMicros,
      documentSelfLink: '/core/management',
      documentKind: KINDS.serviceHostState,
      documentVersion: 0,
      documentUpdateTimeMicros: this.clock.nowMicros(),
      documentExpirationTimeMicros: 0,
      documentOwner: this.id,
    };
  }

  /** Graceful stop: no new requests, accepted writes finish and are flushed, the log closes. */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      this.logger.info('stopping');
      if (this.timer) clearInterval(this.timer);
      this.cluster.selectors.stop();
      this.cluster.tasks.stop();
      this.cluster.watches.stop();
      this.cluster.admin?.stop();
      const closed = this.listeners.close();
      // Peers gossip every second over kept-alive connections, which would keep close() waiting
      // for ever: answer everything from now on with `connection: close`, let accepted writes
      // finish, then cut what is left after a short grace.
      this.listeners.onRequest((_req, res) => res.setHeader('connection', 'close'));
      this.listeners.closeIdleConnections();
      await this.store.drain();
      await Promise.race([closed, new Promise((r) => setTimeout(r, STOP_GRACE_MS).unref())]);
      this.listeners.closeAllConnections();
      await closed;
      await this.cluster.synchronizer.stop();
      await this.cluster.groups.stop();
      await this.cluster.peers.close();
      await this.wal.close();
      await this.cluster.promises.close();
      await this.lock.release();
      this.logger.info('stopped');
      this.resolveStopped();
    })();
    return this.stopping;
  }
}

/** http:// when plain HTTP is on (as Xenon), https:// otherwise. */
function defaultUri(bindAddress: string, l: Listeners): string {
  const listener = l.http ?? l.https!;
  const host = bindAddress.includes(':') ? `[${bindAddress}]` : bindAddress;
  return `${listener.scheme}://${host}:${listener.port}`;
}

async function loadOrCreateId(dir: string, requested: string | undefined): Promise<string> {
  const file = path.join(dir, STATE_FILE);
  let saved: string | undefined;
  if (await fs.pathExists(file)) {
    try {
      const parsed = (await fs.readJson(file)) as { id?: unknown };
      if (typeof parsed.id === 'string') saved = parsed.id;
    } catch (e) {
      throw new KryptonError('INVALID_ARGUMENT', `${file} is not valid JSON (${(e as Error).message}); fix or remove it`);
    }
  }
  const id = requested ?? saved ?? randomUUID();
  if (id !== saved) {
    // Write then rename, so a crash never leaves a half-written id file.
    const tmp = `${file}.tmp`;
    await fs.writeJson(tmp, { id });
    const fh = await fs.promises.open(tmp, 'r');
    await fh.datasync();
    await fh.close();
    await fs.rename(tmp, file);
  }
  return id;
}
