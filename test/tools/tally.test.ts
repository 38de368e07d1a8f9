/**
 * HistoryTally must hold exactly what DocumentIndex holds — which versions of each link, whether
 * the latest is a tombstone, whether it has expired — for any run of records: in-order updates,
 * re-deliveries of held versions, older versions slotting in, deletes, resetHistory re-creates,
 * records arriving after an expiry, and small retentions. Random runs, compared record by record.
 */

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import { isTombstone, KINDS, parentLink, type LogRecord, type UpdateAction } from '../../lib/document.js';
import { DocumentIndex } from '../../index/views.js';
import { HistoryTally, versionCount } from '../../tools/log/tally.js';
import { hostRetentionFor } from '../../tools/log/retention.js';

const LINKS = ['/core/examples/a', '/core/examples/b', '/app/things/c', '/app/things/d'];

interface Step {
  link: number;
  /** How the version is chosen: the next one, the latest again, an older one, or a jump. */
  version: 'next' | 'same' | 'older' | 'jump';
  back: number;
  action: UpdateAction;
  reset: boolean;
  /** 0: no expiration; else micros after the record's time (may be before later records). */
  expiresIn: number;
  advance: number;
}

const stepArb: fc.Arbitrary<Step> = fc.record(
  {
    link: fc.nat(LINKS.length - 1),
    version: fc.constantFrom('next', 'next', 'next', 'same', 'older', 'jump'),
    back: fc.integer({ min: 1, max: 6 }),
    action: fc.constantFrom<UpdateAction>('POST', 'PUT', 'PATCH', 'PATCH', 'DELETE'),
    reset: fc.integer({ min: 0, max: 9 }).map((x) => x === 0),
    expiresIn: fc.oneof({ weight: 4, arbitrary: fc.constant(0) }, { weight: 1, arbitrary: fc.integer({ min: 1, max: 40 }) }),
    advance: fc.integer({ min: 0, max: 10 }),
  },
  { noNullPrototype: true },
);

function records(steps: Step[]): LogRecord[] {
  const latest = new Map<string, number>();
  let time = 1_700_000_000_000_000;
  return steps.map((s, i) => {
    const link = LINKS[s.link]!;
    const held = latest.get(link);
    let version = 0;
    if (held !== undefined && !s.reset) {
      version =
        s.version === 'next'
          ? held + 1
          : s.version === 'same'
            ? held
            : s.version === 'older'
              ? Math.max(0, held - s.back)
              : held + 1 + s.back;
    }
    latest.set(link, s.reset || held === undefined ? version : Math.max(held, version));
    time += s.advance;
    const r: LogRecord = {
      seq: i + 1,
      link,
      action: s.action,
      version,
      epoch: 0,
      timeMicros: time,
      state: {
        documentSelfLink: link,
        documentKind: KINDS.example,
        documentVersion: version,
        documentUpdateTimeMicros: time,
        documentUpdateAction: s.action,
        documentExpirationTimeMicros: s.expiresIn === 0 ? 0 : time + s.expiresIn,
        step: i,
      },
    };
    if (s.reset) r.resetHistory = true;
    return r;
  });
}

function compare(index: DocumentIndex, tally: HistoryTally, retention: number, asOf: number, afterSeq: number): void {
  for (const link of LINKS) {
    const held = index.versions(link);
    const t = tally.links.get(link);
    const where = `${link} after seq ${afterSeq} (retention ${retention})`;
    if (held.length === 0) {
      assert.is(t, undefined, where);
      continue;
    }
    assert.ok(t !== undefined, where);
    const versions = held.map((d) => d.documentVersion);
    const tallied = t.list ?? Array.from({ length: t.last - t.first + 1 }, (_, i) => t.first + i);
    assert.equal(tallied, versions, `${where}: versions`);
    assert.is(versionCount(t), versions.length, where);
    const latest = held.at(-1)!;
    assert.is(t.deleted, isTombstone(latest), `${where}: tombstone`);
    assert.is(t.expiration, latest.documentExpirationTimeMicros, `${where}: expiration`);
  }
  // Counts per factory, against listings the index itself gives.
  const factories = [...new Set(LINKS.map(parentLink))].sort();
  const expected = factories
    .map((factory) => {
      const links = index.linksUnder(factory);
      let live = 0;
      let deleted = 0;
      let expired = 0;
      let versions = 0;
      for (const link of links) {
        const doc = index.latest(link)!;
        const exp = doc.documentExpirationTimeMicros;
        if (exp > 0 && exp < asOf) expired++;
        else {
          versions += index.versions(link).length;
          if (isTombstone(doc)) deleted++;
          else live++;
        }
      }
      return { factory, live, deleted, expired, versions, links: links.length };
    })
    .filter((c) => c.links > 0)
    .map(({ links: _links, ...c }) => c);
  assert.equal(tally.countByFactory(asOf), expected, `counts after seq ${afterSeq}`);
}

test('HistoryTally holds the versions, tombstones and expirations DocumentIndex holds, record by record', () => {
  fc.assert(
    fc.property(fc.array(stepArb, { minLength: 1, maxLength: 80 }), fc.integer({ min: 1, max: 5 }), (steps, retention) => {
      const index = new DocumentIndex({ retentionFor: () => retention });
      const tally = new HistoryTally(() => retention);
      for (const r of records(steps)) {
        index.apply(r);
        tally.apply(r);
        compare(index, tally, retention, r.timeMicros, r.seq);
      }
    }),
    { numRuns: 400 },
  );
});

test('retention as a host keeps it: 100 for the example factories, 1000 elsewhere, never under 20', () => {
  assert.is(hostRetentionFor('/core/examples/x'), 100);
  assert.is(hostRetentionFor('/core/examples-3x/x'), 100);
  assert.is(hostRetentionFor('/app/things/x'), 1000);
  const tally = new HistoryTally(hostRetentionFor);
  const index = new DocumentIndex({ retentionFor: hostRetentionFor });
  for (let v = 0; v < 130; v++) {
    const r: LogRecord = {
      seq: v + 1,
      link: '/core/examples/x',
      action: v === 0 ? 'POST' : 'PATCH',
      version: v,
      epoch: 0,
      timeMicros: 1 + v,
      state: {
        documentSelfLink: '/core/examples/x',
        documentKind: KINDS.example,
        documentVersion: v,
        documentUpdateTimeMicros: 1 + v,
        documentUpdateAction: v === 0 ? 'POST' : 'PATCH',
        documentExpirationTimeMicros: 0,
      },
    };
    tally.apply(r);
    index.apply(r);
  }
  assert.equal(tally.countByFactory(1000), [{ factory: '/core/examples', live: 1, deleted: 0, expired: 0, versions: 100 }]);
  assert.is(index.versions('/core/examples/x').length, 100);
});

test.run();
