/**
 * Serializes updates per document, as Xenon does: each link has a FIFO of
 * pending updates so that a PATCH always computes from the state the previous update left.
 * Different links proceed concurrently, which is what lets group commit batch them. The depth
 * of each queue is bounded (limits.documentQueueMax); past it the update is refused with 503.
 */

import { invariant, KryptonError } from '../../lib/errors.js';
import { limits } from '../../lib/limits.js';

interface Entry {
  last: Promise<unknown>;
  pending: number;
}

export class LinkQueues {
  private readonly entries = new Map<string, Entry>();

  constructor(private readonly depthMax: number = limits.documentQueueMax) {}

  run<T>(link: string, fn: () => Promise<T>): Promise<T> {
    let e = this.entries.get(link);
    if (e && e.pending >= this.depthMax) {
      return Promise.reject(new KryptonError('LIMIT_EXCEEDED', `queue limit exceeded for ${link}: ${this.depthMax} updates are waiting`));
    }
    if (!e) {
      e = { last: Promise.resolve(), pending: 0 };
      this.entries.set(link, e);
    }
    const entry = e;
    entry.pending++;
    const result = entry.last.then(fn);
    // The next update starts only after this one settled, success or not.
    entry.last = result.then(noop, noop).then(() => {
      if (--entry.pending === 0 && this.entries.get(link) === entry) this.entries.delete(link);
    });
    return result;
  }

  /** Whether nothing is queued or running for `link`. */
  idle(link: string): boolean {
    return !this.entries.has(link);
  }

  /**
   * Marks idle `links` (each named once) busy until `done` settles; updates queued for them
   * meanwhile run after it. One wait is shared by the whole set: a replica holding the links of a
   * batch it appends in one go pays one promise, not a chain per link.
   */
  holdAll(links: readonly string[], done: Promise<unknown>): void {
    const settled = done.then(noop, noop);
    const held = links.map((link) => {
      invariant(!this.entries.has(link), `holdAll: ${link} is not idle`);
      const e: Entry = { last: settled, pending: 1 };
      this.entries.set(link, e);
      return e;
    });
    void settled.then(() => {
      links.forEach((link, i) => {
        const e = held[i]!;
        if (--e.pending === 0 && this.entries.get(link) === e) this.entries.delete(link);
      });
    });
  }

  /** Resolves when every queued update has settled. */
  async drain(): Promise<void> {
    while (this.entries.size > 0) await Promise.all([...this.entries.values()].map((e) => e.last));
  }
}

function noop(): void {}
