/**
 * The replica's side of a takeover's prepare phase (Krypton's rule, not Xenon's): before a new
 * owner reads the heads it will take a link over from, each replica promises it the new epoch.
 * From then on the replica refuses records of that link from any older epoch, so the old owner's
 * late writes fail their quorum instead of being acknowledged and then overwritten by a takeover
 * built from heads read before them. The head a replica reports with its promise is read after
 * the promise, in the same step. Pure: the server keeps the promises durably and feeds them here.
 *
 * Epochs are the ballots. A replica promises an epoch only above every epoch it holds or has
 * promised, so two new owners can never both collect a quorum of promises for the same epoch;
 * asking again for the epoch it already promised to the same host is granted again (a retried
 * request).
 */

import type { Epoch, Link, NodeId, Version } from '../ids.js';
import type { Head } from './plan.js';

/** What a replica promised for one link: no record below `epoch` any more, asked by `by`. */
export interface Promised {
  epoch: Epoch;
  by: NodeId;
}

/** The lowest epoch a replica still takes records of a link from: the higher of held and promised. */
export function fenceOf(heldEpoch: Epoch | undefined, promised: Promised | undefined): Epoch {
  return Math.max(heldEpoch ?? 0, promised?.epoch ?? 0);
}

/** A promise is spent once the replica holds a state at its epoch or later: the held epoch fences from then on. */
export function promiseSpent(heldEpoch: Epoch | undefined, promised: Promised): boolean {
  return heldEpoch !== undefined && heldEpoch >= promised.epoch;
}

/**
 * Whether `selfId`'s own promise of `epoch` still stands: a takeover commits its write only then (a
 * later epoch promised meanwhile means another host is taking the link over).
 */
export function promiseStands(promised: Promised | undefined, selfId: NodeId, epoch: Epoch): boolean {
  return promised !== undefined && promised.epoch === epoch && promised.by === selfId;
}

export type PromiseDecision =
  /** `record`: a new promise the replica must make durable before it answers. */
  | { granted: true; record: boolean }
  /** `fence`: the epoch the asker must go above. */
  | { granted: false; fence: Epoch };

/** Whether a replica holding `heldEpoch` (undefined: nothing) and `promised` grants `ask`. */
export function decidePromise(heldEpoch: Epoch | undefined, promised: Promised | undefined, ask: Promised): PromiseDecision {
  if (promised && ask.epoch === promised.epoch && ask.by === promised.by && !promiseSpent(heldEpoch, promised))
    return { granted: true, record: false };
  if ((heldEpoch === undefined || ask.epoch > heldEpoch) && (!promised || ask.epoch > promised.epoch))
    return { granted: true, record: true };
  return { granted: false, fence: fenceOf(heldEpoch, promised) };
}

export type RecordDecision = 'apply' | 'duplicate' | 'refuse';

/**
 * A replicated record's fate (DocumentStore.applyReplicated): below the fence it is refused (409,
 * fencing a stale owner); the held epoch at a version already reached is a duplicate, acknowledged
 * without appending; anything else is appended.
 */
export function decideRecord(
  held: { epoch: Epoch; version: Version } | undefined,
  promised: Promised | undefined,
  rec: { epoch: Epoch; version: Version },
): RecordDecision {
  if (rec.epoch < fenceOf(held?.epoch, promised)) return 'refuse';
  if (held && rec.epoch === held.epoch && rec.version <= held.version) return 'duplicate';
  return 'apply';
}

/** A head on the wire without its link: [epoch, version, deleted, owner]. */
export type HeadFields = [epoch: Epoch, version: Version, deleted: 0 | 1, owner: NodeId];

export function headFields(h: Head): HeadFields {
  return [h.epoch, h.version, h.deleted ? 1 : 0, h.owner ?? ''];
}

export function headOfFields(f: HeadFields): Head {
  return { epoch: f[0], version: f[1], deleted: f[2] === 1, owner: f[3] || undefined };
}

/** One link of a promise request: the link and the epoch asked for. */
export type PromiseAsk = [link: Link, epoch: Epoch];

/**
 * One link of a promise reply: the epoch it answers, whether it was granted, the replica's fence
 * after the request, and its head read after the promise (null: it holds nothing).
 */
export type PromiseAnswer = [link: Link, epoch: Epoch, granted: 0 | 1, fence: Epoch, head: HeadFields | null];

const isEpoch = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= 0;

/**
 * Checks a peer's promise reply: anything malformed is undefined (the caller counts the request as
 * failed), never a crash.
 */
export function parsePromiseAnswers(raw: unknown): PromiseAnswer[] | undefined {
  const list = (raw as { promises?: unknown } | undefined)?.promises;
  if (!Array.isArray(list)) return undefined;
  for (const a of list as unknown[]) {
    if (!Array.isArray(a) || a.length !== 5) return undefined;
    const [link, epoch, granted, fence, head] = a as unknown[];
    if (typeof link !== 'string' || !isEpoch(epoch) || (granted !== 0 && granted !== 1) || !isEpoch(fence)) return undefined;
    if (head !== null) {
      if (!Array.isArray(head) || head.length !== 4) return undefined;
      const [e, v, d, o] = head as unknown[];
      if (!isEpoch(e) || !Number.isSafeInteger(v) || (d !== 0 && d !== 1) || typeof o !== 'string') return undefined;
    }
  }
  return list as PromiseAnswer[];
}
