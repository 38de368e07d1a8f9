/**
 * Which retained versions of a link one host must receive from another so that every host holds
 * the same history within the service's retention (Krypton's rule; Xenon ships only the latest
 * state). A host's history is summed up by a digest that travels in the heads of a pass, so only
 * links whose histories differ cost a listing; the listing is one mark per version (version, epoch,
 * update time), and the decisions below say what the owner ships to a replica and what it pulls from
 * a peer. Pure.
 *
 * The owner's history is the reference: a replica lacking a version, or holding one with other
 * marks (a write a takeover discarded and another version replaced), receives the owner's. The
 * owner itself takes versions it lacks, and replaces one it holds from an earlier epoch than a
 * peer's: a write of its own, as a stale owner, that a takeover discarded.
 *
 * Only a *confirmed* version is ever spread, by either rule: one under a later version of the same
 * epoch in the owner's history. Within an epoch one owner writes versions one after another, so a
 * later version of that epoch the owner holds vouches for those under it. A version whose epoch
 * ends with it may instead be a write a takeover cut off: a takeover starts from the best copy a
 * quorum holds and stamps its new epoch above the highest version any host answered, so a stale
 * owner's write that reached no quorum (kept by it alone, or by one replica) sits just under the new
 * epoch with marks that look exactly like the takeover's own starting point. Marks cannot tell the
 * two apart, so neither rule spreads it on marks alone. The owner ships it all the same when the
 * next version, the takeover's rewrite, repeats its state exactly (copiedByTakeover): that is the
 * takeover's starting copy. The owner itself still does not pull one it lacks.
 */

import type { ServiceDocument } from '../document.js';
import type { Epoch, Micros, Version } from '../ids.js';

/** One retained version as a listing carries it: [version, epoch, update time]. */
export type VersionMark = [version: Version, epoch: Epoch, timeMicros: Micros];

/** The marks of a stored version. */
export function markOf(doc: ServiceDocument): VersionMark {
  return [doc.documentVersion, doc.documentEpoch ?? 0, doc.documentUpdateTimeMicros];
}

/**
 * Whether a host whose latest version has marks `latest` appends a version received as history
 * (`rec`), holding `held` at that version now: only below its latest, from no later epoch, and
 * only when it does not hold that version alike already. So history never becomes the latest state
 * (that is a replicated record's business, fenced by epoch) and a repeat is a no-op.
 */
export function takesHistory(
  latest: VersionMark,
  held: ServiceDocument | undefined,
  rec: { version: Version; epoch: Epoch; timeMicros: Micros },
): boolean {
  if (rec.version >= latest[0] || rec.epoch > latest[1]) return false;
  return !held || (held.documentEpoch ?? 0) !== rec.epoch || held.documentUpdateTimeMicros !== rec.timeMicros;
}

/** A 32-bit mix of one version's marks; the digest of a history is the sum of its marks' mixes. */
export function markHash(version: Version, epoch: Epoch, timeMicros: Micros): number {
  let h = 0x811c9dc5;
  const words = [version, epoch, timeMicros % 0x1_0000_0000, Math.floor(timeMicros / 0x1_0000_0000)];
  for (const w of words) {
    h = Math.imul(h ^ (w >>> 0), 0x01000193);
    h = Math.imul(h ^ (h >>> 15), 0x2c1b3c6d);
  }
  return (h ^ (h >>> 13)) >>> 0;
}

/**
 * The digest of a history from its count and the sum of its marks' hashes (kept incrementally by
 * the index): equal histories have equal digests; different ones almost always differ.
 */
export function historyDigest(count: number, hashSum: number): number {
  return (Math.imul(count, 0x9e3779b1) ^ hashSum) >>> 0;
}

/** The digest of a listing, as historyDigest over the index gives it. */
export function digestOf(marks: readonly VersionMark[]): number {
  let sum = 0;
  for (const [v, e, t] of marks) sum = (sum + markHash(v, e, t)) >>> 0;
  return historyDigest(marks.length, sum);
}

/**
 * The versions of `history` (in version order) that a later version of the same epoch vouches for:
 * every one but the last of each epoch's run.
 */
export function confirmed(history: readonly VersionMark[]): Set<Version> {
  const out = new Set<Version>();
  const lastOfEpoch = new Map<Epoch, Version>();
  for (const [v, e] of history) lastOfEpoch.set(e, Math.max(v, lastOfEpoch.get(e) ?? -1));
  for (const [v, e] of history) if (v < lastOfEpoch.get(e)!) out.add(v);
  return out;
}

const sameMark = (a: VersionMark, b: VersionMark) => a[0] === b[0] && a[1] === b[1] && a[2] === b[2];

function byVersion(marks: readonly VersionMark[]): Map<Version, VersionMark> {
  return new Map(marks.map((m) => [m[0], m]));
}

/**
 * The versions of `history` ending an epoch whose state the next version, of a later epoch,
 * repeats exactly (`sameState(v)` compares the states of v and v + 1 as the caller holds them,
 * marks aside): a takeover's starting copy, which its rewrite above copied. Marks alone cannot
 * vouch for it (see the header); the identical state does, and were it a cut-off write after all,
 * spreading it would add no state the group does not hold at the next version.
 */
export function copiedByTakeover(history: readonly VersionMark[], sameState: (v: Version) => boolean): Set<Version> {
  const out = new Set<Version>();
  for (let i = 0; i + 1 < history.length; i++) {
    const [v, e] = history[i]!;
    const [next, nextEpoch] = history[i + 1]!;
    if (next === v + 1 && nextEpoch > e && sameState(v)) out.add(v);
  }
  return out;
}

/**
 * The owner's versions a replica must receive: every version of `owner` below the owner's latest
 * that `replica` lacks or holds with other marks, vouched for by a later version of its epoch or
 * `copied` by a takeover (copiedByTakeover). The latest itself travels as an ordinary record
 * (a pass's push), and a replica that does not hold it yet is sent nothing older: history is only
 * filled in under the state the replica already agrees on.
 */
export function versionsToShip(
  owner: readonly VersionMark[],
  replica: readonly VersionMark[],
  copied: ReadonlySet<Version> = new Set(),
): Version[] {
  const top = owner[owner.length - 1];
  const theirs = byVersion(replica);
  const theirTop = replica[replica.length - 1];
  if (!top || !theirTop || !sameMark(top, theirTop)) return [];
  const vouched = confirmed(owner);
  const out: Version[] = [];
  for (let i = 0; i < owner.length - 1; i++) {
    const m = owner[i]!;
    if (!vouched.has(m[0]) && !copied.has(m[0])) continue;
    const t = theirs.get(m[0]);
    if (!t || !sameMark(m, t)) out.push(m[0]);
  }
  return out;
}

/**
 * The versions the owner takes from a peer: those `peer` holds below the owner's latest that
 * `own` lacks, or holds from an earlier epoch, and that fit the epoch order of `own` (see the
 * header). A version the owner holds from an earlier epoch than the peer's is one a takeover
 * discarded (a stale owner's write that reached no quorum): the peer's is vouched for by a later
 * version of its epoch the owner holds, so that epoch's owner wrote on from it. Versions the owner
 * holds from the same or a later epoch stay as the owner has them. An owner already holding
 * `retention` versions takes none below its oldest: its index would drop them at once.
 */
export function versionsToPull(own: readonly VersionMark[], peer: readonly VersionMark[], retention: number): Version[] {
  const top = own[own.length - 1];
  if (!top) return [];
  const floor = own.length >= retention ? own[0]![0] : -1;
  // The epoch of each held version, as it will be once the replacements decided so far are made.
  const epochOf = new Map(own.map((m) => [m[0], m[1]]));
  const lastOfEpoch = new Map<Epoch, Version>();
  for (const [v, e] of own) lastOfEpoch.set(e, Math.max(v, lastOfEpoch.get(e) ?? -1));
  const out: Version[] = [];
  // From the top down, so a run of discarded versions is replaced whole: each replaced version is
  // of the later epoch when the one under it is judged. own is in version order: for each
  // candidate, the epochs of the nearest held versions around it.
  let i = own.length - 1;
  for (const [v, e] of [...peer].sort((a, b) => b[0] - a[0])) {
    const held = epochOf.get(v);
    if (v >= top[0] || v < floor || (held !== undefined && held >= e)) continue;
    while (i > 0 && own[i]![0] >= v) i--;
    // own[i] is the nearest version below v, unless none is; the nearest above follows it (past v itself when held).
    const hasBelow = own[i]![0] < v;
    const below = hasBelow ? own[i]![0] : undefined;
    const above = own[(hasBelow ? i + 1 : i) + (held !== undefined ? 1 : 0)]![0];
    if ((below !== undefined && epochOf.get(below)! > e) || epochOf.get(above)! < e) continue;
    // Vouched for only by a later version of its own epoch that the owner holds (see the header).
    if ((lastOfEpoch.get(e) ?? -1) <= v) continue;
    out.push(v);
    if (held !== undefined) epochOf.set(v, e);
  }
  return out.reverse();
}

/**
 * Versions the owner lacks, or holds from an earlier epoch, that may be a takeover's starting copy
 * (copiedByTakeover): the peer holds v ending its epoch there, the owner holds v + 1 from a later
 * epoch and nothing under v from a later epoch than v's. Marks do not vouch for them
 * (versionsToPull leaves them out); the caller fetches them and keeps only a state that its own
 * v + 1 repeats exactly. The owner holding v from an earlier epoch is its own write as a stale
 * owner cut off from the group: the takeover that discarded it stamped v in its new epoch, and the
 * owner took the link back (a later epoch again) before anything else was written in that one.
 */
export function copiesToPull(own: readonly VersionMark[], peer: readonly VersionMark[], retention: number): Version[] {
  const top = own[own.length - 1];
  if (!top) return [];
  const floor = own.length >= retention ? own[0]![0] : -1;
  const mine = byVersion(own);
  const theirs = byVersion(peer);
  const out: Version[] = [];
  for (const [v, e] of peer) {
    const held = mine.get(v);
    if (v >= top[0] || v < floor || (held && held[1] >= e)) continue;
    const next = mine.get(v + 1);
    const theirNext = theirs.get(v + 1);
    if (!next || next[1] <= e || (theirNext && theirNext[1] === e)) continue;
    const below = own.filter((m) => m[0] < v).pop();
    if (below && below[1] > e) continue;
    out.push(v);
  }
  return out.sort((a, b) => a - b);
}
