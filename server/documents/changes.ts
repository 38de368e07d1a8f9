/**
 * The change feed of one host: every state its index applies (an owner's commit, a replicated
 * record, a synchronized copy) and every expiry the index purges, announced in apply order to
 * whoever listens on that link or on its factory. Direct tasks, watches and server-sent-event
 * streams are built on it; it keeps nothing itself, so a slow listener must buffer on its own.
 */

import type { ServiceDocument } from '../../lib/document.js';
import type { Link } from '../../lib/ids.js';

export type Change = { type: 'update'; doc: ServiceDocument } | { type: 'expired'; link: Link };
export type ChangeListener = (c: Change) => void;

function factoryOf(link: Link): Link {
  const i = link.lastIndexOf('/');
  return i > 0 ? link.slice(0, i) : link;
}

export class ChangeFeed {
  private readonly byLink = new Map<Link, Set<ChangeListener>>();
  private readonly byFactory = new Map<Link, Set<ChangeListener>>();
  /** Listeners to every link (continuous queries, whose matches may be anywhere). */
  private readonly all = new Set<ChangeListener>();

  /** Listens to one document. Returns the function that stops listening. */
  onLink(link: Link, fn: ChangeListener): () => void {
    return add(this.byLink, link, fn);
  }

  /** Listens to every link. Returns the function that stops listening. */
  onAny(fn: ChangeListener): () => void {
    this.all.add(fn);
    return () => this.all.delete(fn);
  }

  /** Listens to every child of a factory. */
  onFactory(factory: Link, fn: ChangeListener): () => void {
    return add(this.byFactory, factory, fn);
  }

  get listeners(): number {
    let n = 0;
    for (const s of this.byLink.values()) n += s.size;
    for (const s of this.byFactory.values()) n += s.size;
    return n + this.all.size;
  }

  updated(doc: ServiceDocument): void {
    if (this.byLink.size === 0 && this.byFactory.size === 0 && this.all.size === 0) return;
    this.emit(doc.documentSelfLink, { type: 'update', doc });
  }

  expired(link: Link): void {
    if (this.byLink.size === 0 && this.byFactory.size === 0 && this.all.size === 0) return;
    this.emit(link, { type: 'expired', link });
  }

  private emit(link: Link, c: Change): void {
    for (const fn of this.byLink.get(link) ?? []) fn(c);
    for (const fn of this.byFactory.get(factoryOf(link)) ?? []) fn(c);
    for (const fn of this.all) fn(c);
  }
}

function add(map: Map<Link, Set<ChangeListener>>, key: Link, fn: ChangeListener): () => void {
  let set = map.get(key);
  if (!set) {
    set = new Set();
    map.set(key, set);
  }
  set.add(fn);
  return () => {
    set.delete(fn);
    if (set.size === 0 && map.get(key) === set) map.delete(key);
  };
}
