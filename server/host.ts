/**
 * One Krypton host: wires the sandbox folder, the host id, the write-ahead log, the index, the
 * services and the HTTP server together, and owns the lifecycle. Start replays the log into the
 * index before the port opens; stop stops accepting requests, lets accepted writes finish,
 * flushes and closes the log, and releases the sandbox lock. Timers for expiry live here.
 */

import { randomUUID } from 'node:crypto';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import fs from 'fs-extra';
import type { Logger } from 'pino';
import { KINDS, type JsonObject } from '../lib/document.js';
import { KryptonError } from '../lib/errors.js';
import { limits } from '../lib/limits.js';
import { ServiceRegistry, type ServiceDefinition } from '../lib/service.js';
import { BUILTIN_SERVICES } from '../lib/services/builtin.js';
import { DocumentIndex } from '../index/views.js';
import { diskDirectory } from '../wal/file.js';
import { WriteAheadLog } from '../wal/log.js';
import { createApp } from './app.js';
import { Forwarder } from './forwarder.js';
import { Groups } from './groups.js';
import { PeerEndpoints } from './peer-endpoints.js';
import { DocumentEndpoint } from './document-endpoint.js';
import { PeerClient } from './peers.js';
import { OwnerHooks } from './owner-hooks.js';
import { ChangeFeed } from './changes.js';
import { TaskDriver } from './tasks.js';
import { Watches } from './watches.js';
import { Replicator } from './replicator.js';
import { Selectors } from './selectors.js';
import { Synchronizer } from './synchronizer.js';
import { OwnerRouting } from './routing.js';
import { systemClock, type Clock } from './clock.js';
import type { Config } from './config.js';
import { DocumentStore } from './documents.js';
import { createLogger, LogRing } from './process-log.js';
import { QueryTasks } from './query-tasks.js';
import { acquireLock, type Lock } from './sandbox-lock.js';

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
    private readonly server: http.Server,
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
    },
  ) {}

  get port(): number {
    const a = this.server.address();
    return typeof a === 'object' && a ? a.port : this.config.port;
  }

  get uri(): string {
    return this.config.publicUri ?? `http://${this.config.bindAddress}:${this.port}`;
  }

  static async start(config: Config, opts: HostOptions = {}): Promise<Host> {
    const dir = path.join(config.sandbox, String(config.port));
    await fs.ensureDir(dir);
    const lock = await acquireLock(path.join(dir, 'LOCK'));
    try {
      return await Host.startLocked(config, opts, dir, lock);
    } catch (e) {
      await lock.release();
      throw e;
    }
  }

  private static async startLocked(config: Config, opts: HostOptions, dir: string, lock: Lock): Promise<Host> {
    const id = await loadOrCreateId(dir, config.id);
    const ring = new LogRing();
    const logger = createLogger(config.logLevel, ring, { host: id, port: config.port });
    const clock = opts.clock ?? systemClock();

    const registry = new ServiceRegistry();
    for (const s of BUILTIN_SERVICES) registry.add(s);
    for (const s of opts.services ?? []) registry.add(s);

    const index = new DocumentIndex({ retentionFor: (link) => Math.max(limits.versionRetentionFloor, registry.retentionFor(link) ?? limits.versionRetentionDefault) });
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
      onLogFailure: (e) => {
        logger.fatal({ err: e }, 'the write-ahead log failed; stopping the host');
        void host?.stop();
      },
    });
    const queries = new QueryTasks({ index, clock, hostId: id });
    const startedMicros = clock.nowMicros();

    // Listen first: with --port=0 the group references need the port the OS picked.
    const server = http.createServer();
    server.keepAliveTimeout = 65_000;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(config.port, config.bindAddress, () => {
        server.off('error', reject);
        resolve();
      });
    });
    const addr = server.address();
    const port = typeof addr === 'object' && addr ? addr.port : config.port;
    const uri = config.publicUri ?? `http://${config.bindAddress}:${port}`;

    const peers = new PeerClient();
    const groups = new Groups({ selfId: id, publicUri: uri, dir, peers, clock, logger });
    await groups.start({ membershipQuorum: config.membershipQuorum, peerNodes: config.peerNodes });
    const selectors = new Selectors(groups.default, clock);
    const forwarder = new Forwarder(peers);
    const routing = new OwnerRouting({ selectors, peers, forwarder, clock, hostId: id, operationTimeoutMicros: config.operationTimeoutMicros });
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
    const watches = new Watches({ index, changes, peers, selfUri: () => uri, logger, operationTimeoutMicros: config.operationTimeoutMicros });
    const hooks = new OwnerHooks({ registry, index, store, selectors, hostId: id, clock, logger, tasks });
    store.attachCluster({ replicator, synch: synchronizer, hooks });
    const app = createApp({
      registry,
      store,
      queries,
      logger,
      ring,
      hostId: id,
      hostState: () => host!.hostState(),
      requestStop: () => void host?.stop(),
      cluster: { groups, store, synchronizer, selectors, peers, hostId: id, operationTimeoutMicros: config.operationTimeoutMicros, nowMicros: () => clock.nowMicros() },
      routing,
      tasks,
      watches,
    });
    const koa = app.callback();
    const nowMicros = () => clock.nowMicros();
    const peerEndpoints = new PeerEndpoints({ registry, store, routing, tasks, selectors, logger, nowMicros });
    const documentEndpoint = new DocumentEndpoint({ registry, store, routing, tasks, logger, nowMicros });
    // The hot paths skip koa; the koa app answers everything else (and still serves the same paths).
    server.on('request', (req: http.IncomingMessage, res: http.ServerResponse) => {
      if (!peerEndpoints.handle(req, res) && !documentEndpoint.handle(req, res)) void koa(req, res);
    });
    host = new Host(id, config, dir, logger, index, wal, store, queries, server, lock, clock, startedMicros, { peers, groups, selectors, synchronizer, hooks, tasks, changes, watches, forwarder, replicator });
    host.timer = setInterval(() => host!.maintain(), MAINTENANCE_INTERVAL_MS);
    host.timer.unref();
    logger.info({ uri: host.uri, sandbox: dir }, `ServiceHost/${id} listening on ${config.bindAddress}:${host.port}`);
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
      httpsPort: -1,
      publicUri: this.uri,
      maintenanceIntervalMicros: MAINTENANCE_INTERVAL_MS * 1000,
      operationTimeoutMicros: this.config.operationTimeoutMicros,
      storageSandboxFileReference: `file:${this.dir}/`,
      isPeerSynchronizationEnabled: this.config.isPeerSynchronizationEnabled,
      isAuthorizationEnabled: false,
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
      const closed = new Promise<void>((r) => this.server.close(() => r()));
      // Peers gossip every second over kept-alive connections, which would keep close() waiting
      // for ever: answer everything from now on with `connection: close`, let accepted writes
      // finish, then cut what is left after a short grace.
      this.server.on('request', (_req, res: http.ServerResponse) => res.setHeader('connection', 'close'));
      this.server.closeIdleConnections();
      await this.store.drain();
      await Promise.race([closed, new Promise((r) => setTimeout(r, STOP_GRACE_MS).unref())]);
      this.server.closeAllConnections();
      await closed;
      await this.cluster.synchronizer.stop();
      await this.cluster.groups.stop();
      await this.cluster.peers.close();
      await this.wal.close();
      await this.lock.release();
      this.logger.info('stopped');
      this.resolveStopped();
    })();
    return this.stopping;
  }
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
