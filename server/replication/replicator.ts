/**
 * Log shipping from an owner to its replicas (Krypton's way): each update's record goes to the
 * peers its selector names, over one ordered channel per peer. A channel keeps at most one
 * request in flight and packs every record that queued up meanwhile into the next one (a msgpack
 * batch), so per-link order holds on every replica and busy periods cost few requests. A record is encoded once (the log's record body, wal/record.ts), whatever the number
 * of replicas, and the owner's and every replica's log frame is built around those same bytes;
 * a batch is a msgpack sequence: a header `{from, count}` then the record bodies. The replica
 * answers a msgpack list of one result per record (peer-endpoints.ts), each `{ok: true}` or
 * `{ok: false, code, message}` with a KryptonError code: STALE_EPOCH when the replica holds or
 * promised a later epoch for the link, which tells the owner's epoch fence (EpochFencePort) to
 * synchronize the link before its next write. The owner decides on that code, never on a status;
 * a batch answered with anything but 200 fails each of its records as PEER_UNAVAILABLE.
 * The owner's own durable append counts as one success; the client is answered when successes
 * reach the quorum, and failed with Xenon's "Success: S, Fail: F" message once they cannot.
 */

import { Packr, Unpackr } from 'msgpackr';
import type { Logger } from 'pino';
import type { JsonObject, NewLogRecord, UpdateAction } from '../../lib/document.js';
import { UPDATE_ACTIONS } from '../../lib/document.js';
import { isErrorCode, KryptonError } from '../../lib/errors.js';
import { isEligibleOwner } from '../../lib/group/rules.js';
import type { NodeGroupState, NodeState } from '../../lib/group/types.js';
import type { NodeId } from '../../lib/ids.js';
import { limits, msFromMicros } from '../../lib/limits.js';
import { type QuorumTracker, replicaSetTracker, successThreshold } from '../../lib/replication/quorum.js';
import { chooseReplicas, type MemberView } from '../../lib/replication/replica-set.js';
import type { RegisteredService } from '../../lib/service.js';
import { BODY_KEYS, UNPACK_OPTIONS, encodeRecordBody } from '../../wal/record.js';
import type { EpochFencePort, ReplicaResult } from '../documents/ports.js';
import { statusOf } from '../net/http-errors.js';
import type { PeerClient } from '../net/peers.js';
import { originOf } from '../routing/routing.js';
import type { Selectors } from '../membership/selectors.js';
import { quorumWrite } from './quorum-write.js';
import type { ReplicationObserver } from '../base/metrics.js';

export const REPLICATION_CONTENT_TYPE = 'application/x-msgpack';
const packr = new Packr({ useRecords: false });
// The log's own decode options, so a record reads back the same from the wire as from disk.
const unpackr = new Unpackr(UNPACK_OPTIONS);

export type { ReplicaResult };

export interface ReplicationBatch {
  from: NodeId;
  records: NewLogRecord[];
  /** Each record's body as it came (encodeRecordBody's bytes), for the replica's log frames. */
  bodies?: Buffer[];
}

export function encodeBatch(b: ReplicationBatch): Buffer {
  return batchOf(b.from, b.bodies ?? b.records.map(encodeRecordBody));
}

/** A header `{from, count}`, then the records' bodies, each a msgpack value of its own. */
function batchOf(from: string, bodies: readonly Buffer[]): Buffer {
  return Buffer.concat([packr.pack({ from, count: bodies.length }), ...bodies]);
}

export function encodeResults(results: readonly ReplicaResult[]): Buffer {
  return packr.pack(results);
}

/** A replica's answer to a batch of `count` records; anything else throws. */
export function decodeResults(buf: Buffer, count: number): ReplicaResult[] {
  const raw = unpackr.unpack(buf) as unknown;
  if (!Array.isArray(raw) || raw.length !== count)
    throw new KryptonError('PEER_UNAVAILABLE', `replica answered ${Array.isArray(raw) ? raw.length : 'no'} results for ${count} records`);
  return raw.map((r: unknown) => {
    const o = (r && typeof r === 'object' ? r : {}) as Partial<ReplicaResult>;
    // A replica stopping is one replica unavailable: only this host's own stop fails its writes at
    // once (quorum-write.ts), so its code must not travel.
    return o.ok === true
      ? { ok: true }
      : {
          ok: false,
          code: isErrorCode(o.code) && o.code !== 'SHUTTING_DOWN' ? o.code : 'PEER_UNAVAILABLE',
          message: typeof o.message === 'string' ? o.message : 'malformed result',
        };
  });
}

const OPTIONAL_KEYS: readonly string[] = ['resetHistory', 'requestId'];
const REQUIRED_KEYS = BODY_KEYS.filter((k) => !OPTIONAL_KEYS.includes(k)).join();

/**
 * Decodes and checks a batch from the network: anything malformed is a 400, never a crash. A
 * record's keys must be exactly the log's, in its order, so its bytes can be the body of the
 * replica's own log frame.
 */
export function decodeBatch(buf: Buffer): Required<ReplicationBatch> {
  const bad = (why: string) => new KryptonError('INVALID_BODY', `invalid replication batch: ${why}`);
  let header: { from?: unknown; count?: unknown } | undefined;
  const records: NewLogRecord[] = [];
  const bodies: Buffer[] = [];
  try {
    unpackr.unpackMultiple(buf, (value: unknown, start?: number, end?: number) => {
      if (header === undefined) {
        if (!value || typeof value !== 'object') throw bad('the header is not a map');
        header = value as { from?: unknown; count?: unknown };
        if (typeof header.from !== 'string' || !Number.isInteger(header.count)) throw bad('from and count are required');
        if ((header.count as number) > limits.replicationBatchRecordsMax)
          throw bad(`more than ${limits.replicationBatchRecordsMax} records`);
        return;
      }
      if (records.length >= (header.count as number)) throw bad(`more records than the ${String(header.count)} announced`);
      const r = value as Record<string, unknown>;
      const state = r?.state as JsonObject | undefined;
      if (
        !r ||
        typeof r !== 'object' ||
        typeof r.link !== 'string' ||
        !UPDATE_ACTIONS.includes(r.action as UpdateAction) ||
        !Number.isInteger(r.version) ||
        !Number.isInteger(r.epoch) ||
        typeof r.timeMicros !== 'number' ||
        (r.resetHistory !== undefined && typeof r.resetHistory !== 'boolean') ||
        (r.requestId !== undefined && (typeof r.requestId !== 'string' || r.requestId.length > limits.requestIdCharsMax)) ||
        !state ||
        typeof state !== 'object' ||
        Array.isArray(state) ||
        state.documentSelfLink !== r.link ||
        state.documentVersion !== r.version ||
        Object.keys(r)
          .filter((k) => !OPTIONAL_KEYS.includes(k))
          .join() !== REQUIRED_KEYS
      ) {
        throw bad(`record for ${String(r?.link)} is malformed`);
      }
      records.push(r as unknown as NewLogRecord);
      bodies.push(buf.subarray(start, end));
    });
  } catch (e) {
    if (e instanceof KryptonError) throw e;
    throw new KryptonError('INVALID_BODY', `replication batch is not msgpack: ${(e as Error).message}`);
  }
  if (header === undefined) throw bad('empty');
  if (records.length !== header.count) throw bad(`${records.length} records where ${String(header.count)} were announced`);
  return { from: header.from as string, records, bodies };
}

interface Queued {
  /** The record's body (encodeRecordBody). */
  bytes: Buffer;
  resolve(r: ReplicaResult): void;
}

export interface ReplicationStats {
  /** Batches sent to replicas and the records they carried: records / batches is the batching achieved. */
  batches: number;
  records: number;
}

/** One ordered pipe to one peer. */
class PeerChannel {
  private readonly queue: Queued[] = [];
  private pumping = false;
  private inFlight = 0;

  constructor(
    private readonly url: string,
    private readonly selfId: NodeId,
    private readonly peers: PeerClient,
    private readonly timeoutMs: number,
    private readonly stats: ReplicationStats,
    private readonly observer?: ReplicationObserver,
  ) {}
  get behind(): number {
    return this.queue.length + this.inFlight;
  }

  send(bytes: Buffer): Promise<ReplicaResult> {
    if (this.queue.length >= limits.replicationQueueRecordsMax) {
      return Promise.resolve({ ok: false, code: 'LIMIT_EXCEEDED', message: `replication queue to ${this.url} is full` });
    }
    return new Promise((resolve) => {
      this.queue.push({ bytes, resolve });
      if (!this.pumping) void this.pump();
    });
  }

  private async pump(): Promise<void> {
    this.pumping = true;
    try {
      while (this.queue.length) {
        // Let appends made in this turn of the event loop join the batch.
        await null;
        let count = 0;
        let bytes = limits.replicationBatchHeaderBytes;
        while (count < this.queue.length && count < limits.replicationBatchRecordsMax) {
          const size = this.queue[count]!.bytes.length;
          if (count > 0 && bytes + size > limits.replicationBatchBytesMax) break;
          bytes += size;
          count++;
        }
        const batch = this.queue.splice(0, count);
        this.stats.batches++;
        this.stats.records += count;
        const started = performance.now();
        this.inFlight = count;
        let results: ReplicaResult[];
        try {
          const r = await this.peers.request(this.url, {
            method: 'POST',
            body: batchOf(
              this.selfId,
              batch.map((q) => q.bytes),
            ),
            headers: { 'content-type': REPLICATION_CONTENT_TYPE, pragma: 'xn-rpl' },
            timeoutMs: this.timeoutMs,
          });
          if (r.status >= 300) {
            const msg = `status ${r.status}: ${r.body.toString('utf8').slice(0, limits.peerReplyQuotedCharsMax)}`;
            results = batch.map(() => ({ ok: false, code: 'PEER_UNAVAILABLE', message: msg }));
          } else {
            results = decodeResults(r.body, batch.length);
          }
        } catch (e) {
          // A closed client is this host stopping: no retry can reach the replica, so the write
          // fails at once instead of retrying until its deadline and keeping the process alive.
          const code = this.peers.isClosed ? 'SHUTTING_DOWN' : 'PEER_UNAVAILABLE';
          results = batch.map(() => ({ ok: false, code, message: (e as Error).message }));
        }
        this.inFlight = 0;
        this.observer?.batchSent(this.url, count, (performance.now() - started) / 1000, results);
        for (const [i, q] of batch.entries()) q.resolve(results[i]!);
      }
    } finally {
      this.pumping = false;
    }
  }
}

export interface ReplicaSet {
  /** Members the record goes to, self excluded. */
  readonly targets: readonly NodeState[];
  /** Members that count but cannot be reached (UNAVAILABLE, REPLACED): immediate failures. */
  readonly unreachable: number;
  /** Replica set size, the owner included. */
  readonly eligible: number;
  readonly membershipQuorum: number;
}

/** How lib/replication/replica-set.ts sees a member of the group. */
const MEMBERS: MemberView<NodeState> = {
  id: (n) => n.id,
  ownerEligible: isEligibleOwner,
  reachable: (n) => n.status !== 'UNAVAILABLE' && n.status !== 'REPLACED',
};

export class Replicator {
  private readonly channels = new Map<string, PeerChannel>();
  /** replicaSet's answer for selectors without a factor, for one group state. */
  private allMembers: { group: NodeGroupState; selectorLink: string; set: ReplicaSet } | undefined;
  readonly stats: ReplicationStats = { batches: 0, records: 0 };
  private opCounter = 0;

  constructor(
    private readonly d: {
      selectors: Selectors;
      peers: PeerClient;
      hostId: NodeId;
      logger: Logger;
      operationTimeoutMicros: number;
      /** Told when a replica refused a record for its epoch (it promised a later one to another owner). */
      fencing: Pick<EpochFencePort, 'staleEpoch'>;
      observer?: ReplicationObserver;
    },
  ) {}
  /** Records queued or in flight per replica: how far each is behind this owner (the metrics' lag). */
  behind(): { url: string; records: number }[] {
    return [...this.channels].map(([url, c]) => ({ url, records: c.behind }));
  }

  /**
   * Who holds `link` under `selectorLink`: every PEER member, or the N closest for a factor N.
   * Without a factor the answer is the same for every link, so it is computed once per group
   * state (each membership step makes a new state object) and shared: callers must not change it.
   */
  replicaSet(selectorLink: string, link: string): ReplicaSet {
    const group = this.d.selectors.groupState;
    const spec = this.d.selectors.spec(selectorLink);
    if (!spec?.replicationFactor) {
      if (this.allMembers?.group !== group || this.allMembers.selectorLink !== selectorLink) {
        this.allMembers = { group, selectorLink, set: this.computeReplicaSet(selectorLink, link) };
      }
      return this.allMembers.set;
    }
    return this.computeReplicaSet(selectorLink, link);
  }

  private computeReplicaSet(selectorLink: string, link: string): ReplicaSet {
    const group = this.d.selectors.groupState;
    const spec = this.d.selectors.spec(selectorLink);
    const membershipQuorum = group.nodes[this.d.hostId]?.membershipQuorum ?? 1;
    const members = Object.values(group.nodes).filter((n) => !n.options.includes('OBSERVER'));
    const { targets, unreachable, eligible } = chooseReplicas(link, this.d.hostId, members, MEMBERS, spec?.replicationFactor);
    return { targets, unreachable, eligible, membershipQuorum };
  }

  channel(node: NodeState, selectorLink: string): PeerChannel {
    const url = `${originOf(node.groupReference)}${selectorLink}/replication`;
    let c = this.channels.get(url);
    if (!c) {
      c = new PeerChannel(
        url,
        this.d.hostId,
        this.d.peers,
        msFromMicros(this.d.operationTimeoutMicros / limits.replicationTimeoutDivisor),
        this.stats,
        this.d.observer,
      );
      this.channels.set(url, c);
    }
    return c;
  }

  /**
   * Starts shipping `rec` to its replicas; the returned function, called once the owner's own
   * append is durable, resolves at quorum or throws REPLICATION_FAILED.
   */
  start(svc: RegisteredService, rec: NewLogRecord, requested?: number | 'all', body?: Buffer): (() => Promise<void>) | undefined {
    if (!svc.has('REPLICATION')) return undefined;
    const set = this.replicaSet(svc.def.nodeSelector, rec.link);
    if (set.eligible === 1) return undefined;
    let threshold: number;
    try {
      threshold = successThreshold({ eligible: set.eligible, membershipQuorum: set.membershipQuorum, requested, action: rec.action });
    } catch (e) {
      throw new KryptonError('INVALID_ARGUMENT', (e as Error).message);
    }
    const bytes = body ?? encodeRecordBody(rec);
    return quorumWrite({
      set,
      threshold,
      requested,
      rec,
      opId: `${this.d.hostId}-${++this.opCounter}`,
      deadlineMs: performance.now() + msFromMicros(this.d.operationTimeoutMicros),
      send: (n) => this.channel(n, svc.def.nodeSelector).send(bytes),
      now: () => this.replicaSet(svc.def.nodeSelector, rec.link),
      groupHasQuorum: () => this.d.selectors.available,
      staleEpoch: (link) => this.d.fencing.staleEpoch(link),
      logger: this.d.logger,
    });
  }

  /**
   * Ships a record to its replicas and resolves once enough of them hold it that, with this host
   * counted, the quorum is met; the caller appends it locally only after that. Used for
   * takeovers, so a new epoch never exists on the new owner alone.
   */
  async shipBeforeCommit(svc: RegisteredService, rec: NewLogRecord, body?: Buffer): Promise<void> {
    const set = this.replicaSet(svc.def.nodeSelector, rec.link);
    if (set.eligible === 1) return;
    const threshold = successThreshold({ eligible: set.eligible, membershipQuorum: set.membershipQuorum, action: rec.action });
    // This host is the one success not counted here.
    const tracker = replicaSetTracker(set, threshold, true);
    // Every replica is sent the record; the wait ends at quorum (at once when this host is enough).
    await new Promise<void>((resolve, reject) => {
      const check = () => {
        if (tracker.outcome === 'succeeded') resolve();
        else if (tracker.outcome === 'failed')
          reject(
            new KryptonError(
              'REPLICATION_FAILED',
              tracker.message(`takeover ${rec.action}`, rec.link, `${this.d.hostId}-${++this.opCounter}`),
            ),
          );
      };
      check();
      this.fanOut(set, svc.def.nodeSelector, rec, body ?? encodeRecordBody(rec), tracker, check);
    });
  }

  /** Sends `rec` to every reachable replica, counting each answer on `tracker`, then calls `check`. */
  private fanOut(set: ReplicaSet, selectorLink: string, rec: NewLogRecord, bytes: Buffer, tracker: QuorumTracker, check: () => void): void {
    for (const n of set.targets) {
      void this.channel(n, selectorLink)
        .send(bytes)
        .then((r) => {
          if (r.ok) tracker.success();
          else {
            const code = r.code ?? 'PEER_UNAVAILABLE';
            tracker.failure(statusOf(code));
            if (code === 'STALE_EPOCH') this.d.fencing.staleEpoch(rec.link);
            this.d.logger.warn({ peer: n.id, link: rec.link, code, message: r.message }, 'replica refused or unreachable');
          }
          check();
        });
    }
  }

  /** Sends a record to one replica outside any client's quorum (synchronization pushes). */
  push(node: NodeState, selectorLink: string, rec: NewLogRecord): Promise<ReplicaResult> {
    return this.channel(node, selectorLink).send(encodeRecordBody(rec));
  }
}
