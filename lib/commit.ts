/**
 * Commit visibility on an owner (Krypton's rule): what a document GET routed to the owner may
 * answer. The owner applies its own write to its index as soon as it is durable here, before its
 * quorum acknowledged it, and a write that misses its quorum stays in the index; a takeover may
 * discard it. So the owner answers from what is committed: while a write of the link is in
 * flight, the state before it; after a write failed its quorum, nothing until synchronization has
 * settled the link (found its latest state held by a quorum, pushed it there, or taken the link
 * over). Writes of one link run one at a time on the owner, so a link has at most one write in
 * flight. Pure: the document store feeds it.
 */

import type { ServiceDocument } from './document.js';
import type { Link, Version } from './ids.js';

interface LinkCommit {
  version: Version;
  /** The latest state before the write: the one a read answers meanwhile. */
  previous: ServiceDocument | undefined;
  unsettled: boolean;
}

export type Visible =
  /** Nothing is in doubt: the index's latest state is committed. */
  | { kind: 'latest' }
  /** A write is in flight: answer the state before it (undefined: the link did not exist yet). */
  | { kind: 'committed'; state: ServiceDocument | undefined }
  /** A write failed its quorum and synchronization has not settled the link yet: no answer. */
  | { kind: 'unsettled'; version: Version };

export class CommitTracker {
  private readonly links = new Map<Link, LinkCommit>();

  /** A write of `link` making `version` is about to enter the index; `previous` is the latest state before it. */
  begin(link: Link, version: Version, previous: ServiceDocument | undefined): void {
    const cur = this.links.get(link);
    // A write after a failed one (synchronization could not run) stays in doubt with it.
    if (cur?.unsettled) {
      cur.version = version;
      return;
    }
    this.links.set(link, { version, previous, unsettled: false });
  }

  /** The write of `version` reached its quorum: it and every version under it are committed. */
  acknowledged(link: Link, version: Version): void {
    const cur = this.links.get(link);
    if (cur && cur.version === version) this.links.delete(link);
  }

  /** The write of `version` missed its quorum: the link is in doubt until settled(). */
  failed(link: Link, version: Version): void {
    const cur = this.links.get(link);
    if (cur && cur.version === version) cur.unsettled = true;
  }

  /** Synchronization found the link's latest state on a quorum (or wrote it there): nothing is in doubt. */
  settled(link: Link): void {
    this.links.delete(link);
  }

  unsettled(link: Link): boolean {
    return this.links.get(link)?.unsettled === true;
  }

  /** What a read of `link` on its owner may answer. */
  visible(link: Link): Visible {
    const cur = this.links.get(link);
    if (!cur) return { kind: 'latest' };
    if (cur.unsettled) return { kind: 'unsettled', version: cur.version };
    return { kind: 'committed', state: cur.previous };
  }

  /** Every link with a write in flight or in doubt, and what a read of it may answer. */
  *inDoubt(): IterableIterator<[Link, Exclude<Visible, { kind: 'latest' }>]> {
    for (const [link, cur] of this.links)
      yield [link, cur.unsettled ? { kind: 'unsettled', version: cur.version } : { kind: 'committed', state: cur.previous }];
  }

  /** Links with a write in flight or in doubt. */
  size(): number {
    return this.links.size;
  }
}
