/**
 * What the parts of synchronization share (server/synch/synchronizer.ts wires them): the host's
 * parts they use, and the counters GET <selector>/synch reports.
 */

import type { Logger } from 'pino';
import type { Link, NodeId } from '../../lib/ids.js';
import { limits, msFromMicros } from '../../lib/limits.js';
import type { RegisteredService, ServiceRegistry } from '../../lib/service.js';
import type { DocumentIndex } from '../../index/views.js';
import type { Clock } from '../base/clock.js';
import type { DocumentStore } from '../documents/documents.js';
import type { GroupRuntime } from '../membership/groups.js';
import type { Selectors } from '../membership/selectors.js';
import type { PeerClient } from '../net/peers.js';
import type { Replicator } from '../replication/replicator.js';
import type { PromiseStore } from './promises.js';

export interface SynchDeps {
  hostId: NodeId;
  registry: ServiceRegistry;
  index: DocumentIndex;
  store: DocumentStore;
  group: GroupRuntime;
  selectors: Selectors;
  replicator: Replicator;
  peers: PeerClient;
  promises: PromiseStore;
  clock: Clock;
  logger: Logger;
  operationTimeoutMicros: number;
  enabled: boolean;
  hooks?: { started(svc: RegisteredService, link: Link): void };
}

export interface SynchStats {
  passes: number;
  linksChecked: number;
  adopted: number;
  takenOver: number;
  pushed: number;
  pushFailures: number;
  /** Links left for a later pass because fewer than a quorum of their replicas answered. */
  skippedNoQuorum: number;
  /** Takeovers left for a retry: too few promises, or the takeover's write missed its quorum. */
  takeoversDeferred: number;
  /** Promises this host granted as a replica, and those it still holds. */
  promisesGranted: number;
  promisesHeld: number;
  lastPassMs: number;
  running: boolean;
  /**
   * The membership changed since the last pass that left nothing deferred: a pass is due, running
   * or waiting for its retry (a caller comparing hosts' copies waits for this to clear).
   */
  passPending: boolean;
  /** Copies pushed by early passes, while the group was settling. */
  earlyPushed: number;
  /** Copies of links that moved, handed by their old owner to the new one during early passes. */
  earlyHandedOver: number;
  /** Older versions this host, as owner, took from peers, sent to replicas lacking them, and received as a replica (server/synch/history.ts). */
  historyPulled: number;
  historyShipped: number;
  historyReceived: number;
  /** History requests that failed; the history they were for waits for a later synchronization. */
  historyFailures: number;
}

export function newSynchStats(promises: PromiseStore): SynchStats {
  return {
    passes: 0,
    linksChecked: 0,
    adopted: 0,
    takenOver: 0,
    pushed: 0,
    pushFailures: 0,
    skippedNoQuorum: 0,
    takeoversDeferred: 0,
    lastPassMs: 0,
    running: false,
    passPending: false,
    earlyPushed: 0,
    earlyHandedOver: 0,
    historyPulled: 0,
    historyShipped: 0,
    historyReceived: 0,
    historyFailures: 0,
    get promisesGranted() {
      return promises.stats.granted;
    },
    get promisesHeld() {
      return promises.size;
    },
  };
}

/** A peer request's timeout: the share of the operation timeout a replication batch gets, in ms. */
export function peerTimeoutMs(d: Pick<SynchDeps, 'operationTimeoutMicros'>): number {
  return msFromMicros(d.operationTimeoutMicros / limits.replicationTimeoutDivisor);
}
