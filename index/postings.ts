/**
 * Field indexes: for each (propertyName, string value) the versions holding it, as a posting list
 * of integer version ids. Only term-matchable values (strings, and booleans as "true"/"false") are
 * posted; numbers are matched by scanning candidates.
 *
 * Version ids grow in the order versions are applied, so a new id is always appended at the end of
 * a posting and every posting stays sorted. Removing an id lowers the posting's live count at once
 * and leaves a dead slot that the posting squeezes out when dead slots pass half of it, so removal
 * costs O(1) amortized even on a posting as wide as `documentKind`. Readers skip dead slots with the
 * `alive` test the owner passes in (an id is never reused while a posting can still hold it: ids
 * are only renumbered all at once, by `renumber`).
 *
 * A value only one version holds (a document's self link, a unique name: most values of a large
 * index) is kept as that version's id itself, not as a Posting: no object and no typed array per
 * such value, which is most of an index's objects and so of its garbage collection. It becomes a
 * Posting when a second version posts the value; readers get a one-id Posting made on demand.
 *
 * Contract: a version's state must not change after it was posted, because removal re-reads it to
 * find its postings.
 */

import type { JsonObject } from '../lib/document.js';
import { forEachIndexedField } from './fields.js';

export type VidAlive = (vid: number) => boolean;

export class Posting {
  /** Sorted ascending; slots at or past `n` are unused; dead ids may remain until compaction. */
  ids: Int32Array = new Int32Array(2);
  n = 0;
  live = 0;

  /** A posting of one live id. */
  static of(vid: number): Posting {
    const p = new Posting();
    p.add(vid);
    return p;
  }

  add(vid: number): boolean {
    // The same version posting one value twice (tags ["a", "a"]) arrives back to back.
    if (this.n > 0 && this.ids[this.n - 1] === vid) return false;
    if (this.n === this.ids.length) {
      const grown = new Int32Array(this.ids.length * 2);
      grown.set(this.ids);
      this.ids = grown;
    }
    this.ids[this.n++] = vid;
    this.live++;
    return true;
  }

  /** Drops dead ids once they are more than half the slots. */
  removed(alive: VidAlive): void {
    this.live--;
    const dead = this.n - this.live;
    if (dead > 4 && dead * 2 > this.n) this.compact(alive, undefined);
  }

  /** Keeps live ids (mapped through `map` when given) and shrinks the array to fit. */
  compact(alive: VidAlive, map: Int32Array | undefined): void {
    const ids = this.ids;
    let j = 0;
    for (let i = 0; i < this.n; i++) {
      const vid = ids[i]!;
      if (!alive(vid)) continue;
      ids[j++] = map === undefined ? vid : map[vid]!;
    }
    this.n = j;
    this.live = j;
    if (ids.length > 2 * j + 2) this.ids = ids.slice(0, Math.max(2, j));
  }

  forEachLive(alive: VidAlive, visit: (vid: number) => void): void {
    const ids = this.ids;
    const n = this.n;
    for (let i = 0; i < n; i++) {
      const vid = ids[i]!;
      if (alive(vid)) visit(vid);
    }
  }
}

/** A value's posting, or the one live id holding it. */
export type Slot = number | Posting;

export function postingOf(s: Slot): Posting {
  return typeof s === 'number' ? Posting.of(s) : s;
}

export class Postings {
  /** propertyName → value → posting (or the one id holding the value). */
  private readonly fields = new Map<string, Map<string, Slot>>();
  private readonly alive: VidAlive;

  constructor(alive: VidAlive) {
    this.alive = alive;
  }

  add(vid: number, doc: JsonObject): void {
    forEachIndexedField(doc, (name, value) => {
      if (typeof value !== 'string') return;
      let values = this.fields.get(name);
      if (values === undefined) {
        values = new Map();
        this.fields.set(name, values);
      }
      const s = values.get(value);
      if (s === undefined) values.set(value, vid);
      else if (typeof s !== 'number') s.add(vid);
      // The same version posting one value twice (tags ["a", "a"]) arrives back to back.
      else if (s !== vid) {
        const p = Posting.of(s);
        p.add(vid);
        values.set(value, p);
      }
    });
  }

  /** Call after `alive(vid)` turned false; `doc` is the state that was posted under `vid`. */
  remove(doc: JsonObject): void {
    // A value the document holds twice was posted once, so it must be removed once.
    const seen = new Set<Posting>();
    forEachIndexedField(doc, (name, value) => {
      if (typeof value !== 'string') return;
      const values = this.fields.get(name);
      const s = values?.get(value);
      if (values === undefined || s === undefined) return;
      if (typeof s === 'number') {
        // Held by this version alone (removed once: a second occurrence finds nothing).
        values.delete(value);
      } else {
        if (seen.has(s)) return;
        seen.add(s);
        s.removed(this.alive);
        if (s.live > 0) return;
        values.delete(value);
      }
      if (values.size === 0) this.fields.delete(name);
    });
  }

  get(name: string, value: string): Posting | undefined {
    const s = this.fields.get(name)?.get(value);
    return s === undefined ? undefined : postingOf(s);
  }

  /** Every value posted under `name`, with its slot (postingOf reads it). */
  valuesOf(name: string): ReadonlyMap<string, Slot> | undefined {
    return this.fields.get(name);
  }

  /** Renames every id through `map` (monotonic, so postings stay sorted) and drops dead ones. */
  renumber(map: Int32Array, aliveBefore: VidAlive): void {
    for (const values of this.fields.values()) {
      for (const [value, s] of values) {
        if (typeof s === 'number') values.set(value, map[s]!);
        else s.compact(aliveBefore, map);
      }
    }
  }

  /** Live posted ids across all postings, and the number of postings: for tests and benchmarks. */
  stats(): { postings: number; entries: number; fields: number } {
    let postings = 0;
    let entries = 0;
    for (const values of this.fields.values()) {
      postings += values.size;
      for (const s of values.values()) entries += typeof s === 'number' ? 1 : s.live;
    }
    return { postings, entries, fields: this.fields.size };
  }
}
