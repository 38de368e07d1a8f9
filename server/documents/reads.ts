/**
 * The read side of the document pipeline: a child GET from this host's index as it is (a local
 * read, `pragma: xn-no-fwd`, or a host that is not the owner), a child GET on the owner that
 * answers only what is committed (lib/commit.ts), and a factory GET listing the children.
 */

import type { CommitTracker } from '../../lib/commit.js';
import { linkList, type LinkList, type ServiceDocument } from '../../lib/document.js';
import { KryptonError } from '../../lib/errors.js';
import type { Link, Micros, NodeId } from '../../lib/ids.js';
import { isExpired, markedDeletedNotFound, notFound } from '../../lib/verbs.js';
import type { DocumentIndex } from '../../index/views.js';

/** The latest state as a GET answers it: missing, expired and deleted are 404s. */
function answerLatest(link: Link, doc: ServiceDocument | undefined, now: Micros): ServiceDocument {
  if (!doc || isExpired(doc, now)) throw notFound(link);
  if (doc.documentUpdateAction === 'DELETE') throw markedDeletedNotFound(link);
  return doc;
}

/** Child GET from the index as it is: the latest state, or one retained version. */
export function readLocal(index: DocumentIndex, link: Link, version: number | undefined, now: Micros): ServiceDocument {
  if (version !== undefined) {
    const doc = index.version(link, version);
    if (!doc) throw notFound(`${link}?documentVersion=${version}`);
    return doc;
  }
  return answerLatest(link, index.latest(link), now);
}

/**
 * Child GET on the owner: never a version its quorum has not acknowledged. While a write is in
 * flight, the state before it (and no version from it on); after a write failed its quorum and
 * synchronization could not settle the link, QUORUM_UNAVAILABLE rather than a state a takeover may
 * discard.
 */
export function readCommitted(
  index: DocumentIndex,
  commits: CommitTracker,
  link: Link,
  version: number | undefined,
  now: Micros,
): ServiceDocument {
  const v = commits.visible(link);
  if (v.kind === 'latest') return readLocal(index, link, version, now);
  const doubtful = v.kind === 'unsettled' ? v.version : (index.latest(link)?.documentVersion ?? 0);
  if (version !== undefined) {
    if (version >= doubtful) throw notFound(`${link}?documentVersion=${version}`);
    return readLocal(index, link, version, now);
  }
  if (v.kind === 'committed') return answerLatest(link, v.state, now);
  throw new KryptonError(
    'QUORUM_UNAVAILABLE',
    `${link}: its latest write did not reach its quorum and synchronization has not settled it yet; retry later`,
  );
}

/** Factory GET from the local index, only the children `mayRead` lets through when given. */
export function listChildren(
  index: DocumentIndex,
  hostId: NodeId,
  factoryLink: Link,
  expand: boolean,
  now: Micros,
  mayRead?: (link: Link) => boolean,
): LinkList {
  const started = performance.now();
  const all = index.children(factoryLink, now);
  const links = mayRead ? all.filter(mayRead) : all;
  const out = linkList(links, hostId, 0);
  if (expand) {
    const docs: Record<string, ServiceDocument> = {};
    for (const l of links) {
      const doc = index.latest(l);
      if (doc) docs[l] = doc;
    }
    out.documents = docs;
  }
  out.queryTimeMicros = Math.max(1, Math.round((performance.now() - started) * 1000));
  return out;
}
