/**
 * What the document pipeline needs from the cluster, as small interfaces the cluster parts
 * implement (structurally: they never import this file to do so): shipping an owner's record to
 * its replicas, fencing an owner's write by epoch, bringing a link up to date before its owner
 * acts on it, the owner lease a read from its own copy needs, and the owner-only start hook.
 * documents/ names these and imports none of replication/, synch/ or routing/, so the rooms after
 * it depend on it and never the reverse.
 *
 * The synchronizer and the owner hooks write through the store, so they can only be built after
 * it. The host therefore gives the store a ClusterPortsHandle when it builds it and binds the
 * handle once, as soon as those parts exist and before the first request is let in; using it
 * unbound, or binding it twice, is a bug and says so. A store built with no cluster (a lone
 * store in a test or a tool) gets STANDALONE: nothing to replicate, synchronize or fence.
 *
 * A replica's answer to one shipped record is a ReplicaResult; a refusal carries a KryptonError
 * code (STALE_EPOCH when the replica holds or promised a later epoch), and the owner decides on
 * the code, never on an HTTP status.
 */

import type { NewLogRecord, ServiceDocument } from '../../lib/document.js';
import { invariant, type ErrorCode } from '../../lib/errors.js';
import type { Epoch, Link } from '../../lib/ids.js';
import type { Effect, RegisteredService } from '../../lib/service.js';
import type { Promised } from '../../lib/synch/promise.js';

/** One replica's answer to one record: `ok`, or refused with a code and a message. */
export interface ReplicaResult {
  ok: boolean;
  code?: ErrorCode;
  message?: string;
}

/** Ships owner writes to replicas (Replicator). */
export interface ReplicationPort {
  /**
   * Starts shipping `rec` (already encoded as `body`); the function returned, called once the
   * owner's own append is durable, resolves at quorum or throws. Undefined: nothing to wait for.
   */
  start(svc: RegisteredService, rec: NewLogRecord, quorum: number | 'all' | undefined, body: Buffer): (() => Promise<void>) | undefined;
}

/** The owner's epoch fence (Synchronizer). */
export interface EpochFencePort {
  /** Throws STALE_EPOCH for a write planned at `epoch` on `base` that this host may not log. */
  checkEpoch(svc: RegisteredService, link: Link, epoch: Epoch, base: ServiceDocument | undefined): void;
  /** The epoch a creation of `link` is stamped with, when this host prepared one. */
  preparedEpoch(link: Link): Epoch | undefined;
  /** A replica refused this host's record of `link` for its epoch (STALE_EPOCH). */
  staleEpoch(link: Link): void;
}

/** Brings a link up to date from its replicas before the owner acts on it (Synchronizer). */
export interface LinkSynchPort {
  /** Undefined when there is nothing to do, so the common write does not wait a tick. */
  ensure(svc: RegisteredService, link: Link): Promise<void> | undefined;
  /** ensure() before a read or an update: also for a link held nowhere here (Synchronizer.ensureExisting). */
  ensureExisting(svc: RegisteredService, link: Link): Promise<void> | undefined;
  /** Whether some owned link may still need synchronizing (Synchronizer.unsynchronized). */
  unsynchronized(): boolean;
}

/** Owner-only work after a create (OwnerHooks). */
export interface OwnerHooksPort {
  started(svc: RegisteredService, link: Link): void;
  /** An owner's update reached its quorum and its handler asked for `effects` (lib/service.ts). */
  effects(svc: RegisteredService, link: Link, state: ServiceDocument, effects: readonly Effect[]): void;
}

/** The owner lease (OwnerLease, server/synch/lease.ts): whether this owner may serve a link from its own copy. */
export interface OwnerLeasePort {
  /**
   * Undefined when it may, now: the caller reads in the same synchronous step. Otherwise a promise
   * to wait on before asking again, which rejects (503) once the request's time since
   * `sinceMicros` is spent.
   */
  check(svc: RegisteredService, link: Link, sinceMicros: number): Promise<void> | undefined;
  /** Whether this host may answer `link` from its own copy now. */
  holds(svc: RegisteredService, link: Link): boolean;
}

/** Promises this host made as a replica (PromiseStore): records below them are refused. */
export interface ReplicaPromisesPort {
  get(link: Link): Promised | undefined;
}

export interface ClusterPorts {
  replication: ReplicationPort;
  fencing: EpochFencePort;
  synch: LinkSynchPort;
  hooks: OwnerHooksPort;
  lease: OwnerLeasePort;
}

/** The ports of a store that is not part of a cluster. */
export const STANDALONE: ClusterPorts = {
  replication: { start: () => undefined },
  fencing: { checkEpoch: () => undefined, preparedEpoch: () => undefined, staleEpoch: () => undefined },
  synch: { ensure: () => undefined, ensureExisting: () => undefined, unsynchronized: () => false },
  hooks: { started: () => undefined, effects: () => undefined },
  lease: { check: () => undefined, holds: () => true },
};

/** ClusterPorts bound once, after the parts built on the store exist (see the file comment). */
export class ClusterPortsHandle implements ClusterPorts {
  private parts: ClusterPorts | undefined;

  bind(parts: ClusterPorts): void {
    invariant(this.parts === undefined, 'cluster ports bound twice');
    this.parts = parts;
  }

  private get bound(): ClusterPorts {
    invariant(this.parts !== undefined, 'cluster ports used before the host bound them');
    return this.parts;
  }

  readonly replication: ReplicationPort = { start: (svc, rec, quorum, body) => this.bound.replication.start(svc, rec, quorum, body) };

  readonly fencing: EpochFencePort = {
    checkEpoch: (svc, link, epoch, base) => this.bound.fencing.checkEpoch(svc, link, epoch, base),
    preparedEpoch: (link) => this.bound.fencing.preparedEpoch(link),
    staleEpoch: (link) => this.bound.fencing.staleEpoch(link),
  };

  readonly synch: LinkSynchPort = {
    ensure: (svc, link) => this.bound.synch.ensure(svc, link),
    ensureExisting: (svc, link) => this.bound.synch.ensureExisting(svc, link),
    unsynchronized: () => this.bound.synch.unsynchronized(),
  };

  readonly hooks: OwnerHooksPort = {
    started: (svc, link) => this.bound.hooks.started(svc, link),
    effects: (svc, link, state, effects) => this.bound.hooks.effects(svc, link, state, effects),
  };

  readonly lease: OwnerLeasePort = {
    check: (svc, link, since) => this.bound.lease.check(svc, link, since),
    holds: (svc, link) => this.bound.lease.holds(svc, link),
  };
}

/** How an owner's write is to be made (DocumentStore.create, applyUpdate). */
export interface WriteOptions {
  /** `x-xenon-rpl-quorum`: successes required, or 'all'. */
  quorum?: number | 'all';
  /**
   * The write's request id (its entry host's, or the client's Idempotency-Key): a write of the
   * same link with an id already in the dedup window is answered with the state it made, and
   * nothing new is logged.
   */
  requestId?: string;
  /** Throws when the write must not be applied after all (a stale forward, routing.ts): asked just before it is planned. */
  fence?: () => void;
  /** An entry host's retry of a forward: not applied if the window may have forgotten its original (lib/dedup.ts). */
  retry?: boolean;
}
