/**
 * One Krypton host and its lifecycle. Start takes the sandbox lock, reads the local state back
 * (host/local.ts), listening from just before the log is replayed into the index (probes are
 * answered meanwhile, /readyz 503, other requests 503 STARTING), builds the cluster parts and the
 * request handler (host/cluster.ts) and only then lets the requests that arrived meanwhile in. Stop tells the peers it leaves, stops accepting requests, lets accepted
 * writes finish, flushes and closes the log, and releases the sandbox lock. The maintenance timer (owner hooks, task
 * retries, query-task and document expiry) lives here.
 */

import type { IncomingMessage, ServerResponse } from 'node:http';
import os from 'node:os';
import path from 'node:path';
import fs from 'fs-extra';
import type { Logger } from 'pino';
import { KINDS, type JsonObject } from '../../lib/document.js';
import { invariantError, KryptonError } from '../../lib/errors.js';
import { limits } from '../../lib/limits.js';
import type { ServiceDefinition, StatelessServiceDefinition } from '../../lib/service.js';
import type { DocumentIndex } from '../../index/views.js';
import type { WriteAheadLog } from '../../wal/log.js';
import type { Checkpointer } from './checkpoints.js';
import { systemClock, type Clock } from '../base/clock.js';
import { validateConfig, type Config } from '../base/config.js';
import { Metrics } from '../base/metrics.js';
import { Listeners } from '../net/listeners.js';
import { toErrorResponse } from '../net/http-errors.js';
import { Health } from '../http/health.js';
import type { AdminBootstrap } from '../auth/authz-bootstrap.js';
import type { DocumentStore } from '../documents/documents.js';
import type { QueryTasks } from '../tasks/query-tasks.js';
import { adminBootstrap, buildParts, requestHandler, type HostParts } from './cluster.js';
import { openLocalState } from './local.js';
import { acquireLock, type Lock } from './sandbox-lock.js';
import { loadServiceModules } from './service-modules.js';

export interface HostOptions {
  /** Services besides the built-in ones (and besides those `config.services` names). */
  services?: (ServiceDefinition<JsonObject> | StatelessServiceDefinition)[];
  clock?: Clock;
}

const MAINTENANCE_INTERVAL_MS = 1000;
/** How long a stopping host lets open connections finish before it closes them. */
const STOP_GRACE_MS = 2000;

/** A host's parts besides its local state, as Host keeps them. */
export type HostCluster = HostParts & { admin?: AdminBootstrap };

export class Host {
  private stopping: Promise<void> | undefined;
  private resolveStopped!: () => void;
  /** Resolves once the host has stopped, whoever asked. */
  readonly stopped = new Promise<void>((r) => (this.resolveStopped = r));
  private timer: NodeJS.Timeout | undefined;
  private lastExpiryMicros = 0;
  readonly id: string;
  readonly dir: string;
  readonly logger: Logger;
  readonly index: DocumentIndex;
  private readonly wal: WriteAheadLog;
  /** Snapshots and log compaction (checkpoints.ts); tests call its snapshot() to take one now. */
  readonly checkpoints: Checkpointer;
  private readonly store: DocumentStore;
  private readonly queries: QueryTasks;

  private constructor(
    readonly config: Config,
    local: { id: string; dir: string; logger: Logger; index: DocumentIndex; wal: WriteAheadLog; checkpoints: Checkpointer },
    private readonly listeners: Listeners,
    private readonly lock: Lock,
    private readonly clock: Clock,
    private readonly startedMicros: number,
    readonly cluster: HostCluster,
    private readonly ops: { metrics: Metrics; health: Health },
  ) {
    this.id = local.id;
    this.dir = local.dir;
    this.logger = local.logger;
    this.index = local.index;
    this.wal = local.wal;
    this.checkpoints = local.checkpoints;
    this.store = cluster.store;
    this.queries = cluster.queries;
  }

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
    const fromModules = await loadServiceModules(config.services ?? []);
    const metrics = new Metrics();
    const health = new Health();
    // Requests that arrive before the handler exists: probes are answered at once, others get
    // 503 while the log is replayed and wait in `early` for the few moments after it.
    let handler: ((req: IncomingMessage, res: ServerResponse) => void) | undefined;
    let replayed = false;
    const early: Array<() => void> = [];
    let listeners: Listeners | undefined;
    const local = await openLocalState(config, dir, clock, [...(opts.services ?? []), ...fromModules], async (tls) => {
      // Listen before the replay: with --port=0 the group references need the port the OS picked,
      // and probes see a recovering host instead of a refused connection.
      listeners = await Listeners.open({
        port: config.port,
        securePort: config.securePort,
        bindAddress: config.bindAddress,
        tls: tls?.server,
        handler: (req, res) => {
          if (handler) return handler(req, res);
          if (health.handle(req, res)) return;
          if (!replayed) return answerStarting(res);
          early.push(() => handler!(req, res));
        },
      });
      opened.listeners = listeners;
    });
    replayed = true;
    const { logger } = local;
    local.wal.observe(metrics.logObserver(logger, config.fsyncWarningThresholdMs));
    const startedMicros = clock.nowMicros();
    if (!listeners) throw invariantError('the listeners open before the log is replayed');
    const uri = config.publicUri ?? defaultUri(config.bindAddress, listeners);

    // The host exists only once its parts do; until then nothing can ask it for its state or to stop.
    let host: Host | undefined;
    const ops = { metrics, health };
    const parts = await buildParts(
      config,
      local,
      clock,
      uri,
      (e) => {
        logger.fatal({ err: e }, 'the write-ahead log failed; stopping the host');
        void host?.stop();
      },
      ops,
    );
    handler = requestHandler(
      config,
      local,
      parts,
      clock,
      { hostState: () => host!.hostState(), stop: () => void host?.stop(), uri: () => uri },
      ops,
    );
    const admin = adminBootstrap(config, local, parts, uri);
    host = new Host(config, local, listeners, lock, clock, startedMicros, { ...parts, admin }, ops);
    for (const run of early.splice(0)) run();
    admin?.start();
    host.timer = setInterval(() => host!.maintain(), MAINTENANCE_INTERVAL_MS);
    host.timer.unref();
    local.checkpoints.start();
    host.logStarted(local.tls?.summary);
    return host;
  }

  private logStarted(tls: { subject: unknown; validTo: unknown; caCount: number } | undefined): void {
    const on = this.listeners.all.map((l) => `${this.config.bindAddress}:${l.port}${l.scheme === 'https' ? ' (https)' : ''}`).join(' and ');
    if (tls)
      this.logger.info(
        {
          certificate: tls.subject,
          validTo: tls.validTo,
          caFileCertificates: tls.caCount,
          sslClientAuthMode: this.config.sslClientAuthMode,
        },
        'HTTPS on',
      );
    this.logger.info({ uri: this.uri, sandbox: this.dir }, `ServiceHost/${this.id} listening on ${on}`);
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
      logStats: { ...this.wal.stats(), firstSeq: this.wal.firstSeq },
      snapshotStats: { ...this.checkpoints.stats },
      indexStats: this.index.stats() as unknown as JsonObject,
      peerStats: { ...this.cluster.peers.stats },
      synchStats: { ...this.cluster.synchronizer.stats },
      leaseStats: { ...this.cluster.synchronizer.lease.stats },
      forwardStats: { ...this.cluster.forwarder.stats },
      replicationStats: { ...this.cluster.replicator.stats },
      effectStats: { ...this.cluster.effects.stats },
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

  /**
   * Graceful stop: the peers are told first (they mark this host UNAVAILABLE and route around it
   * at once rather than after a probe deadline), then no new requests, accepted writes finish and
   * are flushed, the log closes.
   */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      this.logger.info('stopping');
      this.ops.health.stop();
      // Leaving changes the membership this host sees; a pass started by that change would take
      // links over (and log new epochs) on a host that is going away. No pass starts from here.
      // Reads from this host's copies end before its peers are told they may promise its links away.
      await this.cluster.synchronizer.lease.release();
      // No more grants; once the given ones ran out a clean stop is marked (no lease wait at the next start).
      const grantsEnded = this.cluster.synchronizer.lease.stopGranting();
      const passesStopped = this.cluster.synchronizer.stop();
      await this.cluster.groups.leave();
      if (this.timer) clearInterval(this.timer);
      this.cluster.selectors.stop();
      this.cluster.tasks.stop();
      this.cluster.effects.stop();
      this.cluster.watches.stop();
      this.queries.stop();
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
      await passesStopped;
      await this.cluster.groups.stop();
      await this.cluster.peers.close();
      await this.checkpoints.stop();
      await this.wal.close();
      await grantsEnded;
      await this.cluster.promises.markCleanStop().catch((e: unknown) => this.logger.warn({ err: String(e) }, 'no clean stop marked'));
      await this.cluster.promises.close();
      await this.cluster.unconfirmed.close();
      await this.lock.release();
      this.ops.metrics.stop();
      this.logger.info('stopped');
      this.resolveStopped();
    })();
    return this.stopping;
  }
}

/** A request that came while the log is replayed: 503, come back when /readyz says 200. */
function answerStarting(res: ServerResponse): void {
  const { status, body } = toErrorResponse(
    new KryptonError('STARTING', 'the host is starting: its log is being recovered; GET /readyz answers 200 once it serves'),
  );
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
    'retry-after': '1',
  });
  res.end(text);
}

/** http:// when plain HTTP is on (as Xenon), https:// otherwise. */
function defaultUri(bindAddress: string, l: Listeners): string {
  const listener = l.http ?? l.https!;
  const host = bindAddress.includes(':') ? `[${bindAddress}]` : bindAddress;
  return `${listener.scheme}://${host}:${listener.port}`;
}
