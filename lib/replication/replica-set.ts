/**
 * Who holds a link (Xenon's replication factor, docs/xenon-compatibility.md): every member, or, for a selector with a replication factor N,
 * the N members closest to the link among those eligible to own it (lib/hash.ts selectNodes). This
 * host aside, the members it can reach are the targets a record is shipped to; the rest count as
 * failures at once. Pure: the server's Replicator and the simulations feed it their members.
 */

import { selectNodes } from '../hash.js';
import type { Link, NodeId } from '../ids.js';

export interface ChosenReplicas<T> {
  /** The replica set, self included when it is a member. */
  members: T[];
  /** Members the record goes to, self excluded. */
  targets: T[];
  /** Members that count but cannot be reached: immediate failures. */
  unreachable: number;
  /** Replica set size, the owner included. */
  eligible: number;
}

export interface MemberView<T> {
  id(m: T): NodeId;
  /** May own links (counts for the factor's choice). */
  ownerEligible(m: T): boolean;
  /** Can be sent records now. */
  reachable(m: T): boolean;
}

export function chooseReplicas<T>(
  link: Link,
  selfId: NodeId,
  members: readonly T[],
  view: MemberView<T>,
  factor?: number,
): ChosenReplicas<T> {
  let chosen: T[];
  if (factor) {
    const byId = new Map(members.map((m) => [view.id(m), m]));
    const ids = selectNodes(
      link,
      members.map((m) => ({ id: view.id(m), eligible: view.ownerEligible(m) })),
      factor,
    );
    chosen = ids.map((id) => byId.get(id)!);
  } else {
    chosen = [...members];
  }
  const others = chosen.filter((m) => view.id(m) !== selfId);
  const targets = others.filter((m) => view.reachable(m));
  return { members: chosen, targets, unreachable: others.length - targets.length, eligible: others.length + 1 };
}
