/**
 * The document pipeline of one host. An owner's write is brought up to date first when it must
 * be (LinkSynchPort), serialized behind earlier writes to the same link, planned by the pure
 * rules in lib/verbs.ts against the index's latest state, fenced by epoch (EpochFencePort),
 * shipped to the replicas (ReplicationPort) while it is appended to the write-ahead log, and
 * applied to the index only once the log says it is durable; the caller gets the new state at
 * quorum. The ports are the cluster's side, named in ports.ts and bound by the host. Bodies are
 * checked by prepareCreate / prepareUpdate on the entry host and applied by create / applyUpdate
 * on the owner, which trusts that check. A replica's side (applyReplicated) appends what an owner
 * shipped unless its epoch is stale. A write's effects (lib/service.ts) are handed to the owner
 * hooks once it holds its quorum. Reads come from the index (reads.ts), on the owner only what its
 * quorum acknowledged (lib/commit.ts) and only under its lease (OwnerLeasePort). A log failure (a
 * write or fsync that did not happen) is fatal: the host stops rather than serve what it cannot keep.
 */

import { CommitTracker } from '../../lib/commit.js';
import type { DedupWindow } from '../../lib/dedup.js';
import type { JsonObject, LinkList, NewLogRecord, ServiceDocument } from '../../lib/document.js';
import type { QueryPlan } from '../../lib/query/spec.js';
import { KryptonError } from '../../lib/errors.js';
import { limits } from '../../lib/limits.js';
import type { Link, NodeId } from '../../lib/ids.js';
import { markOf, takesHistory } from '../../lib/synch/history.js';
import type { RegisteredService, ServiceContext, ServiceRegistry } from '../../lib/service.js';
import { planCreate, planUpdate, withRequestId } from '../../lib/verbs.js';
import type { DocumentIndex } from '../../index/views.js';
import type { WriteAheadLog } from '../../wal/log.js';
import { encodeRecordBody } from '../../wal/record.js';
import type { Clock } from '../base/clock.js';
import { leasedTurn, underLease, type LeaseCheck } from './leased.js';
import { ownerPart, type OwnerPart } from './linearizable.js';
import { OK, failed, fenced } from './replica-fence.js';
import { LinkQueues } from './link-queue.js';
import { prepareCreate } from './prepare.js';
import { listChildren, readCommitted, readLocal } from './reads.js';
import { markUnconfirmed, type UnconfirmedStore } from './unconfirmed.js';
import type { ChangeFeed } from './changes.js';
import { STANDALONE, type ClusterPorts, type ReplicaPromisesPort, type ReplicaResult, type WriteOptions } from './ports.js';

export type { WriteOptions } from './ports.js';

export interface DocumentStoreDeps {
  wal: WriteAheadLog;
  index: DocumentIndex;
  registry: ServiceRegistry;
  clock: Clock;
  hostId: NodeId;
  /** Told of every state the index applies, for direct tasks and watches. */
  changes?: ChangeFeed;
  /** Called once when the log can no longer be trusted; the host stops. */
  onLogFailure(e: unknown): void;
  /** Replication, epoch fencing, link synchronization and owner hooks (ports.ts); STANDALONE when absent. */
  cluster?: ClusterPorts;
  /** Promises this host made as a replica (server/synch/promises.ts): records below them are refused. */
  promises?: ReplicaPromisesPort;
  /** Request ids of recent writes (lib/dedup.ts), filled by the replay and by every append here. */
  dedup?: DedupWindow;
  /** Where the window's "outcome unknown" marks are kept durably (unconfirmed.ts), so they outlive a restart. */
  unconfirmed?: UnconfirmedStore;
  /** Throws DISK_FULL while the host is past its disk quota (host/checkpoints.ts): writes here are refused before anything is logged. */
  checkDisk?: () => void;
}

export class DocumentStore {
  private readonly queues = new LinkQueues();
  private readonly commits = new CommitTracker();
  private readonly cluster: ClusterPorts;

  constructor(private readonly d: DocumentStoreDeps) {
    this.cluster = d.cluster ?? STANDALONE;
  }

  private ctx(): ServiceContext {
    return { nowMicros: this.d.clock.nowMicros(), hostId: this.d.hostId };
  }

  /**
   * Appends a record durably and indexes it; nothing else (no replication). `body`, when the
   * record is already encoded (encodeRecordBody), saves encoding it again for the log. Without
   * `announce` the caller tells the change feed: an owner's write, once its quorum holds it.
   */
  async appendLocal(rec: NewLogRecord, body?: Buffer, announce = true): Promise<ServiceDocument> {
    const logged = await this.logged(this.d.wal.append(rec, body));
    this.d.index.apply(logged);
    this.d.dedup?.note(logged);
    if (announce) this.d.changes?.updated(logged.state);
    return logged.state;
  }

  /**
   * An owner's write: shipped to the replicas while it is appended here, answered and announced
   * once the quorum (this host included) holds it durably: below it the write may be discarded.
   */
  private async commit(svc: RegisteredService, rec: NewLogRecord, opts: WriteOptions): Promise<ServiceDocument> {
    const body = encodeRecordBody(rec); // once, for this host's log and every replica's
    const replicated = this.cluster.replication.start(svc, rec, opts.quorum, body);
    // Reads on this owner answer the state before the write until its quorum acknowledged it.
    if (replicated) this.commits.begin(rec.link, rec.version, this.d.index.latest(rec.link));
    let state: ServiceDocument;
    try {
      state = await this.appendLocal(rec, body, !replicated);
      if (replicated) await replicated();
    } catch (e) {
      // Below its quorum the write may survive or be lost to a takeover: its retry must neither
      // run it again nor answer success (its link is still held, so no retry has looked yet), and
      // no read may answer it until synchronization has decided.
      this.commits.failed(rec.link, rec.version);
      this.cluster.fencing.staleEpoch(rec.link);
      await markUnconfirmed(this.d.dedup, this.d.unconfirmed, rec, this.d.clock.nowMicros());
      throw e;
    }
    this.commits.acknowledged(rec.link, rec.version);
    if (replicated) this.d.changes?.updated(state);
    if (rec.effects) this.cluster.hooks.effects(svc, rec.link, state, rec.effects);
    return state;
  }

  /**
   * The state a write with `requestId` already made to `link`, if it is in the dedup window: a
   * retry is answered with it. Asked with the link held, so an original still running is done.
   * A retry of a write that failed its quorum, or whose original the window may have forgotten,
   * is answered outcome unknown. A write not applied yet passes its fence first.
   */
  private applied(link: Link, opts: WriteOptions): ServiceDocument | undefined {
    const [id, now] = [opts.requestId, this.d.clock.nowMicros()];
    const hit = id === undefined ? undefined : this.d.dedup?.lookup(link, id, now);
    if (!hit) opts.fence?.();
    const forgot = !hit && opts.retry === true && this.d.dedup?.mayHaveForgotten(link, now) === true;
    const why = forgot ? 'is a retry of a write this host may have applied and forgotten' : 'was logged here but did not reach its quorum';
    if (hit?.unconfirmed || forgot)
      throw new KryptonError('REPLICATION_FAILED', `${link}: request ${id} ${why}; whether it took effect is unknown`);
    return hit?.state;
  }

  /**
   * Runs an owner's write `fn` in `link`'s queue once the link needs no synchronization, and checks
   * again when its turn comes only if the link is then in doubt: a write that queued behind one
   * which missed its quorum must not be planned on that doubtful state (a later version of an epoch
   * vouches for those under it, see lib/synch/history.ts), so it leaves the queue, waits for the
   * synchronization and queues again. A link not in doubt is not re-checked, so writes a host takes
   * for itself (`pragma: xn-no-fwd`) are not held behind an ownership they will never have; an
   * `update` needs the link to exist, so it synchronizes as a read does.
   */
  private async ownerWrite<T>(svc: RegisteredService, link: Link, update: boolean, fn: (lease: LeaseCheck) => Promise<T>): Promise<T> {
    this.d.checkDisk?.();
    const since = this.d.clock.nowMicros();
    for (let round = 0; round < limits.ownerWriteSynchRoundsMax; ) {
      const synching = update ? this.cluster.synch.ensureExisting(svc, link) : this.cluster.synch.ensure(svc, link);
      if (synching) await synching;
      const out = await this.queues.run(link, (): Promise<{ wait: Promise<void>; synch: boolean } | { done: T }> => {
        const again = this.commits.unsettled(link) ? this.cluster.synch.ensure(svc, link) : undefined;
        return again ? Promise.resolve({ wait: again, synch: true }) : leasedTurn(fn, () => this.cluster.lease.check(svc, link, since));
      });
      if ('done' in out) return out.done;
      if (out.synch) round++; // a wait for the lease is not a synchronization round
      await out.wait;
    }
    throw new KryptonError('QUORUM_UNAVAILABLE', `${link}: synchronization did not settle it for a write; retry later`);
  }

  /** Runs `fn` after every earlier update of `link` on this host, in order. */
  serialized<T>(link: Link, fn: () => Promise<T>): Promise<T> {
    return this.queues.run(link, fn);
  }

  /**
   * A replica's side of log shipping: each record is appended and indexed unless it is a copy
   * already held (acknowledged again: retries are harmless) or comes from an older epoch than the
   * one held or promised for its link (refused: fencing against a stale owner). The first record of each link
   * with nothing queued on this host goes into one append for the whole batch (one durable write,
   * one wait), its link held until then; the others wait behind their link as any update does.
   */
  async applyReplicated(records: readonly NewLogRecord[], bodies?: readonly Buffer[]): Promise<ReplicaResult[]> {
    const results = new Array<ReplicaResult>(records.length);
    const together: number[] = [];
    const behind: number[] = [];
    const seen = new Set<Link>();
    for (let i = 0; i < records.length; i++) {
      const rec = records[i]!;
      if (seen.has(rec.link) || !this.queues.idle(rec.link)) behind.push(i);
      else {
        const refused = fenced(this.d.index, this.d.promises, rec);
        if (refused) results[i] = refused;
        else together.push(i);
      }
      seen.add(rec.link);
    }
    const waits: Promise<unknown>[] = [];
    if (together.length > 0) {
      const done = this.appendAllLocal(
        together.map((i) => records[i]!),
        together.map((i) => bodies?.[i]),
      ).then(
        () => {
          for (const i of together) results[i] = OK;
        },
        (e: unknown) => {
          for (const i of together) results[i] = failed(e);
        },
      );
      this.queues.holdAll(
        together.map((i) => records[i]!.link),
        done,
      );
      waits.push(done);
    }
    for (const i of behind) {
      const rec = records[i]!;
      waits.push(
        this.queues
          .run(rec.link, async (): Promise<ReplicaResult> => {
            const refused = fenced(this.d.index, this.d.promises, rec);
            if (refused) return refused;
            await this.appendLocal(rec, bodies?.[i]);
            this.d.promises?.get(rec.link); // drops a promise this record spent
            return OK;
          })
          .then(
            (r) => (results[i] = r),
            (e: unknown) => (results[i] = failed(e)),
          ),
      );
    }
    await Promise.all(waits);
    return results;
  }

  /**
   * Older versions of `link` this host lacks (server/synch/history.ts), appended and indexed under
   * the latest state, never as it: in the link's queue, only those still below the latest and not
   * held alike are taken. Noted for dedup, not told to the change feed (it announces new states).
   */
  appendHistory(link: Link, recs: readonly NewLogRecord[]): Promise<number> {
    return this.queues.run(link, async () => {
      const latest = this.d.index.latest(link);
      if (!latest) return 0;
      const top = markOf(latest);
      const wanted = recs.filter((r) => r.link === link && takesHistory(top, this.d.index.version(link, r.version), r));
      if (wanted.length === 0) return 0;
      // Never a history reset: it would drop the versions around it.
      const logged = await this.logged(this.d.wal.appendAll(wanted.map(({ resetHistory: _, ...r }) => r)));
      for (const r of logged) {
        this.d.index.apply(r);
        this.d.dedup?.note(r);
      }
      return logged.length;
    });
  }

  /** A log append's outcome; a failed log stops the host (onLogFailure) and the error goes on to the caller. */
  private async logged<T>(append: Promise<T>): Promise<T> {
    try {
      return await append;
    } catch (e) {
      if (e instanceof KryptonError && e.code === 'LOG_FAILED') this.d.onLogFailure(e);
      throw e;
    }
  }

  /** appendLocal for several records of distinct links: one durable write, then each is indexed in order. */
  private async appendAllLocal(recs: NewLogRecord[], bodies: (Buffer | undefined)[]): Promise<void> {
    const logged = await this.logged(this.d.wal.appendAll(recs, bodies));
    for (const r of logged) {
      this.d.index.apply(r);
      this.d.dedup?.note(r);
      this.d.changes?.updated(r.state);
      // A promise this record spent is dropped now, before an expiry could purge its proof.
      this.d.promises?.get(r.link);
    }
  }

  /**
   * Validates a factory POST body and decides its child link (the client's suffix, or a generated
   * id). The entry host does this once, so a forwarded POST carries the link it was given.
   */
  prepareCreate(svc: RegisteredService, rawBody: unknown, ownedHere?: (link: Link) => boolean): { body: JsonObject; link: Link } {
    return prepareCreate(svc, rawBody, () => this.ctx(), ownedHere);
  }

  /**
   * Factory POST of a body already checked by prepareCreate. Returns the new state (or, for
   * IDEMPOTENT_POST over a live link, the PUT result).
   */
  async create(
    svc: RegisteredService,
    prepared: { body: JsonObject; link: Link },
    opts: { forceIndexUpdate: boolean } & WriteOptions,
  ): Promise<ServiceDocument> {
    const { body, link } = prepared;
    let retried = false;
    const state = await this.ownerWrite(svc, link, false, (lease) => {
      const earlier = this.applied(link, opts);
      if (earlier) {
        retried = true;
        return Promise.resolve(earlier);
      }
      const cur = this.d.index.latest(link);
      const epochFloor = svc.has('REPLICATION') ? this.cluster.fencing.preparedEpoch(link) : undefined;
      const o = epochFloor === undefined ? opts : { ...opts, epochFloor };
      const rec = underLease(() => planCreate(svc, link, body, cur, o, this.ctx()), lease);
      this.cluster.fencing.checkEpoch(svc, link, rec.epoch, cur);
      return this.commit(svc, withRequestId(rec, opts.requestId), opts);
    });
    // A retry's create started nothing: the original's did.
    if (!retried && state.documentUpdateAction === 'POST') this.cluster.hooks.started(svc, link);
    return state;
  }

  /** Validates a child PUT, PATCH or DELETE body (DELETE may have none), once, on the entry host; the owner applies it (applyUpdate). */
  prepareUpdate(svc: RegisteredService, action: 'PUT' | 'PATCH' | 'DELETE', rawBody: unknown): JsonObject | undefined {
    if (rawBody === undefined && action !== 'DELETE') throw new KryptonError('INVALID_BODY', `${action} body is required`);
    return rawBody === undefined ? undefined : svc.parseBody(rawBody);
  }

  /** Child PUT, PATCH or DELETE of a body this host produced itself (a handler's or a task's): checked, then applied. */
  update(
    svc: RegisteredService,
    action: 'PUT' | 'PATCH' | 'DELETE',
    link: Link,
    rawBody: unknown,
    opts: WriteOptions = {},
  ): Promise<ServiceDocument | undefined> {
    return this.applyUpdate(svc, action, link, this.prepareUpdate(svc, action, rawBody), opts);
  }

  /**
   * Child PUT, PATCH or DELETE of a body already checked by prepareUpdate. DELETE of a missing or
   * deleted link answers undefined (200, nothing logged).
   */
  async applyUpdate(
    svc: RegisteredService,
    action: 'PUT' | 'PATCH' | 'DELETE',
    link: Link,
    body: JsonObject | undefined,
    opts: WriteOptions = {},
  ): Promise<ServiceDocument | undefined> {
    return this.ownerWrite(svc, link, true, async (lease) => {
      const earlier = this.applied(link, opts);
      if (earlier) return earlier;
      const cur = this.d.index.latest(link);
      const rec = underLease(() => planUpdate(svc, action, link, cur, body, this.ctx()), lease);
      if (rec) this.cluster.fencing.checkEpoch(svc, link, rec.epoch, cur);
      return rec ? this.commit(svc, withRequestId(rec, opts.requestId), opts) : undefined;
    });
  }

  /**
   * Child GET on the owner: brought up to date from the replicas first when membership moved or
   * its last write missed its quorum, then, under its lease, only what is committed (reads.ts).
   */
  async read(svc: RegisteredService, link: Link, version?: number): Promise<ServiceDocument> {
    if (this.commits.unsettled(link)) this.cluster.fencing.staleEpoch(link); // synchronized before it is read
    const since = this.d.clock.nowMicros();
    for (;;) {
      await this.cluster.synch.ensureExisting(svc, link);
      // Checked in the read's own step, its linearization point (server/synch/lease.ts).
      const leased = this.cluster.lease.check(svc, link, since);
      if (!leased) return readCommitted(this.d.index, this.commits, link, version, this.d.clock.nowMicros());
      await leased;
    }
  }

  /** Child GET from this host's own copy: the latest state, or one retained version. */
  get(link: Link, version?: number): ServiceDocument {
    return readLocal(this.d.index, link, version, this.d.clock.nowMicros());
  }

  /** This owner's part of a linearizable query (linearizable.ts), at its own linearization point. */
  linearizablePart(plan: QueryPlan, owned: (link: Link) => boolean): OwnerPart {
    const d = { index: this.d.index, commits: this.commits, cluster: this.cluster, registry: this.d.registry };
    return ownerPart(d, plan, owned, this.d.clock.nowMicros());
  }

  /** Synchronization found `link`'s latest state held by a quorum, or wrote it there: reads answer it again. */
  settled(link: Link): void {
    this.commits.settled(link);
  }

  /** Factory GET from the local index, only the children `mayRead` lets through when given. */
  list(factoryLink: Link, expand: boolean, mayRead?: (link: Link) => boolean): LinkList {
    return listChildren(this.d.index, this.d.hostId, factoryLink, expand, this.d.clock.nowMicros(), mayRead);
  }

  /** Waits for every update already accepted to finish (used by graceful stop). */
  drain(): Promise<void> {
    return this.queues.drain();
  }
}
