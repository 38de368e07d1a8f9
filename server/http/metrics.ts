/**
 * GET /metrics (Prometheus' text format) and the figures it reads from the host's parts at
 * scrape time: the log's, the index's, membership, parked requests, forwarding, replication lag,
 * synchronization and peer traffic. The instruments updated as things happen are in
 * server/base/metrics.ts; this file also counts every HTTP request by verb, factory and status
 * when it is answered. docs/metrics.md lists every metric; test/server/metrics.test.ts checks
 * that each one is there and moves.
 */

import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import { KryptonError } from '../../lib/errors.js';
import { NODE_STATUSES } from '../../lib/group/types.js';
import type { ServiceRegistry } from '../../lib/service.js';
import type { DocumentIndex } from '../../index/views.js';
import type { WriteAheadLog } from '../../wal/log.js';
import type { Metrics } from '../base/metrics.js';
import type { Groups } from '../membership/group-set.js';
import type { Selectors } from '../membership/selectors.js';
import { toErrorResponse } from '../net/http-errors.js';
import type { PeerClient } from '../net/peers.js';
import type { Forwarder } from '../routing/forwarder.js';
import type { Replicator } from '../replication/replicator.js';
import type { Synchronizer } from '../synch/synchronizer.js';

export const METRICS_PATH = '/metrics';

/** Route families for paths that are not a registered factory or its child: a bounded label set. */
const FAMILIES = [
  '/core/management',
  '/core/node-groups',
  '/core/node-selectors',
  '/core/query-tasks',
  '/core/local-query-tasks',
  '/core/query-page',
  '/core/ui',
  '/core/authn',
  METRICS_PATH,
  '/livez',
  '/readyz',
];

/** What the metrics read of the host's snapshots and quota (host/checkpoints.ts). */
export interface CheckpointFigures {
  readonly stats: { snapshots: number; lastSnapshotSeq: number; segmentsRemoved: number };
  diskBytes(): number;
  snapshotBytes(): number;
  quotaBytes(): number;
}

export interface ScrapedParts {
  wal: WriteAheadLog;
  checkpoints: CheckpointFigures;
  index: DocumentIndex;
  groups: Groups;
  selectors: Selectors;
  forwarder: Forwarder;
  replicator: Replicator;
  synchronizer: Synchronizer;
  peers: PeerClient;
}

/** Registers the figures read at scrape time. */
export function registerScraped(m: Metrics, p: ScrapedParts): void {
  m.gauge('krypton_log_bytes', 'Bytes in the log segments', () => p.wal.stats().bytes);
  m.gauge('krypton_log_segments', 'Log segment files', () => p.wal.stats().segments);
  m.gauge('krypton_log_last_seq', 'Sequence number of the latest record appended', () => p.wal.lastSeq);
  m.total('krypton_log_appends_total', 'Records made durable since the host started', () => p.wal.stats().appends);
  m.total('krypton_log_fsyncs_total', 'Durable writes (group commits) since the host started', () => p.wal.stats().syncs);
  m.total('krypton_snapshots_total', 'Snapshots of the index written since the host started', () => p.checkpoints.stats.snapshots);
  m.gauge(
    'krypton_snapshot_last_seq',
    'Log seq the newest snapshot covers (loaded at start or written since)',
    () => p.checkpoints.stats.lastSnapshotSeq,
  );
  m.gauge('krypton_snapshot_bytes', 'Bytes of the snapshots kept', () => p.checkpoints.snapshotBytes());
  m.total(
    'krypton_log_segments_removed_total',
    'Log segments compaction removed since the host started',
    () => p.checkpoints.stats.segmentsRemoved,
  );
  m.gauge('krypton_disk_bytes', 'Bytes of log segments and snapshots, what --maxDiskBytes counts', () => p.checkpoints.diskBytes());
  m.gauge('krypton_disk_quota_bytes', 'The --maxDiskBytes quota (0: none)', () => p.checkpoints.quotaBytes());

  m.gauge('krypton_index_links', 'Links (documents, deleted ones included) the index holds', () => p.index.stats().links);
  m.gauge('krypton_index_versions', 'Document versions the index retains', () => p.index.stats().versions);

  m.labelledGauge('krypton_membership_members', 'Members of the default node group by status', ['status'], () => {
    const counts = new Map<string, number>(NODE_STATUSES.map((s) => [s, 0]));
    for (const n of Object.values(p.groups.default.group.nodes)) counts.set(n.status, (counts.get(n.status) ?? 0) + 1);
    return [...counts].map(([status, n]) => [{ status }, n]);
  });
  m.gauge('krypton_membership_available', '1 while the default node group is available (owner-selected requests run), else 0', () =>
    p.selectors.available ? 1 : 0,
  );
  m.gauge('krypton_membership_quorum', 'Membership quorum this host holds for the default group', () => {
    const g = p.groups.default.group;
    return g.nodes[g.documentOwner ?? '']?.membershipQuorum ?? 1;
  });
  m.gauge('krypton_parked_requests', 'Owner-selected requests parked while the node group is unavailable', () => p.selectors.parkedCount);

  m.total('krypton_forwarded_requests_total', 'Requests this host forwarded to their owner', () => p.forwarder.stats.requests);
  m.total('krypton_forward_batches_total', 'Forwarded batches this host sent (one HTTP request each)', () => p.forwarder.stats.batches);

  m.total('krypton_replication_batches_total', 'Replication batches this host sent as owner', () => p.replicator.stats.batches);
  m.total('krypton_replication_records_total', 'Records this host shipped to replicas as owner', () => p.replicator.stats.records);
  m.labelledGauge('krypton_replication_lag_records', 'Records queued or in flight to a replica, per peer', ['peer'], () =>
    p.replicator.behind().map((b) => [{ peer: m.peerLabel(b.url) }, b.records]),
  );

  registerSynch(m, p.synchronizer);

  m.total(
    'krypton_peer_requests_total',
    'Requests this host sent to peers (gossip, replication, forwarding, synchronization)',
    () => p.peers.stats.requests,
  );
  m.total(
    'krypton_peer_request_failures_total',
    'Requests to peers that failed at the network level or timed out',
    () => p.peers.stats.failures,
  );
  m.total(
    'krypton_peer_sent_bytes_total',
    'Bytes sent to peers (bodies plus an estimate of request lines and headers)',
    () => p.peers.stats.bytesSent,
  );
  m.total('krypton_peer_received_bytes_total', 'Bytes received from peers', () => p.peers.stats.bytesReceived);
}

/** Synchronization's and the owner lease's figures. */
function registerSynch(m: Metrics, synchronizer: Synchronizer): void {
  const s = synchronizer.stats;
  m.total('krypton_synch_passes_total', 'Synchronization passes run', () => s.passes);
  m.total('krypton_synch_links_checked_total', 'Links synchronization passes checked', () => s.linksChecked);
  m.total('krypton_synch_adopted_total', 'Newer copies this host adopted from peers', () => s.adopted);
  m.total('krypton_synch_pushed_total', 'Copies this host pushed to peers that lacked them', () => s.pushed + s.earlyPushed);
  m.total('krypton_synch_push_failures_total', 'Pushes to peers that failed', () => s.pushFailures);
  m.total(
    'krypton_synch_skipped_no_quorum_total',
    'Links left for a later pass: fewer than a quorum of replicas answered',
    () => s.skippedNoQuorum,
  );
  m.total('krypton_takeovers_total', 'Links this host took over as their new owner (a new epoch)', () => s.takenOver);
  m.total(
    'krypton_takeovers_deferred_total',
    'Takeovers left for a retry (too few promises, or the write missed its quorum)',
    () => s.takeoversDeferred,
  );
  m.total('krypton_synch_handovers_total', 'Copies of moved links handed to their new owner during early passes', () => s.earlyHandedOver);
  m.total('krypton_promises_granted_total', 'Epoch promises this host granted as a replica', () => s.promisesGranted);
  const lease = synchronizer.lease.stats;
  m.total('krypton_lease_renewals_total', 'Owner lease renewals peers answered', () => lease.renewals);
  m.total('krypton_lease_renewal_failures_total', 'Owner lease renewals that failed or timed out', () => lease.renewalFailures);
  m.total('krypton_lease_waits_total', 'Reads (or failed preconditions) that waited for this owner to renew its lease', () => lease.waits);
  m.total('krypton_lease_refused_total', 'Reads answered 503 because this owner held no lease by their deadline', () => lease.refusedReads);
  m.total(
    'krypton_lease_promise_wait_seconds_total',
    'Time promise requests waited for another owner lease to end before this host answered them',
    () => lease.promiseWaitMicros / 1e6,
  );
}

/** The label a path's requests are counted under: its factory, or a route family, or `other`. */
export function factoryLabel(registry: ServiceRegistry, url: string): string {
  const q = url.indexOf('?');
  let path = q < 0 ? url : url.slice(0, q);
  if (path.length > 1 && path.endsWith('/')) path = path.slice(0, -1);
  if (registry.factory(path)) return path;
  const child = registry.forChild(path);
  if (child) return child.def.factoryLink;
  for (const f of FAMILIES) if (path === f || path.startsWith(`${f}/`)) return f;
  // A watch stream or subscription of a document or factory, counted under that factory.
  const sub = path.indexOf('/subscriptions');
  if (sub > 0) return factoryLabel(registry, path.slice(0, sub));
  return path === '/' ? '/' : 'other';
}

/** Counts each request once its answer is written (or the client went away), by verb, factory and status. */
export function countRequest(m: Metrics, registry: ServiceRegistry, req: IncomingMessage, res: ServerResponse): void {
  const started = performance.now();
  res.once('close', () => {
    const verb = req.method ?? 'OTHER';
    const factory = factoryLabel(registry, req.url ?? '');
    const status = res.writableFinished ? String(res.statusCode) : 'aborted';
    m.requests.inc({ verb, factory, status });
    m.requestSeconds.observe({ verb, factory }, (performance.now() - started) / 1000);
  });
}

/** GET /metrics; false for any other path. */
export function serveMetrics(m: Metrics, logger: Logger, req: IncomingMessage, res: ServerResponse): boolean {
  const url = req.url ?? '';
  if (url !== METRICS_PATH && !url.startsWith(`${METRICS_PATH}?`)) return false;
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    const { status, body } = toErrorResponse(new KryptonError('METHOD_NOT_ALLOWED', `Action not supported: ${req.method}`));
    res.writeHead(status, { allow: 'GET, HEAD', 'content-type': 'application/json; charset=utf-8' });
    res.end(JSON.stringify(body));
    return true;
  }
  m.text().then(
    (text) => {
      res.writeHead(200, { 'content-type': m.contentType, 'content-length': Buffer.byteLength(text) });
      res.end(req.method === 'HEAD' ? undefined : text);
    },
    (e: unknown) => {
      logger.error({ err: e }, 'collecting metrics failed');
      res.writeHead(500, { 'content-type': 'text/plain' });
      res.end('collecting metrics failed\n');
    },
  );
  return true;
}
